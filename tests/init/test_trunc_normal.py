"""Truncated-normal moments far in the tails and in narrow windows, against mpmath at 50 digits."""

from __future__ import annotations

import math

import mpmath
import pytest
import torch

from initcli.init import schemes

INF = math.inf
GRID = [
    (-2.0, 2.0), (0.0, INF), (-INF, 0.0), (3.0, INF), (-INF, -3.0), (8.0, 9.0), (-9.0, -8.0),
    (10.0, 11.0), (-11.0, -10.0), (20.0, 20.5), (30.0, 31.0), (-40.0, -39.0), (50.0, INF),
    (-INF, -20.0), (-INF, -200.0), (1000.0, 1001.0), (5.0, 5.0001), (-3.0, -2.999),
    (0.0, 1e-6), (-1.0, 7.0), (-0.5, 30.0), (7.5, 40.0), (-8.0, 8.0), (2.0, 2.5),
]  # fmt: skip


def _reference(alpha: float, beta: float) -> tuple[float, float]:
    with mpmath.workdps(50):
        a, b = mpmath.mpf(alpha), mpmath.mpf(beta)

        def pdf(x: mpmath.mpf) -> mpmath.mpf:
            return mpmath.mpf(0) if mpmath.isinf(x) else mpmath.npdf(x)

        # Upper-tail probabilities on the positive side avoid 1 - 1 cancellation even at 50 digits.
        z = mpmath.ncdf(-a) - mpmath.ncdf(-b) if a > 0 else mpmath.ncdf(b) - mpmath.ncdf(a)
        a_term = 0 if mpmath.isinf(a) else a * pdf(a)
        b_term = 0 if mpmath.isinf(b) else b * pdf(b)
        shift = (pdf(a) - pdf(b)) / z
        return float(shift), float(1 + (a_term - b_term) / z - shift * shift)


@pytest.mark.parametrize(("a", "b"), GRID)
def test_standard_moments_match_mpmath(a: float, b: float) -> None:
    ref_mean, ref_var = _reference(a, b)
    mean, var = schemes.trunc_normal_shape(0.0, 1.0, a, b)[:2]
    assert mean == pytest.approx(ref_mean, rel=1e-9, abs=1e-15)
    assert var == pytest.approx(ref_var, rel=1e-9)


def test_far_tail_values_from_the_issue() -> None:
    mean, var = schemes.trunc_normal_shape(0.0, 1.0, 10.0, 11.0)[:2]
    assert (round(mean, 6), round(var, 8)) == (10.098068, 0.00942077)
    _, var8 = schemes.trunc_normal_shape(0.0, 1.0, 8.0, 9.0)[:2]
    assert var8 == pytest.approx(0.014148542782, rel=1e-9)


def test_shift_and_scale_carry_over() -> None:
    ref_mean, ref_var = _reference(-3.0, 1.5)
    mean, var = schemes.trunc_normal_shape(2.0, 0.5, 2.0 - 1.5, 2.0 + 0.75)[:2]
    assert mean == pytest.approx(2.0 + 0.5 * ref_mean, rel=1e-9)
    assert var == pytest.approx(0.25 * ref_var, rel=1e-9)


def test_scheme_with_bounds_far_below_the_mean_has_a_positive_expected_variance() -> None:
    scheme = schemes.parse_scheme("trunc_normal:a=-9,b=-8")
    expected = schemes.expectation(scheme, torch.empty(4, 4))
    assert expected.var == pytest.approx(0.014148542782, rel=1e-9)
