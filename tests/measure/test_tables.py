"""Tables a constructor computes (initcli.measure.tables): sinusoidal positions, log(arange)."""

from __future__ import annotations

import math

import torch

from initcli.measure import tables


def _sinusoids(positions: int, d: int, interleaved: bool) -> torch.Tensor:
    inv = torch.exp(-math.log(10000) * torch.arange(d // 2) / (d // 2))
    angles = torch.arange(positions)[:, None] * inv[None, :]
    out = torch.empty(positions, d)
    if interleaved:
        out[:, 0::2], out[:, 1::2] = torch.sin(angles), torch.cos(angles)
    else:
        out[:, : d // 2], out[:, d // 2 :] = torch.sin(angles), torch.cos(angles)
    return out


def test_sinusoidal_tables_in_both_layouts() -> None:
    assert tables.name_table(_sinusoids(16, 32, interleaved=False)) == "sinusoidal"
    assert tables.name_table(_sinusoids(16, 32, interleaved=True)) == "sinusoidal"


def test_log_arange() -> None:
    a_log = torch.log(torch.arange(1, 9, dtype=torch.float32)).expand(64, 8).contiguous()
    assert tables.name_table(a_log) == "log(arange(1, N+1)), N=8"


def test_draws_and_odd_shapes_are_no_table() -> None:
    torch.manual_seed(0)
    assert tables.name_table(torch.randn(16, 32)) is None
    assert tables.name_table(torch.rand(16, 32) * 2 - 1) is None
    assert tables.name_table(torch.zeros(16, 32)) is None
    assert tables.name_table(_sinusoids(16, 32, False)[:, 1:]) is None  # odd width
    assert tables.name_table(torch.zeros(0, 4)) is None
    assert tables.name_table(torch.log(torch.arange(1, 9.0))) is None  # 1-D: no rows
