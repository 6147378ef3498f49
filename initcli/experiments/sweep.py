"""Width sweeps (coord check): fit std ∝ width^k per block; call it stable, growing, shrinking."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from initcli.errors import ArgError
from initcli.experiments.seeds import CONFIDENCE, _stats

# `width-stable` when k's whole 95% interval lies inside ±this: over a 16× width range (64 → 1024)
# k = 0.25 moves the std 2×, while the scalings this is meant to catch sit at k = ±0.5 (std ∝
# √width, a layer whose variance is not scaled by 1/fan_in). `grows`/`shrinks` need |k| ≥ this
# and an interval that excludes 0; anything else is `unclear` (more widths or a larger batch).
STABLE_EXPONENT = 0.25
# The key a YAML spec sweeps: every layer's units but the last (the output size is the task's).
SPEC_KEY = "layers.units"
MIN_WIDTHS = 3  # two points fit any line exactly: a third gives the fit its interval
# A coord check needs a handful of widths (muP's uses 5-10); each is a fresh build, probe and
# fit, so 10⁵ of them would run for hours. More than this is refused while parsing.
MAX_WIDTHS = 100
# A width is a layer dimension: one row of 2**40 float32 values is 4 TB already, and torch's
# sizes overflow past 2**63, so larger widths are refused as written, not built.
MAX_WIDTH = 2**40


@dataclass(frozen=True)
class Sweep:
    key: str
    values: tuple[int, ...]


def parse_sweep(text: str) -> Sweep:
    """`--sweep KEY=W1,W2,...`: integers from 1 to MAX_WIDTH, strictly increasing, MIN_WIDTHS to
    MAX_WIDTHS of them."""
    key, sep, rest = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ArgError(f"--sweep {text[:80]!r}: give KEY=W1,W2,..., e.g. --sweep width=64,128,256")
    # Counted before parsing, so 10⁶ widths are refused without reading them.
    if rest.count(",") + 1 > MAX_WIDTHS:
        raise ArgError(
            f"--sweep {key}: {rest.count(',') + 1:,} widths; give {MIN_WIDTHS} to {MAX_WIDTHS} "
            "(a coord check needs a handful, e.g. --sweep width=64,128,256,512,1024)"
        )
    try:
        values = tuple(int(v) for v in rest.split(","))
    except ValueError:
        raise ArgError(
            f"--sweep {text[:80]!r}: widths must be integers, e.g. --sweep {key}=64,128,256"
        ) from None
    if len(values) < MIN_WIDTHS:
        raise ArgError(f"--sweep {key}: give at least {MIN_WIDTHS} widths, got {len(values)}")
    if min(values) < 1:
        raise ArgError(f"--sweep {key}: widths must be ≥ 1, got {min(values)}")
    if max(values) > MAX_WIDTH:
        raise ArgError(
            f"--sweep {key}: widths must be at most 2**40 ({MAX_WIDTH:,}), got {max(values):.3g}"
        )
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ArgError(
            f"--sweep {key}: widths must be strictly increasing, got {','.join(map(str, values))}"
        )
    return Sweep(key, values)


@dataclass(frozen=True)
class Exponent:
    """std ∝ width^k fitted by least squares on logs, with the 95% t-interval on k."""

    k: float | None  # None: a std was 0, NaN or Inf at some width
    low: float | None
    high: float | None
    verdict: str  # width-stable, grows, shrinks, unclear, or undefined


def fit_exponent(widths: Sequence[int], values: Sequence[float | None]) -> Exponent:
    """Least squares of log(value) on log(width) (scipy.stats.linregress)."""
    if any(v is None or not math.isfinite(v) or v <= 0 for v in values):
        return Exponent(None, None, None, "undefined")
    xs = [math.log(w) for w in widths]
    ys = [math.log(v) for v in values if v is not None]
    stats = _stats()
    fit = stats.linregress(xs, ys)
    k = float(fit.slope)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, len(xs) - 2)) * float(fit.stderr)
    low, high = k - half, k + half
    if low > -STABLE_EXPONENT and high < STABLE_EXPONENT:
        verdict = "width-stable"
    elif k >= STABLE_EXPONENT and low > 0:
        verdict = "grows"
    elif k <= -STABLE_EXPONENT and high < 0:
        verdict = "shrinks"
    else:
        verdict = "unclear"
    return Exponent(k, low, high, verdict)


def overall(verdicts: Sequence[str]) -> str:
    """`width-stable` only when every block is; else the blocks that are not, by verdict."""
    bad = [v for v in verdicts if v != "width-stable"]
    if not bad:
        return "width-stable"
    for worst in ("grows", "shrinks", "undefined"):
        if worst in bad:
            return worst
    return "unclear"
