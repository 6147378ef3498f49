"""`inspect file.py:load_model --loaded` (issue 22 item 6): the model the user's own loading
code produced (from_pretrained on a local folder) gets the same per-tensor `state` and
`fresh_modules` as the folder itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from conftest import run

from initcli.weights import freshness

transformers.logging.set_verbosity_error()

VOCAB = 200


@pytest.fixture(scope="module")
def mlm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A BERT masked-LM trained 30 Adam steps, saved: it has no pooler and no classifier."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        vocab_size=VOCAB,
        max_position_embeddings=32,
    )
    model = transformers.BertForMaskedLM(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(30):
            x = (torch.randint(0, VOCAB, (8, 1), generator=gen) + torch.arange(32)) % VOCAB
            loss = model(input_ids=x, labels=x).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    folder = tmp_path_factory.mktemp("mlm")
    model.save_pretrained(folder)
    return folder


def _factory(tmp_path: Path, folder: Path) -> str:
    code = (
        "import transformers\n\n"
        "def load_model():\n"
        "    return transformers.BertForSequenceClassification.from_pretrained(\n"
        f"        {str(folder)!r}, num_labels=2\n"
        "    )\n"
    )
    (tmp_path / "load.py").write_text(code, encoding="utf-8")
    return f"{tmp_path / 'load.py'}:load_model"


def test_loaded_flags_the_head_from_pretrained_filled_in(mlm_folder: Path, tmp_path: Path) -> None:
    code, out, _ = run("inspect", _factory(tmp_path, mlm_folder), "--loaded", "--format", "json")
    assert code == 0
    data = json.loads(out)
    # The pooler and the classifier are not in the MLM folder: from_pretrained drew them fresh.
    assert data["fresh_modules"] == ["bert.pooler.dense", "classifier"]
    states = {p["name"]: p["state"] for p in data["params"]}
    assert states["classifier.bias"] == freshness.AT_INIT
    assert states["bert.pooler.dense.weight"] == freshness.AT_INIT
    assert states["bert.encoder.layer.0.intermediate.dense.bias"] == freshness.TRAINED
    notes = data["counts"]["notes"]
    assert any("BertForSequenceClassification, built on the meta device" in n for n in notes)


def test_loaded_with_an_option_it_does_not_take_is_refused(
    mlm_folder: Path, tmp_path: Path
) -> None:
    code, _, err = run("inspect", _factory(tmp_path, mlm_folder), "--loaded", "--init", "normal")
    assert code == 2
    assert "--init does not apply with --loaded" in err
    code, _, err = run("inspect", str(mlm_folder), "--loaded")
    assert code == 2
    assert "--loaded does not apply to a weights file" in err


def test_loaded_factory_that_returns_no_module_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("def load_model():\n    return 3\n", encoding="utf-8")
    code, _, err = run("inspect", f"{tmp_path / 'bad.py'}:load_model", "--loaded")
    assert code == 2
    assert "not an nn.Module" in err
    assert "Traceback" not in err
