"""Streamed `default` replays a model-level init (transformers' `_init_weights`, `self.apply`)."""

from __future__ import annotations

import pytest
import torch

from initcli import report
from initcli.model import building, record, resolve
from initcli.values import replay
from initcli.values.items import Ring

HF = "tests/hf_models.py"
REPLAY = "tests/models_for_replay.py"


def _both(target: str, seed: int) -> tuple[report.InspectReport, report.InspectReport]:
    streamed = report.inspect(target, seed=seed, stream=True)
    real = report.inspect(target, seed=seed, stream=False)
    assert (streamed.method, real.method) == ("stream", "real")
    return streamed, real


@pytest.mark.parametrize(
    "target",
    [
        f"{HF}:gpt2", f"{HF}:bert", f"{HF}:llama", f"{HF}:t5", f"{HF}:wide_llama", f"{HF}:vit",
        f"{HF}:clip",
        "tests/models_lazy_import.py:tiny", f"{REPLAY}:ApplyInit", f"{REPLAY}:ShortcutInits",
        "tests/models_for_tests.py:ScaledLinear",
    ],
)  # fmt: skip
def test_streamed_default_equals_the_real_build(target: str) -> None:
    """Every parameter: min, max, mean, var, status, looks_like, fit all exactly equal."""
    streamed, real = _both(target, seed=7)
    assert list(streamed.params) == list(real.params)
    assert "replayed in order after the seed" in streamed.remarks[0]


def test_gpt2_streams_its_own_init_not_torch_defaults() -> None:
    streamed, _ = _both(f"{HF}:gpt2", seed=0)
    by_name = {p.name: p for p in streamed.params}
    # The tied lm_head is drawn (and thrown away) before tying, as in a real build: wte keeps
    # its own N(0, 0.02²).
    assert by_name["transformer.wte.weight"].looks_like == "normal(std=0.02)"
    assert by_name["transformer.h.0.attn.c_proj.weight"].looks_like == "normal(std=0.02/√(2·3))"
    assert "lm_head.weight" not in by_name
    assert "transformers' _init_weights (run by GPT2LMHeadModel.post_init)" in streamed.remarks[0]


def test_a_parameter_no_write_sets_is_not_replayed_and_the_rest_is_exact() -> None:
    streamed, real = _both(f"{HF}:gated_gpt2", seed=1)
    gate = next(p for p in streamed.params if p.name == "gate")
    assert (gate.status, gate.mean) == ("unknown", None)
    assert gate.init == "not replayed (copy_ reads other tensors' values)"
    assert "1 parameter(s) not replayed" in streamed.remarks[0]
    rest = [p for p in streamed.params if p.name != "gate"]
    assert rest == [p for p in real.params if p.name != "gate"]


@pytest.mark.parametrize(
    ("target", "name", "why"),
    [
        (f"{REPLAY}:RandnParam", "scale", "its value comes from constructor code"),
        (f"{REPLAY}:CopiesWeights", "b.weight", "copy_ reads other tensors' values"),
    ],
)
def test_values_the_replay_cannot_see_are_unknown_never_ok(
    target: str, name: str, why: str
) -> None:
    streamed, real = _both(target, seed=2)
    lost = next(p for p in streamed.params if p.name == name)
    assert (lost.status, lost.mean) == ("unknown", None)
    assert why in lost.init
    # The draw behind the lost value is still replayed: the other parameters are exact.
    assert [p for p in streamed.params if p.name != name] == [
        p for p in real.params if p.name != name
    ]


def test_an_init_that_cannot_run_on_meta_leaves_every_parameter_unknown() -> None:
    streamed, real = _both(f"{REPLAY}:reading_gpt2", seed=0)
    assert {p.status for p in streamed.params} == {"unknown"}
    assert "ReadingGPT2.initialize_weights() failed on meta" in streamed.params[0].init
    assert real.params[0].mean is not None


def test_the_replay_leaves_no_flags_and_repeats_itself() -> None:
    """transformers marks modules initialized; the meta model is left as built."""
    meta = building.build_meta(resolve.resolve(f"{HF}:gpt2"))
    trace = record.trace_of(meta)
    assert trace is not None and trace.model_init
    runs = []
    for _ in range(2):
        values = {}
        for item in replay.stream(meta, trace, 3, torch.device("cpu")):
            assert item.tensor is not None
            values[item.name] = item.tensor.clone()
            if item.release is not None:
                item.release()
        runs.append(values)
        assert not any("_is_hf_initialized" in m.__dict__ for m in meta.modules())
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][n], runs[1][n]) for n in runs[0])


@pytest.mark.parametrize("factory", ["bert", "t5"])
def test_replay_memory_is_one_block_the_size_of_the_largest_parameter(factory: str) -> None:
    """Draws no parameter keeps go to scratch in the same block: nothing else is allocated."""
    meta = building.build_meta(resolve.resolve(f"{HF}:{factory}"))
    trace = record.trace_of(meta)
    assert trace is not None
    largest = max(p.numel() * p.element_size() for p in meta.parameters())
    blocks = set()
    for item in replay.stream(meta, trace, 0, torch.device("cpu")):
        assert item.tensor is not None and item.release is not None
        storage = item.tensor.untyped_storage()
        blocks.add((storage.data_ptr(), storage.nbytes()))
        item.release()
    assert blocks == {(next(iter(blocks))[0], largest)}


def test_a_parameter_carved_from_the_middle_of_the_ring_is_its_own_memory() -> None:
    ring = Ring(1024, torch.device("cpu"))
    first, _ = ring.take(torch.empty(400, dtype=torch.uint8, device="meta"))
    second, _ = ring.take(torch.empty(400, dtype=torch.uint8, device="meta"))
    meta = torch.empty(10, 10, device="meta")
    a, b = replay._view(first, meta), replay._view(second, meta)
    a.fill_(1.0)
    b.fill_(2.0)
    assert (a == 1).all() and (b == 2).all()
    assert b.data_ptr() == second.data_ptr() != a.data_ptr()
