"""The dispersion test of "at init" (issue 22): rows and columns of an i.i.d. draw are alike;
training that shifts or scales whole units makes them differ before the spectrum shows it."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats as sstats  # type: ignore[import-untyped]

from initcli.init import schemes
from initcli.measure import dispersion, identify, spectrum
from initcli.weights import freshness


def _reference(x: torch.Tensor) -> float:
    """The four tests written again with numpy and scipy.stats: one-way ANOVA of the rows' and
    the columns' values and squared deviations, each a scaled χ² (Satterthwaite) with the
    grouped values' excess kurtosis; the smallest p-value times four."""
    a = x.reshape(x.shape[0], -1).double().numpy()
    y = a - a.mean()
    found = []
    for values in (y, y * y):
        gamma = float(sstats.kurtosis(values, axis=None, fisher=True, bias=True))
        for groups in (values, values.T):
            g, h = groups.shape
            means = groups.mean(axis=1)
            between = h * ((means - means.mean()) ** 2).sum()
            within = ((groups - means[:, None]) ** 2).sum() / (g * (h - 1))
            v = 2 * (g - 1) + (g - 1) ** 2 * gamma / (h * g)
            scale, dof = v / (2 * (g - 1)), 2 * (g - 1) ** 2 / v
            found.append(float(sstats.chi2.sf(between / within / scale, dof)))
    return min(1.0, 4 * min(found))


@pytest.mark.parametrize("shape", [(64, 64), (200, 48), (32, 3, 4, 4)])
@pytest.mark.parametrize("draw", ["normal", "uniform", "rows shifted"])
def test_p_value_is_the_four_anovas(shape: tuple[int, ...], draw: str) -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen) if draw != "uniform" else torch.rand(shape, generator=gen)
    if draw == "rows shifted":
        x = x + 0.3 * torch.randn(shape[0], *[1] * (len(shape) - 1), generator=gen)
    found = dispersion.p_value(x, float(x.double().mean()))
    assert found is not None
    expected = _reference(x)
    # float32 sums per chunk (added in float64) against float64 throughout: the p-value within
    # 1e-4 relative even at 1e-92, far inside what ALPHA (1e-5) and TYPICAL_P (0.01) resolve.
    assert found == pytest.approx(expected, rel=1e-4, abs=0)


def test_the_row_anova_is_the_f_test_for_normal_values() -> None:
    """For normal values (excess kurtosis 0) the scaled χ² is χ²_{g-1}, the large-sample F test:
    50 groups of 400 values, against scipy's f_oneway."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(50, 400, generator=gen, dtype=torch.float64)
    p = dispersion._anova(x.sum(1), float((x * x).sum()), 400, 0.0)
    f = sstats.f_oneway(*x.numpy())
    assert p == pytest.approx(float(f.pvalue), rel=0.05, abs=0)


def test_fresh_draws_are_rarely_dispersed_and_trained_units_always() -> None:
    """200 fresh N(0, 0.02²) and uniform 128 × 96 draws: the adjusted p-value falls under 0.05 at
    about the 5% it should (at most 16 of 200, a binomial 0.999 bound) and never under ALPHA;
    rows shifted by a tenth of the std (a unit-wise Adam drift), or half the rows scaled by 1.2
    (units that learned), are called dispersed every time while the variance moves ≤ 1%."""
    gen = torch.Generator().manual_seed(3)
    small = 0
    for i in range(200):
        x = (torch.randn if i % 2 else torch.rand)(128, 96, generator=gen) * 0.02
        p = dispersion.p_value(x, float(x.double().mean()))
        assert p is not None and not dispersion.dispersed(p)
        small += p < 0.05
    assert small <= 16
    for _ in range(5):
        x = torch.randn(128, 96, generator=gen) * 0.02
        shifted = x + 0.002 * torch.randn(128, 1, generator=gen)
        scaled = x.clone()
        scaled[:64] *= 1.2
        for moved in (shifted, scaled):
            assert dispersion.dispersed(dispersion.p_value(moved, float(moved.double().mean())))
        assert float(shifted.var() / x.var()) == pytest.approx(1.0, abs=0.02)


def test_chunks_give_the_same_p_value(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(101, 37, generator=gen) + 0.05 * torch.randn(101, 1, generator=gen)
    whole = dispersion.p_value(x, float(x.mean()))
    monkeypatch.setattr(spectrum, "CHUNK", 100)  # 2 rows a chunk, the last one short
    assert dispersion.p_value(x, float(x.mean())) == pytest.approx(whole, rel=1e-5, abs=0)
    assert dispersion.p_value(x.bfloat16(), float(x.mean())) == pytest.approx(
        dispersion.p_value(x.bfloat16().float(), float(x.mean())), rel=1e-12, abs=0
    )


def test_undecidable_inputs() -> None:
    assert dispersion.p_value(torch.zeros(64), 0.0) is None
    assert dispersion.p_value(torch.zeros(8, 8), 0.0) is None  # a constant
    assert dispersion.p_value(torch.ones(8, 8), math.nan) is None
    assert dispersion.p_value(torch.full((8, 8), math.inf), 0.0) is None
    assert not dispersion.dispersed(None) and dispersion.alike(None)
    assert dispersion.dispersed(math.nextafter(dispersion.ALPHA, 0.0))
    assert not dispersion.dispersed(dispersion.ALPHA)
    assert dispersion.alike(dispersion.TYPICAL_P)
    assert not dispersion.alike(math.nextafter(dispersion.TYPICAL_P, 0.0))


def test_state_uses_the_dispersion_where_moments_and_spectrum_say_at_init() -> None:
    """Rows shifted by a tenth of the std: mean and variance still fit N(0, 0.02²) and the
    spectrum does not call it structured, but the rows differ: such a matrix is trained, and
    the note says why."""
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(256, 256, generator=gen) * 0.02
    moved = w + 0.002 * torch.randn(256, 1, generator=gen)
    own = schemes.Expectation("normal", 0.0, 0.02**2)
    fit = identify.Fit("normal", 0.02, None, ())
    for values, expected in ((w, freshness.AT_INIT), (moved, freshness.TRAINED)):
        mean, var = float(values.double().mean()), float(values.double().var())
        judged = freshness.with_structure(
            freshness.Tensor("l.weight", values.numel(), mean, var, fit, own), values
        )
        assert judged.edge_z is not None and not spectrum.structured(judged.edge_z)
        assert judged.dispersion_p is not None
        assert freshness.state(judged) == expected
    verdict = freshness.judge_loaded(
        [
            freshness.with_structure(
                freshness.Tensor(
                    "a.weight",
                    moved.numel(),
                    float(moved.mean()),
                    float(moved.var()),
                    fit,
                    own,
                ),
                moved,
            ),
            freshness.Tensor("b.weight", 4096, 0.0, 4 * 0.02**2, fit, own),
        ]
    )
    assert verdict.states["a.weight"] == freshness.TRAINED
    assert any("rows or columns that differ" in note for note in verdict.notes)


@pytest.mark.parametrize(
    "which", ["rows shifted", "columns shifted", "rows scaled", "columns scaled"]
)
def test_each_test_in_chunks_against_the_reference(
    which: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of the four tests made the smallest in turn, read in chunks of 2 rows (the sums of
    every chunk added, the powers of every chunk counted): the numpy/scipy reference's value."""
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(101, 37, generator=gen, dtype=torch.float64)
    if which == "rows shifted":
        x += 0.3 * torch.randn(101, 1, generator=gen, dtype=torch.float64)
    elif which == "columns shifted":
        x += 0.3 * torch.randn(1, 37, generator=gen, dtype=torch.float64)
    elif which == "rows scaled":
        x[::2] *= 1.6
    else:
        x[:, ::2] *= 1.6
    monkeypatch.setattr(spectrum, "CHUNK", 100)
    found = dispersion.p_value(x.float(), float(x.mean()))
    assert found is not None and found < 1e-3
    assert found == pytest.approx(_reference(x.float()), rel=1e-4, abs=0)


def test_degenerate_groups_say_nothing() -> None:
    """One group, groups of one value, or groups without spread inside them: p = 1; two groups
    of two values are a test like any other."""
    ones = torch.ones(4, dtype=torch.float64)
    assert dispersion._anova(ones[:1], 1.0, 5, 0.0) == 1.0
    assert dispersion._anova(ones, 4.0, 1, 0.0) == 1.0
    assert dispersion._anova(ones * 3, 4 * 3 * 3 / 3, 3, 0.0) == 1.0  # every value the same
    two = dispersion._anova(torch.tensor([0.0, 4.0], dtype=torch.float64), 10.0, 2, 0.0)
    assert 0.0 < two < 1.0
    # Means 0 and 2: between 2·(1 + 1) = 4; within (10 − 2·4)/(2·1) = 1; D = 4 on χ²₁.
    assert two == pytest.approx(float(sstats.chi2.sf(4.0, 1)), rel=1e-9)


def test_signs_have_no_spread_in_their_squares() -> None:
    """±1 values: their squared deviations are all alike (the Levene tests have nothing to test,
    their fourth moment's variance is 0), the mean tests still run: no division by zero."""
    gen = torch.Generator().manual_seed(7)
    signs = torch.randn(64, 64, generator=gen).sign()
    p = dispersion.p_value(signs, 0.0)
    assert p is not None and 0.0 < p <= 1.0 and not dispersion.dispersed(p)
