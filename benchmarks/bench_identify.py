"""How often initcli.measure.identify names the true scheme, and flags torch's default (by hand).

    python benchmarks/bench_identify.py [--seeds 200] [--big-seeds 20] [--max-side N] [--shape AxB]

For every named scheme × shape it draws fresh tensors (seeds 0..N-1) with torch's own nn.init
function, measures them with stats.tensor_stats and identifies them: `hit` is the share of seeds
whose `matches` contain the true scheme. For torch's default (a Linear/Conv2d built from scratch)
it counts the statuses `custom`/`uninitialized` (false alarms) under `default`; and it checks
that left-over memory (random bits), 1e37 fills, NaN and denormal tensors are all uninitialized.
"""

from __future__ import annotations

import argparse
import datetime
import math
import platform
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from initcli.init import schemes, torch_defaults
from initcli.measure import identify, stats
from initcli.measure.default_status import default_status

Init = Callable[[torch.Tensor], object]

SCHEMES: list[tuple[str, Init]] = [
    ("kaiming_uniform(a=√5)", lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5))),
    ("xavier_uniform", nn.init.xavier_uniform_),
    ("xavier_normal", nn.init.xavier_normal_),
    ("xavier_normal(gain=tanh)", lambda w: nn.init.xavier_normal_(w, gain=5 / 3)),
    ("kaiming_normal(fan_in, relu)", lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    ("kaiming_uniform(fan_in, relu)", lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    (
        "kaiming_normal(fan_out, relu)",
        lambda w: nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"),
    ),
    ("normal(std=0.02)", lambda w: nn.init.normal_(w, std=0.02)),
    ("normal(std=0.02/√(2·12))", lambda w: nn.init.normal_(w, std=0.02 / math.sqrt(24))),
    ("trunc_normal(std=0.02, ±2σ)", lambda w: nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)),
    ("uniform(±0.1)", lambda w: nn.init.uniform_(w, -0.1, 0.1)),
    ("orthogonal(gain=1)", nn.init.orthogonal_),
]
SHAPES = [(8, 8), (64, 64), (256, 1024), (1024, 256), (64, 32, 3, 3), (1024, 1024), (4096, 4096)]


def identified(
    t: torch.Tensor, default: schemes.Expectation | None = None
) -> identify.Identification:
    st = stats.tensor_stats(t)
    return identify.identify(
        st, ndim=t.dim(), fans=schemes.fans(t), dtype=t.dtype, values=t, default=default, depth=12
    )


def status_of(t: torch.Tensor, module: nn.Module, name: str) -> stats.Status:
    exp = torch_defaults.default_expectations(module)[name]
    st = stats.tensor_stats(t)
    found = identified(t, exp)
    judged = stats.judge(st, t.dim(), exp.mean, exp.var, exp.kurtosis)
    return default_status(judged, found, ndim=t.dim(), module=type(module).__name__)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--big-seeds", type=int, default=None, help="seeds for ≥ 4M elements")
    parser.add_argument("--max-side", type=int, default=4096)
    parser.add_argument("--shape", default=None, help="only this shape (e.g. 4096x4096)")
    parser.add_argument("--scheme", action="append", help="only these schemes (labels)")
    parser.add_argument(
        "--no-checks", action="store_true", help="skip torch-default/bad-value checks"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{datetime.date.today()}, {args.seeds} seeds")  # fmt: skip
    shapes = [s for s in SHAPES if max(s) <= args.max_side]
    if args.shape:
        shapes = [tuple(int(x) for x in args.shape.split("x"))]
    big_seeds = args.big_seeds if args.big_seeds is not None else max(args.seeds // 10, 1)
    print("| scheme | " + " | ".join("×".join(map(str, s)) for s in shapes) + " |")
    print("|---|" + "---|" * len(shapes))
    worst = 1.0
    for label, init in SCHEMES:
        if args.scheme and label not in args.scheme:
            continue
        cells = []
        for shape in shapes:
            seeds = args.seeds if math.prod(shape) < 2**22 else big_seeds
            hits = 0
            for seed in range(seeds):
                torch.manual_seed(seed)
                w = torch.empty(shape)
                init(w)
                hits += label in identified(w).fit.matches
            worst = min(worst, hits / seeds)
            cells.append(f"{hits}/{seeds}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"worst hit rate: {worst:.3f}")
    if args.no_checks:
        return
    false = total = 0
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        for module in (nn.Linear(64, 64), nn.Linear(768, 3072), nn.Conv2d(32, 64, 3)):
            for name, p in module.named_parameters():
                total += 1
                false += status_of(p.detach(), module, name) is not stats.Status.OK
    print(f"torch default: {false}/{total} not ok (custom/uninitialized/off)")
    bad = {
        "random bits (torch.empty leftovers)": lambda: torch.randint(
            -(2**31), 2**31 - 1, (256, 256), dtype=torch.int32
        ).view(torch.float32),
        "1e37 fill": lambda: torch.full((256, 256), 1e37),
        "NaN": lambda: torch.full((256, 256), math.nan),
        "denormals": lambda: torch.randn(256, 256) * 1e-39,
    }
    for what, make in bad.items():
        caught = sum(
            identified(make()).uninitialized is not None for _ in range(min(args.seeds, 50))
        )
        print(f"{what}: {caught}/{min(args.seeds, 50)} uninitialized")


if __name__ == "__main__":
    main()
