"""Bounds on command-line numbers (seed, learning rate, steps, batch), checked before any work."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from initcli import memory
from initcli.errors import ArgError, MemoryLimitError

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_FORMULA_TERMS",
    "MAX_GUESSED_LAYOUTS",
    "MAX_LR",
    "MAX_POINTS",
    "MAX_TRAIN_STEPS",
    "SEED_LIMIT",
    "check_batch",
    "check_lr",
    "check_range",
    "check_seed",
]

# torch.manual_seed takes any seed below 2**64 (it is stored as a uint64).
SEED_LIMIT = 2**64
# Adam's learning rate for `compare --train`: above this, training diverges at once; the bound
# keeps 1e308 (and the infinities its updates would produce) out.
MAX_LR = 100.0
# `compare --train`: a full-batch Adam step on the two-moons set takes ~1-2 ms on a small MLP,
# so 100,000 steps are a few minutes per scheme; 10**9 steps would be weeks.
MAX_TRAIN_STEPS = 100_000
# Two-moons points for `--train`: one full batch, held in memory with its activations.
MAX_POINTS = 1_000_000
# `count` of a safetensors file: a module type is guessed by building a stand-in module on the
# meta device (~0.1-1 ms) once per distinct layout (names and shapes of a module's tensors).
# Real checkpoints have a few dozen layouts; past this many, the rest are not guessed (type `-`,
# counted from the header), so 10⁶ tensors of distinct shapes cannot take minutes.
MAX_GUESSED_LAYOUTS = 10_000
# A module's hand count ("4×5 + 5") writes out at most this many tensors; a module that holds
# 10⁵ tensors directly gets the first few and "… N more" instead of a 400 kB table cell.
MAX_FORMULA_TERMS = 100


def check_seed(seed: int) -> int:
    """`--seed`: 0 ≤ seed < 2**64, what torch.manual_seed accepts."""
    if not 0 <= seed < SEED_LIMIT:
        raise ArgError(f"--seed {seed} is out of range; give a seed from 0 to {SEED_LIMIT - 1}")
    return seed


def check_lr(lr: float) -> float:
    """`--lr`: finite, above 0 and at most MAX_LR."""
    if not (math.isfinite(lr) and 0 < lr <= MAX_LR):
        raise ArgError(
            f"--lr {lr:g} is out of range; give a learning rate above 0 and at most {MAX_LR:g} "
            "(e.g. --lr 0.01)"
        )
    return lr


def check_range(option: str, value: int, limit: int, low: int = 1) -> int:
    """An integer option (`--train`, `--epochs`, `--points`) between `low` and `limit`."""
    if not low <= value <= limit:
        raise ArgError(f"{option} {value:,} is out of range; give {low:,} to {limit:,}")
    return value


def check_batch(
    batch_size: int,
    sample_shape: tuple[int, ...],
    dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> int:
    """Refuse, before allocating, a `--batch-size` × `--input-shape` input that cannot fit.

    The input batch alone may take at most memory.REFUSE_SHARE of the memory free on `device`
    (as inspect refuses one tensor); the forward pass needs more, so this only rules out the
    hopeless. Returns the input's size in bytes.
    """
    # torch is imported here, not above: the other checks run while options are parsed, before
    # anything needs torch.
    import torch

    numel = batch_size * math.prod(sample_shape)
    nbytes = numel * torch.empty((), dtype=dtype or torch.float32).element_size()
    free = memory.available_bytes(device or torch.device("cpu"))
    limit = None if free is None else memory.REFUSE_SHARE * free
    if numel >= 2**63 or (limit is not None and nbytes > limit):
        shape = "×".join(str(d) for d in sample_shape)
        room = "" if free is None else f", {memory.human_bytes(free)} free"
        raise MemoryLimitError(
            f"--batch-size {batch_size:,} × --input-shape {shape} is an input of {numel:,} "
            f"values ({memory.human_bytes(nbytes)}{room}); lower --batch-size"
        )
    return nbytes
