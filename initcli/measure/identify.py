"""What a tensor's values look like: its distribution family and the named inits it matches."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

from initcli.init.schemes import KURTOSIS_NORMAL, KURTOSIS_UNIFORM, Expectation
from initcli.measure.stats import TensorStats

__all__ = ["Fit", "Identification", "Scale", "identify"]

# Acceptance band in standard errors for every moment test here, as in stats.judge (Z = 5).
Z = 5.0
# A family whose KS p-value (on the strided sample, parameters estimated from the whole tensor,
# which makes the test conservative) falls below this is rejected.
KS_ALPHA = 1e-4
# |x| above this is no init's draw (the largest, N(0, 1) on a few billion values, stays below 7).
HUGE = 1e6
# An exact-zero share from which a non-constant tensor is called sparse. Below it, zeros are an
# Embedding's padding row or a few zeroed entries, and the rest of the values are identified.
SPARSE_SHARE = 0.05
# The largest Gram matrix side (rows or columns sampled) of the orthogonality check.
GRAM_SIDE = 64
# A normal's extreme value is rejected when a draw that large has probability below this.
EXTREME_ALPHA = 1e-6
# Two consistent formulas tie on a tensor unless one's variance lies more than this many standard
# errors of a sample variance farther from the observed one than the other's: then it is clearly
# worse and never named (docs/identification.md). The true formula misses the tie ~0.3% of times.
TIE_SE = 3.0
# Variances within this relative distance are one formula written two ways (leaky_relu's 0.01
# slope moves relu's gain by 0.005%; trunc_normal cut at ±2 with std ≤ 0.2 is a normal).
SAME_VAR = 1e-3

ROUND_STDS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 1e-4)
ROUND_BOUNDS = (1.0, 0.5, 0.1, 0.05, 0.01, 0.001)
# Depth-scaled residual inits (GPT-2's c_proj: 0.02/√(2·n_layer)) are tried with these bases.
DEPTH_STDS = (0.02,)
GAINS: tuple[tuple[str, float], ...] = (
    ("linear", 1.0),
    ("relu", math.sqrt(2.0)),
    ("tanh", 5.0 / 3.0),
    ("leaky_relu", math.sqrt(2.0 / (1 + 0.01**2))),
    ("selu", 0.75),
)


@dataclass(frozen=True)
class Fit:
    """The family the values were drawn from, its scale, and the named inits consistent with them.

    `family` is one of constant, normal, uniform, trunc_normal (cut at ±2σ), orthogonal, sparse,
    uninitialized or none; `std` the observed standard deviation (of the non-zero values for
    sparse, the gain for orthogonal); `bound` the half-width of a uniform or the cut of a
    truncated normal (None otherwise); `matches` the named schemes/formulas consistent with the
    values at the tensor's fans, within the statistical tolerance.
    """

    family: str
    std: float | None
    bound: float | None
    matches: tuple[str, ...]
    # The formulas the data cannot tell apart, best first (one: it is named); not in the JSON
    # output. measure.naming settles ties over a whole model.
    ties: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Scale:
    """A std a model's config implies, named by its formula: `d_model^-0.5` and its value."""

    label: str
    std: float


@dataclass(frozen=True)
class Identification:
    """A fit, the one-line description of it, and why the values are no init's (or None)."""

    fit: Fit
    looks_like: str | None
    uninitialized: str | None = None


@dataclass(frozen=True)
class _Candidate:
    label: str
    family: str  # normal, uniform or trunc2 (a normal cut at ±2σ)
    std: float  # the std of the draws (for trunc2: of the normal before the cut)
    cut: float | None = None  # a normal's absolute cut (trunc_normal_'s a, b)
    # Candidates of one kind at the same variance are one formula (lecun_normal is
    # kaiming_normal(fan_in, linear)); of different kinds they tie (kaiming fan_in vs fan_out).
    kind: str = ""

    @property
    def var(self) -> float:
        """The variance of the values this candidate draws."""
        scale = _trunc2()[0] if self.family == "trunc2" else 1.0
        return (self.std * scale) ** 2


@cache
def scipy_special() -> Any:
    """scipy.special, imported on first use (~0.2 s, which `initcli count` and `--help` should
    not pay). scipy.stats is not used: its import took ~0.6 s more, on the measuring thread of
    every inspect, and its methods cost a millisecond a call where ufuncs cost microseconds."""
    from scipy import special  # type: ignore[import-untyped]

    return special


@cache
def prefetch() -> None:
    """Start (once) importing scipy.special in a background thread while the target is resolved
    and built, so the first tensor identified does not wait for it."""
    threading.Thread(target=scipy_special, name="initcli-scipy", daemon=True).start()


@cache
def _trunc2() -> tuple[float, float, float, float]:
    """std, kurtosis, 6th and 8th standardized moments of the standard normal cut at ±2.

    Closed form (integration by parts): for the standard normal cut to [-c, c] and even k,
    E[X^k] = (k-1)·E[X^(k-2)] - 2·c^(k-1)·φ(c)/Z, with Z = Φ(c) - Φ(-c).
    """
    c = 2.0
    z = math.erf(c / math.sqrt(2.0))
    phi = math.exp(-c * c / 2) / math.sqrt(2 * math.pi)
    m = {0: 1.0}
    for k in (2, 4, 6, 8):
        m[k] = (k - 1) * m[k - 2] - 2 * c ** (k - 1) * phi / z
    var = m[2]
    return math.sqrt(var), m[4] / var**2, m[6] / var**3, m[8] / var**4


def _kurtosis_band(family: str, n: int) -> tuple[float, float]:
    """Expected sample kurtosis m4/m2² for n draws of the family, and its standard error."""
    if family == "normal":
        # Exact small-sample mean and variance of b2 for normal draws (Pearson).
        mean = 3.0 * (n - 1) / (n + 1)
        var = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) ** 2 * (n + 3) * (n + 5))
        return mean, math.sqrt(max(var, 0.0))
    if family == "uniform":
        k, s6, s8 = KURTOSIS_UNIFORM, 27.0 / 7.0, 9.0
    else:
        _, k, s6, s8 = _trunc2()
    # Delta method for b2 = m4/m2² of a symmetric distribution: Var ≈ (s8 - k² + 4k³ - 4k·s6)/n.
    return k, math.sqrt(max(s8 - k * k + 4 * k**3 - 4 * k * s6, 0.0) / n)


def _kurtosis(st: TensorStats) -> tuple[float, int] | None:
    """The sample kurtosis m4/m2² of the strided sample (about the exact mean), and its size."""
    if st.m4 is None or st.sample is None or st.var is None or st.var <= 0:
        return None
    m = st.sample.numel()
    dev = st.sample - (st.mean or 0.0)
    m2 = float((dev * dev).mean())
    return (st.m4 / (m2 * m2), m) if m2 > 0 else None


def _ks(sample: torch.Tensor | None, family: str, center: float, scale: float) -> bool:
    """Whether the sample passes a KS test against the family at (center, scale)."""
    if sample is None or sample.numel() < 8 or scale <= 0:
        return True
    return ks_pvalue(sample, family, center, scale) >= KS_ALPHA


def ks_pvalue(sample: torch.Tensor, family: str, center: float, scale: float) -> float:
    """The two-sided one-sample KS p-value of `sample` against normal, uniform (center ±
    scale) or trunc2 (a normal cut at ±2 scale).

    The statistic is computed here in torch (sorted sample against the family's CDF), the p-value
    as twice scipy.special's exact one-sided tail: `scipy.stats.kstest`'s exact p-value to 1e-4
    relative wherever it is ≤ 0.01 (tested), without kstest's per-call overhead (≈ 2.7 ms a call,
    0.4 s on a 405M model) or scipy.stats' import.
    """
    x, _ = torch.sort(sample.to(torch.float64).flatten())
    z = (x - center) / scale
    if family == "normal":
        cdf = torch.special.ndtr(z)
    elif family == "uniform":
        cdf = ((z + 1) / 2).clamp(0.0, 1.0)
    else:
        lo, hi = _NDTR_CUT
        cdf = ((torch.special.ndtr(z.clamp(-2.0, 2.0)) - lo) / (hi - lo)).clamp(0.0, 1.0)
    n = x.numel()
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    d = max(float((ranks / n - cdf).max()), float((cdf - (ranks - 1) / n).max()))
    # Twice the exact one-sided (Smirnov) tail is the two-sided exact tail (scipy.stats' kstwo.sf)
    # to 1e-4 relative wherever p ≤ 0.01, the only region a decision at KS_ALPHA depends on. It
    # costs O(n) (22 ms at n = 20,000), so large samples take Kolmogorov's limit (microseconds,
    # within a few % there) unless that lands within 10× of KS_ALPHA either way.
    if n >= _KS_LIMIT_N:
        p = float(scipy_special().kolmogorov(math.sqrt(n) * d))
        if not KS_ALPHA / 10 <= p <= KS_ALPHA * 10:
            return p
    return min(1.0, 2.0 * float(scipy_special().smirnov(n, d)))


# From this sample size on, Kolmogorov's limit decides KS p-values far from KS_ALPHA.
_KS_LIMIT_N = 1000


# The standard normal CDF at the ±2σ cut of trunc_normal_'s default.
_NDTR_CUT = (
    float(torch.special.ndtr(torch.tensor(-2.0, dtype=torch.float64))),
    float(torch.special.ndtr(torch.tensor(2.0, dtype=torch.float64))),
)


def _families(st: TensorStats) -> dict[str, float]:
    """Each family (normal, uniform, trunc2) the values pass, with its KS-free fit score."""
    assert st.mean is not None and st.std is not None and st.min is not None and st.max is not None
    n, mean, std = st.numel, st.mean, st.std
    kurtosis = _kurtosis(st)
    reach = max(st.max - mean, mean - st.min)
    # Relative standard error of the std, loose enough for any of the three families.
    std_slack = Z * math.sqrt(0.5 / n) + 1e-6
    passed: dict[str, float] = {}
    for family in ("normal", "uniform", "trunc2"):
        if kurtosis is not None and kurtosis[1] >= 8:
            expected, se = _kurtosis_band(family, kurtosis[1])
            if abs(kurtosis[0] - expected) > Z * se:
                continue
        if family == "normal":
            limit = -float(scipy_special().ndtri(EXTREME_ALPHA / (2 * n)))
            if reach > limit * std * (1 + std_slack):
                continue
            center, scale = mean, std
        elif family == "uniform":
            center, scale = (st.max + st.min) / 2, (st.max - st.min) / 2
            if std > scale / math.sqrt(3) * (1 + std_slack):
                continue
        else:
            center, scale = mean, std / _trunc2()[0]
            if reach > 2 * scale * (1 + std_slack):
                continue
        if _ks(st.sample, family, center, scale):
            if kurtosis is None:
                passed[family] = 0.0
            else:
                passed[family] = abs(kurtosis[0] - _kurtosis_band(family, kurtosis[1])[0])
    return passed


def _candidates(
    fans: tuple[int, int] | None,
    depth: int | None,
    default: Expectation | None,
    scales: tuple[Scale, ...] = (),
) -> list[_Candidate]:
    """Every named init/formula to test: the torch default first, then depth-scaled stds, round
    constants, the stds the model's config names (`scales`), and the fan-based formulas."""
    out: list[_Candidate] = []
    if default is not None and default.var and default.var > 0 and default.mean == 0.0:
        family = "uniform" if default.kurtosis == KURTOSIS_UNIFORM else "normal"
        label = f"{default.init} — torch default"
        out.append(_Candidate(label, family, math.sqrt(default.var), kind="default"))
    if depth:
        for c in DEPTH_STDS:
            # With one layer 0.02/√1 is the round 0.02 below: not a formula of its own.
            pairs = ((2 * depth, f"(2·{depth})"), (depth, f"{depth}"))
            for k, text in pairs if depth > 1 else pairs[:1]:
                s = c / math.sqrt(k)
                out.append(_Candidate(f"normal(std={c:g}/√{text})", "normal", s, kind="normal"))
                out.append(
                    _Candidate(f"trunc_normal(std={c:g}/√{text}, ±2σ)", "trunc2", s, kind="trunc2")
                )
    for c in ROUND_STDS:
        out.append(_Candidate(f"normal(std={c:g})", "normal", c, kind="normal"))
        out.append(_Candidate(f"trunc_normal(std={c:g}, ±2σ)", "trunc2", c, kind="trunc2"))
        if c <= 0.2:  # torch's trunc_normal_ default cut (a=-2, b=2) is then ≥ 10σ: a normal
            label = f"trunc_normal(std={c:g}, a=-2, b=2)"
            out.append(_Candidate(label, "normal", c, 2.0, kind="normal"))
    for b in ROUND_BOUNDS:
        out.append(_Candidate(f"uniform(±{b:g})", "uniform", b / math.sqrt(3), kind="uniform"))
    for scale in scales:
        # Each its own kind: two config formulas of equal value in a small config (CLIP's
        # (2·hidden_size·num_hidden_layers) = 2·intermediate_size) tie; neither is dropped.
        label = f"normal(std={scale.label})"
        out.append(_Candidate(label, "normal", scale.std, kind=label))
    if fans is None or min(fans) <= 0:
        return out
    fan_in, fan_out = fans
    out.append(
        _Candidate("kaiming_uniform(a=√5)", "uniform", 1 / math.sqrt(3 * fan_in), kind="k_u_in")
    )
    for mode, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
        for name, gain in GAINS:
            std = gain / math.sqrt(fan)
            label = f"kaiming_normal({mode}, {name})"
            out.append(_Candidate(label, "normal", std, kind=f"kn{mode}"))
            out.append(
                _Candidate(f"kaiming_uniform({mode}, {name})", "uniform", std, kind=f"ku{mode}")
            )
    for name, gain in GAINS:
        arg = "" if name == "linear" else f"(gain={name})"
        xavier = gain * math.sqrt(2.0 / (fan_in + fan_out))
        out.append(_Candidate(f"xavier_normal{arg}", "normal", xavier, kind="xn"))
        out.append(_Candidate(f"xavier_uniform{arg}", "uniform", xavier, kind="xu"))
    # LeCun's formulas are kaiming's on fan_in with gain 1: the same kind.
    out.append(_Candidate("lecun_normal", "normal", 1 / math.sqrt(fan_in), kind="knfan_in"))
    out.append(_Candidate("lecun_uniform", "uniform", 1 / math.sqrt(fan_in), kind="kufan_in"))
    return out


def _consistent(c: _Candidate, st: TensorStats, families: dict[str, float]) -> bool:
    """Whether the values pass as draws of candidate `c` (zero mean, its std, its support)."""
    assert st.mean is not None and st.var is not None and st.min is not None and st.max is not None
    family = c.family
    if family not in families:
        return False
    n, var_c = st.numel, c.var
    kurt = {"normal": KURTOSIS_NORMAL, "uniform": KURTOSIS_UNIFORM, "trunc2": _trunc2()[1]}[family]
    if abs(st.mean) > Z * math.sqrt(var_c / n):
        return False
    var_se = var_c * math.sqrt(max(kurt - (n - 3) / (n - 1), 0.0) / n) if n > 1 else math.inf
    if abs(st.var - var_c) > Z * var_se:
        return False
    reach = max(st.max, -st.min)
    # uniform_/trunc_normal_ keep every value within the bound; float rounding may touch it.
    if family == "uniform":
        return reach <= c.std * math.sqrt(3) * (1 + 1e-6)
    if family == "trunc2":
        return reach <= 2 * c.std * (1 + 1e-6)
    return c.cut is None or reach <= c.cut


def _g(x: float) -> str:
    return f"{x:.3g}"


def _generic(family: str, st: TensorStats, bound: float | None) -> str:
    assert st.mean is not None and st.std is not None and st.min is not None and st.max is not None
    centered = abs(st.mean) <= Z * st.std / math.sqrt(st.numel)
    if family == "uniform":
        return (
            f"uniform(±{_g(bound or 0.0)})" if centered else f"uniform({_g(st.min)}, {_g(st.max)})"
        )
    mean = "" if centered else f"mean={_g(st.mean)}, "
    if family == "trunc_normal":
        return f"trunc_normal({mean}std={_g(st.std / _trunc2()[0])}, ±2σ)"
    return f"normal({mean}std={_g(st.std)})"


def _uninitialized(
    st: TensorStats, ndim: int, dtype: torch.dtype | None, default: Expectation | None
) -> str | None:
    """Why the values are no init's draw, or None."""
    if st.nonfinite:
        plural = "s" if st.nonfinite > 1 else ""
        return f"torch.empty leftovers? {st.nonfinite} NaN/Inf value{plural}"
    if st.min is None or st.max is None:
        return None
    big = max(abs(st.min), abs(st.max))
    if big > HUGE:
        return f"torch.empty leftovers? max |x| = {big:.1e}"
    # float16's smallest normal (6e-5) is within reach of small-std draws; float32, bfloat16 and
    # float64 draws never come near theirs (1e-38), so a denormal there is left-over memory.
    sample = st.sample
    if sample is not None and dtype is not None and dtype.is_floating_point and dtype.itemsize > 1:
        small = sample.abs()
        denormal = int(((small > 0) & (small < torch.finfo(dtype).tiny)).sum())
        if denormal and dtype != torch.float16:
            return f"torch.empty leftovers? {denormal} denormal values in {sample.numel()} sampled"
    if (
        ndim >= 2
        and st.min == 0.0
        and st.max == 0.0
        and default is not None
        and default.var is not None
        and default.var > 0
    ):
        return f"all zeros where the module's default ({default.init}) is random"
    return None


def _orthogonal(values: torch.Tensor, dtype: torch.dtype) -> float | None:
    """The gain g when rows (or columns) are orthonormal up to g, from a bounded Gram matrix."""
    w = values.detach().reshape(values.shape[0], -1)
    rows, cols = w.shape
    if min(rows, cols) < 2:
        return None
    tol = 1e-4 if torch.finfo(dtype).bits >= 32 else 4 * torch.finfo(dtype).eps
    long_side = max(rows, cols)
    # Random draws give Gram off-diagonals of ~1/√(long side); past this length the check could
    # not tell them from an orthogonal matrix at this tolerance.
    if 4 / math.sqrt(long_side) < 3 * tol:
        return None
    # Two rows (columns) first: for random draws their cosine is ~1/√(long side), far above tol,
    # so most tensors are settled by reading two lines instead of GRAM_SIDE.
    for k in (2, min(rows, cols, GRAM_SIDE)):
        gain = _gram_gain(w, k, tol)
        if gain is None:
            return None
    return gain


def _gram_gain(w: torch.Tensor, k: int, tol: float) -> float | None:
    """The common norm of k evenly spaced rows (or columns, when taller than wide) of `w` when they
    are orthogonal to within tol, else None."""
    rows, cols = w.shape
    if rows <= cols:
        idx = torch.linspace(0, rows - 1, k).round().long().to(w.device)
        a = w.index_select(0, idx).to(torch.float64)
        gram = a @ a.T
    else:
        idx = torch.linspace(0, cols - 1, k).round().long().to(w.device)
        a = w.index_select(1, idx).to(torch.float64)
        gram = a.T @ a
    g2 = float(gram.diagonal().mean())
    if not g2 > 0:
        return None
    off = float((gram - g2 * torch.eye(k, dtype=torch.float64, device=gram.device)).abs().max())
    return math.sqrt(g2) if off <= tol * g2 else None


def _gain_name(g: float) -> str:
    for name, gain in (("1", 1.0), *GAINS[1:]):
        if abs(g - gain) <= 1e-3 * gain:
            return name
    return _g(g)


def identify(
    st: TensorStats,
    *,
    ndim: int,
    fans: tuple[int, int] | None,
    dtype: torch.dtype | None = None,
    values: torch.Tensor | None = None,
    default: Expectation | None = None,
    depth: int | None = None,
    scales: tuple[Scale, ...] = (),
) -> Identification:
    """Identify the distribution of a measured tensor and the named inits it is consistent with.

    `st` comes from stats.tensor_stats (its moments, zero count and strided sample); `values`, when
    given, is the tensor itself, read only for a Gram matrix of at most GRAM_SIDE rows or columns
    (orthogonality); `default` is torch's default init for the parameter's module, tried first;
    `depth` (e.g. a config's n_layer) adds the depth-scaled residual formulas 0.02/√(2·depth);
    `scales` the stds a model's config names (measure.naming.config_scales). Where several
    formulas fit about equally well, looks_like shows the tie (see `_ties`).
    """
    none = Fit("none", None, None, ())
    if st.numel == 0 or (dtype is not None and dtype.is_complex):
        # Complex values: no init scheme here describes them (their statistics pool re and im).
        return Identification(none, None)
    reason = _uninitialized(st, ndim, dtype, default)
    if reason is not None:
        return Identification(Fit("uninitialized", None, None, ()), None, reason)
    assert st.mean is not None and st.std is not None and st.min is not None and st.max is not None
    assert st.var is not None
    if st.min == st.max:
        v = st.min
        named = {0.0: "zeros", 1.0: "ones"}.get(v, f"constant({v:g})")
        same = default is not None and default.var == 0 and default.mean == v
        consts = (f"{default.init} — torch default", named) if same and default else (named,)
        return Identification(Fit("constant", 0.0, None, consts), f"constant({v:g})")
    sampled = st.sample.numel() if st.sample is not None else 0
    if st.zeros is not None and sampled and st.zeros >= SPARSE_SHARE * sampled and st.numel > 1:
        share = st.zeros / sampled
        nonzero = max(round(st.numel * (1 - share)), 1)
        spread = math.sqrt(max(st.var * (st.numel - 1) + st.numel * st.mean**2, 0.0) / nonzero)
        sparse = tuple(
            f"sparse(sparsity={share:.2g}, std={c:g})"
            for c in ROUND_STDS
            if abs(spread * spread - c * c) <= Z * c * c * math.sqrt(2.0 / nonzero)
        )
        text = sparse[0] if sparse else f"sparse(sparsity={share:.2g}, std={_g(spread)})"
        return Identification(Fit("sparse", spread, None, sparse), text)
    if (
        values is not None
        and values.layout == torch.strided
        and ndim >= 2
        and dtype is not None
        and dtype.is_floating_point
        and dtype.itemsize >= 2  # float8's 3-bit mantissa cannot tell orthogonal rows
    ):
        gain = _orthogonal(values, dtype)
        if gain is not None:
            label = f"orthogonal(gain={_gain_name(gain)})"
            return Identification(Fit("orthogonal", gain, None, (label,)), label)
    families = _families(st)
    if not families:
        return Identification(Fit("none", st.std, None, ()), None)
    candidates = [
        c for c in _candidates(fans, depth, default, scales) if _consistent(c, st, families)
    ]
    # The family named is the one whose kurtosis is nearest its expectation.
    best = min(families, key=families.__getitem__)
    family = "trunc_normal" if best == "trunc2" else best
    bound = None
    if family == "uniform":
        bound = (st.max - st.min) / 2
    elif family == "trunc_normal":
        bound = 2 * st.std / _trunc2()[0]
    labels = tuple(dict.fromkeys(c.label for c in candidates))
    if candidates:
        ties = tuple(c.label for c in _ties(candidates, st.var, st.numel, _close(st, families)))
        return Identification(Fit(family, st.std, bound, labels, ties), tie_text(ties))
    return Identification(Fit(family, st.std, bound, ()), _generic(family, st, bound))


def _distance(c: _Candidate, var: float, n: int) -> float:
    """How far the observed variance lies from c's, in standard errors of a sample variance of n
    draws from c's family (on a log scale, so over- and undershoot weigh alike)."""
    kurt = {"normal": KURTOSIS_NORMAL, "uniform": KURTOSIS_UNIFORM}.get(c.family, _trunc2()[1])
    rel = math.sqrt(max(kurt - (n - 3) / (n - 1), 1e-12) / n) if n > 1 else 1.0
    return abs(math.log(var / c.var)) / rel


def _close(st: TensorStats, families: dict[str, float]) -> set[str]:
    """The families that pass whose kurtosis is not clearly (TIE_SE standard errors) farther from
    its expectation than the nearest one's: on 64 values a normal and a truncated normal tie."""
    kurtosis = _kurtosis(st)
    if kurtosis is None or kurtosis[1] < 8:
        return set(families)
    z = {}
    for family in families:
        expected, se = _kurtosis_band(family, kurtosis[1])
        z[family] = abs(kurtosis[0] - expected) / se if se > 0 else 0.0
    nearest = min(z.values())
    return {family for family, d in z.items() if d <= nearest + TIE_SE}


def _ties(candidates: list[_Candidate], var: float, n: int, families: set[str]) -> list[_Candidate]:
    """The consistent formulas the data cannot tell apart, in the order listed, one per formula.

    The torch default, when consistent and not clearly worse than the best, is named alone (the
    constructor draws it). Otherwise the candidates of the families that fit about as well as
    the best (`_close`) within TIE_SE of the best fit; candidates of one kind at the same
    variance count once (the first listed). Nearest first.
    """
    dist = {id(c): _distance(c, var, n) for c in candidates}
    best = min(dist.values())
    if candidates[0].kind == "default" and dist[id(candidates[0])] <= best + TIE_SE:
        return [candidates[0]]
    pool = [c for c in candidates if c.family in families] or candidates
    nearest = min(dist[id(c)] for c in pool)
    out: list[_Candidate] = []
    for c in pool:
        if dist[id(c)] > nearest + TIE_SE:
            continue
        if not any(o.kind == c.kind and abs(o.var / c.var - 1) <= SAME_VAR for o in out):
            out.append(c)
    # Nearest fit first (a tie shows its first three); equal fits in the order listed.
    return sorted(out, key=lambda c: dist[id(c)])


def tie_text(ties: tuple[str, ...]) -> str:
    """One formula's label, or the tie: `A or B`, `A, B or C`, `A, B, C or 4 others`."""
    if len(ties) <= 1:
        return ties[0] if ties else ""
    if len(ties) <= 3:
        return f"{', '.join(ties[:-1])} or {ties[-1]}"
    return f"{', '.join(ties[:3])} or {len(ties) - 3} others"
