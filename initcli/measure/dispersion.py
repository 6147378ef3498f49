"""Whether a matrix's rows or columns differ more than i.i.d. values allow (light training)."""

from __future__ import annotations

import math

import torch

from initcli.measure import identify, spectrum

# A fresh init draws i.i.d. values, so its rows (and its columns) are alike: their means and
# their sums of squares vary only as much as n draws allow. Training moves units, not values:
# the gradient of a layer fed by ReLU outputs (≥ 0) has one sign along each row, so Adam shifts
# whole rows, and units that learned and units that did not differ in scale. Four one-way
# analyses of variance test that: the row means, the row means of the squared deviations
# (Levene), and the same for the columns. Each statistic D = h Σ(ḡ − ḡ̄)² / s_w² (groups of h
# values, s_w² the pooled within-group variance) is, for i.i.d. values, close to a·χ²_ν with
# V = 2(g − 1) + (g − 1)²γ/(h g), a = V / (2(g − 1)) and ν = 2(g − 1)²/V, γ the excess kurtosis
# of what is grouped (Satterthwaite's match of the first two moments; the values' own fourth
# moment, and the eighth for the squared deviations). A matrix is called trained when the
# smallest of the four p-values, times four (Bonferroni), is under ALPHA. Measured on the five
# benchmark models' own inits and normal and uniform draws of their shapes (100 seeds, 40,800
# matrices; benchmarks/bench_spectrum.py, docs/loaded.md): 1 under ALPHA (a Llama o_proj at
# p = 2.4e-7) and 5 under 1e-4, where 4.1 are expected.
ALPHA = 1e-5
# As spectrum.TYPICAL_Z: a matrix is sure evidence of a fresh init only where its smallest
# adjusted p-value is what fresh draws give 99% of the time.
TYPICAL_P = 0.01
TESTS = 4


def p_value(t: torch.Tensor, mean: float) -> float | None:
    """The smallest p-value of the four dispersion tests on `t` (as spectrum.as_matrix, less
    `mean`), times TESTS and at most 1; None for a vector, a constant or a non-finite tensor."""
    matrix = spectrum.as_matrix(t)
    if matrix is None or not math.isfinite(mean):
        return None
    m, n = matrix.shape
    # Read as the spectral test reads it: row chunks centred into one reused float32 buffer,
    # their sums per row and column added in float64.
    spans = spectrum.row_chunks(matrix)
    buffer = torch.empty(spans[0][1] - spans[0][0], n)
    squares = torch.empty_like(buffer)
    row_sum = torch.empty(m, dtype=torch.float64)
    row_sq = torch.empty(m, dtype=torch.float64)
    col_sum = torch.zeros(n, dtype=torch.float64)
    col_sq = torch.zeros(n, dtype=torch.float64)
    powers = [0.0, 0.0, 0.0, 0.0]  # Σy², Σy⁴, Σy⁶, Σy⁸
    for lo, hi in spans:
        y = spectrum.centred(buffer, matrix, lo, hi, mean)
        y2 = torch.mul(y, y, out=squares[: hi - lo])
        # float32 sums of at most a chunk (pairwise), added in float64: the row and column means
        # differ by ~σ/√n, far above float32's rounding of their sums.
        row_sum[lo:hi] = y.sum(1)
        row_sq[lo:hi] = y2.sum(1)
        col_sum += y.sum(0)
        col_sq += y2.sum(0)
        powers[0] += float(y2.sum())
        y4 = torch.mul(y2, y2, out=y)  # y is not needed again for this chunk
        powers[1] += float(y4.sum())
        powers[2] += float(y2.mul_(y4).sum())  # y2 is not needed again either
        powers[3] += float(y4.square_().sum())
    count = m * n
    s2, s4, s6, s8 = (p / count for p in powers)
    if not (s2 > 0 and math.isfinite(s8)):
        return None
    # Moments about the centre (the mean passed in is the tensor's own, so Σy ≈ 0).
    gamma_values = s4 / (s2 * s2) - 3
    var_squares = s4 - s2 * s2
    gamma_squares = (
        (s8 - 4 * s6 * s2 + 6 * s4 * s2 * s2 - 3 * s2**4) / (var_squares * var_squares) - 3
        if var_squares > 0
        else 0.0
    )
    found = [
        _anova(row_sum, s2 * count, n, gamma_values),
        _anova(row_sq, s4 * count, n, gamma_squares),
        _anova(col_sum, s2 * count, m, gamma_values),
        _anova(col_sq, s4 * count, m, gamma_squares),
    ]
    return min(1.0, TESTS * min(found))


def _anova(sums: torch.Tensor, total_sq: float, h: int, gamma: float) -> float:
    """The p-value that groups of h values with these sums (and Σ of the squared values
    `total_sq`) differ in mean by chance, for i.i.d. values of excess kurtosis `gamma`."""
    g = sums.numel()
    if g < 2 or h < 2:
        return 1.0
    means = sums / h
    between = h * float(((means - means.mean()) ** 2).sum())
    within = (total_sq - h * float((means * means).sum())) / (g * (h - 1))
    if not within > 0:
        return 1.0
    k = g - 1
    v = 2 * k + k * k * max(gamma, -2.0) / (h * g)
    if not v > 0:
        return 1.0
    scale, dof = v / (2 * k), 2 * k * k / v
    return float(identify.scipy_special().chdtrc(dof, between / within / scale))


def dispersed(p: float | None) -> bool:
    """Whether `p_value`'s answer says the rows or columns differ (under ALPHA)."""
    return p is not None and p < ALPHA


def alike(p: float | None) -> bool:
    """Whether `p_value`'s answer is what a fresh draw gives (at least TYPICAL_P; or not
    measured)."""
    return p is None or p >= TYPICAL_P
