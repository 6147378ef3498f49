"""weights/dcp_metadata in process: every field check of a DCP `.metadata`, by its exact message.

The records are built here as the restricted unpickler leaves them (a Record with `.state`), so
each check is met directly; test_dcp.py covers the same file end to end through a real dcp.save.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import (
    BytesStorageMetadata,
    MetadataIndex,
    TensorStorageMetadata,
)

from initcli.errors import CheckpointError
from initcli.weights import dcp_unpickler as u
from initcli.weights.dcp_metadata import _Checker

FILE = Path("ckpt/.metadata")
INVALID = f"{FILE} is not valid DCP metadata: "
FOREIGN = f"{FILE} holds Python objects that are not checkpoint metadata ("


def record(kind: type[u.Record], state: object) -> u.Record:
    r = kind()
    r.state = state
    return r


def properties(**change: object) -> u.Record:
    fields: dict[str, object] = {
        "dtype": torch.bfloat16,
        "layout": torch.strided,
        "grad": True,
        "memory_format": torch.channels_last,
        "pinned": True,
    }
    fields.update(change)
    return record(u.PROPERTIES, tuple(fields.values()))


def chunk(offsets: tuple[int, ...], sizes: tuple[int, ...]) -> u.Record:
    return record(u.CHUNK, {"offsets": torch.Size(offsets), "sizes": torch.Size(sizes)})


def tensor(**change: object) -> u.Record:
    fields: dict[str, object] = {
        "properties": properties(),
        "size": torch.Size([2, 3]),
        "chunks": [chunk((0, 0), (1, 3)), chunk((1, 0), (1, 3))],
    }
    fields.update(change)
    return record(u.TENSOR, fields)


def index(fqn: object = "w", offset: object = None, idx: object = None) -> u.Record:
    state: dict[str, object] = {"fqn": fqn}
    if offset is not None:
        state["offset"] = offset
    if idx is not None:
        state["index"] = idx
    return record(u.INDEX, state)


def info(**change: object) -> u.Record:
    fields: dict[str, object] = {"relative_path": "__0_0.distcp", "offset": 8, "length": 24}
    fields.update(change)
    return record(u.STORAGE_INFO, {k: v for k, v in fields.items() if v is not DROP})


DROP = object()


def storage() -> dict[object, object]:
    return {
        index("w", torch.Size([0, 0]), 0): info(),
        index("w", torch.Size([1, 0]), 1): info(offset=32, transform_descriptors=["zstd"]),
    }


def root(**change: object) -> u.Record:
    fields: dict[str, object] = {
        "state_dict_metadata": {"w": tensor(), "step": record(u.BYTES, None)},
        "storage_data": storage(),
        "planner_data": {"w": ("w",), "step": ["step", 1, 2.0, None, b"x", True]},
        "storage_meta": record(u.STORAGE_META, {"checkpoint_id": "c", "modules": ["m"]}),
        "version": "1.0.0",
    }
    fields.update(change)
    return record(u.METADATA, {k: v for k, v in fields.items() if v is not DROP})


def check(tree: object) -> Any:
    return _Checker(FILE).metadata(tree)


def test_a_valid_tree_becomes_torchs_metadata_field_for_field() -> None:
    meta = check(root())
    assert meta.version == "1.0.0" and meta.planner_data is None
    w = meta.state_dict_metadata["w"]
    assert isinstance(w, TensorStorageMetadata)
    assert w.size == torch.Size([2, 3])
    p = w.properties
    assert (p.dtype, p.layout, p.requires_grad, p.memory_format, p.pin_memory) == (
        torch.bfloat16, torch.strided, True, torch.channels_last, True,
    )  # fmt: skip
    assert [(c.offsets, c.sizes) for c in w.chunks] == [
        (torch.Size([0, 0]), torch.Size([1, 3])),
        (torch.Size([1, 0]), torch.Size([1, 3])),
    ]
    assert isinstance(meta.state_dict_metadata["step"], BytesStorageMetadata)
    assert meta.storage_data == {
        MetadataIndex("w", torch.Size([0, 0]), 0): _StorageInfo("__0_0.distcp", 8, 24, None),
        MetadataIndex("w", torch.Size([1, 0]), 1): _StorageInfo("__0_0.distcp", 32, 24, ["zstd"]),
    }
    keys = list(meta.storage_data)
    assert [k.index for k in keys] == [0, 1]  # the index is kept, not dropped


def test_no_storage_data_and_no_storage_meta_are_allowed_for_bytes_only() -> None:
    meta = check(
        root(
            state_dict_metadata={"step": record(u.BYTES, None)},
            storage_data=DROP,
            storage_meta=DROP,
            version=DROP,
        )
    )
    assert meta.storage_data == {} and meta.version is None


def _with_storage(**change: object) -> u.Record:
    first = {index("w", torch.Size([0, 0]), 0): info()}
    return root(storage_data={**first, index("w", torch.Size([1, 0]), 1): info(**change)})


CASES: dict[str, tuple[Callable[[], object], str]] = {
    "root not Metadata": (tensor, FOREIGN + "a TensorStorageMetadata where a Metadata"),
    "root of a plain type": (lambda: [1], FOREIGN + "a list where a Metadata belongs)"),
    "fields not a dict": (
        lambda: record(u.METADATA, [1]),
        INVALID + "a Metadata whose fields are not a dict;",
    ),
    "unknown field": (
        lambda: root(extra=1),
        INVALID + "a Metadata with fields ['extra', 'planner_data', 'state_dict_metadata', "
        "'storage_data', 'storage_meta', 'version'];",
    ),
    "missing field": (
        lambda: root(state_dict_metadata=DROP),
        INVALID + "a Metadata with fields ['planner_data', 'storage_data', 'storage_meta', "
        "'version'];",
    ),
    "items not a dict": (
        lambda: root(state_dict_metadata=[]),
        INVALID + "state_dict_metadata is not a dict;",
    ),
    "name not text": (
        lambda: root(state_dict_metadata={1: record(u.BYTES, None)}, storage_data=DROP),
        INVALID + "an entry whose name is not text;",
    ),
    "bytes with fields": (
        lambda: root(state_dict_metadata={"b": record(u.BYTES, {"x": 1})}, storage_data=DROP),
        INVALID + "a BytesStorageMetadata with fields ['x'];",
    ),
    "size not a Size": (
        lambda: root(state_dict_metadata={"w": tensor(size=[2, 3])}),
        INVALID + "a size of 'w' that is not a torch.Size;",
    ),
    "too many elements": (
        lambda: root(state_dict_metadata={"w": tensor(size=torch.Size([2**30, 2**29]))}),
        INVALID + "'w' has 5.76e+17 elements, more than any tensor can hold;",
    ),
    "chunks not a list": (
        lambda: root(state_dict_metadata={"w": tensor(chunks=(chunk((0, 0), (2, 3)),))}),
        INVALID + "the chunks of 'w' are not a list;",
    ),
    "chunk outside": (
        lambda: root(state_dict_metadata={"w": tensor(chunks=[chunk((1, 0), (2, 3))])}),
        INVALID + "a chunk of 'w' lies outside its size [2, 3];",
    ),
    "chunk of other rank": (
        lambda: root(state_dict_metadata={"w": tensor(chunks=[chunk((0,), (6,))])}),
        INVALID + "a chunk of 'w' lies outside its size [2, 3];",
    ),
    "chunks short": (
        lambda: root(state_dict_metadata={"w": tensor(chunks=[chunk((0, 0), (1, 3))])}),
        INVALID + "the chunks of 'w' hold 3 of its 6 elements;",
    ),
    "properties foreign": (
        lambda: root(state_dict_metadata={"w": tensor(properties=chunk((0,), (1,)))}),
        FOREIGN + "a ChunkStorageMetadata where a TensorProperties belongs)",
    ),
    "properties of 4": (
        lambda: root(state_dict_metadata={"w": tensor(properties=record(u.PROPERTIES, (1,) * 4))}),
        INVALID + "the properties of 'w' are not the 5 fields torch writes;",
    ),
    "properties a list": (
        lambda: root(
            state_dict_metadata={"w": tensor(properties=record(u.PROPERTIES, [None] * 5))}
        ),
        INVALID + "the properties of 'w' are not the 5 fields torch writes;",
    ),
    "index not a Record": (
        lambda: root(storage_data={("w",): info()}),
        FOREIGN + "a tuple where a MetadataIndex belongs)",
    ),
    "storage not a dict": (
        lambda: root(storage_data=[]),
        INVALID + "storage_data is not a dict;",
    ),
    "storage of an unlisted name": (
        lambda: root(storage_data={**storage(), index("v", torch.Size([0, 0])): info()}),
        INVALID + "stored data for an entry the metadata does not list;",
    ),
    "storage fqn not text": (
        lambda: root(storage_data={**storage(), index(7): info()}),
        INVALID + "stored data for an entry the metadata does not list;",
    ),
    "storage offset not a Size": (
        lambda: root(storage_data={**storage(), index("w", (0, 0)): info()}),
        INVALID + "a size of 'w' that is not a torch.Size;",
    ),
    "storage index not an int": (
        lambda: root(storage_data={index("w", torch.Size([0, 0]), "0"): info()}),
        INVALID + "a storage index of 'w' that is not an int;",
    ),
    "storage info fields": (
        lambda: _with_storage(length=DROP),
        INVALID + "a _StorageInfo with fields ['offset', 'relative_path'];",
    ),
    "storage path not text": (
        lambda: _with_storage(relative_path=b"x"),
        INVALID + "the storage file of 'w' is not a name;",
    ),
    "negative offset": (
        lambda: _with_storage(offset=-1),
        INVALID + "the byte range of 'w' is not two non-negative ints;",
    ),
    "offset too large": (
        lambda: _with_storage(offset=u.MAX_OFFSET + 1),
        INVALID + "the byte range of 'w' is not two non-negative ints;",
    ),
    "length not int": (
        lambda: _with_storage(length=2.0),
        INVALID + "the byte range of 'w' is not two non-negative ints;",
    ),
    "descriptors not a list": (
        lambda: _with_storage(transform_descriptors="zstd"),
        INVALID + "the storage transforms of 'w' are not short names;",
    ),
    "too many descriptors": (
        lambda: _with_storage(transform_descriptors=["a"] * 17),
        INVALID + "the storage transforms of 'w' are not short names;",
    ),
    "descriptor not text": (
        lambda: _with_storage(transform_descriptors=[1]),
        INVALID + "the storage transforms of 'w' are not short names;",
    ),
    "descriptor too long": (
        lambda: _with_storage(transform_descriptors=["a" * 201]),
        INVALID + "the storage transforms of 'w' are not short names;",
    ),
    "two entries for one part": (
        lambda: root(
            storage_data={
                index("w", torch.Size([0, 0]), 0): info(),
                index("w", torch.Size([0, 0]), 0): info(offset=99),
                index("w", torch.Size([1, 0]), 1): info(),
            }
        ),
        INVALID + "two storage entries for the same part of 'w';",
    ),
    "a chunk not stored": (
        lambda: root(storage_data={index("w", torch.Size([0, 0]), 0): info()}),
        INVALID + "no stored data for a chunk of 'w';",
    ),
    "storage_meta foreign": (
        lambda: root(storage_meta=record(u.INDEX, {})),
        FOREIGN + "a MetadataIndex where a StorageMeta belongs)",
    ),
    "storage_meta id not text": (
        lambda: root(storage_meta=record(u.STORAGE_META, {"load_id": 3})),
        INVALID + "storage_meta.load_id is not text;",
    ),
    "storage_meta modules": (
        lambda: root(storage_meta=record(u.STORAGE_META, {"modules": ["a", 1]})),
        INVALID + "storage_meta.modules is not a list of names;",
    ),
    "storage_meta modules a tuple": (
        lambda: root(storage_meta=record(u.STORAGE_META, {"modules": ("a",)})),
        INVALID + "storage_meta.modules is not a list of names;",
    ),
    "version not text": (lambda: root(version=1), INVALID + "a version that is not short text;"),
    "version too long": (
        lambda: root(version="1" * 101),
        INVALID + "a version that is not short text;",
    ),
    "planner_data holds a record": (
        lambda: root(planner_data={"w": [record(u.CHUNK, None)]}),
        FOREIGN + "a ChunkStorageMetadata in planner_data)",
    ),
    "planner_data holds an object": (
        lambda: root(planner_data=[1, {2: object()}]),
        FOREIGN + "a object in planner_data)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_field_check_says_what_is_wrong(case: str) -> None:
    make, start = CASES[case]
    with pytest.raises(CheckpointError) as caught:
        check(make())
    assert str(caught.value).startswith(start), str(caught.value)


@pytest.mark.parametrize(
    "change",
    [
        {"dtype": "float32"},
        {"layout": torch.sparse_coo},
        {"grad": 1},
        {"memory_format": "contiguous"},
        {"pinned": None},
    ],
    ids=["dtype", "layout", "grad", "memory_format", "pinned"],
)
def test_each_property_is_checked_on_its_own(change: dict[str, object]) -> None:
    tree = root(state_dict_metadata={"w": tensor(properties=properties(**change))})
    with pytest.raises(CheckpointError) as caught:
        check(tree)
    assert str(caught.value).startswith(
        INVALID + "the properties of 'w' are not a dtype, layout and flags;"
    )


def test_the_bounds_themselves_are_allowed() -> None:
    top = _with_storage(offset=u.MAX_OFFSET, transform_descriptors=["a" * 200] * 16)
    assert check(top).version == "1.0.0"
    assert check(root(version="1" * 100)).version == "1" * 100


def test_a_shared_or_self_holding_container_in_planner_data_is_visited_once() -> None:
    loop: list[object] = []
    loop.append(loop)
    shared = ["x"]
    assert check(root(planner_data={"a": shared, "b": shared, "c": loop})).version == "1.0.0"


def test_more_chunks_than_the_bound_is_refused_before_they_are_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from initcli.weights import dcp_metadata

    monkeypatch.setattr(dcp_metadata, "MAX_CHUNKS", 1)
    with pytest.raises(CheckpointError) as caught:
        check(root())
    assert str(caught.value).startswith(INVALID + "more than 1 chunks;")


def test_storage_meta_ids_are_each_checked_and_modules_may_be_left_out() -> None:
    for name in ("checkpoint_id", "save_id", "load_id"):
        with pytest.raises(CheckpointError) as caught:
            check(root(storage_meta=record(u.STORAGE_META, {name: 1})))
        assert str(caught.value).startswith(INVALID + f"storage_meta.{name} is not text;")
    meta = check(root(storage_meta=record(u.STORAGE_META, {"save_id": "s", "load_id": None})))
    assert meta.version == "1.0.0"


def test_a_record_with_many_unknown_fields_shows_the_first_eight() -> None:
    extra = {f"x{i}": i for i in range(9)}
    with pytest.raises(CheckpointError) as caught:
        check(root(**extra))
    shown = sorted(
        [*extra, "planner_data", "state_dict_metadata", "storage_data", "storage_meta", "version"]
    )[:8]
    assert str(caught.value).startswith(INVALID + f"a Metadata with fields {shown};")


def test_the_chunk_and_element_bounds_are_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    from initcli.weights import dcp_metadata

    monkeypatch.setattr(dcp_metadata, "MAX_CHUNKS", 2)  # root() holds exactly 2
    monkeypatch.setattr(dcp_metadata, "MAX_NUMEL", 6)  # and one 2×3 tensor
    assert check(root()).version == "1.0.0"
    monkeypatch.setattr(dcp_metadata, "MAX_NUMEL", 5)
    with pytest.raises(CheckpointError) as caught:
        check(root())
    assert str(caught.value).startswith(INVALID + "'w' has 6 elements, more than any tensor")


def test_safe_metadata_names_the_folder_s_metadata_file(tmp_path: Path) -> None:
    import pickle

    from initcli.weights.dcp_metadata import safe_metadata

    (tmp_path / ".metadata").write_bytes(pickle.dumps([1]))
    with pytest.raises(CheckpointError) as caught:
        safe_metadata(tmp_path)
    assert str(caught.value).startswith(
        f"{tmp_path / '.metadata'} holds Python objects that are not checkpoint metadata "
        "(a list where a Metadata belongs)"
    )
