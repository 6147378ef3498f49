"""initcli.init.assign: the scheme each parameter gets, applied in the seeding contract's order."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initcli.errors import SchemeError
from initcli.init import assign, schemes
from initcli.init.schemes import parse_scheme


def test_choose_by_role() -> None:
    weight, bias = parse_scheme("kaiming_normal"), parse_scheme("normal:std=0.5")
    lin, norm = nn.Linear(3, 2), nn.BatchNorm1d(3)
    assert assign.choose(weight, bias, lin, "weight", lin.weight) is weight
    assert assign.choose(weight, bias, lin, "bias", lin.bias) is bias
    # Normalization layers start as the identity whatever the scheme.
    assert assign.choose(weight, bias, norm, "1.weight", norm.weight) == parse_scheme("ones")
    assert assign.choose(weight, bias, norm, "1.bias", norm.bias) == parse_scheme("zeros")
    # A policy: its choice where it made one, torch's default elsewhere.
    policy = schemes.Scheme(schemes.RULES, ())
    choices = {"weight": (weight, "rule Linear")}
    assert assign.choose(policy, bias, lin, "weight", lin.weight, choices) is policy
    assert assign.choose(policy, bias, lin, "bias", lin.bias, choices) == schemes.DEFAULT


def test_apply_to_turns_torchs_refusal_into_a_scheme_error() -> None:
    with pytest.raises(SchemeError) as err:
        assign.apply_to(parse_scheme("orthogonal"), "fc.bias", torch.empty(5))
    message = str(err.value)
    assert message.startswith(
        "torch.nn.init cannot apply orthogonal to fc.bias (float32, shape (5,)): "
    )
    assert message.endswith("; choose another scheme") and "\n" not in message
    assert err.value.__suppress_context__


def test_initialize_iter_sets_each_parameter_when_it_is_yielded() -> None:
    model = nn.Linear(3, 2)
    steps = assign.initialize_iter(model, parse_scheme("ones"), parse_scheme("zeros"), 0)
    name, exp = next(steps)
    assert (name, exp.init, exp.mean, exp.var) == ("weight", "ones", 1.0, 0.0)
    assert bool((model.weight == 1).all()) and not bool((model.bias == 0).all())
    assert next(steps)[0] == "bias"
    assert bool((model.bias == 0).all())


def test_initialize_follows_the_seeding_contract() -> None:
    """Build, manual_seed(N), then one nn.init call per parameter in named_parameters() order."""

    def build() -> nn.Module:
        return nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 3))

    torch.manual_seed(123)  # build-time randomness must not matter
    ours = build()
    assign.initialize(
        ours,
        parse_scheme("kaiming_normal:nonlinearity=relu"),
        parse_scheme("normal:std=0.1"),
        seed=7,
    )
    torch.manual_seed(999)
    theirs = build()
    torch.manual_seed(7)
    for name, p in theirs.named_parameters():
        if name.startswith("1."):
            nn.init.ones_(p) if name.endswith("weight") else nn.init.zeros_(p)
        elif p.dim() >= 2:
            nn.init.kaiming_normal_(p, nonlinearity="relu")
        else:
            nn.init.normal_(p, 0.0, 0.1)
    for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_initialize_touches_a_tied_tensor_once() -> None:
    emb = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = emb.weight
    model = nn.ModuleDict({"emb": emb, "head": head})
    result = assign.initialize(model, parse_scheme("xavier_uniform"), parse_scheme("zeros"), 0)
    assert list(result) == ["emb.weight"]
    torch.manual_seed(0)
    expected = nn.init.xavier_uniform_(torch.empty(10, 4))
    assert torch.equal(emb.weight, expected)


def test_initialize_with_default_bias_keeps_constructor_biases() -> None:
    torch.manual_seed(0)
    model = nn.Linear(8, 4)
    before = model.bias.detach().clone()
    result = assign.initialize(model, parse_scheme("xavier_normal"), parse_scheme("default"), 1)
    assert torch.equal(model.bias, before)
    assert result["bias"].var == pytest.approx(1 / 24)
    assert result["weight"].init == "xavier_normal"


def test_lazy_parameters_are_skipped_not_crashed() -> None:
    model = nn.Sequential(nn.LazyLinear(3), nn.Linear(3, 2))
    result = assign.initialize(model, parse_scheme("kaiming_normal"), parse_scheme("zeros"), 0)
    assert result["0.weight"].init == "uninitialized (lazy)"
    assert result["0.weight"].var is None
    assert result["1.weight"].var == pytest.approx(2 / 3)


def test_auto_needs_choices() -> None:
    model = nn.Linear(3, 3)
    with pytest.raises(SchemeError, match="auto needs"):
        assign.initialize(model, schemes.parse_scheme("auto"), schemes.parse_scheme("zeros"), 0)
