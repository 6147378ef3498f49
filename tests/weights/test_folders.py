"""Weights folders: HF save_pretrained shards, plain shard folders and DCP, counted and streamed."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers
from conftest import run
from safetensors.torch import save_file
from torch import nn


def _gpt2() -> nn.Module:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=100, n_positions=32)
    return transformers.GPT2LMHeadModel(cfg)


def _bert() -> nn.Module:
    cfg = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=32,
    )
    return transformers.BertForMaskedLM(cfg)


def _llama() -> nn.Module:
    cfg = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=100,
        max_position_embeddings=32,
    )
    return transformers.LlamaForCausalLM(cfg)


def _save(model: nn.Module, folder: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.save_pretrained(folder, max_shard_size="20KB")


def _unique_count(model: nn.Module) -> int:
    # model.parameters() yields a tied tensor once.
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("make", [_gpt2, _bert, _llama], ids=["gpt2", "bert", "llama"])
def test_count_of_a_sharded_hf_folder_is_the_models_own(
    tmp_path: Path, make: Callable[[], nn.Module]
) -> None:
    torch.manual_seed(0)
    model = make()
    _save(model, tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("*.safetensors"))) > 1
    code, out, err = run("count", str(tmp_path), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["total"] == _unique_count(model)


def test_inspect_of_a_folder_measures_every_stored_tensor(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = _gpt2()
    _save(model, tmp_path)
    code, out, err = run("inspect", str(tmp_path), "--format", "json")
    assert code == 0, err
    params = {p["name"]: p for p in json.loads(out)["params"]}
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    assert set(params) == set(state)
    for name, value in state.items():
        assert params[name]["mean"] == pytest.approx(
            value.double().mean().item(), rel=1e-9, abs=1e-12
        )
        assert params[name]["min"] == value.min().item()


def test_a_folder_of_shards_without_an_index(tmp_path: Path) -> None:
    save_file({"a.weight": torch.ones(3, 4)}, tmp_path / "one.safetensors")
    save_file({"b.weight": torch.zeros(5, 2)}, tmp_path / "two.safetensors")
    code, out, err = run("count", str(tmp_path), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["total"] == 22


def test_dcp_folder_counts_and_stats_equal_the_state_dicts(tmp_path: Path) -> None:
    import torch.distributed.checkpoint as dcp

    torch.manual_seed(0)
    state = {
        "enc.weight": torch.randn(16, 8),
        "enc.bias": torch.randn(16),
        "head.weight": torch.randn(3, 16),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save({"model": state, "step": 7}, checkpoint_id=tmp_path, no_dist=True)
    code, out, err = run("inspect", str(tmp_path), "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    assert found["counts"]["total"] == 16 * 8 + 16 + 3 * 16
    params = {p["name"]: p for p in found["params"]}
    for name, value in state.items():
        p = params[f"model.{name}"]
        assert p["mean"] == pytest.approx(value.double().mean().item(), rel=1e-12, abs=1e-15)
        assert p["var"] == pytest.approx(value.double().var().item(), rel=1e-12)
        assert p["max"] == value.max().item()


def test_float8_tensors_are_measured(tmp_path: Path) -> None:
    t = torch.tensor([0.5, -1.0, 2.0, 4.0]).to(torch.float8_e4m3fn)
    save_file({"w": t}, tmp_path / "f8.safetensors")
    code, out, err = run("inspect", str(tmp_path / "f8.safetensors"), "--format", "json")
    assert code == 0, err
    (param,) = json.loads(out)["params"]
    assert param["mean"] == pytest.approx(1.375)
    assert param["dtype"] == "float8_e4m3fn"


def test_seed_with_a_weights_file_is_an_error(tmp_path: Path) -> None:
    save_file({"w": torch.ones(2, 2)}, tmp_path / "w.safetensors")
    code, _, err = run("inspect", str(tmp_path / "w.safetensors"), "--seed", "0")
    assert code == 2
    assert err.startswith("Error: --seed does not apply to a weights file")


def test_a_hf_folder_is_counted_as_its_own_model_built_on_meta(tmp_path: Path) -> None:
    from initcli.measure.counting import count_model

    torch.manual_seed(0)
    model = _gpt2()
    _save(model, tmp_path)
    code, out, err = run("count", str(tmp_path), "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    own = count_model(model)
    assert own.torchinfo is not None
    assert found["torchinfo"]["total"] == own.torchinfo.total
    types = {m["name"]: m["type"] for m in found["modules"]}
    assert types["transformer.h.0.attn.c_attn"] == "Conv1D"
    assert types["lm_head"] == "Linear"
    assert any(
        "not in the file, tied to a stored tensor: lm_head.weight" in n for n in found["notes"]
    )


def test_without_transformers_a_note_says_what_the_extra_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save(_gpt2(), tmp_path)
    monkeypatch.setitem(__import__("sys").modules, "transformers", None)
    code, out, err = run("count", str(tmp_path), "--format", "json")
    assert code == 0, err
    found = json.loads(out)
    assert any("pip install 'initcli[hf]'" in n for n in found["notes"])
    assert {m["type"] for m in found["modules"]} >= {"Linear?"}


def test_inspect_a_hf_folder_against_its_default_init(tmp_path: Path) -> None:
    torch.manual_seed(0)
    _save(_llama(), tmp_path)
    code, out, err = run("inspect", str(tmp_path), "--against", "default", "--format", "json")
    assert code == 0, err
    params = {p["name"]: p for p in json.loads(out)["params"]}
    assert params["model.layers.0.input_layernorm.weight"]["module"] == "LlamaRMSNorm"
    assert params["model.layers.0.mlp.up_proj.weight"]["module"] == "Linear"


def test_tensors_no_init_and_no_training_produce_are_flagged(tmp_path: Path) -> None:
    garbage = torch.full((4, 4), 3e35)
    nan = torch.ones(4, 4)
    nan[0, 0] = float("nan")
    save_file(
        {"a.weight": garbage, "b.weight": nan, "c.weight": torch.ones(4, 4)},
        tmp_path / "w.safetensors",
    )
    code, out, err = run("inspect", str(tmp_path / "w.safetensors"), "--format", "json")
    assert code == 0, err
    notes = json.loads(out)["counts"]["notes"]
    assert "1 tensors hold NaN or Inf (b.weight): no init and no training produces them." in notes
    assert any(n.startswith("1 tensors hold values beyond ±1e30 (a.weight)") for n in notes)
