"""Whether a matrix's top singular value stands above the Marchenko–Pastur bulk of i.i.d. values."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import torch

from initcli import threads

# A fresh init draws i.i.d. values: the singular values of its m×n matrix (values less their
# mean, over their standard deviation σ) fill the Marchenko–Pastur bulk, whose top one sits at
# σ(√m + √n) with Tracy–Widom fluctuations; Johnstone (2001) gives their centre and scale for
# the largest eigenvalue s² (see `edge_z`). Training adds structure, and structure shows as
# singular values above the bulk (Martin & Mahoney's weightwatcher line of work). The test calls
# a matrix structured when its top singular value lies more than EDGE_Z Tracy–Widom scales above
# the edge's centre. TW1 has mean -1.21 and sd 1.27, so 5 is ~5 sd above its mean, far in its
# tail. Measured on untouched inits of the benchmark models' shapes (BERT, ViT, GPT-2, Llama,
# T5; their own init, normal and uniform draws; 100 seeds): 0 of 40,800 matrices passed it, the
# largest z was 4.28 (benchmarks/bench_spectrum.py, docs/loaded.md). The estimate below is a
# lower bound of the top singular value, which only makes the test more conservative.
EDGE_Z = 5.0
# Below EDGE_Z a matrix is not called trained, but one whose top singular value is above what
# fresh draws reach 99% of the time is no sure sign of a fresh init either: a flag ("did it
# load?") may rest only on matrices at or under TYPICAL_Z. Measured on 600 N(0, 0.02²) draws of
# each of 17×128, 128×128, 512×128, 1000×128 and 128×3×8×8 (block Krylov, 2026-12-03): the 0.99
# quantiles of edge_z were 1.69, 1.65, 1.56, 1.49, 1.51 and the 0.999 quantiles 2.42, 2.97, 2.69,
# 2.14, 2.32 (mean -1.2, TW1's own), 2-4 of each 600 over 2: a fresh matrix fails it in under 1%
# of draws. A ViT position embedding that moved 30% in 100 noisy steps reached 2.7-3.3
# (bench_loaded.py: 2 false flags in 5 seeds before this bound).
TYPICAL_Z = 2.0
# Block Krylov iteration (Musco & Musco 2015): from a random BLOCK-wide start, ITERATIONS
# products with AᵀA (one read of the matrix each) span a Krylov space of BLOCK·ITERATIONS
# directions, and the largest Rayleigh–Ritz value of AᵀA on it, from those same products, is a
# lower bound of s². Keeping every direction, not only the last block as power iteration does,
# is what makes it converge at the bulk's edge: on i.i.d. 768², 3072×768 and 50257×768 matrices
# the 8-step power iteration used before (9 reads too) stayed 5-8, 12-16 and 46-53 Tracy–Widom
# scales under the edge and missed rank-one spikes 1.3× the BBP threshold (1.6× in the last),
# where this value is within 0.1-3 scales of the exact one (9-12 at 11008×4096) and finds them
# (2026-12-03, docs/loaded.md).
ITERATIONS = 9
BLOCK = 4
# The matrix is read in row chunks of about this many values, copied (and converted to float32)
# into a reused buffer (one per thread) and centred there: the extra memory is a chunk a thread,
# a few vectors and at most PRODUCTS bytes of chunk products, not a float32 copy of the tensor.
# Each step reads the matrix once from memory: both products of a chunk read it from the cache
# (4 MiB; 2^19 to 2^21 measured within 10%).
CHUNK = 2**20
# Each step's chunk products (BLOCK × n each) are computed this many bytes' worth at a time and
# added in chunk order before the next ones are made: a wide matrix has many chunks of a few
# rows, and holding all their products at once took more memory than the matrix itself (618 MiB
# over a 512 × 262,144 float32 matrix; a 16,384 × 53,248 down projection would hold 735 MiB).
PRODUCTS = 64 * 2**20


def as_matrix(t: torch.Tensor) -> torch.Tensor | None:
    """`t` as the matrix its layer multiplies by: leading size-1 dimensions dropped (a (1, T, d)
    position embedding is T×d), the rest folded into the second (a conv's out × in·k·k); None
    for a vector or a matrix with a side under 2."""
    while t.dim() > 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() < 2:
        return None
    matrix = t.reshape(t.shape[0], -1)
    return matrix if min(matrix.shape) >= 2 else None


def row_chunks(matrix: torch.Tensor) -> list[tuple[int, int]]:
    """The (first, past-last) rows of each chunk of about CHUNK values (at least one row)."""
    rows = max(1, CHUNK // max(1, matrix.shape[1]))
    return [(i, min(i + rows, matrix.shape[0])) for i in range(0, matrix.shape[0], rows)]


def centred(
    buffer: torch.Tensor, matrix: torch.Tensor, lo: int, hi: int, mean: float
) -> torch.Tensor:
    """Rows lo to hi of `matrix` less `mean`, in float32, in (the start of) `buffer`."""
    rows = buffer[: hi - lo]
    rows.copy_(matrix[lo:hi])
    return rows.sub_(mean)


def top_singular(matrix: torch.Tensor, mean: float, workers: int | None = None) -> float:
    """A lower bound of the top singular value of `matrix - mean`, by BLOCK-wide block Krylov
    iteration (ITERATIONS products with AᵀA, then Rayleigh–Ritz on the space they span) from a
    seeded random start; float32, chunked rows.

    The Krylov directions are kept as orthonormal rows (each new block orthogonalized against
    all before it, twice) so that every product is short-by-long, the layout torch's CPU kernels
    run fastest (4-6 GB/s a step on one thread here, against 1-3 GB/s for `rows.T @ image`;
    docs/speed.md). The iteration stops early where the new directions vanish (the space holds
    an invariant subspace: its value is then exact). The chunks are shared among `workers`
    threads (None: `threads.measuring_workers`), each with its own buffer; every chunk's product
    is its own, and they are added in chunk order, so every digit is the same whatever the
    number of threads (as in stats.tensor_stats)."""
    m, n = matrix.shape
    block = min(BLOCK, m, n)
    gen = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(n, block, generator=gen)).Q.T.contiguous()
    spans = row_chunks(matrix)
    if workers is None:
        workers = threads.measuring_workers(torch.get_num_threads())
    workers = max(1, min(workers, len(spans)))
    buffers = [torch.empty(spans[0][1] - spans[0][0], n) for _ in range(workers)]

    # Chunks per window: PRODUCTS bytes of BLOCK × n float32 products, at least one a thread.
    per_window = max(workers, PRODUCTS // (4 * block * n))

    with ThreadPoolExecutor(workers, thread_name_prefix="initcli-spectrum") as pool:

        def each(product: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[torch.Tensor]:
            """`product` of every centred chunk, in chunk order, a window of chunks at a time."""
            for start in range(0, len(spans), per_window):
                window = spans[start : start + per_window]

                def work(i: int, w: int, window: list[tuple[int, int]] = window) -> torch.Tensor:
                    return product(centred(buffers[w], matrix, *window[i], mean))

                yield from threads.split(work, len(window), workers, pool)

        # The space's orthonormal rows, and AᵀA applied to each of them (as rows), filled in
        # place: at most BLOCK·ITERATIONS of each.
        space = torch.empty(block * ITERATIONS, n)
        images = torch.empty(block * ITERATIONS, n)
        size = block
        space[:size] = basis
        for step in range(ITERATIONS):
            done = size - basis.shape[0]
            back = images[done:size].zero_()
            for part in each(partial(_gram_part, basis)):
                back += part
            if step == ITERATIONS - 1:
                break
            known = space[:size]
            rest = back - (back @ known.T) @ known
            # Classical Gram–Schmidt, twice: orthogonal to float32 rounding.
            rest -= (rest @ known.T) @ known
            # The new directions: those left with more than rounding after the projection (none
            # once the space is invariant under AᵀA, which makes its value exact), and no more
            # than the rows have entries beyond the space's.
            found = torch.linalg.svd(rest.T, full_matrices=False)
            new = found.U[:, 1e-4 * float(back.norm()) < found.S][:, : n - size]
            if new.shape[1] == 0:
                break
            basis = space[size : size + new.shape[1]]
            basis.copy_(new.T)
            size += new.shape[1]
    # Rayleigh–Ritz on the space: the largest eigenvalue of Q·AᵀA·Qᵀ (Q the space's orthonormal
    # rows) is a lower bound of the largest of AᵀA, s², from the products already made.
    ritz = space[:size] @ images[:size].T
    top = float(torch.linalg.eigvalsh((ritz + ritz.T) / 2)[-1])
    return math.sqrt(max(top, 0.0))


def _gram_part(basis: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """One chunk's share of (AᵀA)·basis, as rows: (basis·rowsᵀ)·rows."""
    return (basis @ rows.T) @ rows


def edge_z(t: torch.Tensor, mean: float, var: float) -> float | None:
    """How far the top singular value of `t` (as `as_matrix`, less `mean`) stands above the
    Marchenko–Pastur edge for its shape and variance `var`, in Tracy–Widom units (Johnstone
    2001): (s²/var − μ)/σ with μ = (√(M−1) + √N)², σ = (√(M−1) + √N)(1/√(M−1) + 1/√N)^⅓,
    M ≥ N the matrix's sides. About −1.2 ± 1.3 for i.i.d. values; None for a vector, a
    constant or a non-finite tensor."""
    matrix = as_matrix(t)
    if matrix is None or not (var > 0 and math.isfinite(var) and math.isfinite(mean)):
        return None
    big, small = max(matrix.shape), min(matrix.shape)
    root = math.sqrt(big - 1) + math.sqrt(small)
    centre = root**2
    scale = root * (1 / math.sqrt(big - 1) + 1 / math.sqrt(small)) ** (1 / 3)
    top = top_singular(matrix, mean)
    return float((top * top / var - centre) / scale)


def structured(z: float | None) -> bool:
    """Whether `edge_z`'s answer puts the top singular value above the i.i.d. bulk."""
    return z is not None and z > EDGE_Z


def typical(z: float | None) -> bool:
    """Whether `edge_z`'s answer is what a fresh draw gives (at most TYPICAL_Z; or not measured)."""
    return z is None or z <= TYPICAL_Z
