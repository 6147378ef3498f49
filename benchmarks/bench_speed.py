"""Issue 21's figures side by side in one run: before (a git revision) and after (this checkout),
idle and loaded, one process and two torchrun ranks (run by hand).

    python benchmarks/bench_speed.py [--gib 0.5] [--before 7fe07c3] [--startup] [--with-405m]
                                     [--repeat 2] [--json out.json] [--stats-only]

Writes a mixed float32 + bfloat16 safetensors folder of --gib GiB in a temporary directory
(deleted at the end), then measures, each in its own process, with the machine idle and then
loaded by two CPU-bound processes started by this script:
  * `cat` of the folder's files from the page cache, and the best single-pass torch reduction
    (sum, aminmax, vector_norm) over its float32 values: the speed limits;
  * tensor_stats over every tensor of the folder, before and after;
  * `initcli inspect FOLDER -f json`, before and after, and after with
    `torchrun --standalone --nproc-per-node 2` (before has no split: each rank would measure
    everything); idle only, the peak anonymous memory (RssAnon) of `import torch` and of
    `inspect` before and after, against the issue's bound torch + 2 x the largest tensor;
  * after only, `report.inspect_checkpoint` timed inside one process (no start-up) on the folder
    and on a trained-looking twin of it (Laplace values, which read `trained` by their moments,
    so the structure tests do not run), in GB/s and as a multiple of `cat`;
  * with --startup, idle only: `import torch`, `initcli --help`, `initcli count` of a Llama-2-7B
    shaped model (benchmarks/models/llama.py, built on meta), and with --with-405m `inspect` of
    the 405M encoder against the plain PyTorch script (bench_huge.PLAIN_INSPECT).
The before tree is `git archive REV initcli` unpacked in the temporary directory. Each line
carries the 1-minute load average when it was taken: on a shared machine, say so with the figures.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_huge import PLAIN_INSPECT  # noqa: E402

GIB = 1 << 30

MAKE_FOLDER = """\
import sys, torch
from safetensors.torch import save_file
folder, total = sys.argv[1], int(sys.argv[2])
g = torch.Generator().manual_seed(0)
def draw(*shape):
    if sys.argv[3:] != ["laplace"]:
        return 0.02 * torch.randn(*shape, generator=g)  # reads as a fresh normal(0.02) init
    # Laplace values (std 0.02) match no named init, so they read `trained` by their moments
    # alone, as a trained checkpoint's matrices do: the structure tests do not run on them.
    u = (torch.rand(*shape, generator=g) - 0.5).clamp(-0.4999, 0.4999)
    return -0.0141 * torch.sign(u) * torch.log1p(-2 * u.abs())
# Half the bytes float32 (4096 x 4096 matrices, 64 MiB each), half bfloat16 (4096 x 8192).
i = 0
written = 0
while written < total:
    f32 = {f"layers.{i}.attn.weight": draw(4096, 4096),
           f"layers.{i}.norm.weight": 1 + 0.1 * torch.randn(4096, generator=g)}
    bf = {f"layers.{i}.mlp.weight": draw(4096, 8192).bfloat16()}
    save_file(f32, f"{folder}/f32-{i:03d}.safetensors")
    save_file(bf, f"{folder}/bf16-{i:03d}.safetensors")
    written += 2 * 64 * 2**20
    i += 1
"""

STATS = """\
import json, sys, time, glob
import torch
from safetensors.torch import load_file
from initcli.measure import stats  # the tree on PYTHONPATH: before or after
tensors = [t for f in sorted(glob.glob(sys.argv[1] + "/*.safetensors"))
           for t in load_file(f).values()]
nbytes = sum(t.numel() * t.element_size() for t in tensors)
threads = int(sys.argv[3])
if threads:
    torch.set_num_threads(threads)
# Worker threads over the blocks (after 21b): argv[4] a count, "free" for the default sizing,
# absent for trees that have no such argument.
more = {} if len(sys.argv) < 5 or sys.argv[4] == "free" else {"workers": int(sys.argv[4])}
best = float("inf")
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    for t in tensors:
        stats.tensor_stats(t, **more)
    best = min(best, time.perf_counter() - start)
print(json.dumps({"gb_s": nbytes / best / 1e9, "threads": torch.get_num_threads()}))
"""

IN_PROCESS = """\
import json, sys, time
from pathlib import Path
import torch
from initcli.report import inspect_checkpoint
torch.set_num_threads(1)  # as the command measures
folder = Path(sys.argv[1])
inspect_checkpoint(folder)  # imports and first-use costs out of the timing
best = float("inf")
for _ in range(int(sys.argv[2])):
    start = time.perf_counter()
    inspect_checkpoint(folder)
    best = min(best, time.perf_counter() - start)
nbytes = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
print(json.dumps({"gb_s": nbytes / best / 1e9}))
"""

REDUCE = """\
import json, sys, time, glob
import torch
from safetensors.torch import load_file
x = torch.cat([t.reshape(-1) for f in sorted(glob.glob(sys.argv[1] + "/f32-*.safetensors"))
               for t in load_file(f).values()])
found = {}
for name, fn in [("sum", torch.sum), ("aminmax", torch.aminmax),
                 ("vector_norm", torch.linalg.vector_norm)]:
    fn(x)
    best = float("inf")
    for _ in range(3):
        s = time.perf_counter(); fn(x); best = min(best, time.perf_counter() - s)
    found[name] = x.numel() * 4 / best / 1e9
print(json.dumps(found))
"""


def tree_env(pythonpath: str, tree: Path) -> dict[str, str]:
    """The environment whose `python -m initcli` and `python -c` run the initcli of `tree` (a
    folder holding initcli/): PYTHONPATH first, and PYTHONSAFEPATH so that the working directory
    (this checkout, where the commands run) is not put ahead of it, as `-m` and `-c` otherwise
    do. Checked by importing: before this check, every "before" ran this checkout's code."""
    env = {**os.environ, "PYTHONPATH": pythonpath, "PYTHONSAFEPATH": "1",
           "PYTHONWARNINGS": "ignore"}  # fmt: skip
    # Byte-compiled first, as `pip install` leaves a package: a machine that sets
    # PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile initcli's ~100 modules
    # again on every start, ~0.13 s that no installed copy pays.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "initcli")], check=True)
    found = subprocess.run(
        [sys.executable, "-c", "import initcli; print(initcli.__file__)"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if Path(found).resolve().parent.parent != tree.resolve():
        raise SystemExit(f"PYTHONPATH={pythonpath} runs {found}, not the initcli of {tree}")
    return env


def settle(below: float = 1.2, longest: float = 120.0) -> None:
    """Wait (at most `longest` s) for the 1-minute load to fall under `below` after the hogs."""
    end = time.monotonic() + longest
    while load() >= below and time.monotonic() < end:
        time.sleep(5)


def load() -> float:
    return os.getloadavg()[0]


def timed(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, str]:
    """Best wall time of `repeat` runs, and the last run's stdout (a failure stops the bench)."""
    best, out = float("inf"), ""
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(
            argv, cwd=ROOT, env=env, text=True, check=False, stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL if argv[0] == "cat" else subprocess.PIPE,
        )  # fmt: skip
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
        out = done.stdout
    return best, out


def peak_anonymous(argv: list[str], env: dict[str, str]) -> int:
    """The largest RssAnon (bytes) of one run, read from /proc every 5 ms: memory the process
    allocated, not the file pages it maps (a safetensors file read through mmap is not counted)."""
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    peak = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (FileNotFoundError, ProcessLookupError):
            break
        time.sleep(0.005)
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(argv)} failed")
    return peak


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """`processes` CPU-bound processes for the duration (0: none)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        if hogs:
            time.sleep(3)  # let them take the cores
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gib", type=float, default=0.5, help="size of the mixed folder")
    parser.add_argument("--before", default="7fe07c3", help="git revision of the 'before' code")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (best kept)")
    parser.add_argument("--startup", action="store_true", help="also import/--help/count 7B")
    parser.add_argument("--with-405m", action="store_true", help="also inspect the 405M encoder")
    parser.add_argument("--no-loaded", action="store_true", help="skip the loaded runs")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--stats-only", action="store_true", help="skip inspect and torchrun")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []

    def row(figure: str, condition: str, value: float, unit: str, **more: object) -> None:
        entry = {"figure": figure, "condition": condition, "value": round(value, 3),
                 "unit": unit, "load": round(load(), 2), **more}  # fmt: skip
        rows.append(entry)
        extra = "".join(f"  {k}={v}" for k, v in more.items())
        print(f"{figure:<44}{condition:<8}{value:>9.3f} {unit:<5} load {entry['load']:>5}{extra}")
        sys.stdout.flush()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench_speed_") as tmp:
        work = Path(tmp)
        before = work / "before"
        before.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.before, "initcli"],
            capture_output=True, check=True,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        folder = work / "mixed"
        folder.mkdir()
        py = sys.executable
        env_after = tree_env(str(ROOT), ROOT)
        env_before = tree_env(str(before), before)
        subprocess.run([py, "-c", MAKE_FOLDER, str(folder), str(int(args.gib * GIB))], check=True)
        files = sorted(str(p) for p in folder.iterdir())
        nbytes = sum(os.path.getsize(f) for f in files)
        print(f"folder: {len(files)} files, {nbytes / 1e9:.2f} GB (float32 + bfloat16)")
        trained = work / "trained-looking"
        if not args.stats_only:
            trained.mkdir()
            subprocess.run([py, "-c", MAKE_FOLDER, str(trained), str(int(args.gib * GIB)),
                            "laplace"], check=True)  # fmt: skip
            subprocess.run(["cat", *map(str, trained.iterdir())], stdout=subprocess.DEVNULL,
                           check=True)  # fmt: skip
        torchrun = [py, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
        inspect = ["-m", "initcli", "inspect", str(folder), "-f", "json"]
        conditions = [("idle", 0)] + ([] if args.no_loaded else [("loaded", 2)])
        for condition, hogs in conditions:
            with busy(hogs):
                wall, _ = timed(["cat", *files], env_after, args.repeat + 1)
                cat_gb_s = nbytes / wall / 1e9
                row("page-cache cat", condition, cat_gb_s, "GB/s")
                _, out = timed([py, "-c", REDUCE, str(folder)], env_after, 1)
                best = max(json.loads(out).values())
                row("best single-pass float32 reduction", condition, best, "GB/s")
                # At one intra-op thread (how inspect measures) "after" also runs 1 and 2 block
                # workers and the default sizing (free cores); at torch's own count, 1 worker.
                for threads, label, env, workers in (
                    (1, "before", env_before, []),
                    (1, "after, 1 worker", env_after, ["1"]),
                    (1, "after, 2 workers", env_after, ["2"]),
                    (1, "after, free cores", env_after, ["free"]),
                    (0, "before", env_before, []),
                    (0, "after", env_after, []),
                ):
                    argv = [py, "-c", STATS, str(folder), "2", str(threads), *workers]
                    _, out = timed(argv, env, 1)
                    found = json.loads(out)
                    row(f"tensor_stats {label}, {found['threads']} thread(s)", condition,
                        found["gb_s"], "GB/s")  # fmt: skip
                if args.stats_only:
                    continue
                walls = {}
                for label, argv, env in (
                    ("before, 1 process", [py, *inspect], env_before),
                    ("after, 1 process", [py, *inspect], env_after),
                    ("after, torchrun 2 ranks", [*torchrun, *inspect], env_after),
                ):
                    walls[label], _ = timed(argv, env, args.repeat)
                    row(f"inspect {label}", condition, walls[label], "s",
                        gb_s=round(nbytes / walls[label] / 1e9, 3))  # fmt: skip
                row("inspect after/before (1 process)", condition,
                    walls["after, 1 process"] / walls["before, 1 process"], "x")  # fmt: skip
                # What inspect reads per second once started (no interpreter, no imports), on
                # this folder (fresh normal draws: every matrix goes through the structure
                # tests) and on its trained-looking twin (none does), against `cat`.
                for label, where in (("fresh", folder), ("trained-looking", trained)):
                    _, out = timed([py, "-c", IN_PROCESS, str(where), str(args.repeat)],
                                   env_after, 1)  # fmt: skip
                    gb_s = json.loads(out)["gb_s"]
                    row(f"inspect in-process, {label} folder", condition, gb_s, "GB/s",
                        x_cat=round(gb_s / cat_gb_s, 3))  # fmt: skip
                if condition == "idle":
                    # The bound: torch + 2 x the largest tensor (a 4096 x 8192 bf16).
                    largest = 4096 * 8192 * 2
                    torch_only = peak_anonymous([py, "-c", "import torch"], env_after)
                    row("peak anonymous memory, import torch", condition, torch_only / 2**20, "MiB")
                    row("bound: torch + 2 x largest tensor", condition,
                        (torch_only + 2 * largest) / 2**20, "MiB")  # fmt: skip
                    for label, env in (("before", env_before), ("after", env_after)):
                        peak = peak_anonymous([py, *inspect], env)
                        row(f"peak anonymous memory, inspect ({label})", condition,
                            peak / 2**20, "MiB")  # fmt: skip
        if args.startup:
            settle()
            starts = [
                ("import torch", [py, "-c", "import torch"]),
                ("initcli --help", [py, "-m", "initcli", "--help"]),
                ("count Llama-2-7B shape (meta)",
                 [py, "-m", "initcli", "count", "benchmarks/models/llama.py:Llama", "-f", "json"]),
            ]  # fmt: skip
            if args.with_405m:
                target = "benchmarks/models/transformer.py:Encoder405M"
                build = (
                    "from benchmarks.models.transformer import Encoder405M; model = Encoder405M()"
                )
                starts += [
                    ("plain PyTorch script, 405M", [py, "-c", PLAIN_INSPECT.format(build=build)]),
                    ("inspect 405M -i kaiming_normal",
                     [py, "-m", "initcli", "inspect", target, "-i", "kaiming_normal"]),
                ]  # fmt: skip
            for label, argv in starts:
                for tree, base in (("before", env_before), ("after", env_after)):
                    if "initcli" not in " ".join(argv) and tree == "after":
                        continue
                    # The models live in this checkout's benchmarks/, after the tree's initcli.
                    env = {**base, "PYTHONPATH": f"{base['PYTHONPATH']}:{ROOT}"}
                    wall, _ = timed(argv, env, args.repeat)
                    row(f"{label} ({tree})" if "initcli" in " ".join(argv) else label,
                        "idle", wall, "s")  # fmt: skip
        shutil.rmtree(folder)
        shutil.rmtree(trained, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
