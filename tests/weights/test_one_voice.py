"""Table, JSON and Notes of `inspect FOLDER` say the same thing (issue 22 item 4): each derived
once from freshness.judge_loaded's verdict, on a bare GPT-2 file and a BERT with a fresh
classifier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import transformers
from conftest import run
from torch import nn

from initcli.weights import freshness

transformers.logging.set_verbosity_error()

VOCAB = 200


def _train(model: nn.Module, kept: str, steps: int, batch: object) -> None:
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith(f"{kept}."))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for step in range(steps):
            loss = model(**batch(step)).loss  # type: ignore[operator]
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)


def _bare_gpt2(folder: Path) -> Path:
    """GPT-2 trained 30 steps, saved as a bare model.safetensors (no config.json)."""
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=VOCAB, n_positions=32)
    model = transformers.GPT2LMHeadModel(cfg)
    gen = torch.Generator().manual_seed(0)

    def batch(_: int) -> dict[str, torch.Tensor]:
        x = (torch.randint(0, VOCAB, (8, 1), generator=gen) + torch.arange(32)) % VOCAB
        return {"input_ids": x, "labels": x}

    _train(model, "none", 30, batch)
    model.save_pretrained(folder)
    (folder / "config.json").unlink()
    return folder / "model.safetensors"


def _bert_fresh_classifier(folder: Path) -> Path:
    """BERT for sequence classification trained 30 steps but for its classifier."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        vocab_size=VOCAB,
        max_position_embeddings=32,
        num_labels=2,
    )
    model = transformers.BertForSequenceClassification(cfg)
    gen = torch.Generator().manual_seed(0)

    def batch(_: int) -> dict[str, torch.Tensor]:
        x = torch.randint(0, VOCAB, (8, 32), generator=gen)
        return {"input_ids": x, "labels": x[:, 0] % 2}

    _train(model, "classifier", 30, batch)
    model.save_pretrained(folder)
    return folder


def _check_one_voice(target: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    code, out, _ = run("inspect", str(target), "--format", "json")
    assert code == 0
    data = json.loads(out)
    states = {p["name"]: p["state"] for p in data["params"]}
    fresh = set(data["fresh_modules"])
    at_init = {n for n, s in states.items() if s == freshness.AT_INIT}
    trained = {n for n, s in states.items() if s == freshness.TRAINED}
    notes = data["counts"]["notes"]
    for note in notes:
        assert "no module still holds" not in note
        if note.startswith("every tensor that can be told") and "looks trained" in note:
            assert not at_init, note
        if "still holds a fresh init's distribution" in note:
            assert not trained, note
        said = re.search(r"; (\d+) tensors? still read at init", note)
        if said:
            assert int(said.group(1)) == len(at_init), note
            assert not fresh
        if "freshly initialized among trained ones" in note:
            assert all(m in note for m in fresh), note
    for module in fresh:  # a flagged module holds no trained tensor
        assert not {n for n in trained if n.rpartition(".")[0] == module}
    # The table's state column is the JSON's state, with the module's flag beside it.
    monkeypatch.setenv("COLUMNS", "220")
    code, table, _ = run("inspect", str(target))
    assert code == 0
    for name, state in states.items():
        line = next(line for line in table.splitlines() if line.strip().startswith(f"{name} "))
        flagged = name.rpartition(".")[0] in fresh
        cell = f"{state}, fresh?" if flagged else state
        assert line.rstrip().endswith(cell), (line, cell)
    return data


def test_bare_gpt2_notes_agree_with_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _check_one_voice(_bare_gpt2(tmp_path), monkeypatch)
    assert data["fresh_modules"] == []


def test_bert_fresh_classifier_table_json_notes_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _check_one_voice(_bert_fresh_classifier(tmp_path), monkeypatch)
    assert data["fresh_modules"] == ["classifier"]
    states = {p["name"]: p["state"] for p in data["params"]}
    # The flag rests on the zero bias the classifier kept while every other bias and norm moved;
    # its 128-value weight is too small to tell, and both voices say so.
    assert states["classifier.bias"] == freshness.AT_INIT
    assert states["classifier.weight"] == freshness.UNDECIDED
