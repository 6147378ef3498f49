"""initcli on large models against the usual ways, each in its own process (run by hand).

    python benchmarks/bench_huge.py [--repeat 3] [--budget-gib 6] [--only 405M] [--json out.json]

For each model (the sample MLP, a 405M-parameter TransformerEncoderLayer stack, a Llama-2-7B-shaped
decoder) it measures wall time and peak RSS of:
  (a) `initcli count` against building the model and summing numel, and torchinfo.summary;
  (b) `initcli inspect --init kaiming_normal` against the plain-PyTorch script (build,
      nn.init.kaiming_normal_ per weight, torch.var_mean per tensor);
plus `python -c "import torch"`, `initcli --help`, and the time torch needs just to fill as many
elements as the 7B model has with normal_ (chunk by chunk, in one reused 256 MB buffer).

Memory safety: a baseline that builds the whole model is not started when its parameters alone
exceed --budget-gib (it is reported as "out of memory (needs ~N GB)"), and every child runs under
an address-space limit (RLIMIT_AS) of the budget plus what torch itself maps, so a mistake fails
fast instead of taking the machine down. Peak RSS is the child's own ru_maxrss, from wait4.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIB = 1 << 30
# What torch maps before any tensor exists (~0.8 GB of address space on Linux), plus slack for
# thread stacks and malloc arenas: added to the budget to make each child's RLIMIT_AS.
TORCH_AS = 3 * GIB
FILL_CHUNK = 1 << 26  # elements per normal_ call in the fill baseline (256 MB of float32)


@dataclass(frozen=True)
class Model:
    label: str
    target: str  # initcli TARGET
    build: str  # Python that imports and builds the model as `model`
    params: int


MODELS = [
    Model(
        "sample MLP",
        "sample_models/mlp.py:MLP",
        "from sample_models.mlp import MLP; model = MLP()",
        51,
    ),
    Model(
        "405M encoder",
        "benchmarks/models/transformer.py:Encoder405M",
        "from benchmarks.models.transformer import Encoder405M; model = Encoder405M()",
        405_285_969,
    ),
    Model(
        "Llama-2-7B shape",
        "benchmarks/models/llama.py:Llama",
        "from benchmarks.models.llama import Llama; model = Llama()",
        6_738_415_616,
    ),
]

SUM_NUMEL = "{build}\nprint(sum(p.numel() for p in model.parameters()))"
TORCHINFO = "import torchinfo\n{build}\nprint(torchinfo.summary(model, verbose=0).total_params)"
PLAIN_INSPECT = """\
import torch
from torch import nn
{build}
torch.manual_seed(0)
for name, p in model.named_parameters():
    if p.dim() >= 2:
        nn.init.kaiming_normal_(p)
for name, p in model.named_parameters():
    var, mean = torch.var_mean(p.detach())
    print(name, float(mean), float(var))
"""
FILL = """\
import json, sys, time
import torch
n, chunk = int(sys.argv[1]), int(sys.argv[2])
buf = torch.empty(min(n, chunk))
buf.normal_()  # fault the buffer in before timing
torch.manual_seed(0)
start = time.perf_counter()
left = n
while left:
    k = min(chunk, left)
    buf[:k].normal_()
    left -= k
print(json.dumps({"fill_s": time.perf_counter() - start}))
"""


@dataclass
class Result:
    model: str
    task: str
    what: str
    wall_s: float | None = None
    rss_mb: float | None = None
    note: str = ""
    inner_s: float | None = None  # time measured inside the child (the fill baseline)


def _limits(address_space: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_CPU, (1800, 1800))

    return apply


def run(argv: list[str], address_space: int) -> tuple[float, float, int, str]:
    """(wall seconds, peak RSS in MB, exit status, stdout+stderr tail) of one child process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            # This script starts no threads, so preexec_fn is safe here; it is what sets limits.
            preexec_fn=_limits(address_space),  # noqa: PLW1509
        )  # fmt: skip
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    return wall, usage.ru_maxrss / 1024, proc.returncode, text[-600:]


def measure(result: Result, argv: list[str], repeat: int, address_space: int) -> tuple[Result, str]:
    """Best wall time of `repeat` runs and the largest peak RSS; a failure is noted, not fatal."""
    walls, rss, text = [], 0.0, ""
    for _ in range(repeat):
        wall, peak, code, text = run(argv, address_space)
        if code != 0:
            oom = "MemoryError" in text or "can't allocate" in text or "out of memory" in text
            result.note = "out of memory" if oom else f"failed (exit {code}): {text.strip()[-200:]}"
            result.rss_mb = peak
            return result, text
        walls.append(wall)
        rss = max(rss, peak)
    result.wall_s, result.rss_mb = min(walls), rss
    return result, text


class Bench:
    """Runs the commands and keeps their results, printing each as it comes."""

    def __init__(self, repeat: int, budget: int) -> None:
        self.repeat = repeat
        self.budget = budget
        self.limit = budget + TORCH_AS
        self.results: list[Result] = []

    def show(self, r: Result) -> None:
        shown = f"{r.wall_s:.2f} s" if r.wall_s is not None else r.note
        if r.inner_s is not None:
            shown = f"fill {r.inner_s:.2f} s (process {r.wall_s:.2f} s)"
        rss = f"{r.rss_mb:,.0f} MB" if r.rss_mb is not None else "-"
        print(f"  {r.model:<17} {r.task:<8} {r.what:<44} {shown:>12} {rss:>10}", flush=True)

    def record(self, r: Result, argv: list[str], repeat: int | None = None) -> Result:
        r, text = measure(r, argv, repeat or self.repeat, self.limit)
        if r.what.startswith("normal_ fill") and r.wall_s is not None:
            r.inner_s = json.loads(text.strip().splitlines()[-1])["fill_s"]
        self.results.append(r)
        self.show(r)
        return r

    def baseline(self, r: Result, code: str, needs: int, repeat: int) -> None:
        """A script that builds the whole model: refused up front when it cannot fit."""
        if needs > self.budget:
            r.note = f"out of memory (needs ~{needs / 1e9:.0f} GB)"
            self.results.append(r)
            self.show(r)
            return
        self.record(r, [sys.executable, "-c", code], repeat)

    def model(self, model: Model, initcli: list[str]) -> None:
        needs = model.params * 4
        # Inspecting a 7B model takes half a minute; once is enough and leaves the machine to
        # others. Counting it is as cheap as any other count.
        reps = 1 if model.params > 1_000_000_000 else self.repeat
        build = model.build
        self.record(
            Result(model.label, "count", "initcli count"),
            [*initcli, "count", model.target, "-f", "json"],
        )
        self.baseline(
            Result(model.label, "count", "build + sum(numel)"),
            SUM_NUMEL.format(build=build),
            needs,
            reps,
        )
        self.baseline(
            Result(model.label, "count", "build + torchinfo.summary"),
            TORCHINFO.format(build=build),
            needs,
            reps,
        )
        self.record(
            Result(model.label, "inspect", "initcli inspect --init kaiming_normal"),
            [*initcli, "inspect", model.target, "--init", "kaiming_normal", "-f", "json"],
            reps,
        )
        self.baseline(
            Result(model.label, "inspect", "plain PyTorch script"),
            PLAIN_INSPECT.format(build=build),
            needs,
            reps,
        )
        if needs > self.budget:
            self.record(
                Result(model.label, "inspect", f"normal_ fill of {model.params:,} elements"),
                [sys.executable, "-c", FILL, str(model.params), str(FILL_CHUNK)],
                1,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per command, best kept")
    parser.add_argument("--budget-gib", type=float, default=6.0, help="memory a baseline may use")
    parser.add_argument("--only", help="only models whose label contains this text")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    bench = Bench(args.repeat, int(args.budget_gib * GIB))
    script = Path(sys.executable).parent / "initcli"  # the console script, as users run it
    initcli = [str(script)] if script.exists() else [sys.executable, "-m", "initcli"]
    load0 = os.getloadavg()
    print(f"{platform.node()}: {os.cpu_count()} cores, {_mem_gib():.0f} GiB, load {load0}")
    bench.record(
        Result("-", "baseline", 'python -c "import torch"'), [sys.executable, "-c", "import torch"]
    )
    bench.record(Result("-", "help", "initcli --help"), [*initcli, "--help"])
    for model in MODELS:
        if not args.only or args.only in model.label:
            bench.model(model, initcli)
    load1 = os.getloadavg()
    print()
    print(table(bench.results, load0, load1))
    print()
    print(targets(bench.results))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in bench.results], indent=2) + "\n")


def _mem_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB


def _find(results: list[Result], model: str, what: str) -> Result | None:
    return next((r for r in results if r.model == model and r.what.startswith(what)), None)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a is not None and b else "–"


def table(results: list[Result], load0: tuple[float, ...], load1: tuple[float, ...]) -> str:
    """docs/benchmarks.md's Markdown table: each row with its ratios to the row it is compared
    with."""
    today = datetime.date.today().isoformat()
    lines = [
        f"Machine: {os.cpu_count()} cores, {_mem_gib():.0f} GiB, {platform.processor() or 'cpu'}"
        f"; {today}; load average {load0[0]:.1f} → {load1[0]:.1f}.",
        "",
        "| model | task | command | wall | peak RSS | wall ratio | RSS ratio |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    torch_import = _find(results, "-", 'python -c "import torch"')
    for r in results:
        if r.model == "-":
            ref = None
        elif r.what.startswith("initcli count"):
            ref = _find(results, r.model, "build + sum")
            if ref is None or ref.wall_s is None:
                ref = torch_import
        elif r.what.startswith("initcli inspect"):
            ref = _find(results, r.model, "plain PyTorch")
            fill = _find(results, r.model, "normal_ fill")
            if (ref is None or ref.wall_s is None) and fill is not None:
                ref = Result(r.model, "", "fill", fill.inner_s, None)
        else:
            ref = None
        wall = f"{r.wall_s:.2f} s" if r.wall_s is not None else r.note
        if r.inner_s is not None:
            wall = f"{r.inner_s:.2f} s (fill only)"
        rss = f"{r.rss_mb:,.0f} MB" if r.rss_mb is not None and r.wall_s is not None else "–"
        vs = f" vs {ref.what}" if ref is not None and ref.wall_s else ""
        wall_ratio = _ratio(r.wall_s, ref.wall_s if ref else None) + vs
        rss_ratio = _ratio(r.rss_mb, ref.rss_mb if ref else None)
        lines.append(
            f"| {r.model} | {r.task} | {r.what} | {wall} | {rss} | {wall_ratio} | {rss_ratio} |"
        )
    return "\n".join(lines)


def targets(results: list[Result]) -> str:
    """The issue's targets, each as met / missed with the measured numbers."""
    out = ["Targets:"]

    def check(label: str, ok: bool | None, detail: str) -> None:
        verdict = "n/a" if ok is None else ("MET" if ok else "MISSED")
        out.append(f"- {label}: {verdict} ({detail})")

    imp = _find(results, "-", 'python -c "import torch"')
    helps = _find(results, "-", "initcli --help")
    c7 = _find(results, "Llama-2-7B shape", "initcli count")
    i405 = _find(results, "405M encoder", "initcli inspect")
    p405 = _find(results, "405M encoder", "plain PyTorch")
    i7 = _find(results, "Llama-2-7B shape", "initcli inspect")
    f7 = _find(results, "Llama-2-7B shape", "normal_ fill")
    if c7 and imp and c7.wall_s and imp.wall_s and c7.rss_mb:
        check(
            "count 7B: wall ≤ 1.5× import torch, RSS ≤ 1 GiB",
            c7.wall_s <= 1.5 * imp.wall_s and c7.rss_mb <= 1024,
            f"{c7.wall_s:.2f} s = {c7.wall_s / imp.wall_s:.2f}×, {c7.rss_mb:,.0f} MB",
        )
    if i405 and p405 and i405.wall_s and p405.wall_s and i405.rss_mb and p405.rss_mb:
        check(
            "inspect 405M: wall ≤ 0.6×, RSS ≤ 0.35× the plain script",
            i405.wall_s <= 0.6 * p405.wall_s and i405.rss_mb <= 0.35 * p405.rss_mb,
            f"{i405.wall_s / p405.wall_s:.2f}×, {i405.rss_mb / p405.rss_mb:.2f}×",
        )
    if i7 and f7 and i7.wall_s and f7.inner_s and i7.rss_mb:
        check(
            "inspect 7B: RSS ≤ 3 GiB, wall ≤ 1.5× the normal_ fill",
            i7.rss_mb <= 3 * 1024 and i7.wall_s <= 1.5 * f7.inner_s,
            f"{i7.rss_mb:,.0f} MB, {i7.wall_s:.1f} s = {i7.wall_s / f7.inner_s:.2f}× "
            f"{f7.inner_s:.1f} s",
        )
    if helps and helps.wall_s:
        check("initcli --help ≤ 0.5 s", helps.wall_s <= 0.5, f"{helps.wall_s:.2f} s")
    return "\n".join(out)


if __name__ == "__main__":
    main()
