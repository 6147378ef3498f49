"""The streamed safetensors writer against safetensors' own reader and writer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from initcli.errors import OutputError
from initcli.weights.safetensors_writer import Slot, write_safetensors, write_state_dict


def _tensors() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "w.f32": torch.randn(3, 5, generator=g),
        "w.bf16": torch.randn(7, generator=g).to(torch.bfloat16),
        "w.f16": torch.randn(2, 2, 2, generator=g).to(torch.float16),
        "w.f64": torch.randn(3, generator=g, dtype=torch.float64),
        "i.64": torch.arange(-3, 4),
        "i.8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u.8": torch.tensor([0, 255], dtype=torch.uint8),
        "flag": torch.tensor([True, False, True]),
        "scalar": torch.tensor(2.5),
        "empty": torch.empty(0, 4),
        "strided": torch.randn(4, 6, generator=g).t(),  # not contiguous: copied on the way out
        "f8.e4m3": torch.randn(5, generator=g).to(torch.float8_e4m3fn),
        "f8.e5m2": torch.randn(5, generator=g).to(torch.float8_e5m2),
    }


def test_round_trip_equals_save_file(tmp_path: Path) -> None:
    tensors = _tensors()
    ours, theirs = tmp_path / "ours.safetensors", tmp_path / "theirs.safetensors"
    meta = {"format": "pt", "initcli.tied": '{"a": ["b"]}'}
    slots = [Slot(name, t.dtype, tuple(t.shape)) for name, t in tensors.items()]
    write_safetensors(ours, slots, (t for t in tensors.values()), meta)
    save_file({k: v.contiguous() for k, v in tensors.items()}, theirs, metadata=meta)
    with safe_open(ours, framework="pt") as handle:
        assert handle.metadata() == meta
        assert sorted(handle.keys()) == sorted(tensors)
    mine, reference = load_file(ours), load_file(theirs)
    for name, tensor in reference.items():
        assert mine[name].dtype == tensor.dtype and mine[name].shape == tensor.shape
        mine_bytes = mine[name].reshape(-1).view(torch.uint8)
        assert torch.equal(mine_bytes, tensor.reshape(-1).view(torch.uint8)), name
    # Same bytes of data; only the header's order and spacing may differ.
    assert os.path.getsize(ours) - os.path.getsize(theirs) in range(-64, 65)


def test_a_tensor_that_does_not_match_its_slot_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "out.safetensors"
    with pytest.raises(OutputError, match=r"cannot save w: announced as torch.float32 \[2\]"):
        write_safetensors(target, [Slot("w", torch.float32, (2,))], [torch.zeros(3)])
    assert os.listdir(tmp_path) == []


def test_unsupported_dtype_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"safetensors has no torch\.float8_e8m0fnu type"):
        write_safetensors(tmp_path / "x", [Slot("s", torch.float8_e8m0fnu, (2,))], [])
    assert os.listdir(tmp_path) == []


def test_write_state_dict_of_a_model(tmp_path: Path) -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    write_state_dict(tmp_path / "m.safetensors", model.state_dict(), {"format": "pt"})
    back = load_file(tmp_path / "m.safetensors")
    assert back.keys() == model.state_dict().keys()
    assert all(torch.equal(back[k], v) for k, v in model.state_dict().items())
