"""measure/identify's parts against independent references: the kurtosis bands against scipy and
simulation, the KS gate, the generic labels at their centring bound, distances, ties and their
text. (test_identify.py checks what identify() concludes from them on real draws.)"""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as scipy_stats

from initcli.measure import identify
from initcli.measure.identify import Z, _Candidate
from initcli.measure.stats import TensorStats, tensor_stats


def test_the_cut_normal_s_moments_equal_scipy_s() -> None:
    std, kurt, s6, s8 = identify._trunc2()
    cut = scipy_stats.truncnorm(-2.0, 2.0)
    assert std == pytest.approx(math.sqrt(cut.var()), rel=1e-12)
    assert kurt == pytest.approx(cut.stats(moments="k") + 3.0, rel=1e-10)
    assert s6 == pytest.approx(cut.moment(6) / cut.var() ** 3, rel=1e-10)
    assert s8 == pytest.approx(cut.moment(8) / cut.var() ** 4, rel=1e-10)


def _simulated_b2(draw: torch.Tensor) -> tuple[float, float]:
    """Mean and std over rows of the sample kurtosis m4/m2² of each row."""
    dev = draw - draw.mean(dim=1, keepdim=True)
    m2 = (dev**2).mean(dim=1)
    b2 = (dev**4).mean(dim=1) / m2**2
    return float(b2.mean()), float(b2.std())


@pytest.mark.parametrize(
    ("family", "n"), [("normal", 10), ("normal", 200), ("uniform", 400), ("trunc2", 400)]
)
def test_kurtosis_bands_match_20000_simulated_samples(family: str, n: int) -> None:
    g = torch.Generator().manual_seed(n)
    shape = (20_000, n)
    if family == "normal":
        draw = torch.randn(shape, generator=g, dtype=torch.float64)
    elif family == "uniform":
        draw = torch.rand(shape, generator=g, dtype=torch.float64)
    else:
        draw = torch.empty(shape, dtype=torch.float64)
        torch.nn.init.trunc_normal_(draw, a=-2.0, b=2.0, generator=g)
    mean, se = identify._kurtosis_band(family, n)
    got_mean, got_std = _simulated_b2(draw)
    # The mean of 20,000 rows is known to ±se/141 (±4 of those allowed); the delta-method
    # standard error is a large-n approximation: within 10% at n = 400, exact for the normal.
    assert got_mean == pytest.approx(
        mean, abs=4 * se / math.sqrt(20_000) + (0.01 if family != "normal" else 0)
    )
    assert got_std == pytest.approx(se, rel=0.1 if family != "normal" else 0.03)


def test_the_sample_kurtosis_is_m4_over_m2_squared_of_the_sample() -> None:
    x = torch.randn(500, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 3 + 1
    st = tensor_stats(x)
    value, m = identify._kurtosis(st)  # type: ignore[misc]
    assert m == 500
    assert value == pytest.approx(
        scipy_stats.kurtosis(x.numpy(), fisher=False, bias=True), rel=1e-12
    )
    assert identify._kurtosis(tensor_stats(torch.ones(10))) is None


def test_the_ks_gate_passes_what_it_cannot_test_and_fails_far_samples() -> None:
    far = torch.full((7,), 5.0) + torch.arange(7) * 0.01
    assert identify._ks(far, "normal", 0.0, 1.0)  # 7 values: too few to test
    assert identify._ks(None, "normal", 0.0, 1.0)
    assert identify._ks(torch.cat([far, far[:1]]), "normal", 0.0, 0.0)  # no scale
    assert not identify._ks(torch.cat([far, far[:1]]), "normal", 0.0, 1.0)  # 8 values
    draws = torch.randn(1000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert identify._ks(draws, "normal", 0.0, 1.0)
    # From 1,000 values far from KS_ALPHA: Kolmogorov's limit at scipy's statistic; below 1,000,
    # twice the exact one-sided tail.
    from scipy import special

    big = scipy_stats.kstest(draws.numpy(), "norm").statistic
    assert identify.ks_pvalue(draws, "normal", 0.0, 1.0) == pytest.approx(
        special.kolmogorov(math.sqrt(1000) * big), rel=1e-9
    )
    small = draws[:999] * 1.2 + 0.1
    d = scipy_stats.kstest(small.numpy(), "norm", args=(0.1, 1.0)).statistic
    assert identify.ks_pvalue(small, "normal", 0.1, 1.0) == pytest.approx(
        min(1.0, 2 * special.smirnov(999, d)), rel=1e-9
    )
    u = torch.rand(300, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    d = scipy_stats.kstest(u.numpy(), "uniform", args=(-0.5, 2.0)).statistic  # ±1 about 0.5
    assert identify.ks_pvalue(u, "uniform", 0.5, 1.0) == pytest.approx(
        min(1.0, 2 * special.smirnov(300, d)), rel=1e-9
    )
    cut = scipy_stats.truncnorm(-2.0, 2.0, loc=0.0, scale=0.5)
    t = torch.as_tensor(cut.rvs(400, random_state=5))
    d = scipy_stats.kstest(t.numpy(), cut.cdf).statistic
    assert identify.ks_pvalue(t, "trunc2", 0.0, 0.5) == pytest.approx(
        min(1.0, 2 * special.smirnov(400, d)), rel=1e-9
    )


def _stats(n: int, mean: float, std: float, low: float, high: float) -> TensorStats:
    return TensorStats(n, mean, std * std, std, low, high, 0, 0.0, 3.0 * std**4, 0, None)


def test_generic_labels_and_the_centring_bound() -> None:
    edge = Z * 0.02 / math.sqrt(10_000)  # a mean within Z standard errors of 0 is centred
    assert identify._generic("normal", _stats(10_000, edge, 0.02, -0.1, 0.1), None) == (
        "normal(std=0.02)"
    )
    assert identify._generic("normal", _stats(10_000, 1.01 * edge, 0.02, -0.1, 0.1), None) == (
        "normal(mean=0.00101, std=0.02)"
    )
    assert identify._generic("uniform", _stats(100, 0.0, 0.05, -0.09, 0.0866), 0.0866) == (
        "uniform(±0.0866)"
    )
    assert identify._generic("uniform", _stats(100, 0.5, 0.05, 0.41, 0.59), None) == (
        "uniform(0.41, 0.59)"
    )
    cut_std = identify._trunc2()[0]
    assert identify._generic("trunc_normal", _stats(100, 0.0, 0.02 * cut_std, -1, 1), None) == (
        "trunc_normal(std=0.02, ±2σ)"
    )
    assert identify._generic("trunc_normal", _stats(100, 3.0, 0.02 * cut_std, 2, 4), None) == (
        "trunc_normal(mean=3, std=0.02, ±2σ)"
    )


def test_distance_is_the_log_variance_gap_in_standard_errors() -> None:
    normal = _Candidate("n", "normal", 0.1)
    ratio = math.exp(0.1)
    n = 1000
    se = math.sqrt((3.0 - (n - 3) / (n - 1)) / n)  # the sample variance's relative error
    assert identify._distance(normal, 0.01 * ratio, n) == pytest.approx(0.1 / se, rel=1e-12)
    assert identify._distance(normal, 0.01 / ratio, n) == pytest.approx(0.1 / se, rel=1e-12)
    uniform = _Candidate("u", "uniform", 0.1)
    se_u = math.sqrt((1.8 - (n - 3) / (n - 1)) / n)
    assert identify._distance(uniform, 0.01 * ratio, n) == pytest.approx(0.1 / se_u, rel=1e-12)
    cut = _Candidate("t", "trunc2", 0.1)
    se_t = math.sqrt((identify._trunc2()[1] - (n - 3) / (n - 1)) / n)
    assert identify._distance(cut, cut.var * ratio, n) == pytest.approx(0.1 / se_t, rel=1e-12)
    assert identify._distance(normal, 0.01 * ratio, 1) == pytest.approx(0.1, rel=1e-12)


def test_close_families_are_those_within_tie_se_of_the_nearest_kurtosis() -> None:
    families = {"normal": 0.5, "uniform": 0.5, "trunc2": 0.5}
    g = torch.Generator().manual_seed(3)
    normal = tensor_stats(torch.randn(4000, generator=g, dtype=torch.float64))
    assert identify._close(normal, families) == {"normal"}
    uniform = tensor_stats(torch.rand(4000, generator=g, dtype=torch.float64))
    assert identify._close(uniform, families) == {"uniform"}
    few = tensor_stats(torch.randn(7, generator=g, dtype=torch.float64))
    assert identify._close(few, families) == set(families)  # under 8 values: no kurtosis test


def test_tie_text_names_up_to_three_and_counts_the_rest() -> None:
    assert identify.tie_text(()) == ""
    assert identify.tie_text(("a",)) == "a"
    assert identify.tie_text(("a", "b")) == "a or b"
    assert identify.tie_text(("a", "b", "c")) == "a, b or c"
    assert identify.tie_text(("a", "b", "c", "d")) == "a, b, c or 1 others"
    assert identify.tie_text(("a", "b", "c", "d", "e")) == "a, b, c or 2 others"


def test_ties_keep_the_default_alone_and_one_formula_per_kind_and_variance() -> None:
    var, n = 0.01, 4096
    default = _Candidate("default", "uniform", 0.1, kind="default")
    assert [
        c.label
        for c in identify._ties(
            [default, _Candidate("x", "normal", 0.1)], var, n, {"uniform", "normal"}
        )
    ] == ["default"]
    # The default far off (10% in variance at n = 4096): the others tie, one per kind.
    off = _Candidate("default", "uniform", 0.1 * math.sqrt(1.1), kind="default")
    a = _Candidate("kaiming(fan_in)", "normal", 0.1, kind="kaiming_normal")
    lecun = _Candidate("lecun", "normal", 0.1 * (1 + 1e-4), kind="kaiming_normal")
    b = _Candidate("kaiming(fan_out)", "normal", 0.1, kind="kaiming_normal2")
    got = identify._ties([off, a, lecun, b], var, n, {"normal"})
    assert [c.label for c in got] == ["kaiming(fan_in)", "kaiming(fan_out)"]
    # No candidate of a close family: all candidates are the pool.
    got = identify._ties([off, a], var, n, {"trunc2"})
    assert [c.label for c in got] == ["kaiming(fan_in)"]
