"""Mutation testing of the core with mutmut (issue 23): run it on a module set, print the scores.

    python benchmarks/mutation.py                      # the full set ([tool.mutmut] only_mutate)
    python benchmarks/mutation.py measure/fans experiments/seeds
    python benchmarks/mutation.py --report             # the table of what mutants/ holds, no run
    python benchmarks/mutation.py --survivors measure/stats   # also each survivor's diff

By hand and before a release, never in .ci/run (docs/mutation.md has the scores and the
equivalent mutants). Needs the mutation extra (mutmut==3.8.1). The configuration is
[tool.mutmut] in pyproject.toml; results are kept in mutants/ (git-ignored), so a second run
only retests the functions that changed, and mutants/ can be deleted for a fresh start.

A mutant's score counts it detected when a test fails (killed) or when it runs past mutmut's
limit (timeout: a mutant that loops); "no tests" means no selected test reaches the function.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# mutmut's exit codes (mutmut/stats.py) folded into the columns printed.
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          37: "type check", None: "not run"}  # fmt: skip
COLUMNS = ["killed", "timeout", "survived", "no tests", "not run", "other"]


def configured_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    return list(config["tool"]["mutmut"]["only_mutate"])


def resolve(names: list[str]) -> list[str]:
    """'measure/fans', 'initcli/measure/fans.py' or 'initcli.measure.fans' -> the file's path."""
    known = configured_modules()
    if not names:
        return known
    out = []
    for name in names:
        path = name.replace(".", "/").removesuffix("/py").removesuffix(".py")
        path = path if path.startswith("initcli/") else f"initcli/{path}"
        path += ".py"
        if path not in known:
            sys.exit(f"{name}: not in [tool.mutmut] only_mutate; one of {', '.join(known)}")
        out.append(path)
    return out


def results(path: str) -> dict[str, int | None]:
    meta = ROOT / "mutants" / f"{path}.meta"
    if not meta.exists():
        return {}
    return dict(json.loads(meta.read_text("utf-8"))["exit_code_by_key"])


def table(paths: list[str]) -> tuple[str, list[str]]:
    lines = [f"{'module':<38} {'score':>7} {'detected':>9} " + " ".join(f"{c:>8}" for c in COLUMNS)]
    survivors: list[str] = []
    for path in paths:
        codes = results(path)
        counts = Counter(STATUS.get(code, "other") for code in codes.values())
        survivors += sorted(k for k, v in codes.items() if STATUS.get(v) == "survived")
        total = len(codes)
        detected = counts["killed"] + counts["timeout"]
        score = f"{100 * detected / total:.1f}%" if total else "-"
        lines.append(
            f"{path:<38} {score:>7} {f'{detected}/{total}':>9} "
            + " ".join(f"{counts[c]:>8}" for c in COLUMNS)
        )
    return "\n".join(lines), survivors


def mutmut(*args: str, log: Path | None = None) -> int:
    # One thread per worker: an OpenMP pool started in the parent deadlocks a forked child
    # (the first runs here hung each torch-using mutant until mutmut's limit), and two workers
    # on two cores need no more.
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    exe = Path(sys.executable).parent / "mutmut"
    with open(log or os.devnull, "w", encoding="utf-8") as out:
        return subprocess.run([str(exe), *args], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="e.g. measure/fans (default: the full set)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--report", action="store_true", help="print the table, run nothing")
    parser.add_argument("--survivors", action="store_true", help="print each survivor's diff")
    args = parser.parse_args()
    paths = resolve(args.modules)
    if not args.report:
        # Named mutants are always retested; with no names mutmut keeps the results it has.
        every = paths == configured_modules()
        globs = [] if every else [p.removesuffix(".py").replace("/", ".") + ".*" for p in paths]
        log = ROOT / "mutants" / "run.log"
        log.parent.mkdir(exist_ok=True)
        code = mutmut("run", "--max-children", str(args.max_children), *globs, log=log)
        if code != 0:
            sys.exit(f"mutmut run exited {code}; its output is in {log.relative_to(ROOT)}")
    text, survivors = table(paths)
    print(text)
    if survivors:
        print(f"\n{len(survivors)} survived:" if args.survivors else "\nSurvived:")
        for name in survivors:
            if args.survivors:
                shown = subprocess.run(
                    [str(Path(sys.executable).parent / "mutmut"), "show", name],
                    cwd=ROOT, capture_output=True, text=True, check=False,
                )  # fmt: skip
                print(shown.stdout)
            else:
                print(f"  {name}")


if __name__ == "__main__":
    main()
