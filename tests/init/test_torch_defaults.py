"""initcli.init.torch_defaults: what each module type's own constructor draws, and the rule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initcli.init import schemes, torch_defaults
from initcli.init.torch_defaults import DefaultRule


def test_linear_4_5_is_a_third_over_fan_in_as_torch_draws_it() -> None:
    exp = torch_defaults.default_expectations(nn.Linear(4, 5))
    # Linear.reset_parameters: kaiming_uniform_(a=√5), whose bound is gain·√(3/fan_in).
    bound = nn.init.calculate_gain("leaky_relu", math.sqrt(5)) * math.sqrt(3 / 4)
    for name in ("weight", "bias"):
        assert exp[name].var == pytest.approx(1 / (3 * 4), rel=1e-15)
        assert exp[name].var == pytest.approx(bound**2 / 3, rel=1e-12)
        assert (exp[name].mean, exp[name].kurtosis) == (0.0, schemes.KURTOSIS_UNIFORM)
    assert (exp["weight"].init, exp["bias"].init) == (
        "kaiming_uniform(a=√5)",
        "uniform(±1/√fan_in)",
    )
    # What torch's own constructor draws: 400,000 values of U(±1/2).
    torch.manual_seed(0)
    drawn = nn.Linear(4, 100_000).weight.detach().double()
    assert float(drawn.abs().max()) <= 0.5
    assert float(drawn.var()) == pytest.approx(1 / 12, rel=0.01)


def test_lazy_parameters_are_uninitialized() -> None:
    exp = torch_defaults.default_expectations(nn.LazyLinear(3))
    assert exp["weight"] == schemes.Expectation("uninitialized (lazy)")


def test_default_rules_as_text() -> None:
    weight = DefaultRule("weight", "kaiming_uniform_(a=√5)", "U(±1/√fan_in)", "1/(3·fan_in)")
    bias = DefaultRule("bias", "uniform_(-1/√fan_in, 1/√fan_in)", "U(±1/√fan_in)", "1/(3·fan_in)")
    assert torch_defaults.default_rules(nn.Linear(4, 5)) == (weight, bias)
    assert torch_defaults.default_rules(nn.Linear(4, 5, bias=False)) == (weight,)
    bilinear = torch_defaults.default_rules(nn.Bilinear(3, 4, 2))
    # Bilinear draws both from uniform_(±1/√in1_features): not kaiming_uniform, not fan_in.
    assert [(r.param, r.init, r.values, r.variance) for r in bilinear] == [
        (p, "uniform_(-1/√in1_features, 1/√in1_features)", "U(±1/√in1_features)",
         "1/(3·in1_features)")
        for p in ("weight", "bias")
    ]  # fmt: skip
    labels = torch_defaults.default_expectations(nn.Bilinear(3, 4, 2))
    assert {k: e.init for k, e in labels.items()} == dict.fromkeys(
        ("weight", "bias"), "uniform(±1/√in1_features)"
    )
    (padded,) = torch_defaults.default_rules(nn.Embedding(5, 2, padding_idx=0))
    assert padded.variance == "(n−1)/n: the padding_idx row is zeroed"
    out_proj = nn.MultiheadAttention(4, 2).out_proj
    assert torch_defaults.default_rules(out_proj)[1] == DefaultRule(
        "bias", "constant_(0), by its MultiheadAttention", "0", "0"
    )
    assert torch_defaults.default_rules(nn.PReLU()) == (
        DefaultRule("weight", "constant_(0.25)", "0.25", "0"),
    )
    assert torch_defaults.default_rules(nn.ReLU()) == ()


def _defaults(model: nn.Module) -> dict[str, schemes.Expectation]:
    return torch_defaults.default_expectations(model)


def test_linear_and_conv_defaults_are_a_third_over_fan_in() -> None:
    exp = _defaults(
        nn.Sequential(nn.Linear(20, 7), nn.Conv2d(3, 4, 5), nn.ConvTranspose2d(4, 6, 3))
    )
    assert exp["0.weight"].var == pytest.approx(1 / (3 * 20))
    assert exp["0.bias"].var == pytest.approx(1 / (3 * 20))
    assert exp["1.weight"].var == pytest.approx(1 / (3 * 75))
    assert exp["1.bias"].var == pytest.approx(1 / (3 * 75))
    # ConvTranspose weights are (in, out, k, k): torch's fan_in is out×k×k = 54.
    assert exp["2.weight"].var == pytest.approx(1 / (3 * 54))
    assert exp["0.weight"].kurtosis == schemes.KURTOSIS_UNIFORM


def test_embedding_rnn_norm_and_attention_defaults() -> None:
    model = nn.ModuleDict({
        "emb": nn.Embedding(10, 4),
        "pad": nn.Embedding(10, 4, padding_idx=0),
        "lstm": nn.LSTM(4, 8),
        "gru": nn.GRU(4, 6),
        "bn": nn.BatchNorm1d(3),
        "ln": nn.LayerNorm(3),
        "gn": nn.GroupNorm(1, 3),
        "mha": nn.MultiheadAttention(8, 2, add_bias_kv=True),
        "prelu": nn.PReLU(),
    })  # fmt: skip
    exp = _defaults(model)
    assert exp["emb.weight"] == schemes.Expectation("normal(0, 1)", 0.0, 1.0, 3.0)
    assert exp["pad.weight"].var == pytest.approx(0.9)
    assert exp["lstm.weight_hh_l0"].var == pytest.approx(1 / 24)
    assert exp["lstm.bias_ih_l0"].var == pytest.approx(1 / 24)
    assert exp["gru.weight_ih_l0"].var == pytest.approx(1 / 18)
    for name in ("bn", "ln", "gn"):
        assert exp[f"{name}.weight"] == schemes.Expectation("ones", 1.0, 0.0)
        assert exp[f"{name}.bias"] == schemes.Expectation("zeros", 0.0, 0.0)
    assert exp["mha.in_proj_weight"].var == pytest.approx(2 / (8 + 24))
    assert exp["mha.in_proj_bias"].var == 0.0
    assert exp["mha.out_proj.bias"] == schemes.Expectation("zeros", 0.0, 0.0)
    assert exp["mha.out_proj.weight"].var == pytest.approx(1 / 24)
    assert exp["mha.bias_k"].var == pytest.approx(2 / 16)
    assert exp["prelu.weight"].mean == 0.25


def test_unknown_module_types_are_unknown() -> None:
    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(3, 3))

    assert _defaults(Custom())["scale"] == schemes.UNKNOWN


def test_transformer_reinitializes_its_matrices_with_xavier() -> None:
    model = nn.Transformer(
        d_model=8,
        nhead=2,
        num_encoder_layers=1,
        num_decoder_layers=1,
        dim_feedforward=16,
        batch_first=True,
    )
    exp = _defaults(model)
    w = "encoder.layers.0.linear1.weight"
    assert exp[w].init == "xavier_uniform"
    assert exp[w].var == pytest.approx(2 / (8 + 16))
