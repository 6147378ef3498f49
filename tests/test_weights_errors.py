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
