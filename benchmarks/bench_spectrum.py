"""How often an untouched init is called structured: the spectral test's false alarms
(spectrum.EDGE_Z) and the dispersion test's (dispersion.ALPHA).

    python benchmarks/bench_spectrum.py [--seeds 200] [--models bert,vit,gpt2,llama,t5]

For each architecture of bench_loaded.py (tiny configs, nothing downloaded) and seed, the model
is built (its own init, transformers' `_init_weights`) and every weight of at least 1,024 values
that forms a matrix (spectrum.as_matrix) gets its `edge_z`; so do a standard normal and a
uniform draw of the same shape; so does its dispersion p-value (the smallest of four, times
four). A false alarm is an untouched matrix with edge_z > EDGE_Z (5; the count over 4 is
printed beside it), or with p < ALPHA (1e-5; the count under 1e-4 beside it).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_loaded import models

from initcli.measure import dispersion, spectrum
from initcli.weights import freshness


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--models", default="bert,vit,gpt2,llama,t5")
    parser.add_argument(
        "--shapes",
        default="",
        help="instead, real models' sizes (e.g. 768x768,3072x768,50257x768,11008x4096): "
        "normal and uniform draws, and the power against a rank-one spike",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.shapes:
        sizes(args.shapes, args.seeds)
        return
    builds = models()
    print(
        f"# bench_spectrum · {platform.processor() or platform.machine()} · torch "
        f"{torch.__version__} · {datetime.date.today()} · EDGE_Z {spectrum.EDGE_Z}"
    )
    print(
        "| model | source | matrices | z > 4 | z > EDGE_Z | largest z | mean z | p < 1e-4 "
        "| p < ALPHA | smallest p | s/matrix |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.models.split(","):
        found: dict[str, list[float]] = {"own init": [], "normal": [], "uniform": []}
        ps: dict[str, list[float]] = {"own init": [], "normal": [], "uniform": []}
        seconds = 0.0
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            model = builds[name]()
            for p in model.parameters():
                values = p.detach()
                if values.numel() < freshness.MIN_DECIDABLE or spectrum.as_matrix(values) is None:
                    continue
                draws = {
                    "own init": values,
                    "normal": torch.randn(values.shape),
                    "uniform": torch.rand(values.shape),
                }
                for source, t in draws.items():
                    var = float(t.double().var(unbiased=False))
                    if var == 0:
                        continue
                    start = time.perf_counter()
                    mean = float(t.double().mean())
                    z = spectrum.edge_z(t, mean, var)
                    p_value = dispersion.p_value(t, mean)
                    seconds += time.perf_counter() - start
                    if z is not None:
                        found[source].append(z)
                    if p_value is not None:
                        ps[source].append(p_value)
        for source, zs in found.items():
            over = sum(spectrum.structured(z) for z in zs)
            print(
                f"| {name} | {source} | {len(zs)} | {sum(z > 4 for z in zs)} | {over} | "
                f"{max(zs):.2f} | "
                f"{sum(zs) / len(zs):.2f} | {sum(p < 1e-4 for p in ps[source])} | "
                f"{sum(dispersion.dispersed(p) for p in ps[source])} | {min(ps[source]):.2g} | "
                f"{seconds / sum(map(len, found.values())):.4f} |",
                flush=True,
            )


# Spike strengths, as multiples of the BBP threshold θ² = √(mn) (in units of the values' sd):
# above 1 a rank-one spike θuvᵀ leaves the bulk, and the exact top singular value shows it.
SPIKES = (1.3, 1.6)


def sizes(shapes: str, seeds: int) -> None:
    """False alarms and power at real models' sizes (the models above are tiny: hidden 128,
    where the estimate is close to the exact top singular value whatever the method)."""
    print(
        f"# bench_spectrum --shapes · {platform.processor() or platform.machine()} · torch "
        f"{torch.__version__} · {datetime.date.today()} · EDGE_Z {spectrum.EDGE_Z}"
    )
    head = " | ".join(f"over EDGE_Z, spike {k}× BBP" for k in SPIKES)
    print(
        f"| shape | draw | matrices | z > 4 | z > EDGE_Z | largest z | mean z | {head} | s/matrix |"
    )
    print("|---|---|---|---|---|---|---|" + "---|" * len(SPIKES) + "---|")
    for shape in shapes.split(","):
        m, n = (int(side) for side in shape.split("x"))
        for draw in ("normal", "uniform"):
            zs: list[float] = []
            hits = [0 for _ in SPIKES]
            seconds = 0.0
            for seed in range(seeds):
                gen = torch.Generator().manual_seed(seed)
                if draw == "normal":
                    t = torch.randn(m, n, generator=gen)
                else:
                    t = torch.rand(m, n, generator=gen).sub_(0.5).mul_(12**0.5)
                start = time.perf_counter()
                z = spectrum.edge_z(t, float(t.mean()), float(t.var()))
                seconds += time.perf_counter() - start
                assert z is not None
                zs.append(z)
                u = torch.randn(m, 1, generator=gen)
                v = torch.randn(1, n, generator=gen)
                direction = (u / u.norm()) @ (v / v.norm())
                for k, strength in enumerate(SPIKES):
                    spiked = t + strength * (m * n) ** 0.25 * direction
                    found = spectrum.edge_z(spiked, float(spiked.mean()), float(spiked.var()))
                    hits[k] += spectrum.structured(found)
            power = " | ".join(f"{h}/{seeds}" for h in hits)
            print(
                f"| {m}×{n} | {draw} | {seeds} | {sum(z > 4 for z in zs)} | "
                f"{sum(spectrum.structured(z) for z in zs)} | {max(zs):.2f} | "
                f"{sum(zs) / len(zs):.2f} | {power} | {seconds / seeds:.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
