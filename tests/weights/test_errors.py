"""Bad weights files and folders: one `Error:` line naming the file, exit 2, nothing on stdout."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import run
from safetensors.torch import save_file

from initcli.errors import CheckpointError
from initcli.weights.safetensors_files import HeaderScan


def _folder(tmp_path: Path) -> Path:
    """Two shards and an index, as save_pretrained writes them."""
    save_file({"a.weight": torch.ones(3, 4)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"b.weight": torch.zeros(5, 2)}, tmp_path / "model-00002-of-00002.safetensors")
    index = {
        "metadata": {"total_size": (12 + 10) * 4},
        "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00002-of-00002.safetensors",
        },
    }
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    return tmp_path


def _fails(target: Path, *expected: str) -> str:
    for command in ("count", "inspect"):
        code, out, err = run(command, str(target))
        assert code == 2, (command, out, err)
        assert out == ""
        assert err.startswith("Error: ") and err.count("\n") == 1, err
        for text in expected:
            assert text in err, err
    return err


def test_the_good_folder_reads(tmp_path: Path) -> None:
    code, out, err = run("count", str(_folder(tmp_path)), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["total"] == 22


def test_a_truncated_shard(tmp_path: Path) -> None:
    shard = _folder(tmp_path) / "model-00002-of-00002.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4])
    _fails(tmp_path, str(shard), "is truncated")


def test_a_missing_shard(tmp_path: Path) -> None:
    (_folder(tmp_path) / "model-00002-of-00002.safetensors").unlink()
    _fails(tmp_path, "names shard model-00002-of-00002.safetensors, which is not in")


def test_an_index_naming_a_missing_tensor(tmp_path: Path) -> None:
    index = _folder(tmp_path) / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["weight_map"]["c.weight"] = "model-00001-of-00002.safetensors"
    index.write_text(json.dumps(data))
    _fails(tmp_path, str(index), "lists tensor 'c.weight'", "which does not hold it")


def test_an_index_whose_size_disagrees_with_the_shards(tmp_path: Path) -> None:
    index = _folder(tmp_path) / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    data["metadata"]["total_size"] = 4
    index.write_text(json.dumps(data))
    _fails(tmp_path, "total_size 4 bytes", "the index and the shards disagree")


def test_a_header_length_beyond_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 2**40) + b"{}")
    _fails(bad, str(bad), "runs past the end of the file")


def test_a_header_length_past_the_end_by_less_than_the_8_length_bytes(tmp_path: Path) -> None:
    # 10 bytes: the 8-byte length, then a 2-byte header `{}` although the length claims 6. The
    # header must fit in size − 8 bytes; checked against the size (10), it would pass and the
    # short read `{}` would parse as an empty file.
    bad = tmp_path / "short.safetensors"
    bad.write_bytes(struct.pack("<Q", 6) + b"{}")
    assert bad.stat().st_size == 10
    _fails(bad, str(bad), "its header length (6 bytes) runs past the end of the file (10 bytes)")


def test_a_header_that_is_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", 4) + b"{{{{")
    _fails(bad, str(bad), "its header is not JSON")


_DEEP = b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
_DIGITS = b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b"]}}"
_NESTED = (
    "its header nests arrays or objects deeper than Python's JSON parser goes (about 1,000 "
    "levels); a safetensors header is 3 levels deep"
)
_LONG = "its header holds a number with more than 4,300 digits; not a safetensors header"
_MALFORMED = "tensor 'a' has a malformed shape or data_offsets"
_PAST = "tensor 'a' has a shape whose dimensions multiply past 2**63 - 1 (torch's largest size)"


def _entry(shape: str, offsets: str = "0, 0", dtype: str = "F32") -> bytes:
    return b'{"a": {"dtype": "%s", "shape": [%s], "data_offsets": [%s]}}' % (
        dtype.encode(),
        shape.encode(),
        offsets.encode(),
    )


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (_DEEP, _NESTED),
        (b'{"__metadata__": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}", _NESTED),
        (_DIGITS, _LONG),
        (b'{"__metadata__": {"v": ' + b"1" * 4301 + b"}}", _LONG),
        (b'{"a":}', "its header is not JSON (JSONDecodeError: Expecting value: line 1 column 6"),
        (b'{"a":', "its header is not JSON (JSONDecodeError: Expecting value: line 1 column 6"),
        (_entry(str(10**40), f"0, {4 * 10**40}"), _MALFORMED),
        (_entry("1", f"{10**40}, {10**40 + 4}"), _MALFORMED),
        (_entry("true", "0, 4"), _MALFORMED),
        (_entry("0, 10000000000000000000000"), _MALFORMED),
        (_entry(f"0, {2**62}, {2**62}"), _PAST),  # torch: "Stride calculation overflowed"
        (_entry(", ".join(["9" * 4000] * 1500) + ", 0"), _MALFORMED),  # was hours of int products
        (_entry(", ".join(["2"] * 100) + ", 0"), _PAST),
    ],
    ids=[
        "100k-deep",
        "5000-deep-metadata",
        "5000-digit-dim",
        "4301-digit-metadata",
        "entry-without-value",
        "entry-cut-short",
        "10**40-dim",
        "10**40-offsets",
        "bool-dim",
        "dim-past-int64",
        "empty-with-huge-dims",
        "1500-dims-of-4000-digits",
        "100-dims-of-2",
    ],
)
def test_a_hostile_header(tmp_path: Path, header: bytes, says: str) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header)
    _fails(bad, f"Error: {bad} is not a readable safetensors file: {says}")


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (_DEEP, _NESTED),
        (_DIGITS, _LONG),
        (b'{"a":}', "its header is not one JSON object"),  # was RuntimeError (PEP 479)
        (b'{"a": {"dtype": }}', "its header is not one JSON object"),
        (
            b'{"b": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}, "a": }',
            "its header is not one JSON object",
        ),
    ],
    ids=["100k-deep", "5000-digit-dim", "entry-without-value", "field-without-value", "second"],
)
def test_the_header_scan_refuses_a_hostile_header(tmp_path: Path, header: bytes, says: str) -> None:
    # `count` falls back to the full reader when the scan refuses a header: its own message is
    # checked here.
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError) as caught:
        list(HeaderScan(bad))
    assert str(caught.value) == f"{bad} is not a readable safetensors file: {says}"


def test_a_tensor_name_with_a_5000_digit_number(tmp_path: Path) -> None:
    header = b'{"l.%s.w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}' % (b"9" * 5000)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(struct.pack("<Q", len(header)) + header + b"\0")
    code, _out, err = run("inspect", str(bad))
    assert code == 2, err
    shown = f"'l.{'9' * 58}'..."
    assert (
        err == f"Error: tensor name {shown} holds a number of more than 4,300 digits; rename it\n"
    )
    code, _out, err = run("count", str(bad))  # the header alone: names are not sorted as numbers
    assert code == 0, err


def test_a_folder_with_no_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    _fails(tmp_path, f"{tmp_path} holds no weights")


def test_a_truncated_dcp_shard(tmp_path: Path) -> None:
    import warnings

    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save({"w": torch.ones(64, 64)}, checkpoint_id=tmp_path, no_dist=True)
    (shard,) = tmp_path.glob("*.distcp")
    shard.write_bytes(shard.read_bytes()[:100])
    _fails(tmp_path, str(shard), "is truncated")


def test_a_checkpoint_nested_deeper_than_any_state_dict(tmp_path: Path) -> None:
    nested: object = {"w": torch.ones(2)}
    for _ in range(3000):
        nested = {"a": nested}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(20_000)  # pickle's writer recurses; the reader must not
    try:
        torch.save(nested, tmp_path / "deep.pt")
    finally:
        sys.setrecursionlimit(limit)
    _fails(tmp_path / "deep.pt", "more than 1,000 levels deep")


@pytest.mark.skipif(
    sys.platform != "linux", reason="needs RLIMIT_AS and sparse files as Linux has them"
)
def test_a_huge_header_length_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    # A sparse 3 GB file whose header claims 2.5 GB: a reader that trusted the length would
    # allocate it; under an address-space limit of what is mapped now + 256 MB it must fail cleanly.
    bad = tmp_path / "huge.safetensors"
    with open(bad, "wb") as handle:
        handle.write(struct.pack("<Q", 2_500_000_000))
        handle.truncate(3_000_000_000)
    script = textwrap.dedent(
        f"""
        import resource, sys
        from initcli.cli import app  # torch and initcli imported before the limit
        import initcli.report.weights, initcli.render.weights
        from typer.testing import CliRunner
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + 256 * 2**20, vm + 256 * 2**20))
        result = CliRunner().invoke(app, ["count", {str(bad)!r}])
        sys.stdout.write(result.stderr)
        sys.exit(result.exit_code)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "over the 100,000,000 cap" in done.stdout


def test_options_that_do_not_apply_to_a_weights_file(tmp_path: Path) -> None:
    save_file({"w": torch.ones(2, 2)}, tmp_path / "w.safetensors")
    target = str(tmp_path / "w.safetensors")
    for args, said in [
        (("count", target, "--input-shape", "1,2"), "--input-shape does not apply"),
        (("inspect", target, "--device", "cuda"), "--device does not apply"),
        (("inspect", target, "-s", "3"), "--seed does not apply"),
    ]:
        code, out, err = run(*args)
        assert (code, out) == (2, ""), args
        assert err.startswith(f"Error: {said} to a weights file"), err
