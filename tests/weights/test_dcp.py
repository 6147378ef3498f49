"""DCP folders are data: a hostile `.metadata` or `.distcp` never runs code and never tracebacks."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import run
from torch import nn
from torch.distributed.checkpoint.filesystem import _StorageInfo
from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata

INITCLI = Path(sys.executable).parent / "initcli"
NOT_METADATA = "holds Python objects that are not checkpoint metadata"
NO_CODE = "initcli does not run code from checkpoints"


def _save(folder: Path, state: dict[str, object]) -> Path:
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save(state, checkpoint_id=folder, no_dist=True)
    return folder


def _genuine(folder: Path) -> Path:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return _save(folder, {"model": model.state_dict(), "step": 5})


def _metadata(folder: Path) -> Metadata:
    with open(folder / ".metadata", "rb") as f:
        meta: Metadata = pickle.load(f)  # the test's own, genuine file
    return meta


def _write(folder: Path, meta: object) -> None:
    (folder / ".metadata").write_bytes(pickle.dumps(meta))


def _sums(*paths: Path) -> dict[str, str]:
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    return {str(f): hashlib.sha256(f.read_bytes()).hexdigest() for f in files if f.is_file()}


def _one_error(code: int, out: str, err: str, *expected: str) -> None:
    assert code == 2, (code, out, err)
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err


# Payloads: each creates its marker when unpickled by a plain pickle.load.
class _Eval:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, ...]:
        return (eval, (f"open({self.marker!r}, 'w').close()",))


class _System(_Eval):
    def __reduce__(self) -> tuple[object, ...]:
        return (os.system, (f"touch '{self.marker}'",))


class _Run(_Eval):
    def __reduce__(self) -> tuple[object, ...]:
        return (subprocess.run, (["touch", self.marker],))


class _Popen(_Eval):
    def __reduce__(self) -> tuple[object, ...]:
        return (subprocess.Popen, (["touch", self.marker],))


class _Exec(_Eval):
    def __reduce__(self) -> tuple[object, ...]:
        import builtins

        return (builtins.exec, (f"open({self.marker!r}, 'w').close()",))


class SneakyTensorStorageMetadata(TensorStorageMetadata):
    """A subclass of a metadata class, defined outside torch: its __setstate__ is code."""

    def __setstate__(self, state: dict[str, object]) -> None:
        Path(str(state.pop("marker"))).touch()
        self.__dict__.update(state)


def _top(meta: Metadata, payload: object) -> Metadata:
    meta.planner_data = payload
    return meta


def _in_storage_data(meta: Metadata, payload: object) -> Metadata:
    key = next(iter(meta.storage_data))
    info = meta.storage_data[key]
    meta.storage_data[key] = _StorageInfo(payload, info.offset, info.length)  # type: ignore[arg-type]
    return meta


def _subclass(meta: Metadata, marker: Path) -> Metadata:
    fqn, item = next(
        (k, v) for k, v in meta.state_dict_metadata.items() if isinstance(v, TensorStorageMetadata)
    )
    sneaky = SneakyTensorStorageMetadata(item.properties, item.size, item.chunks)
    sneaky.marker = str(marker)  # type: ignore[attr-defined]
    meta.state_dict_metadata[fqn] = sneaky
    return meta


PAYLOADS: dict[str, Callable[[Metadata, Path], Metadata]] = {
    "eval": lambda m, mk: _top(m, _Eval(mk)),
    "os.system": lambda m, mk: _top(m, _System(mk)),
    "subprocess.run": lambda m, mk: _top(m, _Run(mk)),
    "subprocess.Popen": lambda m, mk: _top(m, _Popen(mk)),
    "builtins.exec": lambda m, mk: _top(m, _Exec(mk)),
    "nested in storage_data": lambda m, mk: _in_storage_data(m, _Eval(mk)),
    "subclass of a metadata class": _subclass,
}


@pytest.mark.parametrize("payload", list(PAYLOADS))
def test_a_metadata_payload_never_runs(tmp_path: Path, payload: str) -> None:
    folder = _genuine(tmp_path / "ckpt")
    baseline = tmp_path / "baseline.json"
    code, _, err = run("snapshot", str(folder), "-o", str(baseline))
    assert code == 0, err
    marker = tmp_path / "marker"
    _write(folder, PAYLOADS[payload](_metadata(folder), marker))
    before = _sums(folder, baseline)
    out_json = tmp_path / "out.json"
    for args in (
        ("count", str(folder)),
        ("inspect", str(folder)),
        ("snapshot", str(folder), "-o", str(out_json)),
        ("check", str(baseline)),
    ):
        code, out, err = run(*args)
        _one_error(code, out, err, NOT_METADATA, NO_CODE)
        assert not out_json.exists()
    if payload == "subprocess.Popen":
        time.sleep(0.2)  # a spawned `touch` would have run by now
    assert not marker.exists()
    assert _sums(folder, baseline) == before


def test_a_payload_never_runs_in_a_real_process(tmp_path: Path) -> None:
    folder = _genuine(tmp_path / "ckpt")
    marker = tmp_path / "marker"
    _write(folder, _top(_metadata(folder), _System(marker)))
    done = subprocess.run(
        [str(INITCLI), "count", str(folder)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_error(done.returncode, done.stdout, done.stderr, NOT_METADATA)
    assert not marker.exists()


def test_a_genuine_checkpoint_reads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    folder = _save(tmp_path / "ckpt", {"model": model.state_dict(), "step": 5})
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    counted = json.loads(out)
    assert counted["total"] == sum(v.numel() for v in state.values())
    assert any("not tensors were skipped: step" in note for note in counted["notes"])
    code, out, err = run("inspect", str(folder), "--format", "json")
    assert code == 0, err
    params = {p["name"]: p for p in json.loads(out)["params"]}
    assert set(params) == {f"model.{k}" for k in state}
    for name, value in state.items():
        p = params[f"model.{name}"]
        assert p["mean"] == pytest.approx(value.double().mean().item(), rel=1e-12, abs=1e-15)
        assert p["min"] == value.min().item() and p["max"] == value.max().item()


def test_a_non_tensor_entry_is_listed_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(3, 4), "evil": _Eval(marker)})
    assert not marker.exists()
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    assert any("not tensors were skipped: evil" in n for n in json.loads(out)["notes"])
    code, out, err = run("inspect", str(folder))
    assert code == 0, err
    assert not marker.exists()


@pytest.mark.parametrize("how", ["random bytes", "zeroed header"])
def test_a_corrupt_shard_is_one_error_line(tmp_path: Path, how: str) -> None:
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(64, 64)})
    (shard,) = folder.glob("*.distcp")
    data = bytearray(shard.read_bytes())
    if how == "random bytes":
        data = bytearray(os.urandom(len(data)))
    else:
        data[:64] = bytes(64)  # the zip record torch.load reads first
    shard.write_bytes(bytes(data))
    code, out, err = run("inspect", str(folder))
    _one_error(code, out, err, str(shard), "could not be read")


def test_a_missing_shard(tmp_path: Path) -> None:
    folder = _genuine(tmp_path / "ckpt")
    (shard,) = folder.glob("*.distcp")
    shard.unlink()
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, f"points into {shard.name}, which is missing")


def test_the_largest_end_counts_not_the_last_listed(tmp_path: Path) -> None:
    folder = _save(tmp_path / "ckpt", {"a": torch.ones(64), "b": torch.ones(64)})
    meta = _metadata(folder)
    items = sorted(meta.storage_data.items(), key=lambda kv: -kv[1].offset)
    meta.storage_data = dict(items)  # the entry ending last is listed first
    _write(folder, meta)
    (shard,) = folder.glob("*.distcp")
    shard.write_bytes(shard.read_bytes()[:-1])  # the last-listed entry still fits
    assert items[-1][1].offset + items[-1][1].length <= shard.stat().st_size
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, str(shard), "is truncated")


def _outside(tmp_path: Path) -> tuple[Path, str]:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x" * 123_457)
    return outside, "123,457"


@pytest.mark.parametrize("where", ["../outside.bin", "/etc/passwd", "symlink", "absolute"])
def test_storage_paths_stay_inside_the_folder(tmp_path: Path, where: str) -> None:
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(8)})
    outside, size = _outside(tmp_path)
    if where == "symlink":
        (folder / "link.distcp").symlink_to(outside)
        rel = "link.distcp"
    elif where == "absolute":
        rel = str(outside)
    elif where == "/etc/passwd":
        rel = where
        if Path(rel).exists():
            size = f"{Path(rel).stat().st_size:,}"
    else:
        rel = where
    meta = _metadata(folder)
    meta.storage_data = {
        k: _StorageInfo(rel, v.offset, 10**9) for k, v in meta.storage_data.items()
    }
    _write(folder, meta)
    before = _sums(folder, outside)
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, "initcli reads only files inside the checkpoint folder")
    assert size not in err and size.replace(",", "") not in err
    assert _sums(folder, outside) == before


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: _resize(m, torch.Size([2**40, 2**40])), "more than any tensor can hold"),
        (lambda m: _restore(m, offset=-5), "negative"),
        (lambda m: _restore(m, length=2.5), "non-negative ints"),
    ],
    ids=["numel overflow", "negative offset", "float length"],
)
def test_absurd_sizes_and_offsets_are_refused(
    tmp_path: Path, change: Callable[[Metadata], None], expected: str
) -> None:
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(8)})
    meta = _metadata(folder)
    change(meta)
    _write(folder, meta)
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, "is not valid DCP metadata", expected)


def _resize(meta: Metadata, size: torch.Size) -> None:
    item = meta.state_dict_metadata["w"]
    assert isinstance(item, TensorStorageMetadata)
    item.size = size


def _restore(meta: Metadata, **change: object) -> None:
    meta.storage_data = {
        k: _StorageInfo(
            v.relative_path,
            change.get("offset", v.offset),  # type: ignore[arg-type]
            change.get("length", v.length),  # type: ignore[arg-type]
        )
        for k, v in meta.storage_data.items()
    }


def test_a_dict_key_nested_a_million_deep_does_not_crash(tmp_path: Path) -> None:
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(8)})
    depth = 1_000_000  # hashing this key recurses in C: a segfault in a plain pickle.load
    deep = b"\x80\x04}" + b"K\x01" + b"\x85" * depth + b"K\x02s."
    (folder / ".metadata").write_bytes(deep)
    code, out, err = run("count", str(folder))  # a crash here would take pytest down with it
    _one_error(code, out, err, NOT_METADATA, "a dict key that is not a name")


def test_a_huge_metadata_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    folder = _save(tmp_path / "ckpt", {"w": torch.ones(8)})
    with open(folder / ".metadata", "r+b") as f:
        f.truncate(257 * 2**20)  # sparse: no disk used
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, "more than the 256 MiB")


def test_a_metadata_file_that_could_outgrow_free_memory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from initcli import memory

    folder = _save(tmp_path / "ckpt", {"w": torch.ones(8)})
    with open(folder / ".metadata", "r+b") as f:
        f.truncate(16 * 2**20)
    monkeypatch.setattr(memory, "available_cpu_bytes", lambda: 512 * 2**20)
    code, out, err = run("count", str(folder))
    _one_error(code, out, err, "(16 MiB) may take up to 1.2 GiB, and 0.5 GiB is free")
