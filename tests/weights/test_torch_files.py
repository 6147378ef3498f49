"""weights/torch_files in process: names, notes, depth bound and refusals of torch.save files."""

from __future__ import annotations

import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest
import torch

from initcli.errors import CheckpointError
from initcli.weights import torch_files
from initcli.weights.torch_files import MAX_DEPTH, load_torch


def _saved(tmp_path: Path, obj: object, name: str = "w.pt") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_a_bare_tensor_is_named_tensor(tmp_path: Path) -> None:
    tensors, notes = load_torch(_saved(tmp_path, torch.ones(2, 3)))
    assert list(tensors) == ["tensor"] and notes == ()
    assert torch.equal(tensors["tensor"], torch.ones(2, 3))


def test_nested_containers_become_dotted_names_in_file_order(tmp_path: Path) -> None:
    obj = {"b": {"w": torch.zeros(1), "x": [torch.ones(1), (torch.ones(2),)]}, "a": torch.ones(3)}
    tensors, notes = load_torch(_saved(tmp_path, obj))
    assert list(tensors) == ["b.w", "b.x.0", "b.x.1.0", "a"]
    assert notes == ()


def test_skipped_entries_are_named_up_to_five(tmp_path: Path) -> None:
    obj = {"w": torch.ones(1), **{f"k{i}": i for i in range(7)}}
    tensors, notes = load_torch(_saved(tmp_path, obj))
    assert list(tensors) == ["w"]
    assert notes == ("entries that are not tensors were skipped: k0, k1, k2, k3, k4 and 2 more.",)


def test_a_state_dict_inside_a_training_checkpoint(tmp_path: Path) -> None:
    obj = {"epoch": 3, "state_dict": OrderedDict(w=torch.ones(2)), "optimizer": {"lr": 0.1}}
    tensors, notes = load_torch(_saved(tmp_path, obj))
    assert list(tensors) == ["w"]
    assert notes == (
        "weights read from the checkpoint's 'state_dict' entry; also in the file, not shown: "
        "epoch, optimizer.",
    )


def test_a_lone_state_dict_entry_has_no_also_clause(tmp_path: Path) -> None:
    # {"model": {...}, "x": None} is not all tensors, so the 'model' entry is taken...
    _, notes = load_torch(_saved(tmp_path, {"model": {"w": torch.ones(2)}, "x": None}))
    assert notes == (
        "weights read from the checkpoint's 'model' entry; also in the file, not shown: x.",
    )
    # ...and with nothing beside it, there is nothing else to mention.
    obj = {"model": {"w": torch.ones(2), "n": 1}}
    tensors, notes = load_torch(_saved(tmp_path, obj, "b.pt"))
    assert list(tensors) == ["w"]
    assert notes == (
        "weights read from the checkpoint's 'model' entry.",
        "entries that are not tensors were skipped: n.",
    )


def test_a_state_dict_key_without_tensors_is_not_taken(tmp_path: Path) -> None:
    # 'model' holds no tensors (a config), so the whole object is flattened instead.
    obj = {"model": {"name": "x"}, "w": torch.ones(1)}
    tensors, notes = load_torch(_saved(tmp_path, obj))
    assert list(tensors) == ["w"]
    assert notes == ("entries that are not tensors were skipped: model.name.",)


def test_a_state_dict_key_that_is_not_a_mapping_is_not_taken(tmp_path: Path) -> None:
    obj = {"model": [torch.ones(1)], "step": 2}
    tensors, notes = load_torch(_saved(tmp_path, obj))
    assert list(tensors) == ["model.0"]
    assert notes == ("entries that are not tensors were skipped: step.",)


def test_no_tensors_names_the_type_and_what_to_do(tmp_path: Path) -> None:
    path = _saved(tmp_path, {"a": 1})
    with pytest.raises(CheckpointError) as caught:
        load_torch(path)
    assert str(caught.value) == (
        f"{path} holds no tensors (a dict); name a state dict or a safetensors file"
    )


def test_a_plain_value_at_the_top_is_skipped_by_its_type_name() -> None:
    assert torch_files._flatten(3) == ({}, ["int"])


def _nested(depth: int) -> object:
    obj: object = torch.ones(1)
    for _ in range(depth):
        obj = [obj]
    return obj


def test_the_depth_bound_is_exact() -> None:
    tensors, skipped = torch_files._flatten(_nested(MAX_DEPTH))
    assert list(tensors) == [".".join(["0"] * MAX_DEPTH)] and skipped == []
    with pytest.raises(CheckpointError) as caught:
        torch_files._flatten(_nested(MAX_DEPTH + 1))
    assert str(caught.value) == (
        f"the checkpoint nests dicts or lists more than {MAX_DEPTH:,} levels deep; "
        "a state dict is a flat (or shallow) mapping of names to tensors"
    )


def test_a_non_tensor_before_tensors_does_not_stop_the_walk() -> None:
    tensors, skipped = torch_files._flatten({"a": "text", "b": torch.ones(1), "c": None})
    assert list(tensors) == ["b"] and skipped == ["a", "c"]


def test_a_pickle_that_names_a_function_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path, {"f": print})  # a global only a full unpickle would load
    with pytest.raises(CheckpointError) as caught:
        load_torch(path)
    message = str(caught.value)
    assert message.startswith(f"refused to load {path}: it names print, which only a full")
    assert message.endswith(
        "a full unpickle can run code; initcli loads weights only and never runs code from a "
        "file: save a plain state dict (torch.save(model.state_dict(), path)) or convert it to "
        "safetensors"
    )


def test_bytes_that_are_no_pickle_are_refused_with_the_unpicklers_reason(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    path.write_bytes(b"not a pickle at all")  # 'n' (110) is no pickle opcode
    with pytest.raises(CheckpointError) as caught:
        load_torch(path)
    assert str(caught.value).startswith(
        f"refused to load {path}: it is not a plain pickle of tensors (Unsupported operand 110), "
        "and a full unpickle"
    )


@pytest.mark.parametrize("kind", ["empty", "zip"])
def test_a_file_that_is_not_a_checkpoint(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.pt"
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("a.txt", "hi")  # a zip, but not torch.save's layout
    else:
        path.write_bytes(b"")
    with pytest.raises(CheckpointError) as caught:
        load_torch(path)
    message = str(caught.value)
    reason = "EOFError" if kind == "empty" else "RuntimeError: "
    assert message.startswith(f"{path} is not a readable PyTorch checkpoint ({reason}")
    assert message.endswith(
        "); initcli reads state dicts saved with torch.save and .safetensors files"
    )


def _on_gpu(saved: Path, out: Path) -> Path:
    """`saved` rewritten as if torch.save had run on a GPU: each storage's location says cuda:0."""
    with zipfile.ZipFile(saved) as archive:
        records = {name: archive.read(name) for name in archive.namelist()}
    writer = torch._C.PyTorchFileWriter(str(out))
    for name, data in records.items():
        if name.endswith("/data.pkl"):
            records[name] = data.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
    for name, data in records.items():
        writer.write_record(name.split("/", 1)[1], data, len(data))
    writer.write_end_of_file()
    return out


def test_a_checkpoint_saved_on_a_gpu_loads_on_this_cpu(tmp_path: Path) -> None:
    path = _on_gpu(_saved(tmp_path, {"w": torch.ones(2, 3)}), tmp_path / "gpu.pt")
    with pytest.raises(RuntimeError, match="CUDA"):  # what torch.load alone does with it here
        torch.load(path, weights_only=True)
    tensors, _ = load_torch(path)
    assert tensors["w"].device.type == "cpu" and torch.equal(tensors["w"], torch.ones(2, 3))


@pytest.mark.parametrize("zipped", [True, False])
def test_torch_load_is_told_weights_only_cpu_and_mmap_for_zips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, zipped: bool
) -> None:
    # weights_only=True is the default only from torch 2.6; initcli supports torch >= 2.2, so the
    # call must say it. A zip (torch.save's format since 1.6) is memory-mapped, a legacy file not.
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=zipped)
    calls: list[dict[str, object]] = []
    real = torch.load

    def spy(file: Path, **kwargs: Any) -> object:
        calls.append(kwargs)
        return real(file, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    load_torch(path)
    assert calls == [{"map_location": "cpu", "weights_only": True, "mmap": zipped}]


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        ("Weights only load failed. WeightsUnpickler error: Unsupported type MAX.\n\nCheck it",
         " (Unsupported type MAX)"),
        ("Weights only load failed for another reason", ""),
    ],
)  # fmt: skip
def test_the_unpicklers_reason_is_quoted_without_its_full_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: str, said: str
) -> None:
    path = _saved(tmp_path, {"w": torch.ones(1)})

    def refuse(file: object, **kwargs: object) -> object:
        raise pickle.UnpicklingError(raised)

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(CheckpointError) as caught:
        load_torch(path)
    assert str(caught.value).startswith(
        f"refused to load {path}: it is not a plain pickle of tensors{said}, and a full unpickle"
    )
