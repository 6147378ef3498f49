"""compare --train and probe --sweep on transformers models: the synthetic Markov language (its
entropy rate as the floor), 8×8 digits as pixel values for a ViT, a width sweep over n_embd."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import run

from initcli.experiments import data as datasets

MODELS = "tests/probe_real_models.py"


def test_markov_chain_is_a_chain_and_its_entropy_rate_is_the_floor() -> None:
    p, pi = datasets.markov_chain()
    assert torch.allclose(p.sum(dim=1), torch.ones(datasets.MARKOV_VOCAB, dtype=torch.float64))
    assert torch.allclose(pi @ p, pi, atol=1e-12) and float(pi.sum()) == pytest.approx(1.0)
    h = datasets.entropy_rate(p, pi)
    assert h == pytest.approx(float(-(pi[:, None] * p * p.log()).sum()), rel=1e-12)
    assert 0 < h < math.log(datasets.MARKOV_VOCAB)
    # The chain's own next-token predictions score the entropy rate on its 640 sequences: 19,840
    # predictions put the estimate's standard error near 0.01.
    d = datasets.markov(0, 0.2)
    x = torch.cat([d.x_train, d.x_val]) if d.x_val is not None else d.x_train
    ce = float(-p[x[:, :-1], x[:, 1:]].log().mean())
    assert ce == pytest.approx(h, abs=0.05)
    assert d.floor == h and d.sequence and d.classes == datasets.MARKOV_VOCAB
    assert d.x_train.shape == (512, datasets.MARKOV_LENGTH) and d.x_train.dtype == torch.int64


def test_compare_train_on_the_markov_language_with_a_small_gpt2() -> None:
    code, out, err = run(
        "compare", f"{MODELS}:tiny_gpt2", "-i", "default", "-i", "normal:std=0.2",
        "--train", "6", "--data", "markov", "--seeds", "2", "-b", "4", "-f", "json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    o = d["train_outcome"]
    p, pi = datasets.markov_chain()
    assert o["loss_floor"] == datasets.entropy_rate(p, pi)
    assert o["task"] == "classification" and o["metric"] == "validation loss"
    # Default target: a quarter of the way from the floor to chance, ln 16.
    assert o["target_loss"] == pytest.approx(o["loss_floor"] + (math.log(16) - o["loss_floor"]) / 4)
    assert [c["a"] for c in o["comparisons"]] == ["default"]
    for s in d["schemes"]:
        assert len(s["losses"]) == 7 and all(math.isfinite(v) for v in s["losses"])
        assert 0 <= s["accuracy"] <= 1 and s["seeds_summary"]["final_loss"]["n"] == 2
    # GPT-2's own init starts near chance, ln 16 ≈ 2.77 (logits of std ~0.02·√32·0.02 ≈ 0).
    assert d["schemes"][0]["losses"][0] == pytest.approx(math.log(16), abs=0.05)


def test_compare_train_on_digits_with_a_small_vit() -> None:
    code, out, err = run(
        "compare", f"{MODELS}:digits_vit", "-i", "default", "-i", "xavier_normal",
        "--train", "6", "--data", "digits", "--seeds", "2", "-b", "4", "-f", "json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    assert d["input"]["shape"] == [4, 1, 8, 8]
    assert d["train_outcome"]["loss_floor"] is None
    for s in d["schemes"]:
        assert len(s["losses"]) == 7 and all(math.isfinite(v) for v in s["losses"])
        assert s["val_loss"] is not None and 0 <= s["accuracy"] <= 1
    # ViT's own init: logits near 0, so the first loss is near ln 10.
    assert d["schemes"][0]["losses"][0] == pytest.approx(math.log(10), abs=0.1)


def test_markov_needs_a_model_that_gives_next_token_logits() -> None:
    code, _, err = run(
        "compare", f"{MODELS}:digits_vit", "-i", "default", "--train", "2", "--data", "markov"
    )
    assert code == 2 and ("next-token logits" in err or "cannot take them" in err), err


def test_width_sweep_over_n_embd_gives_per_block_exponents_and_verdicts() -> None:
    """The coord check on GPT-2 (standard parametrization): after one Adam step each block's
    output moves by ∝ width^1 (Adam's per-weight update is ~lr whatever the width, summed over
    n_embd inputs), so every update exponent grows; measured k ≈ 1.3-1.4."""
    code, out, err = run(
        "probe", "sample_models/gpt2_residual.py:gpt2", "--arg", "n_layer=2",
        "--sweep", "n_embd=32,64,128,256", "-i", "default", "--step", "-b", "8", "-f", "json",
    )  # fmt: skip
    assert code == 0, err
    d = json.loads(out)
    (scheme,) = d["schemes"]
    assert [b["name"] for b in scheme["blocks"]] == ["transformer.h.0", "transformer.h.1"]
    for b in scheme["blocks"]:
        assert b["exponent"]["verdict"] in {"width-stable", "grows", "shrinks", "unclear"}
        assert len(b["stds"]) == 4 and b["exponent"]["k"] is not None
        assert b["update_exponent"]["verdict"] == "grows" and b["update_exponent"]["k"] > 0.75
    assert scheme["verdict"] == "grows"
