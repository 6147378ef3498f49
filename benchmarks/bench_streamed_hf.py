"""Streamed vs in-memory `inspect` (default init) of a transformers model, each in its own process.

    python benchmarks/bench_streamed_hf.py [--target benchmarks/models/hf_llama.py:llama_1b]

Runs (a) `report.inspect(TARGET, stream=True)` (the meta build's writes replayed, including
transformers' `_init_weights`), (b) `report.inspect(TARGET, stream=False)` (built for real after
the seed), (c) the plain build `torch.manual_seed(0); factory()`; prints wall time and peak RSS
(the child's ru_maxrss, from wait4) of each, and whether (a) and (b) report equal rows.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

INSPECT = """
import pickle, sys
from initcli import report
r = report.inspect({target!r}, seed=0, stream={stream})
pickle.dump([(p.name, p.min, p.max, p.mean, p.var, p.status) for p in r.params],
            open({out!r}, "wb"))
"""
BUILD = """
import torch
from initcli.model import resolve
torch.manual_seed(0)
model = resolve.resolve({target!r}).build()
"""


def run(code: str) -> tuple[float, float]:
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"child failed ({status}): {code}")
    return wall, usage.ru_maxrss / 2**20  # GiB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", default="benchmarks/models/hf_llama.py:llama_1b")
    args = parser.parse_args()
    now = datetime.datetime.now(datetime.UTC)
    load = os.getloadavg()[0]
    print(f"{platform.node()}, {os.cpu_count()} CPUs, {now:%Y-%m-%d %H:%M} UTC, load {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = {}
        for label, stream in (("inspect, streamed", True), ("inspect, in memory", False)):
            out = f"{tmp}/{stream}.pkl"
            wall, rss = run(INSPECT.format(target=args.target, stream=stream, out=out))
            rows[stream] = Path(out).read_bytes()
            print(f"{label:22} {wall:7.1f} s  peak RSS {rss:6.2f} GiB")
        wall, rss = run(BUILD.format(target=args.target))
        print(f"{'plain build':22} {wall:7.1f} s  peak RSS {rss:6.2f} GiB")
        print("streamed rows == in-memory rows:", rows[True] == rows[False])


if __name__ == "__main__":
    main()
