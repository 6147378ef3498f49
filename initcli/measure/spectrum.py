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
# each of 17×128, 128×128, 512×128, 1000×128 and 128×3×8×8: the 0.99 quantiles of edge_z were
# 1.69, 1.51, 0.62, -0.96, 1.01 and the 0.999 quantiles 2.41, 2.52, 1.20, 0.94, 2.13, so a fresh
# matrix fails it in well under 1% of draws. A ViT position embedding that moved 30% in 100
# noisy steps reached 2.7-3.3 (bench_loaded.py: 2 false flags in 5 seeds before this bound).
TYPICAL_Z = 2.0
# Block power iteration: the Rayleigh–Ritz value after a few iterations from a random start is
# a lower bound of the top singular value that reaches an outlier well separated from the bulk
# in a few steps (the gap makes it converge geometrically); inside the bulk it stays below the
# edge, which is all the test needs.
ITERATIONS = 8
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
    """A lower bound of the top singular value of `matrix - mean`, by BLOCK-wide power
    iteration (ITERATIONS steps) from a seeded random start; float32, chunked rows.

    The basis is kept as rows (BLOCK × n) so that both products are short-by-long matrix
    products, the layout torch's CPU kernels run fastest (4-6 GB/s a step on one thread here,
    against 1-3 GB/s for `rows.T @ image`; docs/speed.md). The chunks are shared among `workers`
    threads (None: `threads.measuring_workers`), each
    with its own buffer; every chunk's product is its own, and they are added in chunk order,
    so every digit is the same whatever the number of threads (as in stats.tensor_stats)."""
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

    def share(
        first: int, product: Callable[[torch.Tensor], torch.Tensor], chunks: list[tuple[int, int]]
    ) -> list[torch.Tensor]:
        return [
            product(centred(buffers[first], matrix, lo, hi, mean))
            for lo, hi in chunks[first::workers]
        ]

    with ThreadPoolExecutor(workers, thread_name_prefix="initcli-spectrum") as pool:

        def each(product: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[torch.Tensor]:
            """`product` of every centred chunk, in chunk order, a window of chunks at a time."""
            for start in range(0, len(spans), per_window):
                window = spans[start : start + per_window]
                if workers == 1:
                    yield from share(0, product, window)
                else:
                    taking = partial(share, product=product, chunks=window)
                    shares = pool.map(taking, range(workers))
                    yield from threads.in_item_order(list(shares))

        for _ in range(ITERATIONS):
            back = torch.zeros(block, n)
            for part in each(partial(_gram_part, basis)):
                back += part
            basis = torch.linalg.qr(back.T).Q.T.contiguous()
        image = torch.cat(list(each(partial(_image_part, basis))), dim=1)
    return float(torch.linalg.svdvals(image)[0])


def _gram_part(basis: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """One chunk's share of (AᵀA)·basis, as rows: (basis·rowsᵀ)·rows."""
    return (basis @ rows.T) @ rows


def _image_part(basis: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """One chunk's columns of A·basis, as rows: basis·rowsᵀ."""
    return basis @ rows.T


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
