"""Across seeds: a mean with its 95% t-interval, and paired tests of scheme differences."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A difference is "clear" when the Holm-adjusted paired t-test p-value is below this.
ALPHA = 0.05
CONFIDENCE = 0.95


def _stats() -> Any:
    """scipy.stats, imported only when seeds are compared (it takes a fraction of a second)."""
    from scipy import stats  # type: ignore[import-untyped]

    return stats


@dataclass(frozen=True)
class Interval:
    """Mean of `n` per-seed values and its two-sided 95% Student-t interval (None for n < 2)."""

    mean: float
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        return None if self.high is None else self.high - self.mean


def interval(values: Sequence[float]) -> Interval:
    """mean ± t(0.975, n-1)·s/√n; the seeds are independent draws of the same training run."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(_stats().t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class Paired:
    """Scheme `a` minus scheme `b` on one metric, seed by seed: a paired t-test."""

    a: str
    b: str
    metric: str
    mean_diff: float
    p_value: float | None  # None: the differences are all equal (nothing to test), or n < 2
    clear: bool  # Holm-adjusted p < ALPHA over every pair of the report


def paired_tests(metric: str, per_scheme: Sequence[tuple[str, Sequence[float]]]) -> list[Paired]:
    """Every pair of schemes, paired by seed (same data split, minibatch order and seed).

    The paired t-test (scipy.stats.ttest_rel) removes what a seed does to every scheme alike;
    Holm's step-down correction keeps the chance of any false "clear" at ALPHA over all pairs.
    """
    raw: list[tuple[str, str, float, float | None]] = []
    for i, (a, va) in enumerate(per_scheme):
        for b, vb in per_scheme[i + 1 :]:
            diffs = [x - y for x, y in zip(va, vb, strict=True)]
            mean = math.fsum(diffs) / len(diffs)
            p: float | None = None
            if len(diffs) >= 2 and max(diffs) != min(diffs):
                p = float(_stats().ttest_rel(va, vb).pvalue)
            raw.append((a, b, mean, p))
    tested = sorted((p, k) for k, (_, _, _, p) in enumerate(raw) if p is not None)
    clear = [False] * len(raw)
    for rank, (p, k) in enumerate(tested):
        if p * (len(tested) - rank) >= ALPHA:
            break
        clear[k] = True
    return [Paired(a, b, metric, m, p, clear[k]) for k, (a, b, m, p) in enumerate(raw)]
