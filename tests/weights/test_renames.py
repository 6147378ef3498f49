"""transformers' own key rules map a saved folder onto its model (issue 22 item 1): ViT, DeiT
and Swin save the old names (`attention.attention.key`), Mixtral one tensor per expert."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import transformers
from safetensors import safe_open
from torch import nn

from initcli.report import inspect_checkpoint
from initcli.weights import freshness, renames

transformers.logging.set_verbosity_error()


def _vit() -> nn.Module:
    cfg = transformers.ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        image_size=32,
        patch_size=8,
        num_labels=3,
    )
    return transformers.ViTForImageClassification(cfg)


def _deit() -> nn.Module:
    cfg = transformers.DeiTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    return transformers.DeiTForImageClassification(cfg)


def _swin() -> nn.Module:
    cfg = transformers.SwinConfig(
        embed_dim=16, depths=[1, 1], num_heads=[1, 2], image_size=32, patch_size=4, window_size=4
    )
    return transformers.SwinForImageClassification(cfg)


def _mixtral() -> nn.Module:
    cfg = transformers.MixtralConfig(
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        intermediate_size=64,
        vocab_size=100,
        num_local_experts=2,
    )
    return transformers.MixtralForCausalLM(cfg)


# Found by saving small configs of the common families and comparing the saved key set with
# the model's state dict (transformers 5.24): BERT, RoBERTa, DistilBERT, ALBERT, ELECTRA,
# GPT-2, OPT, Llama, Mistral, Qwen2, Gemma, Phi, T5, BART, CLIP and wav2vec2 save their module
# names (less tied copies); these four do not.
RENAMED: dict[str, Callable[[], nn.Module]] = {
    "vit": _vit,
    "deit": _deit,
    "swin": _swin,
    "mixtral": _mixtral,
}


def _saved(model: nn.Module, folder: Path) -> set[str]:
    model.save_pretrained(folder)
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return set(f.keys())


@pytest.mark.parametrize("kind", sorted(RENAMED))
def test_saved_names_map_as_from_pretrained_loads_them(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RENAMED[kind]()
    saved = _saved(model, tmp_path)
    own = set(model.state_dict())
    assert saved - own, "the saved names must differ from the module names for this test"
    _, info = type(model).from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]

    found = renames.loaded_names(model, saved)
    assert set(found.names) == saved
    assert found.unexpected == ()
    assert found.filled == own - {"lm_head.weight"} or found.filled == own  # tied lm_head

    report = inspect_checkpoint(tmp_path)
    notes = report.counts.counts.notes
    assert not [n for n in notes if "the file does not hold" in n], notes
    assert not [n for n in notes if "parameters; the model has" in n], notes
    assert not [n for n in notes if "no place in the model" in n], notes
    assert freshness.TRAINED not in {p.state for p in report.params}


def test_vit_fresh_classifier_is_found(tmp_path: Path) -> None:
    """A ViT trained 30 Adam steps with its classifier left at init (as a head that did not
    load): the classifier, and only it, is flagged."""
    torch.manual_seed(0)
    model = _vit()
    for name, p in model.named_parameters():
        p.requires_grad_(not name.startswith("classifier."))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _ in range(30):
            x = torch.randn(8, 3, 32, 32, generator=gen)
            y = torch.randint(0, 3, (8,), generator=gen)
            loss = model(pixel_values=x, labels=y).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    model.save_pretrained(tmp_path)
    report = inspect_checkpoint(tmp_path)
    assert report.fresh_modules == ("classifier",)
