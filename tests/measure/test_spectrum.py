"""The spectral test of "at init" (issue 22 item 2): a fresh i.i.d. draw stays under the
Marchenko–Pastur edge, a matrix with structure (an outlier singular value) goes over it."""

from __future__ import annotations

import math
import weakref

import pytest
import torch

from initcli.init import schemes
from initcli.measure import identify, spectrum
from initcli.weights import freshness


def _z(t: torch.Tensor) -> float | None:
    return spectrum.edge_z(t, float(t.double().mean()), float(t.double().var(unbiased=False)))


SHAPES = [(64, 64), (256, 64), (32, 3, 4, 4), (1, 17, 64)]


def _iid_stay_under(shape: tuple[int, ...], draw: str, seeds: int) -> None:
    zs = []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(seed)
        t = (
            torch.randn(shape, generator=gen)
            if draw == "normal"
            else torch.rand(shape, generator=gen)
        )
        z = _z(t)
        assert z is not None
        zs.append(z)
    assert max(zs) < spectrum.EDGE_Z
    # Johnstone's centre: TW1's mean is -1.21 (sd 1.27); the block Krylov lower bound sits at
    # or just below it.
    assert -4.5 < sum(zs) / len(zs) < 1.0


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("draw", ["normal", "uniform"])
def test_iid_draws_stay_under_the_edge(shape: tuple[int, ...], draw: str) -> None:
    """No i.i.d. draw passes EDGE_Z (the benchmark's rate over 40,800 untouched matrices of the
    models' shapes is 0; bench_spectrum.py); 8 seeds here, 200 in the slow version."""
    _iid_stay_under(shape, draw, 8)


@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("draw", ["normal", "uniform"])
def test_iid_draws_stay_under_the_edge_over_200_seeds(shape: tuple[int, ...], draw: str) -> None:
    _iid_stay_under(shape, draw, 200)


def _spiked(theta: float, n: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """N(0, 0.02²) n×n plus a rank-one spike of strength θ in units of the bulk's edge half
    (σ√n): past θ = 1 (the BBP transition) it leaves the bulk at (θ + 1/θ)σ√n."""
    gen = torch.Generator().manual_seed(seed)
    sigma = 0.02
    w = torch.randn(n, n, generator=gen) * sigma
    u = torch.randn(n, 1, generator=gen)
    v = torch.randn(1, n, generator=gen)
    spike = theta * sigma * math.sqrt(n) * (u / u.norm()) @ (v / v.norm())
    return w, w + spike


def test_a_spike_goes_over_the_edge_where_the_variance_barely_moves() -> None:
    w, spiked = _spiked(2.0)
    ratio = float(spiked.var() / w.var())
    assert ratio == pytest.approx(1 + 4 / 256, abs=0.005)  # variance up 1.6%
    z = _z(spiked)
    assert z is not None and z > 30  # top singular value (2 + 1/2)σ√n against an edge of 2σ√n
    top = spectrum.top_singular(spiked, float(spiked.mean()))
    exact = float(torch.linalg.svdvals(spiked - spiked.mean())[0])
    assert top <= exact * (1 + 1e-5)
    assert top == pytest.approx(exact, rel=1e-3)  # a separated outlier converges in 8 steps
    # Under the BBP transition a spike cannot be told from the bulk: it stays under EDGE_Z.
    _, weak = _spiked(0.5)
    assert not spectrum.structured(_z(weak))


def test_as_matrix_and_undecidable_inputs() -> None:
    assert spectrum.as_matrix(torch.zeros(1, 17, 64)).shape == (17, 64)  # type: ignore[union-attr]
    assert spectrum.as_matrix(torch.zeros(8, 3, 4, 4)).shape == (8, 48)  # type: ignore[union-attr]
    assert spectrum.as_matrix(torch.zeros(64)) is None
    assert spectrum.as_matrix(torch.zeros(1, 64)) is None
    assert spectrum.edge_z(torch.ones(8, 8), 1.0, 0.0) is None
    assert spectrum.edge_z(torch.ones(8, 8), math.nan, 1.0) is None


def test_state_uses_the_spectrum_where_the_moments_say_at_init() -> None:
    """The moments of a spiked matrix still fit the model's own init N(0, 0.02²); its spectrum
    says trained. An untouched draw stays at init."""
    w, spiked = _spiked(2.0)
    own = schemes.Expectation("normal", 0.0, 0.02**2)
    fit = identify.Fit("normal", 0.02, None, ())
    for values, expected in ((w, freshness.AT_INIT), (spiked, freshness.TRAINED)):
        mean, var = float(values.double().mean()), float(values.double().var())
        moments = freshness.Tensor("l.weight", values.numel(), mean, var, fit, own)
        assert freshness.state(moments) == freshness.AT_INIT
        judged = freshness.with_structure(moments, values)
        assert judged.edge_z is not None
        assert freshness.state(judged) == expected
    # A tensor the moments call trained is not measured again.
    moved = freshness.Tensor("l.weight", w.numel(), 0.0, 2 * 0.02**2, fit, own)
    assert freshness.with_structure(moved, w).edge_z is None


def test_chunked_rows_give_the_same_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are read in chunks into one reused buffer, centred there and converted to
    float32: the mean comes off, 1,000-value chunks (3 rows of 300, the last one short) give
    the one-chunk value of the same matrix, and a bfloat16 matrix the value of its float32
    copy."""
    _, spiked = _spiked(3.0, n=256)
    matrix = torch.cat([spiked, spiked[:, :44]], 1) + 0.05  # 256 x 300, mean 2.5 sd off 0
    mean = float(matrix.mean())
    whole = spectrum.top_singular(matrix, mean)
    exact = float(torch.linalg.svdvals(matrix.double() - mean)[0])
    assert whole == pytest.approx(exact, rel=1e-4)
    monkeypatch.setattr(spectrum, "CHUNK", 1000)
    assert len(spectrum.row_chunks(matrix)) == 86  # 85 chunks of 3 rows and one of 1
    assert spectrum.top_singular(matrix, mean) == pytest.approx(whole, rel=1e-6)
    half = matrix.bfloat16()
    assert spectrum.top_singular(half, mean) == pytest.approx(
        spectrum.top_singular(half.float(), mean), rel=1e-6
    )


def test_digits_do_not_depend_on_the_number_of_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each chunk's product is its own and they are added in chunk order: 1, 2 and 3 threads
    give the same float, bit for bit (as tensor_stats does)."""
    _, spiked = _spiked(2.0, n=128)
    monkeypatch.setattr(spectrum, "CHUNK", 1000)  # 7 rows a chunk, 19 chunks
    found = {w: spectrum.top_singular(spiked, 0.01, workers=w) for w in (1, 2, 3)}
    assert found[1] == found[2] == found[3]
    assert found[1] == pytest.approx(
        float(torch.linalg.svdvals(spiked.double() - 0.01)[0]), rel=1e-4
    )


def test_products_held_a_window_at_a_time_give_the_same_digits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A wide matrix's chunks are few rows each, and their products (4 × n each) are made and
    added a window of PRODUCTS bytes at a time: windows of 1 or 2 chunks a thread (the last one
    short) give the all-at-once float bit for bit, at 1, 2 and 3 threads."""
    _, spiked = _spiked(2.0, n=128)
    monkeypatch.setattr(spectrum, "CHUNK", 1000)  # 7 rows a chunk, 19 chunks
    whole = spectrum.top_singular(spiked, 0.01, workers=1)
    part = 4 * spectrum.BLOCK * 128  # bytes of one chunk's product
    for products in (1, 2 * part, 5 * part):
        monkeypatch.setattr(spectrum, "PRODUCTS", products)
        for w in (1, 2, 3):
            assert spectrum.top_singular(spiked, 0.01, workers=w) == whole, (products, w)


def test_a_wide_matrix_holds_a_window_of_products_not_all_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """8 × 600,000: a row a chunk, each chunk's product 4 × 600,000 floats (9.6 MB). All at once
    that was 8 products alive; with PRODUCTS at one product, a window is one chunk, and only it
    and the one being added are alive; at the default 64 MiB, 6 and 1."""
    matrix = torch.randn(8, 600_000, generator=torch.Generator().manual_seed(1))
    real = spectrum._gram_part
    alive, most = 0, 0

    def gone() -> None:
        nonlocal alive
        alive -= 1

    def counting(basis: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        nonlocal alive, most
        out = real(basis, rows)
        alive += 1
        most = max(most, alive)
        weakref.finalize(out, gone)
        return out

    monkeypatch.setattr(spectrum, "_gram_part", counting)
    exact = float(torch.linalg.svdvals(matrix.double())[0])
    found = []
    for products, limit in ((1, 2), (spectrum.PRODUCTS, 7)):
        monkeypatch.setattr(spectrum, "PRODUCTS", products)
        most = 0
        found.append(spectrum.top_singular(matrix, 0.0, workers=1))
        assert most == limit, products
    # The same float either way; exact to float32's rounding, as the Krylov space holds the
    # 8 rows' span after two steps (and stops there).
    assert found[0] == found[1]
    assert found[0] == pytest.approx(exact, rel=1e-5)


def test_each_krylov_step_reads_the_matrix_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """ITERATIONS products with AᵀA, each one pass over every chunk, and no other pass: the
    value comes from those products (Rayleigh–Ritz), not from one more read. 300 × 200 leaves
    room for all 36 directions, so no step ends early."""
    matrix = torch.randn(300, 200, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(spectrum, "CHUNK", 10_000)  # 50 rows a chunk, 6 chunks
    calls, reads = 0, 0
    real_gram, real_centred = spectrum._gram_part, spectrum.centred

    def counting(basis: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        assert basis.shape == (spectrum.BLOCK, 200)
        return real_gram(basis, rows)

    def reading(
        buffer: torch.Tensor, values: torch.Tensor, lo: int, hi: int, mean: float
    ) -> torch.Tensor:
        nonlocal reads
        reads += 1
        return real_centred(buffer, values, lo, hi, mean)

    monkeypatch.setattr(spectrum, "_gram_part", counting)
    monkeypatch.setattr(spectrum, "centred", reading)
    found = spectrum.top_singular(matrix, 0.0, workers=1)
    assert calls == reads == spectrum.ITERATIONS * 6
    assert found <= float(torch.linalg.svdvals(matrix.double())[0]) * (1 + 1e-6)


@pytest.mark.parametrize("shape", [(7, 5), (5, 7), (40, 6), (3, 9)])
def test_a_space_that_fills_the_rows_gives_the_exact_value(shape: tuple[int, int]) -> None:
    """Where the rows have few entries the space reaches all of them, the last block only as
    wide as what is left (5 entries: 4, then 1): the value is then exact, and the iteration
    stops once nothing new is left (a space invariant under AᵀA)."""
    matrix = torch.randn(*shape, generator=torch.Generator().manual_seed(3)) + 0.5
    mean = float(matrix.mean())
    exact = float(torch.linalg.svdvals(matrix.double() - mean)[0])
    assert spectrum.top_singular(matrix, mean) == pytest.approx(exact, rel=1e-5)


def test_edge_z_is_johnstones_centring_and_scaling(monkeypatch: pytest.MonkeyPatch) -> None:
    """z = (s²/var − μ)/σ with Johnstone's (2001) μ = (√(M−1) + √N)², σ = (√(M−1) + √N)
    (1/√(M−1) + 1/√N)^⅓ for M ≥ N; for 100 × 25 (either way round) μ = 223.4987 and
    σ = 10.01354, worked by hand from the paper's formulas."""
    monkeypatch.setattr(spectrum, "top_singular", lambda matrix, mean: 20.0)
    for shape in ((100, 25), (25, 100), (25, 4, 5, 5)):
        z = spectrum.edge_z(torch.zeros(shape), 0.0, 2.0)
        assert z == pytest.approx((400 / 2 - 223.49874) / 10.013537, rel=1e-6)


def test_exact_top_singular_values_of_iid_draws_follow_tracy_widom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With the exact top singular value in place of the block Krylov bound, z of i.i.d.
    normal 100 × 25 draws has Tracy–Widom's mean −1.21 and sd 1.27 (400 draws: standard errors
    0.06 and 0.05; the bounds allow the finite-size bias as well)."""
    monkeypatch.setattr(
        spectrum,
        "top_singular",
        lambda matrix, mean: float(torch.linalg.svdvals(matrix.double() - mean)[0]),
    )
    gen = torch.Generator().manual_seed(0)
    zs = torch.tensor(
        [spectrum.edge_z(torch.randn(100, 25, generator=gen), 0.0, 1.0) for _ in range(400)]
    )
    assert float(zs.mean()) == pytest.approx(-1.21, abs=0.25)
    assert float(zs.std()) == pytest.approx(1.27, abs=0.2)


def test_thresholds_are_strict_and_the_smallest_matrix_is_two_wide() -> None:
    assert not spectrum.structured(spectrum.EDGE_Z)
    assert spectrum.structured(math.nextafter(spectrum.EDGE_Z, math.inf))
    assert spectrum.typical(spectrum.TYPICAL_Z)
    assert not spectrum.typical(math.nextafter(spectrum.TYPICAL_Z, math.inf))
    assert spectrum.as_matrix(torch.zeros(2, 5)).shape == (2, 5)  # type: ignore[union-attr]
    assert spectrum.as_matrix(torch.zeros(5, 1)) is None


def test_a_row_longer_than_a_chunk_is_a_chunk_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spectrum, "CHUNK", 10)
    assert spectrum.row_chunks(torch.zeros(3, 300)) == [(0, 1), (1, 2), (2, 3)]
    assert spectrum.row_chunks(torch.zeros(5, 4)) == [(0, 2), (2, 4), (4, 5)]
