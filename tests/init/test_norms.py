"""Normalization layers recognized by their forward pass (initcli.init.norms), of any class."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from benchmarks.models.hf_architectures import ARCHITECTURES
from initcli.init import norms
from initcli.report import inspect

TARGET = "benchmarks/models/hf_architectures.py:{}"
# The norm class each architecture holds, and the value its constructor gives the gain.
HF_NORMS = {
    "llama": ("LlamaRMSNorm", 1.0),
    "mistral": ("MistralRMSNorm", 1.0),
    "mixtral": ("MixtralRMSNorm", 1.0),
    "qwen2": ("Qwen2RMSNorm", 1.0),
    "mamba": ("MambaRMSNorm", 1.0),
    "t5": ("T5LayerNorm", 1.0),
    "gemma": ("GemmaRMSNorm", 0.0),  # applied as (1 + w)
}


class Scale(nn.Module):
    """Scales by a 1-D parameter without normalizing: no norm."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight


class FirstDimNorm(nn.Module):
    """Normalizes over the first dimension, not the last: no norm either."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / x.pow(2).mean(0, keepdim=True).sqrt() * self.weight


class CenteredNorm(nn.Module):
    """A LayerNorm written by hand, gain and bias, eps 1e-5."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(d))
        self.beta = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(-1, keepdim=True)
        return (
            centred / (centred.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() * self.gamma + self.beta
        )


@pytest.mark.parametrize("arch", sorted(HF_NORMS))
def test_hf_norms_are_recognized_on_real_and_meta_builds(arch: str) -> None:
    kind, identity = HF_NORMS[arch]
    with torch.device("meta"):
        meta = ARCHITECTURES[arch]()
    for model in (ARCHITECTURES[arch](), meta):
        found = [norms.norm_of(m) for m in model.modules() if type(m).__name__ == kind]
        assert found and all(f == norms.Norm("weight", identity, torch_class=False) for f in found)


def test_torch_norms_and_non_norms() -> None:
    assert norms.norm_of(nn.LayerNorm(8)) == norms.Norm("weight", 1.0, torch_class=True)
    assert norms.norm_of(nn.BatchNorm1d(8)) is not None
    for module in (Scale(8), FirstDimNorm(8), nn.Linear(8, 8), nn.Embedding(4, 8), nn.ReLU()):
        assert norms.norm_of(module) is None, type(module).__name__
    assert norms.norm_of(CenteredNorm(8)) == norms.Norm("gamma", 1.0, torch_class=False)


def test_the_probe_leaves_the_random_stream_and_the_module_alone() -> None:
    torch.manual_seed(3)
    state = torch.random.get_rng_state()
    module = CenteredNorm(8)
    with torch.no_grad():
        module.gamma.fill_(0.25)
    calls: list[object] = []
    module.register_forward_hook(lambda *args: calls.append(args))
    assert norms.norm_of(module) is not None
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(module.gamma, torch.full((8,), 0.25))
    assert calls == []  # the user's hooks never see the probe


@pytest.mark.parametrize("arch", sorted(HF_NORMS))
def test_named_scheme_leaves_norm_gains_as_their_constructor_set_them(arch: str) -> None:
    kind, identity = HF_NORMS[arch]
    report = inspect(TARGET.format(arch), init="kaiming_normal", seed=0)
    built = dict(ARCHITECTURES[arch]().named_parameters())
    rows = [p for p in report.params if p.module == kind]
    assert rows
    for p in rows:
        own = built[p.name]
        assert bool((own == identity).all()), p.name  # what the constructor set
        assert p.mean == identity and p.var == 0.0 and p.status == "ok", p.name
    note = next(r for r in report.remarks if kind in r)
    assert "normalize their input over the last dimension" in note
    assert ("applied as 1 + w" in note) == (identity == 0.0)


def test_a_policy_rule_naming_the_norm_sets_it() -> None:
    report = inspect(TARGET.format("llama"), init="LlamaRMSNorm=constant:val=0.5", seed=0)
    rows = [p for p in report.params if p.module == "LlamaRMSNorm"]
    assert rows and all(p.mean == 0.5 and p.status == "ok" for p in rows)


def test_under_default_hf_norms_are_ok_against_their_identity() -> None:
    for arch in ("gemma", "t5"):
        kind, identity = HF_NORMS[arch]
        rows = [p for p in inspect(TARGET.format(arch)).params if p.module == kind]
        assert rows and all(p.status == "ok" and p.expected_mean == identity for p in rows)
