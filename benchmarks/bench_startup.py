"""Start-up side by side in one run: `import torch`, `initcli --help` and `initcli count` of a
Llama-2-7B shaped model (built on meta), before (a git revision) and after (this checkout).

    python benchmarks/bench_startup.py [--before 7fe07c3] [--rounds 5] [--json out.json]

Each round runs every command once, in turn, so that a change in the machine's load touches
before and after alike; the median and best wall times over the rounds are printed with the
1-minute load average. Then one `python -X importtime` run of each `count` splits its import
time into torch's own modules and the rest (initcli and its other dependencies). The before
tree is `git archive REV initcli` unpacked in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_speed import tree_env  # noqa: E402

COUNT = ["-m", "initcli", "count", "benchmarks/models/llama.py:Llama", "-f", "json"]


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def import_times(argv: list[str], env: dict[str, str]) -> dict[str, int]:
    """Self import time in microseconds of each module `argv` imports (python -X importtime)."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    found: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            parts = line.split("|")
            found[parts[2].strip()] = int(parts[0].split(":")[1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default="7fe07c3", help="git revision of the 'before' code")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench_startup_") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "initcli"],
            capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        # The model file lives in this checkout's benchmarks/, after the tree's initcli.
        trees = {"before": f"{tmp}:{ROOT}", "after": f"{ROOT}"}
        envs = {
            "before": tree_env(trees["before"], Path(tmp)),
            "after": tree_env(trees["after"], ROOT),
        }
        commands = [("import torch", [py, "-c", "import torch"], envs["after"])]
        for tree in trees:
            commands += [
                (f"initcli --help ({tree})", [py, "-m", "initcli", "--help"], envs[tree]),
                (f"count 7B on meta ({tree})", [py, *COUNT], envs[tree]),
            ]
        times: dict[str, list[float]] = {label: [] for label, _, _ in commands}
        loads: list[float] = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for label, argv, env in commands:
                times[label].append(wall(argv, env))
        loads.append(os.getloadavg()[0])
        rows: list[dict[str, object]] = []
        torch_median = statistics.median(times["import torch"])
        print(f"{args.rounds} rounds, 1-minute load {min(loads):.2f}-{max(loads):.2f}")
        for label, found in times.items():
            median = statistics.median(found)
            rows.append({"figure": label, "median_s": round(median, 3),
                         "best_s": round(min(found), 3),
                         "x_import_torch": round(median / torch_median, 3)})  # fmt: skip
            print(f"{label:<28} median {median:6.3f} s  best {min(found):6.3f} s  "
                  f"{median / torch_median:5.2f}x import torch")  # fmt: skip
        torch_only = import_times([py, "-c", "import torch"], envs["after"])
        for tree in trees:
            imported = import_times([py, *COUNT], envs[tree])
            beyond = {k: v for k, v in imported.items() if k not in torch_only}
            initcli = sum(v for k, v in beyond.items() if k.split(".")[0] == "initcli")
            total = sum(imported.values())
            rows.append({"figure": f"count imports ({tree})", "total_ms": total // 1000,
                         "beyond_torch_ms": sum(beyond.values()) // 1000,
                         "initcli_ms": initcli // 1000})  # fmt: skip
            print(f"count imports ({tree}): {total / 1000:.0f} ms in all, "
                  f"{sum(beyond.values()) / 1000:.0f} ms beyond import torch's modules "
                  f"({initcli / 1000:.0f} ms initcli's own)")  # fmt: skip
        rows.append({"figure": "load", "min": min(loads), "max": max(loads)})
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
