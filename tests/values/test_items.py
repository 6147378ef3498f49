"""initcli.values.items: the Ring that successive parameters are carved from, and reused."""

from __future__ import annotations

import threading
import time

import torch

from initcli.values.items import Ring


def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, dtype=dtype, device="meta")


def test_a_released_region_is_reused_for_the_next_parameter() -> None:
    ring = Ring(4096, torch.device("cpu"))
    base = ring.block.data_ptr()
    first, release = ring.take(_meta(10, 10))
    assert release is not None
    assert (first.shape, first.dtype, first.device.type) == ((10, 10), torch.float32, "cpu")
    assert first.data_ptr() == base
    release()
    # Same memory, another shape and dtype: no new allocation.
    again, _ = ring.take(_meta(3, 5, dtype=torch.float64))
    assert (again.data_ptr(), again.shape, again.dtype) == (base, (3, 5), torch.float64)
    assert again.untyped_storage().data_ptr() == base


def test_regions_are_64_byte_aligned_and_hold_their_own_values() -> None:
    ring = Ring(1024, torch.device("cpu"))
    a, _ = ring.take(_meta(3))  # 12 bytes, rounded up to 64
    b, _ = ring.take(_meta(3))
    assert b.data_ptr() - a.data_ptr() == 64
    a.fill_(1.0)
    b.fill_(2.0)
    assert a.tolist() == [1.0, 1.0, 1.0] and b.tolist() == [2.0, 2.0, 2.0]


def test_take_waits_until_a_region_is_released() -> None:
    ring = Ring(1024, torch.device("cpu"))
    held, release = ring.take(_meta(200))  # 800 of the 1024 bytes
    assert release is not None
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(ring.take(_meta(200))[0].data_ptr()))
    waiter.start()
    time.sleep(0.2)
    assert got == [] and waiter.is_alive()  # no room until `held` is given back
    release()
    waiter.join(timeout=10)
    assert got == [held.data_ptr()]


def test_ring_never_hands_out_overlapping_live_memory() -> None:
    ring = Ring(1024, torch.device("cpu"))
    a, release_a = ring.take(torch.empty(100, device="meta"))  # 400 bytes at 0
    b, release_b = ring.take(torch.empty(100, device="meta"))  # 400 bytes at 448
    assert release_a is not None and release_b is not None
    assert b.data_ptr() - a.data_ptr() == 448
    release_a()
    c, _ = ring.take(torch.empty(100, device="meta"))  # after b does not fit: at 0
    assert c.data_ptr() == a.data_ptr()
    # Too large for the block, or not contiguous: a tensor of its own.
    big, none = ring.take(torch.empty(300, device="meta"))
    assert none is None and big.numel() == 300
    assert ring.take(torch.empty(4, 6, device="meta").t())[1] is None
