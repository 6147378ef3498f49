"""Command-line numbers are bounded with the limit said: seed, lr, steps, batch, shapes, --arg."""

from __future__ import annotations

import math

import pytest
import torch

from initcli import limits, memory
from initcli.errors import ArgError, MemoryLimitError
from initcli.experiments import batches
from initcli.model import resolve


def test_seed_range_is_what_torch_accepts() -> None:
    assert limits.check_seed(2**64 - 1) == 2**64 - 1
    torch.manual_seed(2**64 - 1)  # the bound is torch's own
    for bad in (2**64, -1):
        with pytest.raises(ArgError) as info:
            limits.check_seed(bad)
        assert str(info.value) == (
            f"--seed {bad} is out of range; give a seed from 0 to 18446744073709551615"
        )


@pytest.mark.parametrize("lr", [1e308, math.inf, math.nan, 0.0, -0.1, 100.5])
def test_lr_must_be_finite_positive_and_bounded(lr: float) -> None:
    with pytest.raises(ArgError, match=r"above 0 and at most 100 \(e\.g\. --lr 0\.01\)$"):
        limits.check_lr(lr)


def test_lr_at_the_bound_is_accepted() -> None:
    assert limits.check_lr(100.0) == 100.0 and limits.check_lr(1e-12) == 1e-12


def test_train_steps_are_bounded() -> None:
    with pytest.raises(ArgError) as info:
        limits.check_range("--train", 1_000_000_000, limits.MAX_TRAIN_STEPS)
    assert str(info.value) == "--train 1,000,000,000 is out of range; give 1 to 100,000"
    assert limits.check_range("--train", 100_000, limits.MAX_TRAIN_STEPS) == 100_000


def test_batch_that_cannot_fit_is_refused_before_allocating(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "available_bytes", lambda device: 10_000_000_000)
    with pytest.raises(MemoryLimitError) as info:
        limits.check_batch(99999999999999999999, (4,))
    assert str(info.value) == (
        "--batch-size 99,999,999,999,999,999,999 × --input-shape 4 is an input of "
        "399,999,999,999,999,999,996 values (1600000000.0 TB, 10.0 GB free); lower --batch-size"
    )
    # The input alone may take 80 % (memory.REFUSE_SHARE) of what is free.
    with pytest.raises(MemoryLimitError, match=r"\(9\.6 GB, 10\.0 GB free\)"):
        limits.check_batch(8, (300_000_000,))
    assert limits.check_batch(8, (250_000_000,)) == 8_000_000_000
    assert limits.check_batch(64, (3, 32, 32)) == 64 * 3 * 32 * 32 * 4


@pytest.mark.parametrize("text", ["4,,4", " 4 , 4 x", "4x", ",4", "4, ,4", "9" * 30])
def test_input_shape_is_parsed_strictly(text: str) -> None:
    with pytest.raises(ArgError, match="is not a shape"):
        batches.parse_shape(text)


def test_input_shape_accepts_spaces_around_separators() -> None:
    assert batches.parse_shape(" 3 , 32 x 32 ") == (3, 32, 32)


def test_arg_integer_over_the_digit_limit_is_a_clean_error() -> None:
    with pytest.raises(ArgError) as info:
        resolve.parse_args([f"width={'9' * 5000}"])
    assert str(info.value) == (
        "--arg width: the number has more than 4,300 digits, the most Python reads as an "
        "integer; pass a smaller value, or quote it for a string"
    )
