"""initcli.init.auto: the scheme each weight gets from the activation after it, and why."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional

from initcli import report
from initcli.errors import ProbeError, SchemeError
from initcli.init import assign, auto, schemes
from initcli.model.spec import build_mlp, load_spec

MODELS = "tests/probe_models.py"


@pytest.mark.parametrize(
    ("module", "kind"),
    [
        (nn.ReLU(), ("relu", 0.0)),
        (nn.ReLU6(), ("relu", 0.0)),  # a Hardtanh subclass: the first match wins
        (nn.Hardtanh(), ("tanh", 0.0)),
        (nn.LeakyReLU(0.2), ("leaky_relu", 0.2)),
        (nn.PReLU(init=0.1), ("leaky_relu", 0.1)),
        (nn.Mish(), ("silu", 0.0)),
        (nn.CELU(), ("elu", 0.0)),
        (nn.Linear(2, 2), None),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, nn.Module) else None,
)
def test_activation_kind(module: nn.Module, kind: tuple[str, float] | None) -> None:
    assert auto.activation_kind(module) == kind


def test_functional_kind() -> None:
    assert auto.functional_kind(functional.relu) == ("relu", 0.0)
    assert auto.functional_kind(torch.tanh) == ("tanh", 0.0)
    # F.leaky_relu without its module: torch's default slope, 0.01.
    assert auto.functional_kind(functional.leaky_relu) == ("leaky_relu", 0.01)
    assert auto.functional_kind(nn.GELU()) == ("gelu", 0.0)
    assert auto.functional_kind(lambda x: x) is None


@pytest.mark.parametrize(
    ("kind", "described"),
    [
        ("relu", "kaiming_normal(mode=fan_in, nonlinearity=relu, a=0)"),
        ("gelu", "kaiming_normal(mode=fan_in, nonlinearity=relu, a=0)"),
        ("leaky_relu", "kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0.2)"),
        ("tanh", "xavier_normal(gain=tanh)"),
        ("sigmoid", "xavier_normal(gain=sigmoid)"),
        ("selu", "lecun_normal"),
        (None, "xavier_normal(gain=1)"),
    ],
)
def test_auto_scheme_per_kind(kind: str | None, described: str) -> None:
    assert auto.auto_scheme(kind, 0.2).describe() == described


def test_follower_label_shows_a_leaky_slope_only() -> None:
    assert auto.follower_label("leaky_relu", 0.2, "act2 LeakyReLU") == "act2 LeakyReLU(0.2)"
    assert auto.follower_label("leaky_relu", 0.0, "act2 LeakyReLU") == "act2 LeakyReLU"
    assert auto.follower_label("relu", 0.0, "act1 ReLU") == "act1 ReLU"


def test_auto_choices_per_weight_with_the_reason() -> None:
    model = nn.Sequential(
        nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Embedding(5, 3), nn.LSTM(3, 4)
    )
    followers = {"0": auto.Follower("relu", 0.0, "1 ReLU"), "2": auto.Follower(None)}
    got = {
        name: (scheme.describe(), why)
        for name, (scheme, why) in auto.auto_choices(model, followers).items()
    }
    assert got == {
        "0.weight": ("kaiming_normal(mode=fan_in, nonlinearity=relu, a=0)", "1 ReLU"),
        "2.weight": ("xavier_normal(gain=1)", "no activation follows"),
        "3.weight": ("normal(mean=0, std=1)", "embedding rows are looked up, not summed"),
        "4.weight_ih_l0": ("xavier_normal(gain=1)", "LSTM input to sigmoid/tanh gates"),
        "4.weight_hh_l0": ("orthogonal(gain=1)", "recurrent matrix, applied at every step"),
    }
    # A module no follower was found for: xavier_normal, with the caller's reason.
    (only,) = auto.auto_choices(nn.Sequential(nn.Linear(2, 2)), {}, missing="not traced").values()
    assert (only[0].describe(), only[1]) == ("xavier_normal(gain=1)", "not traced")


def _auto(target: str, **kw: object) -> dict[str, str]:
    r = report.inspect(target, init="auto", **kw)  # type: ignore[arg-type]
    return {p.name: p.init for p in r.params}


def test_auto_from_the_spec() -> None:
    inits = _auto("sample_models/mlp.yaml")
    assert inits["fc1.weight"] == "kaiming_normal(relu) ← act1 relu (spec)"
    assert inits["fc2.weight"] == "kaiming_normal(relu) ← act2 relu (spec)"
    assert inits["fc3.weight"] == "xavier_normal ← no activation in the spec"
    assert inits["fc1.bias"] == "zeros"


def test_auto_from_a_traced_forward() -> None:
    inits = _auto("sample_models/mlp.py:MLP")  # one ReLU module, called twice
    assert inits["fc1.weight"] == "kaiming_normal(relu) ← relu ReLU"
    assert inits["fc2.weight"] == "kaiming_normal(relu) ← relu#2 ReLU"
    assert inits["fc3.weight"].startswith("xavier_normal ← no activation follows")


def test_auto_per_activation_family() -> None:
    inits = _auto(f"{MODELS}:activations")
    assert inits["0.weight"] == "kaiming_normal(leaky_relu, a=0.2) ← 1 LeakyReLU(0.2)"
    assert inits["2.weight"] == "lecun_normal ← 3 SELU"
    assert inits["4.weight"] == "xavier_normal(gain=sigmoid) ← 5 Sigmoid"
    assert inits["6.weight"] == "kaiming_normal(relu) ← 7 GELU"
    assert inits["8.weight"] == "xavier_normal(gain=tanh) ← 10 Tanh"  # past the Dropout
    assert inits["11.weight"].startswith("xavier_normal ← no activation follows")
    assert _auto(f"{MODELS}:conv_bn")["0.weight"] == "kaiming_normal(relu) ← 2 ReLU"


def test_auto_special_weights() -> None:
    inits = _auto("sample_models.transformer:TinyTransformer")
    assert inits["embed.weight"].startswith("normal(std=1) ← embedding")
    assert inits["encoder.layers.0.self_attn.in_proj_weight"].startswith(
        "xavier_normal ← attention"
    )
    # The encoder layer applies F.relu between linear1 and linear2; its `activation` names it.
    assert inits["encoder.layers.0.linear1.weight"].startswith("kaiming_normal(relu) ←")
    lstm = _auto("sample_models.lstm:LSTMClassifier")
    assert lstm["lstm.weight_hh_l0"].startswith("orthogonal ← recurrent")
    assert lstm["lstm.weight_ih_l0"].startswith("xavier_normal ← LSTM")
    functional = _auto(f"{MODELS}:Functional")
    assert functional["fc1.weight"] == "xavier_normal ← no activation module before fc2"


def test_auto_without_a_traceable_forward_says_why() -> None:
    inits = _auto("tests/models_for_tests.py:Odd")
    assert "give --input-shape" in inits["half.weight"]
    with pytest.raises(ProbeError, match="--input-shape"):
        _auto(f"{MODELS}:mismatched", input_shape=(7,))


def test_auto_follows_the_seeding_contract() -> None:
    """Same values as: build, manual_seed(0), then each chosen torch.nn.init call in order."""
    spec = load_spec("sample_models/mlp.yaml")
    model = build_mlp(spec)
    choices = auto.auto_choices(model, report.spec_followers(spec))
    exp = assign.initialize(
        model, schemes.parse_scheme("auto"), schemes.parse_scheme("zeros"), 0, choices
    )
    theirs = build_mlp(spec)
    torch.manual_seed(0)
    nn.init.kaiming_normal_(theirs.fc1.weight, nonlinearity="relu")
    nn.init.zeros_(theirs.fc1.bias)
    nn.init.kaiming_normal_(theirs.fc2.weight, nonlinearity="relu")
    nn.init.zeros_(theirs.fc2.bias)
    nn.init.xavier_normal_(theirs.fc3.weight)
    nn.init.zeros_(theirs.fc3.bias)
    for (name, ours), (_, ref) in zip(
        model.named_parameters(), theirs.named_parameters(), strict=True
    ):
        assert torch.equal(ours, ref), name
    assert exp["fc1.weight"].var == 2 / 4 and exp["fc3.weight"].var == 2 / (3 + 2)


def test_auto_is_in_the_registry() -> None:
    assert "auto" in [row.name for row in report.scheme_rows()]
    with pytest.raises(SchemeError, match="needs ≥2-D"):
        report.inspect("sample_models/mlp.yaml", init="kaiming", bias_init="auto")
