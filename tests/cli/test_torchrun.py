"""`torchrun --nproc-per-node 2 -m initcli inspect FOLDER`: the ranks split the tensors, rank 0
prints exactly what one process prints, and a failing rank fails every rank in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import ROOT, run

from initcli.errors import CheckpointError
from initcli.measure import distributed

pytestmark = pytest.mark.skipif(
    not dist.is_available(),
    reason="this torch build has no torch.distributed (a build option, not a package)",
)

# Past this a run is stuck, not slow: the test fails instead of hanging (a loaded 2-core machine
# starts two ranks in ~20 s).
TIMEOUT_S = 240


def _tensors() -> dict[str, torch.Tensor]:
    """float32 and bfloat16 tensors of very different sizes, a few of more than one block."""
    g = torch.Generator().manual_seed(0)
    found: dict[str, torch.Tensor] = {}
    for i, (rows, cols) in enumerate([(640, 512), (64, 64), (512, 1024), (33, 7), (300, 300)]):
        found[f"layers.{i}.weight"] = 0.02 * torch.randn(rows, cols, generator=g)
        found[f"layers.{i}.bias"] = torch.zeros(rows)
    found["embed.weight"] = torch.randn(1000, 384, generator=g).to(torch.bfloat16)
    return found


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from safetensors.torch import save_file
    from torch.distributed.checkpoint import FileSystemWriter, save

    root = tmp_path_factory.mktemp("torchrun")
    tensors = _tensors()
    names = sorted(tensors)
    shards = root / "shards"
    shards.mkdir()
    save_file({n: tensors[n] for n in names[::2]}, shards / "a.safetensors")
    save_file({n: tensors[n] for n in names[1::2]}, shards / "b.safetensors")
    dcp = root / "dcp"
    with warnings.catch_warnings():  # "assuming the intent is to save in a single process": it is
        warnings.simplefilter("ignore", UserWarning)
        save(tensors, storage_writer=FileSystemWriter(dcp, thread_count=2), no_dist=True)
    return {"shards": shards, "dcp": dcp}


def torchrun(*args: str) -> subprocess.CompletedProcess[str]:
    """initcli under torchrun with 2 gloo ranks on a free port (--standalone)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc-per-node", "2", "-m", "initcli", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=TIMEOUT_S, check=False
    )


def _same_as_one_process(folder: Path, fmt: str) -> None:
    code, single, _ = run("inspect", str(folder), "-f", fmt)
    assert code == 0
    found = torchrun("inspect", str(folder), "-f", fmt)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout == single


def test_json_of_two_ranks_equals_one_process(folders: dict[str, Path]) -> None:
    _same_as_one_process(folders["shards"], "json")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("folder", "fmt"), [("shards", "table"), ("dcp", "json"), ("dcp", "table")]
)
def test_two_ranks_equal_one_process(folders: dict[str, Path], folder: str, fmt: str) -> None:
    _same_as_one_process(folders[folder], fmt)


@pytest.mark.slow
def test_a_failing_rank_fails_every_rank_in_one_line(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    # One of the two storage files is overwritten after the metadata was checked: only the rank
    # that reads tensors from it fails, and both say which rank, which tensor and which file.
    broken = tmp_path / "dcp"
    broken.mkdir()
    for f in folders["dcp"].iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    shard = broken / "__0_1.distcp"
    shard.write_bytes(b"\xff" * shard.stat().st_size)
    found = torchrun("inspect", str(broken), "-f", "json")
    assert found.returncode != 0 and found.stdout == ""
    errors = [line for line in found.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 2, found.stderr[-3000:]
    assert errors[0] == errors[1]
    assert "failed reading tensor" in errors[0] and "__0_1.distcp" in errors[0]
    assert errors[0].startswith("Error: rank ")


# ------------------------------------------------------------------ the split, in one process


def test_ranks_are_balanced_by_bytes() -> None:
    sizes = [100, 1, 50, 50, 7, 3, 99, 2]
    owners = distributed.rank_of(sizes, 3)
    loads = [sum(s for s, r in zip(sizes, owners, strict=True) if r == rank) for rank in range(3)]
    assert sorted(loads) == [103, 103, 106]
    assert max(loads) - min(loads) <= max(sizes)
    assert distributed.rank_of(sizes, 3) == owners  # the same on every rank
    assert distributed.rank_of(sizes, 1) == [0] * len(sizes)
    assert distributed.rank_of([], 4) == []


def test_one_process_runs_everything_and_raises_the_cause_itself() -> None:
    def work(names: list[str]) -> object:
        for name in names:
            if name == "bad":
                try:
                    raise CheckpointError("bad is unreadable; fix it")
                except CheckpointError as exc:
                    raise distributed.ItemError(name) from exc
            yield name, len(name)

    assert distributed.shared(["a", "bb"], [1, 2], work) == {"a": 1, "bb": 2}  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="bad is unreadable"):
        distributed.shared(["a", "bad"], [1, 2], work)  # type: ignore[arg-type]


def test_without_a_group_torchrun_s_rank_says_who_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not dist.is_initialized()
    monkeypatch.setenv("RANK", "1")
    assert not distributed.is_primary()
    monkeypatch.setenv("RANK", "0")
    assert distributed.is_primary()
    monkeypatch.delenv("RANK")
    assert distributed.is_primary()
