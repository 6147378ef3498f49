"""FSDP2 (`fully_shard`) models in a 2-process gloo group: global counts and exact statistics."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(
    not dist.is_available(),
    reason="this torch build has no torch.distributed (a build option, not a package)",
)

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 33), nn.ReLU(), nn.Linear(33, 8), nn.LayerNorm(8))
    if torch.distributed.is_initialized():
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (torch.distributed.get_world_size(),))
        for layer in (model[0], model[2], model):
            fully_shard(layer, mesh=mesh)
    """
)


def _report(target: str) -> dict[str, object]:
    from initcli.report import count, inspect

    counted = count(target).counts
    rows = inspect(target).params
    return {
        "total": counted.total,
        "torchinfo": None if counted.torchinfo is None else counted.torchinfo.total,
        "params": {p.name: [p.numel, list(p.shape), p.mean, p.var, p.min, p.max] for p in rows},
    }


def _worker(rank: int, port: int, target: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    import initcli.measure.distributed

    calls: list[str] = []
    measure = initcli.measure.distributed.global_stats

    def counted(t: torch.Tensor) -> object:
        calls.append(type(t).__name__)
        return measure(t)

    initcli.measure.distributed.global_stats = counted  # type: ignore[assignment]
    try:
        found = _report(target)
        found["dtensor_measured"] = calls
        initcli.measure.distributed.global_stats = measure
        # Under torchrun every rank runs initcli: only rank 0 prints the report and its notes.
        from conftest import run

        found["cli"] = run("inspect", target, "--format", "json")
        Path(f"{out}.{rank}").write_text(json.dumps(found))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_fully_sharded_model_counts_and_measures_as_the_whole_one(tmp_path: Path) -> None:
    (tmp_path / "sharded.py").write_text(MODEL)
    target = f"{tmp_path / 'sharded.py'}:model"
    out = str(tmp_path / "rank")
    try:
        mp.spawn(_worker, args=(_free_port(), target, out), nprocs=2, join=True)
    except mp.ProcessExitedException as exc:
        # Seen once in ~10 suite runs: a rank aborted *after* writing its results and destroying
        # the group ("terminate called without an active exception": gloo's threads torn down at
        # interpreter exit, pytorch#179291). What is measured here is in the files; an abort
        # before they are complete still fails below.
        if exc.signal_name != "SIGABRT":
            raise
    whole = _report(target)  # no process group here: the same model, unsharded
    ranks = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(2)]
    (code0, out0, _), (code1, out1, err1) = (r.pop("cli") for r in ranks)
    assert (code0, code1, out1, err1) == (0, 0, "", "")
    printed = json.loads(out0)
    assert printed["counts"]["total"] == whole["total"]
    assert [p["name"] for p in printed["params"]] == list(whole["params"])  # type: ignore[call-overload]
    assert ranks[0] == ranks[1]  # every rank combines the same parts in the same order
    sharded = ranks[0]
    assert sharded.pop("dtensor_measured") == ["DTensor"] * 6  # the global path, every param
    assert sharded["total"] == whole["total"] == 16 * 33 + 33 + 33 * 8 + 8 + 8 + 8
    assert sharded["torchinfo"] == whole["torchinfo"]
    assert sharded["params"].keys() == whole["params"].keys()
    for name, (numel, shape, mean, var, low, high) in whole["params"].items():
        got = sharded["params"][name]
        assert got[:2] == [numel, shape], name
        assert got[2] == pytest.approx(mean, rel=1e-12, abs=1e-15), name
        assert got[3] == pytest.approx(var, rel=1e-12, abs=1e-15), name
        assert got[4:] == [low, high], name
