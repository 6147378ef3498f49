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
        special.kolmogorov(math.sqrt(1000) * big), rel=1e-9, abs=0
    )
    small = draws[:999] * 1.2 + 0.1
    d = scipy_stats.kstest(small.numpy(), "norm", args=(0.1, 1.0)).statistic
    assert identify.ks_pvalue(small, "normal", 0.1, 1.0) == pytest.approx(
        min(1.0, 2 * special.smirnov(999, d)), rel=1e-9, abs=0
    )
    u = torch.rand(300, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    d = scipy_stats.kstest(u.numpy(), "uniform", args=(-0.5, 2.0)).statistic  # ±1 about 0.5
    assert identify.ks_pvalue(u, "uniform", 0.5, 1.0) == pytest.approx(
        min(1.0, 2 * special.smirnov(300, d)), rel=1e-9, abs=0
    )
    cut = scipy_stats.truncnorm(-2.0, 2.0, loc=0.0, scale=0.5)
    t = torch.as_tensor(cut.rvs(400, random_state=5))
    d = scipy_stats.kstest(t.numpy(), cut.cdf).statistic
    assert identify.ks_pvalue(t, "trunc2", 0.0, 0.5) == pytest.approx(
        min(1.0, 2 * special.smirnov(400, d)), rel=1e-9, abs=0
    )


def _stats(n: int, mean: float, std: float, low: float, high: float) -> TensorStats:
    """Statistics with no sample and no fourth moment: only the range and std checks apply."""
    return TensorStats(n, mean, std * std, std, low, high, 0, None, None, 0, None)


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


def test_the_candidates_are_every_formula_in_order_with_its_std() -> None:
    from initcli.init.schemes import Expectation
    from initcli.measure.identify import Scale

    default = Expectation("kaiming_uniform(a=√5)", 0.0, 1 / 12, 1.8)
    got = identify._candidates((4, 9), 3, default, (Scale("d^-0.5", 0.125),))
    table = {c.label: (c.family, c.std, c.cut, c.kind) for c in got}
    assert len(table) == len(got)  # every label once
    assert got[0].label == "kaiming_uniform(a=√5) — torch default"
    assert table[got[0].label] == ("uniform", math.sqrt(1 / 12), None, "default")
    assert [c.label for c in got[1:5]] == [
        "normal(std=0.02/√(2·3))", "trunc_normal(std=0.02/√(2·3), ±2σ)",
        "normal(std=0.02/√3)", "trunc_normal(std=0.02/√3, ±2σ)",
    ]  # fmt: skip
    assert table["normal(std=0.02/√(2·3))"] == ("normal", 0.02 / math.sqrt(6), None, "normal")
    assert table["trunc_normal(std=0.02/√3, ±2σ)"] == (
        "trunc2",
        0.02 / math.sqrt(3),
        None,
        "trunc2",
    )
    assert table["normal(std=0.5)"] == ("normal", 0.5, None, "normal")
    assert "trunc_normal(std=0.5, a=-2, b=2)" not in table  # a 4σ cut is no plain normal
    assert table["trunc_normal(std=0.2, a=-2, b=2)"] == ("normal", 0.2, 2.0, "normal")
    assert table["trunc_normal(std=0.001, ±2σ)"] == ("trunc2", 0.001, None, "trunc2")
    assert table["uniform(±0.05)"] == ("uniform", 0.05 / math.sqrt(3), None, "uniform")
    assert table["normal(std=d^-0.5)"] == ("normal", 0.125, None, "normal(std=d^-0.5)")
    assert table["kaiming_uniform(a=√5)"] == ("uniform", 1 / math.sqrt(12), None, "k_u_in")
    assert table["kaiming_normal(fan_out, relu)"] == (
        "normal",
        math.sqrt(2.0) / math.sqrt(9),
        None,
        "knfan_out",
    )
    assert table["kaiming_uniform(fan_in, tanh)"] == ("uniform", 5 / 3 / 2, None, "kufan_in")
    assert table["xavier_normal"] == ("normal", math.sqrt(2 / 13), None, "xn")
    assert table["xavier_uniform(gain=selu)"] == ("uniform", 0.75 * math.sqrt(2 / 13), None, "xu")
    assert table["lecun_normal"] == ("normal", 0.5, None, "knfan_in")
    assert table["lecun_uniform"] == ("uniform", 0.5, None, "kufan_in")
    assert [c.label for c in got[-2:]] == ["lecun_normal", "lecun_uniform"]
    # One layer: 0.02/√(2·1) only (0.02/√1 is the round 0.02); no fans: no fan formulas.
    one = [c.label for c in identify._candidates(None, 1, None)]
    assert one[:2] == ["normal(std=0.02/√(2·1))", "trunc_normal(std=0.02/√(2·1), ±2σ)"]
    assert one[2] == "normal(std=1)" and not any("kaiming" in x or "√1)" in x for x in one)
    assert not any("kaiming" in c.label for c in identify._candidates((0, 4), None, None))
    # A default with a mean (a constant) or no variance is no candidate.
    assert (
        identify._candidates(None, None, Expectation("ones", 1.0, 0.0))[0].label == "normal(std=1)"
    )


def test_uninitialized_values_say_why() -> None:
    def why(x: torch.Tensor, ndim: int = 2, default: object = None) -> str | None:
        return identify._uninitialized(tensor_stats(x), ndim, x.dtype, default)  # type: ignore[arg-type]

    from initcli.init.schemes import Expectation

    assert why(torch.tensor([1.0, float("nan"), 2.0])) == "torch.empty leftovers? 1 NaN/Inf value"
    assert why(torch.tensor([float("inf"), float("nan")])) == (
        "torch.empty leftovers? 2 NaN/Inf values"
    )
    assert why(torch.tensor([0.5, -3e6])) == "torch.empty leftovers? max |x| = 3.0e+06"
    assert why(torch.tensor([0.5, 1e6])) is None  # HUGE itself is allowed
    tiny = torch.finfo(torch.float32).tiny
    assert why(torch.tensor([0.5, tiny / 4, -tiny / 2, tiny])) == (
        "torch.empty leftovers? 2 denormal values in 4 sampled"
    )
    assert why(torch.tensor([0.5, 1e-6], dtype=torch.float16)) is None  # float16 draws reach them
    random = Expectation("kaiming_uniform(a=√5)", 0.0, 0.1, 1.8)
    assert why(torch.zeros(2, 2), 2, random) == (
        "all zeros where the module's default (kaiming_uniform(a=√5)) is random"
    )
    assert why(torch.zeros(4), 1, random) is None  # a zero bias is a choice
    assert why(torch.zeros(2, 2), 2, Expectation("zeros", 0.0, 0.0)) is None
    assert why(torch.zeros(2, 2), 2, None) is None


@pytest.mark.parametrize(
    ("shape", "gain", "name"),
    [((8, 32), 1.0, "1"), ((32, 8), math.sqrt(2), "relu"), ((16, 16), 0.5, "0.5")],
)
def test_orthogonal_rows_or_columns_are_found_with_their_gain(
    shape: tuple[int, int], gain: float, name: str
) -> None:
    w = torch.empty(shape)
    torch.nn.init.orthogonal_(w, gain=gain, generator=torch.Generator().manual_seed(0))
    found = identify._orthogonal(w, torch.float32)
    assert found == pytest.approx(gain, rel=1e-5)
    assert identify._gain_name(found) == name  # type: ignore[arg-type]
    w[0, 0] += 0.01 * gain  # one value off: no longer orthogonal to 1e-4
    assert identify._orthogonal(w, torch.float32) is None
    assert identify._orthogonal(torch.randn(shape), torch.float32) is None


def test_orthogonality_is_not_judged_where_it_cannot_be_told() -> None:
    assert identify._orthogonal(torch.ones(1, 8), torch.float32) is None  # one row
    # Past a long side where random rows' cosines (~4/√n) fall below 3·tol, orthogonality cannot
    # be told from a random draw: float16's tol is 4·eps, so that is from ~117,000 values.
    assert identify._orthogonal(torch.eye(2, 120_000), torch.float16) is None
    assert identify._orthogonal(torch.eye(2, 110_000), torch.float16) == 1.0
    assert identify._orthogonal(torch.eye(4, 1000), torch.float32) == 1.0
    assert identify._gram_gain(torch.zeros(4, 4, dtype=torch.float64), 2, 1e-4) is None
    assert identify._gain_name(5 / 3 * (1 + 2e-3)) == "1.67"
    assert identify._gain_name(5 / 3 * (1 + 5e-4)) == "tanh"


def test_families_pass_the_range_and_std_checks_up_to_their_edges() -> None:
    from scipy import special

    n = 10_000
    slack = Z * math.sqrt(0.5 / n) + 1e-6
    # normal: the farthest value within the two-sided 1e-6 extreme of n draws (here below the mean).
    limit = -float(special.ndtri(identify.EXTREME_ALPHA / (2 * n)))
    edge = limit * 1.0 * (1 + slack)
    assert identify._families(_stats(n, 0.25, 1.0, 0.25 - edge, 0.75)) == {
        "normal": 0.0, "uniform": 0.0,
    }  # fmt: skip
    beyond = edge * (1 + 1e-9)
    assert identify._families(_stats(n, 0.25, 1.0, 0.25 - beyond, 0.75)) == {"uniform": 0.0}
    # uniform: a std up to the bound's (max - min)/2/√3, with the slack.
    top = 2.0 / math.sqrt(3) * (1 + slack)
    assert identify._families(_stats(n, 0.0, top, -2.0, 2.0)) == {
        "normal": 0.0, "uniform": 0.0, "trunc2": 0.0,
    }  # fmt: skip
    assert identify._families(_stats(n, 0.0, top * (1 + 1e-9), -2.0, 2.0)) == {
        "normal": 0.0, "trunc2": 0.0,
    }  # fmt: skip
    # trunc2: every value within 2 of its scale (std / the cut normal's std) of the mean.
    scale = 1.0 / identify._trunc2()[0]
    reach = 2 * scale * (1 + slack)
    assert identify._families(_stats(n, 0.5, 1.0, 0.5 - reach, 0.6)) == {
        "normal": 0.0, "trunc2": 0.0,
    }  # fmt: skip
    assert identify._families(_stats(n, 0.5, 1.0, 0.5 - reach * (1 + 1e-9), 0.6)) == {
        "normal": 0.0,
    }  # fmt: skip


def test_families_are_judged_by_kurtosis_from_eight_sampled_values_on() -> None:
    from scipy import special

    # Eight values at the normal quantiles (a KS test passes them), their kurtosis set by m4.
    q = torch.tensor([float(special.ndtri((i + 0.5) / 8)) for i in range(8)], dtype=torch.float64)
    m2 = float((q * q).mean())
    expected, se = identify._kurtosis_band("normal", 8)

    def families(kurtosis: float, sample: torch.Tensor = q) -> dict[str, float]:
        m4 = kurtosis * m2 * m2
        st = TensorStats(
            8,
            0.0,
            m2 * 8 / 7,
            math.sqrt(m2 * 8 / 7),
            float(q.min()),
            float(q.max()),
            0,
            0.0,
            m4,
            0,
            sample,
        )
        return identify._families(st)

    inside = expected + Z * se * (1 - 1e-9)
    got = families(inside)
    assert got["normal"] == pytest.approx(inside - expected, rel=1e-9)
    assert "normal" not in families(expected + Z * se * (1 + 1e-9))
    # Under eight sampled values no kurtosis is judged: a kurtosis of 50 passes all three.
    assert "normal" not in families(50.0)
    assert set(families(50.0, q[:7])) == {"normal", "uniform", "trunc2"}
    # _close too judges kurtosis from eight sampled values: 4.5 is far from the uniform's 1.8.
    m4 = 4.5 * m2 * m2
    st = TensorStats(8, 0.0, m2 * 8 / 7, math.sqrt(m2 * 8 / 7), -1.6, 1.6, 0, 0.0, m4, 0, q)
    every = {"normal": 1.0, "uniform": 1.0, "trunc2": 1.0}
    assert "normal" in identify._close(st, every) and "uniform" not in identify._close(st, every)
    seven = TensorStats(8, 0.0, m2 * 8 / 7, math.sqrt(m2 * 8 / 7), -1.6, 1.6, 0, 0.0, m4, 0, q[:7])
    assert identify._close(seven, every) == set(every)


@pytest.mark.parametrize(
    ("family", "kurt"),
    [("normal", 3.0), ("uniform", 1.8), ("trunc2", identify._trunc2()[1])],
)
def test_a_candidate_is_consistent_up_to_the_edges_of_mean_variance_and_support(
    family: str, kurt: float
) -> None:
    c = _Candidate("c", family, 0.1)
    n, var_c = 1000, c.var
    every = {"normal": 0.0, "uniform": 0.0, "trunc2": 0.0}

    def ok(
        mean: float = 0.0, var: float = var_c, low: float = -0.1, high: float = 0.1, size: int = n
    ) -> bool:
        st = TensorStats(size, mean, var, math.sqrt(var), low, high, 0, 0.0, None, 0, None)
        return identify._consistent(c, st, every)

    assert ok()
    assert not identify._consistent(
        c, TensorStats(n, 0.0, var_c, 0.1, -0.1, 0.1, 0, 0.0, None, 0, None), {}
    )
    mean_edge = Z * math.sqrt(var_c / n)
    assert ok(mean=-mean_edge * (1 - 1e-9)) and not ok(mean=mean_edge * (1 + 1e-9))
    var_edge = Z * var_c * math.sqrt((kurt - (n - 3) / (n - 1)) / n)
    assert ok(var=var_c + var_edge * (1 - 1e-9)) and ok(var=var_c - var_edge * (1 - 1e-9))
    assert not ok(var=var_c + var_edge * (1 + 1e-9)) and not ok(var=var_c - var_edge * (1 + 1e-9))
    # Two values: the variance is still judged; one value: any variance.
    two_edge = Z * var_c * math.sqrt(max(kurt - (2 - 3) / (2 - 1), 0.0) / 2)
    assert not ok(var=var_c + two_edge * (1 + 1e-9), size=2)
    assert ok(var=100 * var_c, size=1, low=0.0, high=0.0)
    # The support: uniform_ stays within its bound, trunc_normal_ within 2σ; a normal has none.
    bound = {"uniform": c.std * math.sqrt(3) * (1 + 1e-6), "trunc2": 2 * c.std * (1 + 1e-6)}
    if family in bound:
        assert ok(low=-bound[family], high=0.0) and ok(low=0.0, high=bound[family])
        assert not ok(low=-bound[family] * (1 + 1e-9), high=0.0)
        assert not ok(low=0.0, high=bound[family] * (1 + 1e-9))
    else:
        assert ok(low=-10.0, high=10.0)


def test_a_cut_normal_candidate_keeps_within_its_cut() -> None:
    c = _Candidate("trunc_normal(std=0.1, a=-2, b=2)", "normal", 0.1, 2.0)
    st = TensorStats(1000, 0.0, 0.01, 0.1, -2.0, 0.5, 0, 0.0, None, 0, None)
    assert identify._consistent(c, st, {"normal": 0.0})
    st = TensorStats(1000, 0.0, 0.01, 0.1, -2.0 * (1 + 1e-12), 0.5, 0, 0.0, None, 0, None)
    assert not identify._consistent(c, st, {"normal": 0.0})


def test_distance_on_two_values_uses_their_standard_error() -> None:
    normal = _Candidate("n", "normal", 0.1)
    se = math.sqrt((3.0 - (2 - 3) / (2 - 1)) / 2)
    assert identify._distance(normal, 0.01 * math.e, 2) == pytest.approx(1 / se, rel=1e-12)


def _identify(x: torch.Tensor, **kw: object) -> identify.Identification:
    return identify.identify(
        tensor_stats(x), ndim=x.dim(), fans=None, dtype=x.dtype, values=x, **kw
    )  # type: ignore[arg-type]


def test_constants_empty_and_complex_tensors() -> None:
    from initcli.init.schemes import Expectation

    zeros = _identify(torch.zeros(3, 4))
    assert (zeros.fit.family, zeros.fit.std, zeros.fit.matches, zeros.looks_like) == (
        "constant", 0.0, ("zeros",), "constant(0)",
    )  # fmt: skip
    assert _identify(torch.ones(5)).fit.matches == ("ones",)
    assert _identify(torch.full((5,), -0.25)).fit.matches == ("constant(-0.25)",)
    own = _identify(torch.ones(5), default=Expectation("ones", 1.0, 0.0))
    assert own.fit.matches == ("ones — torch default", "ones")
    other = _identify(torch.ones(5), default=Expectation("zeros", 0.0, 0.0))
    assert other.fit.matches == ("ones",)
    for empty in (torch.zeros(0, 3), torch.zeros(4, dtype=torch.complex64)):
        found = _identify(empty)
        assert (found.fit.family, found.looks_like, found.uninitialized) == ("none", None, None)


def test_sparse_values_name_their_share_of_zeros_and_the_std_of_the_rest() -> None:
    w = torch.zeros(100, 100)
    g = torch.Generator().manual_seed(0)
    w[:, :50] = 0.01 * torch.randn(100, 50, generator=g)
    found = _identify(w)
    assert found.fit.family == "sparse" and found.looks_like == "sparse(sparsity=0.5, std=0.01)"
    assert found.fit.matches == ("sparse(sparsity=0.5, std=0.01)",)
    assert found.fit.std == pytest.approx(0.01, rel=0.03)
    w[:, :50] *= 3.3  # no round std: the spread itself
    odd = _identify(w)
    assert (
        odd.fit.matches == () and odd.looks_like == f"sparse(sparsity=0.5, std={odd.fit.std:.3g})"
    )
    # Under 5% zeros: no sparse fit.
    dense = 0.01 * torch.randn(100, 100, generator=g)
    dense.view(-1)[:400] = 0.0
    assert _identify(dense).fit.family != "sparse"


def test_orthogonality_is_only_judged_on_float_matrices_of_two_bytes_or_more() -> None:
    w = torch.empty(16, 16)
    torch.nn.init.orthogonal_(w, generator=torch.Generator().manual_seed(0))
    assert _identify(w).looks_like == "orthogonal(gain=1)"
    assert _identify(w.to(torch.bfloat16)).looks_like == "orthogonal(gain=1)"
    eight = w.to(torch.float8_e4m3fn)  # a 3-bit mantissa cannot tell orthogonal rows
    assert _identify(eight).fit.family != "orthogonal"
    assert _identify(w.to(torch.float16)).looks_like == "orthogonal(gain=1)"
    found = identify.identify(tensor_stats(w), ndim=1, fans=None, dtype=w.dtype, values=w)
    assert found.fit.family != "orthogonal"  # a vector has no rows to compare
    assert (
        identify.identify(tensor_stats(w), ndim=2, fans=None, dtype=w.dtype).fit.family
        != "orthogonal"
    )


def test_the_fit_carries_the_measured_std_and_the_family_s_bound() -> None:
    g = torch.Generator().manual_seed(6)
    u = torch.empty(4000, dtype=torch.float64).uniform_(-0.3, 0.5, generator=g)
    st = tensor_stats(u)
    found = identify.identify(st, ndim=1, fans=None)
    assert (found.fit.family, found.fit.std) == ("uniform", st.std)
    assert found.fit.bound == (st.max - st.min) / 2  # type: ignore[operator]
    assert found.looks_like == f"uniform({st.min:.3g}, {st.max:.3g})"
    t = torch.empty(4000, dtype=torch.float64)
    torch.nn.init.trunc_normal_(t, std=0.7, a=-1.4, b=1.4, generator=g)
    st = tensor_stats(t)
    found = identify.identify(st, ndim=1, fans=None)
    assert (found.fit.family, found.fit.std) == ("trunc_normal", st.std)
    assert found.fit.bound == 2 * st.std / identify._trunc2()[0]  # type: ignore[operator]
    n = 0.2 * torch.randn(4000, generator=g, dtype=torch.float64)
    st = tensor_stats(n)
    found = identify.identify(st, ndim=1, fans=None)
    assert (found.fit.family, found.fit.std, found.fit.bound) == ("normal", st.std, None)
    # trunc_normal_ at its default cut of ±2 is a normal at std 0.2 (10σ): one formula, named once.
    assert found.fit.matches == ("normal(std=0.2)", "trunc_normal(std=0.2, a=-2, b=2)")
    assert found.looks_like == "normal(std=0.2)"
    # Heavy tails (Student's t with 2 degrees of freedom): no family, the std still reported.
    heavy = torch.distributions.StudentT(2.0).sample((4000,)).double()
    st = tensor_stats(heavy)
    found = identify.identify(st, ndim=1, fans=None)
    assert found.fit == identify.Fit("none", st.std, None, ()) and found.looks_like is None


def test_a_sparse_share_counts_from_five_percent_of_the_sample() -> None:
    g = torch.Generator().manual_seed(7)
    w = 0.01 * torch.randn(2000, generator=g, dtype=torch.float64)
    w[:100] = 0.0  # exactly 5% zeros
    found = identify.identify(tensor_stats(w), ndim=2, fans=None)
    assert found.fit.family == "sparse" and found.looks_like == "sparse(sparsity=0.05, std=0.01)"
    spread = math.sqrt(float((w * w).sum()) / 1900)
    assert found.fit.std == pytest.approx(spread, rel=1e-12)
    w[99] = 0.005
    assert identify.identify(tensor_stats(w), ndim=2, fans=None).fit.family != "sparse"


def test_edges_of_the_candidate_list_and_a_normal_default() -> None:
    from initcli.init.schemes import Expectation

    two = [c.label for c in identify._candidates(None, 2, None)]
    assert two[:4] == [
        "normal(std=0.02/√(2·2))", "trunc_normal(std=0.02/√(2·2), ±2σ)",
        "normal(std=0.02/√2)", "trunc_normal(std=0.02/√2, ±2σ)",
    ]  # fmt: skip
    assert "lecun_normal" in [c.label for c in identify._candidates((1, 9), None, None)]
    # Embedding's default is N(0, 1): a normal candidate, named first when it fits.
    weight = torch.randn(400, 16, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    found = identify.identify(
        tensor_stats(weight),
        ndim=2,
        fans=(16, 400),
        default=Expectation("normal(0, 1)", 0.0, 1.0, 3.0),
    )
    assert found.looks_like == "normal(0, 1) — torch default"


def test_denormals_mean_leftover_memory_except_in_float16_and_float8() -> None:
    tiny = torch.finfo(torch.bfloat16).tiny
    bf = torch.tensor([0.5, -0.25, tiny / 8], dtype=torch.bfloat16)
    assert identify.identify(tensor_stats(bf), ndim=1, fans=None, dtype=bf.dtype).uninitialized == (
        "torch.empty leftovers? 1 denormal values in 3 sampled"
    )
    eight = (0.02 * torch.randn(1000, generator=torch.Generator().manual_seed(9))).to(
        torch.float8_e4m3fn
    )
    st = tensor_stats(eight)
    assert identify.identify(st, ndim=1, fans=None, dtype=eight.dtype).uninitialized is None


def test_an_orthogonal_fit_reports_its_gain_as_its_std() -> None:
    w = torch.empty(8, 8)
    torch.nn.init.orthogonal_(w, gain=2.0, generator=torch.Generator().manual_seed(0))
    found = identify.identify(tensor_stats(w), ndim=2, fans=(8, 8), dtype=w.dtype, values=w)
    assert found.looks_like == "orthogonal(gain=2)" and found.fit.std == pytest.approx(
        2.0, rel=1e-5
    )
    assert identify._gain_name(2.0) == "2" and identify._gain_name(1.0) == "1"
