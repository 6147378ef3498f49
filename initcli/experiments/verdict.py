"""The probe verdict and its thresholds, torch-free so `initcli probe --help` can state them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

# The thresholds are a contract with docs/guide/probing.md and `--help`: change them together.
#
# Ratio of the std of the last block's output to the first block's. Below VANISHING_RATIO the
# signal has shrunk more than 4× on its way through the net (Xavier in front of 20 ReLUs: ~0.001;
# PyTorch's default there: ~1e-8); above EXPLODING_RATIO it has grown more than 4×. Kaiming in
# front of 20 ReLUs, 256 wide, drifts to 0.57-1.3 depending on the seed (a random walk whose
# spread grows with depth/width), and Xavier in front of 10 tanh layers ends at ~0.36.
VANISHING_RATIO = 0.25
EXPLODING_RATIO = 4.0
# A bounded activation's output counts as saturated when it lies in the outer 1% of its range:
# |a| > 0.99 for tanh, a < 0.005 or a > 0.995 for sigmoid (the range rescaled to [-1, 1]).
SATURATION_LEVEL = 0.99
# ...and the net is called saturated when that holds for over a quarter of some bounded layer's
# outputs (normal:std=1 in front of tanh: ~87%; Xavier with tanh's gain 5/3: ~11%; gain 1: ~1%).
SATURATED_FRAC = 0.25
# A block whose output is exact zeros for at least this fraction has (all but) died: a ReLU at a
# healthy init zeroes about half.
DEAD_FRAC = 0.95
# `initcli defaults` warns where a default init's variance is off by more than this factor (either
# way) from what auto would choose for the activation after it: Linear's 1/(3·fan_in) in front of
# a ReLU is 1/6 of He's 2/fan_in.
DEFAULTS_MISMATCH = 2.0


class Verdict(StrEnum):
    """What an init does to a forward pass (the `verdict` field of probe/compare JSON)."""

    STABLE = "stable"
    VANISHING = "vanishing"
    EXPLODING = "exploding"
    SATURATED = "saturated"
    DEAD = "dead"
    SYMMETRIC = "symmetric"


@dataclass(frozen=True)
class Evidence:
    """What the verdict is decided from, measured on the block outputs of one forward pass."""

    first_std: float
    last_std: float
    max_zero_frac: float
    max_saturated_frac: float | None  # None: no bounded activation in the net
    symmetric_layer: str | None  # a weighted layer whose outputs are identical across features
    dead_layer: str | None  # the block output with the most exact zeros
    saturated_layer: str | None
    nonfinite_layer: str | None  # the first block output holding NaN or ±Inf


def std_ratio(first_std: float, last_std: float) -> float | None:
    """last/first, or None when the first block's output is constant (no scale to compare to)."""
    if first_std == 0 or not math.isfinite(first_std) or not math.isfinite(last_std):
        return None
    return last_std / first_std


def decide(ev: Evidence) -> tuple[Verdict, str]:
    """The verdict, checked in this order, and a one-line reason that quotes the figures."""
    if ev.nonfinite_layer is not None:
        return Verdict.EXPLODING, f"NaN or Inf in the output of {ev.nonfinite_layer}"
    if ev.symmetric_layer is not None:
        return (
            Verdict.SYMMETRIC,
            f"every unit of {ev.symmetric_layer} computes the same value: symmetry is not broken",
        )
    if ev.max_zero_frac >= DEAD_FRAC:
        return (
            Verdict.DEAD,
            f"{ev.max_zero_frac:.0%} of the outputs of {ev.dead_layer} are exactly zero "
            f"(≥ {DEAD_FRAC:.0%})",
        )
    ratio = std_ratio(ev.first_std, ev.last_std)
    if ratio is None:
        return Verdict.DEAD, "the first block's output is constant"
    if ev.max_saturated_frac is not None and ev.max_saturated_frac >= SATURATED_FRAC:
        return (
            Verdict.SATURATED,
            f"{ev.max_saturated_frac:.0%} of the outputs of {ev.saturated_layer} are saturated "
            f"(|a| > {SATURATION_LEVEL:g}; ≥ {SATURATED_FRAC:.0%})",
        )
    shown = f"last/first std {ev.last_std:.3g}/{ev.first_std:.3g} = {ratio:.3g}"
    if ratio < VANISHING_RATIO:
        return Verdict.VANISHING, f"{shown} < {VANISHING_RATIO:g}"
    if ratio > EXPLODING_RATIO:
        return Verdict.EXPLODING, f"{shown} > {EXPLODING_RATIO:g}"
    return Verdict.STABLE, f"{shown}, within [{VANISHING_RATIO:g}, {EXPLODING_RATIO:g}]"


def fraction(ratio: float) -> str:
    """0.1667 → '1/6', 3.0 → '3×': how a variance ratio reads in a warning or a table."""
    if ratio <= 0 or not math.isfinite(ratio):
        return f"{ratio:g}×"
    return f"1/{1 / ratio:.3g}" if ratio < 1 else f"{ratio:.3g}×"


HELP = (
    "Verdicts, checked in this order on the block outputs (a block is a weighted layer and what "
    "follows it up to the next one, e.g. fc3 → act3): "
    "exploding if any output holds NaN/Inf; "
    "symmetric if every unit of a weighted layer computes the same value; "
    f"dead if ≥ {DEAD_FRAC:.0%} of a block's outputs are exact zeros; "
    f"saturated if ≥ {SATURATED_FRAC:.0%} of a tanh/sigmoid-bounded layer's outputs are in the "
    f"outer {1 - SATURATION_LEVEL:.0%} of its range (|a| > {SATURATION_LEVEL:g}); "
    f"vanishing if std(last block) / std(first block) < {VANISHING_RATIO:g}; "
    f"exploding if that ratio > {EXPLODING_RATIO:g}; "
    "else stable."
)


# depth_exponent needs this many blocks: two points fit any power law exactly.
MIN_DEPTH_BLOCKS = 3


def depth_exponent(stds: Sequence[float | None]) -> float | None:
    """k of std ∝ (block number)^k through depth: the least-squares slope of ln std on ln l for
    blocks l = 1..L. 0 is a flat signal; 0.5 a residual stream to which every block adds variance
    of the same size (a random walk); an exponential blow-up or collapse reads as a large |k|.
    None with fewer than MIN_DEPTH_BLOCKS blocks or a std that is 0, NaN or Inf."""
    if len(stds) < MIN_DEPTH_BLOCKS:
        return None
    ys = []
    for s in stds:
        if s is None or not math.isfinite(s) or s <= 0:
            return None
        ys.append(math.log(s))
    xs = [math.log(i) for i in range(1, len(ys) + 1)]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def decide_stacks(
    ev: Evidence, stacks: Sequence[tuple[str, Sequence[float | None]]]
) -> tuple[Verdict, str, float | None, float | None]:
    """decide() once per stack of blocks, with that stack's first and last std: the first stack
    whose verdict is not stable, else the last (the one nearest the output). Returns the verdict,
    its reason (naming the stack where there are several), the std ratio and the depth exponent."""
    found = []
    for name, stds in stacks:
        first, last = stds[0], stds[-1]
        e = replace(
            ev,
            first_std=math.inf if first is None else first,
            last_std=math.inf if last is None else last,
        )
        verdict, reason = decide(e)
        ratio = std_ratio(e.first_std, e.last_std)
        found.append((name, verdict, reason, ratio, depth_exponent(stds)))
    name, verdict, reason, ratio, k = next(
        (f for f in found if f[1] is not Verdict.STABLE), found[-1]
    )
    return verdict, f"{name}: {reason}" if len(found) > 1 else reason, ratio, k
