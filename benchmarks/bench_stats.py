"""Speed and accuracy of initcli.measure.stats.tensor_stats against torch.var_mean (run by hand)."""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# Run as `python benchmarks/bench_stats.py` from a checkout: make the package importable without
# installing it.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from initcli.measure.stats import tensor_stats

M = 1_000_000
# (label, numel, dtype, mean, std): the sizes quoted in docs/benchmarks.md, plus one hard case for
# accuracy (a tiny spread around a large mean, where one-pass formulas cancel catastrophically).
CASES: list[tuple[str, int, torch.dtype, float, float]] = [
    ("float32 1M", 1 * M, torch.float32, 0.0, 1.0),
    ("float32 50M", 50 * M, torch.float32, 0.0, 1.0),
    ("float32 200M", 200 * M, torch.float32, 0.0, 1.0),
    ("float16 50M", 50 * M, torch.float16, 0.0, 1.0),
    ("bfloat16 50M", 50 * M, torch.bfloat16, 0.0, 1.0),
    ("float32 50M 1e4+1e-3*randn", 50 * M, torch.float32, 1e4, 1e-3),
]


def best_time(fn: Callable[[], object], repeat: int) -> float:
    """Best wall time of `repeat` calls, after one warm-up call (allocator, BLAS threads)."""
    fn()
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def reference(t: torch.Tensor) -> tuple[float, float]:
    """(mean, var) by the textbook two-pass algorithm in float64: the most accurate torch gives.

    torch.var_mean on a float64 copy is not used as the yardstick because its one-pass (Welford)
    accumulation itself loses ~1e-8 relative on the large-mean case.
    """
    d = t.double()
    mean = d.sum() / d.numel()
    d.sub_(mean)
    var = torch.dot(d, d) / (d.numel() - 1)
    return float(mean), float(var)


def rel_err(got: float, want: float) -> float:
    """Relative error, absolute when the wanted value is 0."""
    return abs(got - want) / abs(want) if want else abs(got - want)


def main() -> None:
    """Print one row per case: times, speed-up over torch.var_mean, and accuracy."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per method (best kept)")
    parser.add_argument("--only", help="run only cases whose label contains this text")
    args = parser.parse_args()

    # Each tensor_stats call runs a few small parallel kernels per chunk (~2000 for 200M elements),
    # so it suffers far more than one big var_mean kernel when other processes hold the cores:
    # the load average tells whether a run was contended.
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {load}")
    header = (
        f"{'case':<28}{'var_mean':>10}{'f64 copy':>10}{'stats':>10}{'speed-up':>9}"
        f"{'err stats':>11}{'err var_mean':>13}{'err f64 copy':>13}"
    )
    print(header)
    print("-" * len(header))
    gen = torch.Generator().manual_seed(0)
    for label, n, dtype, mu, sigma in CASES:
        if args.only and args.only not in label:
            continue
        t = (torch.randn(n, generator=gen).mul_(sigma).add_(mu)).to(dtype)
        ref_mean, ref_var = reference(t)

        t_vm = best_time(lambda t=t: torch.var_mean(t), args.repeat)  # type: ignore[misc]
        t_f64 = best_time(lambda t=t: torch.var_mean(t.double()), args.repeat)  # type: ignore[misc]
        t_st = best_time(lambda t=t: tensor_stats(t), args.repeat)  # type: ignore[misc]

        st = tensor_stats(t)
        assert st.mean is not None and st.var is not None
        vm_var, vm_mean = torch.var_mean(t)
        f64_var, f64_mean = torch.var_mean(t.double())
        err_st = max(rel_err(st.mean, ref_mean), rel_err(st.var, ref_var))
        err_vm = max(rel_err(float(vm_mean), ref_mean), rel_err(float(vm_var), ref_var))
        err_f64 = max(rel_err(float(f64_mean), ref_mean), rel_err(float(f64_var), ref_var))
        print(
            f"{label:<28}{t_vm * 1e3:>8.1f}ms{t_f64 * 1e3:>8.1f}ms{t_st * 1e3:>8.1f}ms"
            f"{t_vm / t_st:>8.1f}x{err_st:>11.1e}{err_vm:>13.1e}{err_f64:>13.1e}"
        )
        del t
        gc.collect()
    print(
        "\nspeed-up = var_mean time / tensor_stats time; err = max relative error of mean and var"
        " against a two-pass float64 reference."
    )


if __name__ == "__main__":
    main()
