"""weights/safetensors_files in process: every header and index check, by its exact message.

Both header readers are met: `read_header` (json.loads of the whole header) and `HeaderScan`
(one entry at a time, for headers too big to parse whole); they must agree on every entry check.
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from initcli.errors import CheckpointError
from initcli.weights import safetensors_files as sf
from initcli.weights.safetensors_files import HeaderScan, read_header, shards_of_folder


def write(path: Path, header: bytes | str | dict[str, object], data: bytes = b"") -> Path:
    raw = header if isinstance(header, bytes) else (
        header if isinstance(header, str) else json.dumps(header)
    ).encode()  # fmt: skip
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def scan(path: Path) -> list[tuple[str, torch.dtype, tuple[int, ...]]]:
    return list(HeaderScan(path))


def failure(read: object, path: Path) -> str:
    with pytest.raises(CheckpointError) as caught:
        read(path)  # type: ignore[operator]
    return str(caught.value)


ENTRY_CASES = {
    "entry not an object": ({"w": [1]}, b"", "the header entry of 'w' is not an object"),
    "unknown dtype": (
        {"w": {"dtype": "F7", "shape": [1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has an unknown dtype 'F7'",
    ),
    "dtype not text": (
        {"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has an unknown dtype 4",
    ),
    "shape not a list": (
        {"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "a bool dimension": (
        {"w": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "a negative dimension": (
        {"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 0]}},
        b"",
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "three offsets": (
        {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 4]}},
        b"\0" * 4,
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "offsets backwards": (
        {"w": {"dtype": "F32", "shape": [0], "data_offsets": [4, 0]}},
        b"\0" * 4,
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "offset a float": (
        {"w": {"dtype": "F32", "shape": [1], "data_offsets": [0.0, 4]}},
        b"\0" * 4,
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "offset past 2**64": (
        {"w": {"dtype": "F32", "shape": [0], "data_offsets": [2**64, 2**64]}},
        b"",
        "tensor 'w' has a malformed shape or data_offsets",
    ),
    "dimensions multiply past 2**63": (
        {"w": {"dtype": "F32", "shape": [2**32, 2**31], "data_offsets": [0, 4]}},
        b"\0" * 4,
        "tensor 'w' has a shape whose dimensions multiply past 2**63 - 1 (torch's largest size)",
    ),
    "wrong byte count": (
        {"w": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 10]}},
        b"\0" * 12,
        "tensor 'w' (F16, shape [2, 3]) takes 10 bytes, not the 12 its shape needs",
    ),
    "a long shape shown short": (
        {"w": {"dtype": "U8", "shape": [1] * 9, "data_offsets": [0, 2]}},
        b"\0" * 2,
        "tensor 'w' (U8, shape [1, 1, 1, 1, 1, 1, 1, 1, ... (9 dimensions)]) takes 2 bytes, "
        "not the 1 its shape needs",
    ),
    "eight dimensions shown whole": (
        {"w": {"dtype": "U8", "shape": [1] * 8, "data_offsets": [0, 2]}},
        b"\0" * 2,
        "tensor 'w' (U8, shape [1, 1, 1, 1, 1, 1, 1, 1]) takes 2 bytes, not the 1 its shape needs",
    ),
    "truncated data": (
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
        b"\0" * 7,
        "tensor 'w' ends at byte 8 of the data, which has only 7 bytes: the file is truncated",
    ),
    "odd F4": (
        {"w": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}},
        b"\0" * 2,
        "F4 tensor 'w' has an odd last dimension",
    ),
    "metadata not an object": (
        {"__metadata__": ["x"]},
        b"",
        "its __metadata__ is not an object",
    ),
}


@pytest.mark.parametrize("reader", [read_header, scan], ids=["read_header", "scan"])
@pytest.mark.parametrize("case", list(ENTRY_CASES))
def test_each_entry_check(tmp_path: Path, case: str, reader: object) -> None:
    header, data, why = ENTRY_CASES[case]
    path = write(tmp_path / "x.safetensors", header, data)
    message = failure(reader, path)
    if case == "odd F4" and "cannot hold" in message:
        pytest.skip("this torch has no float4 dtype")  # the F4 check comes after that one
    assert message == f"{path} is not a readable safetensors file: {why}"


def test_good_entries_and_metadata_read_the_same_both_ways(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"format": "pt", "n": 3},
        "a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 12]},
        "b": {"dtype": "BOOL", "shape": [], "data_offsets": [12, 13]},
        "e": {"dtype": "F32", "shape": [0, 4], "data_offsets": [13, 13]},
    }
    path = write(tmp_path / "x.safetensors", header, b"\0" * 13)
    shard = read_header(path)
    assert shard.metadata == {"format": "pt", "n": "3"}
    assert [(n, t.dtype, tuple(t.shape)) for n, t in shard.tensors.items()] == [
        ("a", torch.bfloat16, (2, 3)), ("b", torch.bool, ()), ("e", torch.float32, (0, 4)),
    ]  # fmt: skip
    assert all(t.device.type == "meta" for t in shard.tensors.values())
    scanner = HeaderScan(path)
    assert list(scanner) == [(n, t.dtype, tuple(t.shape)) for n, t in shard.tensors.items()]
    assert scanner.metadata == shard.metadata


def test_spaced_json_is_scanned_like_json_loads(tmp_path: Path) -> None:
    text = ' { "w" : {"dtype":"U8","shape":[1],"data_offsets":[0,1]} ,\n"v":\t{"dtype":"U8",'
    text += '"shape":[1],"data_offsets":[1,2]} } '
    path = write(tmp_path / "x.safetensors", text, b"\0\0")
    assert [n for n, *_ in scan(path)] == ["w", "v"] == list(read_header(path).tensors)
    empty = write(tmp_path / "e.safetensors", " { } ")
    assert scan(empty) == [] and read_header(empty).tensors == {}


@pytest.mark.parametrize(
    "text",
    ["[]", '{"w" 1}', '{"w": }', '{"w": 1 "v": 2}', "{1: 2}", "{}x", '{"w": 1', "{"],
    ids=["list", "no colon", "no value", "no comma", "bad name", "extra", "cut", "open"],
)
def test_text_that_is_not_one_object_is_refused_by_the_scan(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "x.safetensors", text)
    assert failure(scan, path) == (
        f"{path} is not a readable safetensors file: its header is not one JSON object"
    )


def test_header_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "x.safetensors", b'{"\xff": 1}')
    assert (
        failure(scan, path) == f"{path} is not a readable safetensors file: its header is not UTF-8"
    )
    assert failure(read_header, path).startswith(
        f"{path} is not a readable safetensors file: its header is not JSON ("
    )


def test_a_header_that_is_json_but_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "x.safetensors", "[1, 2]")
    assert failure(read_header, path) == (
        f"{path} is not a readable safetensors file: its header is not a JSON object"
    )
    bad = write(tmp_path / "y.safetensors", "{nope}")
    assert failure(read_header, bad).startswith(
        f"{bad} is not a readable safetensors file: its header is not JSON "
        "(JSONDecodeError: Expecting property"
    )


def test_a_huge_number_and_deep_nesting_are_named(tmp_path: Path) -> None:
    digits = sys.get_int_max_str_digits()
    path = write(tmp_path / "n.safetensors", '{"w": ' + "9" * (digits + 1) + "}")
    expected = (
        f"{path} is not a readable safetensors file: its header holds a number with more than "
        f"{digits:,} digits; not a safetensors header"
    )
    assert failure(read_header, path) == expected == failure(scan, path)
    deep = write(tmp_path / "d.safetensors", '{"w": ' + "[" * 200_000 + "]" * 200_000 + "}")
    expected = (
        f"{deep} is not a readable safetensors file: its header nests arrays or objects deeper "
        f"than Python's JSON parser goes (about {sys.getrecursionlimit():,} levels); a "
        "safetensors header is 3 levels deep"
    )
    assert failure(read_header, deep) == expected == failure(scan, deep)


@pytest.mark.parametrize("size", [0, 7])
def test_a_file_shorter_than_the_length_field(tmp_path: Path, size: int) -> None:
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\0" * size)
    assert failure(read_header, path) == (
        f"{path} is not a readable safetensors file: {size} bytes, shorter than the 8-byte "
        "header length"
    )


def test_the_header_length_bound_is_exact(tmp_path: Path) -> None:
    fits = tmp_path / "fits.safetensors"
    fits.write_bytes(struct.pack("<Q", 2) + b"{}")
    assert read_header(fits).tensors == {}
    over = tmp_path / "over.safetensors"
    over.write_bytes(struct.pack("<Q", 3) + b"{}")
    assert failure(read_header, over) == (
        f"{over} is not a readable safetensors file: its header length (3 bytes) runs past the "
        "end of the file (10 bytes); the file is truncated or not safetensors"
    )


def test_the_header_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sf, "MAX_HEADER_BYTES", 2)
    path = write(tmp_path / "x.safetensors", "{} ")
    assert failure(read_header, path) == (
        f"{path} is not a readable safetensors file: its header is 3 bytes, over the 2 cap"
    )
    assert read_header(write(tmp_path / "y.safetensors", "{}")).tensors == {}


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    assert failure(read_header, tmp_path).startswith(f"cannot read {tmp_path} (")


# Folders and indexes.


def _shard(folder: Path, name: str, **tensors: torch.Tensor) -> None:
    save_file(dict(tensors), str(folder / name))


def _index(folder: Path, data: object) -> Path:
    path = folder / "model.safetensors.index.json"
    path.write_text(json.dumps(data))
    return path


def test_a_folder_of_shards_without_an_index(tmp_path: Path) -> None:
    assert shards_of_folder(tmp_path) is None
    _shard(tmp_path, "a.safetensors", w=torch.ones(2))
    _shard(tmp_path, "b.safetensors", v=torch.ones(3))
    found = shards_of_folder(tmp_path)
    assert found is not None
    assert found.where == {"w": tmp_path / "a.safetensors", "v": tmp_path / "b.safetensors"}
    assert found.notes == ()
    _shard(tmp_path, "c.safetensors", w=torch.ones(2))
    with pytest.raises(CheckpointError) as caught:
        shards_of_folder(tmp_path)
    assert str(caught.value) == (
        f"tensor 'w' is in both {tmp_path / 'a.safetensors'} and {tmp_path / 'c.safetensors'}; "
        "a folder of shards must hold each tensor once"
    )


def test_an_index_read_exactly(tmp_path: Path) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2), extra=torch.ones(1))
    _shard(tmp_path, "b.safetensors", v=torch.ones(3, dtype=torch.float16))
    weight_map = {"w": "a.safetensors", "v": "b.safetensors"}
    _index(tmp_path, {"metadata": {"total_size": 14.0}, "weight_map": weight_map})
    found = shards_of_folder(tmp_path)
    assert found is not None
    assert found.where == {"w": tmp_path / "a.safetensors", "v": tmp_path / "b.safetensors"}
    assert found.notes == (
        "1 tensor in the shards is not in model.safetensors.index.json; not read.",
    )
    assert [s.path.name for s in found.shards] == ["a.safetensors", "b.safetensors"]


INDEX_CASES = {
    "not an object": ([1], "{i} is not a safetensors index: its JSON is not an object"),
    "no weight_map": ({"metadata": {}}, "{i} has no weight_map of tensor names to shard files"),
    "weight_map values": (
        {"weight_map": {"w": 1}},
        "{i} has no weight_map of tensor names to shard files",
    ),
    "metadata a list": (
        {"metadata": [], "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata is a list, not an object such as "
        '{{"total_size": 123}}; fix or remove the metadata key',
    ),
    "metadata text": (
        {"metadata": "x", "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata is a string, not an object such as "
        '{{"total_size": 123}}; fix or remove the metadata key',
    ),
    "metadata a number": (
        {"metadata": 1.5, "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata is a number, not an object such as "
        '{{"total_size": 123}}; fix or remove the metadata key',
    ),
    "metadata a bool": (
        {"metadata": True, "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata is true/false, not an object such as "
        '{{"total_size": 123}}; fix or remove the metadata key',
    ),
    "total_size null is no size": (
        {"metadata": {"total_size": {}}, "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata.total_size is an object, not a whole "
        "number of bytes; fix or remove it",
    ),
    "total_size a bool": (
        {"metadata": {"total_size": True}, "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata.total_size is true/false, not a whole "
        "number of bytes; fix or remove it",
    ),
    "total_size a fraction": (
        {"metadata": {"total_size": 8.5}, "weight_map": {"w": "a.safetensors"}},
        "{i} is not a safetensors index: its metadata.total_size is a number, not a whole "
        "number of bytes; fix or remove it",
    ),
    "total_size wrong": (
        {"metadata": {"total_size": 9}, "weight_map": {"w": "a.safetensors"}},
        "{i} says total_size 9 bytes but the tensors it lists take 8: the index and the shards "
        "disagree",
    ),
    "shard missing": (
        {"weight_map": {"w": "z.safetensors"}},
        "{i} names shard z.safetensors, which is not in {f}",
    ),
    "shard in a subfolder": (
        {"weight_map": {"w": "sub/a.safetensors"}},
        "{i} names shard sub/a.safetensors, which is not in {f}",
    ),
    "shard dot-dot": ({"weight_map": {"w": ".."}}, "{i} names shard .., which is not in {f}"),
    "tensor not in its shard": (
        {"weight_map": {"v": "a.safetensors"}},
        "{i} lists tensor 'v' in a.safetensors, which does not hold it",
    ),
}


@pytest.mark.parametrize("case", list(INDEX_CASES))
def test_each_index_check(tmp_path: Path, case: str) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2))
    (tmp_path / "sub").mkdir()
    _shard(tmp_path / "sub", "a.safetensors", w=torch.ones(2))
    data, why = INDEX_CASES[case]
    index = _index(tmp_path, data)
    with pytest.raises(CheckpointError) as caught:
        shards_of_folder(tmp_path)
    assert str(caught.value) == why.format(i=index, f=tmp_path)


def test_null_metadata_and_a_missing_total_size_are_allowed(tmp_path: Path) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2))
    _index(tmp_path, {"metadata": None, "weight_map": {"w": "a.safetensors"}})
    assert shards_of_folder(tmp_path) is not None
    _index(tmp_path, {"metadata": {"total_size": 8}, "weight_map": {"w": "a.safetensors"}})
    assert shards_of_folder(tmp_path) is not None


def test_several_indexes_prefer_the_model_one_else_ask(tmp_path: Path) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2))
    (tmp_path / "x.safetensors.index.json").write_text("[]")
    (tmp_path / "y.safetensors.index.json").write_text("[]")
    with pytest.raises(CheckpointError) as caught:
        shards_of_folder(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path} holds several safetensors indexes (x.safetensors.index.json, "
        "y.safetensors.index.json); name one"
    )
    _index(tmp_path, {"weight_map": {"w": "a.safetensors"}})
    found = shards_of_folder(tmp_path)
    assert found is not None and list(found.where) == ["w"]


def test_read_json_names_each_problem(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"a": 1}')
    assert sf.read_json(path, 8, "model config") == {"a": 1}
    assert failure(lambda p: sf.read_json(p, 7, "model config"), path) == (
        f"{path} is 8 bytes, over the 7-byte cap on a model config; this is not a model config "
        "initcli reads"
    )
    path.write_text("{")
    assert failure(lambda p: sf.read_json(p, 99, "model config"), path).startswith(
        f"{path} is not a readable model config (JSONDecodeError: Expecting property"
    )
    path.write_text("[" * 100_000)
    assert failure(lambda p: sf.read_json(p, 10**6, "index"), path) == (
        f"{path} is not a readable index: its JSON is nested too deeply to parse"
    )
    path.write_text("9" * 5000)
    assert failure(lambda p: sf.read_json(p, 10**6, "index"), path) == (
        f"{path} is not a readable index: it holds a number of more than 4,300 digits"
    )
    assert failure(lambda p: sf.read_json(p, 99, "index"), tmp_path / "none.json").startswith(
        f"cannot read {tmp_path / 'none.json'} ("
    )


@pytest.mark.parametrize("reader", [read_header, scan], ids=["read_header", "scan"])
def test_f4_packs_two_values_a_byte_into_torch_s_x2_dtype(tmp_path: Path, reader: object) -> None:
    header = {"w": {"dtype": "F4", "shape": [2, 6], "data_offsets": [0, 6]}}
    path = write(tmp_path / "x.safetensors", header, b"\0" * 6)
    got = reader(path)  # type: ignore[operator]
    entries = (
        [(n, t.dtype, tuple(t.shape)) for n, t in got.tensors.items()]
        if reader is read_header
        else got
    )
    assert entries == [("w", torch.float4_e2m1fn_x2, (2, 3))]
    scalar = write(
        tmp_path / "s.safetensors",
        {"w": {"dtype": "F4", "shape": [], "data_offsets": [0, 1]}},
        b"\0",
    )
    assert failure(reader, scalar).endswith("F4 tensor 'w' has an odd last dimension")


@pytest.mark.parametrize("reader", [read_header, scan], ids=["read_header", "scan"])
def test_a_dtype_this_torch_lacks_is_named(
    tmp_path: Path, reader: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        sf, "_TORCH_DTYPES", {k: v for k, v in sf._TORCH_DTYPES.items() if k != "float8_e8m0fnu"}
    )
    header = {"w": {"dtype": "F8_E8M0", "shape": [3], "data_offsets": [0, 3]}}
    path = write(tmp_path / "x.safetensors", header, b"\0" * 3)
    assert failure(reader, path) == (
        f"{path} is not a readable safetensors file: "
        "tensor 'w' is F8_E8M0, which this torch cannot hold"
    )


@pytest.mark.parametrize("reader", [read_header, scan], ids=["read_header", "scan"])
def test_the_bounds_on_dimensions_and_offsets_are_inclusive(tmp_path: Path, reader: object) -> None:
    def shape_of(shape: list[int], offsets: list[int]) -> object:
        path = write(
            tmp_path / "x.safetensors",
            {"w": {"dtype": "F32", "shape": shape, "data_offsets": offsets}},
        )
        got = reader(path)  # type: ignore[operator]
        return tuple(got.tensors["w"].shape) if reader is read_header else got[0][2]

    # Empty tensors: a zero dimension counts as 1 in the product torch's strides need.
    assert shape_of([2**63 - 1, 0], [0, 0]) == (2**63 - 1, 0)
    assert shape_of([0, 2**62], [0, 0]) == (0, 2**62)
    path = write(
        tmp_path / "e.safetensors",
        {"w": {"dtype": "F32", "shape": [0], "data_offsets": [2**64 - 1, 2**64 - 1]}},
    )
    assert failure(reader, path).endswith(
        f"tensor 'w' ends at byte {2**64 - 1:,} of the data, which has only 0 bytes: "
        "the file is truncated"
    )
    path = write(
        tmp_path / "b.safetensors",
        {"w": {"dtype": "F32", "shape": [1], "data_offsets": [2, 5]}},
        b"\0" * 5,
    )
    assert failure(reader, path).endswith(
        "tensor 'w' (F32, shape [1]) takes 3 bytes, not the 4 its shape needs"
    )


def test_in_folder_follows_links_only_into_the_hub_cache_s_blobs(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--name"
    snapshot = repo / "snapshots" / "abc"
    (repo / "blobs").mkdir(parents=True)
    (repo / "other").mkdir()
    snapshot.mkdir(parents=True)
    (repo / "blobs" / "h1").write_bytes(b"x")
    (repo / "other" / "h2").write_bytes(b"x")
    (snapshot / "a.safetensors").symlink_to(Path("../../blobs/h1"))
    (snapshot / "b.safetensors").symlink_to(Path("../../other/h2"))
    (snapshot / "c.safetensors").write_bytes(b"x")
    assert sf.in_folder(snapshot, snapshot / "a.safetensors")
    assert not sf.in_folder(snapshot, snapshot / "b.safetensors")
    assert sf.in_folder(snapshot, snapshot / "c.safetensors")
    # The same link from a folder that is no snapshot: the blob is outside it.
    plain = tmp_path / "plain" / "abc"
    plain.mkdir(parents=True)
    (plain / "a.safetensors").symlink_to(repo / "blobs" / "h1")
    assert not sf.in_folder(plain, plain / "a.safetensors")
    # A snapshots folder whose link reaches the blobs of another repo.
    (tmp_path / "models--x" / "blobs").mkdir(parents=True)
    (tmp_path / "models--x" / "blobs" / "h3").write_bytes(b"x")
    (snapshot / "d.safetensors").symlink_to(tmp_path / "models--x" / "blobs" / "h3")
    assert not sf.in_folder(snapshot, snapshot / "d.safetensors")


def test_an_index_of_another_name_is_read_and_tensors_it_leaves_out_are_counted(
    tmp_path: Path,
) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2), x=torch.ones(1), y=torch.ones(1))
    (tmp_path / "weights.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "a.safetensors"}})
    )
    found = shards_of_folder(tmp_path)
    assert found is not None and found.where == {"w": tmp_path / "a.safetensors"}
    assert found.notes == (
        "2 tensors in the shards are not in weights.safetensors.index.json; not read.",
    )


def test_an_index_that_links_outside_the_folder_is_refused(tmp_path: Path) -> None:
    folder, outside = tmp_path / "model", tmp_path / "elsewhere"
    folder.mkdir()
    outside.mkdir()
    _shard(folder, "a.safetensors", w=torch.ones(2))
    (outside / "i.json").write_text(json.dumps({"weight_map": {"w": "a.safetensors"}}))
    link = folder / "weights.safetensors.index.json"
    link.symlink_to(outside / "i.json")
    with pytest.raises(CheckpointError) as caught:
        shards_of_folder(folder)
    assert str(caught.value) == (
        f"{link} links to a file outside {folder}; initcli reads only the files inside a "
        "weights folder: copy the file into the folder instead of linking it"
    )


def test_an_index_that_is_not_json_names_itself_a_safetensors_index(tmp_path: Path) -> None:
    _shard(tmp_path, "a.safetensors", w=torch.ones(2))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text("{not json")
    with pytest.raises(CheckpointError) as caught:
        shards_of_folder(tmp_path)
    assert str(caught.value).startswith(f"{index} is not a readable safetensors index (")
