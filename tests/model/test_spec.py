"""Tests for initcli.model.spec: YAML MLP specs, their error messages and the models they build."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from textwrap import dedent

import pydantic
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from initcli.errors import SpecError
from initcli.init.policy import check_spec_init
from initcli.model.spec import (
    ACTIVATIONS,
    NORMS,
    Layer,
    LayerSpec,
    MLPSpec,
    build_mlp,
    expand_layers,
    load_spec,
    parse_spec,
    spec_json_schema,
)

TUTORIAL = """\
input: 4
layers:
  - {units: 5, activation: relu}
  - {units: 3, activation: relu}
  - {units: 2}
"""

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def error_of(text: str, source: str = "spec.yaml") -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(text, source, check_spec_init)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


def load_error(path: Path) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(path, check_spec_init)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


# --- valid specs and what they build ------------------------------------------------------------


def test_tutorial_mlp_builds_fc_act_children_with_51_params() -> None:
    model = build_mlp(parse_spec(TUTORIAL))
    assert [name for name, _ in model.named_children()] == ["fc1", "act1", "fc2", "act2", "fc3"]
    assert [(m.in_features, m.out_features) for m in model if isinstance(m, torch.nn.Linear)] == [
        (4, 5),
        (5, 3),
        (3, 2),
    ]
    assert isinstance(model.act1, torch.nn.ReLU)
    assert n_params(model) == 51
    assert model(torch.zeros(7, 4)).shape == (7, 2)


def test_parse_spec_fills_defaults() -> None:
    spec = parse_spec(TUTORIAL)
    assert spec.name is None
    assert spec.bias is True
    assert spec.init is None
    assert spec.layers[2] == LayerSpec(units=2)
    assert spec.layers[2].bias is None
    assert spec.layers[2].dropout == 0.0
    assert spec.layers[2].repeat == 1


def test_name_and_init_are_kept_as_given() -> None:
    spec = parse_spec(
        "name: MyMLP\ninit: 'kaiming_normal:mode=fan_out'\ninput: 2\nlayers: [{units: 1}]\n"
    )
    assert spec.name == "MyMLP"
    assert spec.init == "kaiming_normal:mode=fan_out"
    assert n_params(build_mlp(spec)) == 3


def test_bias_defaults_to_true_and_a_layer_can_turn_it_off() -> None:
    spec = parse_spec("input: 3\nlayers:\n  - {units: 4}\n  - {units: 2, bias: false}\n")
    layers = expand_layers(spec)
    assert [layer.bias for layer in layers] == [True, False]
    model = build_mlp(spec)
    assert isinstance(model.fc1, torch.nn.Linear)
    assert isinstance(model.fc2, torch.nn.Linear)
    assert model.fc1.bias is not None
    assert model.fc2.bias is None
    assert n_params(model) == 3 * 4 + 4 + 4 * 2


def test_top_level_bias_false_is_the_default_for_every_layer() -> None:
    spec = parse_spec("input: 3\nbias: false\nlayers: [{units: 4}, {units: 2, bias: true}]\n")
    assert [layer.bias for layer in expand_layers(spec)] == [False, True]
    assert n_params(build_mlp(spec)) == 3 * 4 + 4 * 2 + 2


def test_repeat_expands_into_numbered_layers() -> None:
    spec = parse_spec("input: 256\nlayers:\n  - {units: 256, activation: tanh, repeat: 10}\n")
    layers = expand_layers(spec)
    assert [layer.index for layer in layers] == list(range(1, 11))
    assert all((layer.in_features, layer.out_features) == (256, 256) for layer in layers)
    model = build_mlp(spec)
    names = [name for name, _ in model.named_children()]
    assert names == [f"{kind}{i}" for i in range(1, 11) for kind in ("fc", "act")]
    assert all(isinstance(getattr(model, f"act{i}"), torch.nn.Tanh) for i in range(1, 11))
    assert n_params(model) == 10 * (256 * 256 + 256)


def test_expand_layers_chains_widths_across_repeats() -> None:
    spec = parse_spec(
        "input: 3\nlayers: [{units: 8, repeat: 2, norm: layernorm}, {units: 1, bias: false}]"
    )
    assert expand_layers(spec) == [
        Layer(1, 3, 8, True, None, "layernorm", 0.0),
        Layer(2, 8, 8, True, None, "layernorm", 0.0),
        Layer(3, 8, 1, False, None, None, 0.0),
    ]


def test_layer_order_is_linear_norm_activation_dropout() -> None:
    spec = parse_spec(
        dedent("""\
        input: 6
        layers:
          - {units: 5, norm: batchnorm, activation: gelu, dropout: 0.25}
          - {units: 4, dropout: 0.5}
          - {units: 3, norm: layernorm}
          - {units: 2, activation: identity, dropout: 0}
        """)
    )
    model = build_mlp(spec)
    names = [name for name, _ in model.named_children()]
    assert names == ["fc1", "norm1", "act1", "drop1", "fc2", "drop2", "fc3", "norm3", "fc4", "act4"]
    assert isinstance(model.norm1, torch.nn.BatchNorm1d)
    assert model.norm1.num_features == 5
    assert isinstance(model.norm3, torch.nn.LayerNorm)
    assert model.norm3.normalized_shape == (3,)
    assert isinstance(model.drop1, torch.nn.Dropout)
    assert isinstance(model.drop2, torch.nn.Dropout)
    assert model.drop1.p == 0.25
    assert model.drop2.p == 0.5
    assert type(model.act4) is torch.nn.Identity
    norms = 2 * 5 + 2 * 3
    assert n_params(model) == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3) + (3 * 2 + 2) + norms


ACTIVATION_TYPES = {
    "relu": torch.nn.ReLU,
    "leaky_relu": torch.nn.LeakyReLU,
    "tanh": torch.nn.Tanh,
    "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "selu": torch.nn.SELU,
    "elu": torch.nn.ELU,
    "identity": torch.nn.Identity,
}


def test_the_public_activation_and_norm_lists() -> None:
    assert tuple(ACTIVATION_TYPES) == ACTIVATIONS
    assert NORMS == ("batchnorm", "layernorm")


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_builds_its_module(activation: str) -> None:
    model = build_mlp(parse_spec(f"input: 2\nlayers: [{{units: 3, activation: {activation}}}]"))
    assert type(model.act1) is ACTIVATION_TYPES[activation]
    assert model(torch.ones(4, 2)).shape == (4, 3)


def test_leaky_relu_uses_the_default_slope() -> None:
    model = build_mlp(parse_spec("input: 2\nlayers: [{units: 3, activation: leaky_relu}]"))
    assert isinstance(model.act1, torch.nn.LeakyReLU)
    assert model.act1.negative_slope == 0.01


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (TUTORIAL, 51),
        ("input: 10\nlayers: [{units: 1}]", 11),
        ("input: 10\nbias: false\nlayers: [{units: 1}]", 10),
        ("input: 4\nlayers: [{units: 8, norm: batchnorm}, {units: 2}]", 4 * 8 + 8 + 16 + 8 * 2 + 2),
        ("input: 4\nlayers: [{units: 8, norm: layernorm, bias: false}]", 4 * 8 + 16),
        ("input: 2\nlayers: [{units: 3, repeat: 3, dropout: 0.1}]", (2 * 3 + 3) + 2 * (3 * 3 + 3)),
    ],
)
def test_exact_parameter_counts(text: str, expected: int) -> None:
    assert n_params(build_mlp(parse_spec(text))) == expected


def test_dropout_accepts_an_integer_zero() -> None:
    spec = parse_spec("input: 2\nlayers: [{units: 3, dropout: 0}]")
    assert spec.layers[0].dropout == 0.0
    assert [name for name, _ in build_mlp(spec).named_children()] == ["fc1"]


def test_standard_yaml_tags_are_accepted() -> None:
    spec = parse_spec("input: !!int 4\nname: !!str 2024\nlayers: !!seq [{units: 2}]")
    assert spec.input == 4
    assert spec.name == "2024"


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + TUTORIAL.encode())
    assert n_params(build_mlp(load_spec(path))) == 51


def test_load_spec_takes_str_and_path(tmp_path: Path) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_text(TUTORIAL, encoding="utf-8")
    assert load_spec(path) == load_spec(str(path)) == parse_spec(TUTORIAL)


def test_specs_are_frozen() -> None:
    spec = parse_spec(TUTORIAL)
    with pytest.raises(pydantic.ValidationError):
        spec.input = 5  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        spec.layers[0].units = 5  # type: ignore[misc]


def test_json_schema_describes_the_spec() -> None:
    schema = spec_json_schema()
    text = json.dumps(schema)
    assert "layers" in text
    assert "units" in text
    assert schema["required"] == ["input", "layers"]
    assert schema["additionalProperties"] is False
    for activation in ACTIVATIONS:
        assert f'"{activation}"' in text


# --- reading files ------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert load_error(path) == f"{path}: no such file; check the path"


def test_directory(tmp_path: Path) -> None:
    message = load_error(tmp_path)
    assert message.startswith(f"{tmp_path} is a directory")
    assert "give the path of a .yaml spec file" in message


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n# another\n", "---\n", "~\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_text(content, encoding="utf-8")
    assert load_error(path) == f"{path} is empty; a spec needs input: and layers:"


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_bytes(b"input: 4\nname: caf\xe9\nlayers: [{units: 1}]\n")
    message = load_error(path)
    assert message.startswith(f"{path}, line 2: ")
    assert "is not UTF-8 text" in message
    assert "save it as UTF-8" in message


def test_load_spec_uses_the_path_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "mlp.yaml"
    path.write_text("input: 4\nlayers:\n  - {unit: 5}\n", encoding="utf-8")
    assert load_error(path).startswith(f"{path}, line 3: unknown key 'unit' in layer 1")


# --- YAML structure -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [("- 1\n- 2\n", "not a list"), ("hello\n", "not the value 'hello'"), ("4", "the value '4'")],
)
def test_spec_that_is_not_a_mapping(text: str, shown: str) -> None:
    message = error_of(text)
    assert message.startswith("spec.yaml, line 1: a spec must be a mapping with input: and layers:")
    assert shown in message


def test_yaml_syntax_error_names_its_line() -> None:
    message = error_of("input: 4\nlayers:\n  - {units: 5\n  - {units: 2}\nbias: [\n")
    assert message.startswith("spec.yaml, line ")
    assert "invalid YAML: " in message
    assert message.endswith("; fix the syntax there")
    assert error_of("input: 4\n  bad: indent\n").startswith("spec.yaml, line 2: invalid YAML: ")


def test_more_than_one_document() -> None:
    message = error_of("input: 4\n---\ninput: 5\n")
    assert message.startswith("spec.yaml, line 2: invalid YAML: expected a single document")


def test_control_character() -> None:
    message = error_of("input: 4\nname: a\x00b\n")
    assert message == "spec.yaml, line 2: character #x0000 is not allowed in YAML; remove it"


def test_duplicate_top_level_key() -> None:
    message = error_of("input: 4\nlayers: [{units: 1}]\ninput: 5\n")
    assert message == (
        "spec.yaml, line 3: duplicate key 'input' at the top level (first at line 1); keep only one"
    )


def test_duplicate_key_in_a_layer() -> None:
    message = error_of("input: 4\nlayers:\n  - {units: 1}\n  - units: 2\n    units: 3\n")
    assert message == (
        "spec.yaml, line 5: duplicate key 'units' in layer 2 (first at line 4); keep only one"
    )


def test_a_key_that_is_a_list() -> None:
    message = error_of("input: 4\n? [a, b]\n: 1\n")
    assert message.startswith("spec.yaml, line 2: a key at the top level is a list or mapping")


def test_deep_nesting_is_refused_before_composing() -> None:
    message = error_of("input: " + "[" * 5000 + "]" * 5000)
    assert message.startswith("spec.yaml, line 1: nesting is deeper than 32 levels")


def test_anchor_and_alias_are_refused() -> None:
    text = "input: 4\nlayers:\n  - &wide {units: 64}\n  - *wide\n"
    assert error_of(text) == (
        "spec.yaml, line 3: YAML anchors and aliases (&x / *x) are not allowed in a spec; "
        "write the layers out or use repeat:"
    )


def test_merge_key_is_an_unknown_key() -> None:
    message = error_of("input: 4\nlayers:\n  - {<<: {units: 3}}\n")
    assert message.startswith("spec.yaml, line 3: unknown key '<<' in layer 1; remove it")


def test_billion_laughs_is_refused_fast_and_small() -> None:
    lines = ['lol0: &lol0 "lol"']
    lines += [f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines += ["input: 4", "layers: [{units: *lol9}]"]
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = error_of("\n".join(lines))
    finally:
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert "YAML anchors and aliases (&x / *x) are not allowed" in message
    assert message.startswith("spec.yaml, line 1: ")
    assert elapsed < 0.5
    assert peak < 2_000_000


def test_python_tag_is_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f'input: 4\nlayers: !!python/object/apply:os.system ["touch {marker}"]\n'
    assert error_of(text) == (
        "spec.yaml, line 2: tag '!!python/object/apply:os.system' is not allowed in a spec; "
        "remove it (a spec holds only plain YAML values)"
    )
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("input: !custom 4\n", "!custom"),
        ("input: !!set {a}\n", "!!set"),
        ("input: !!timestamp 2024-01-01\n", "!!timestamp"),
        ("input: ! 4\n", "!"),
        ("!!python/name:os.system\n", "!!python/name:os.system"),
    ],
)
def test_other_explicit_tags_are_refused(text: str, tag: str) -> None:
    assert f"line 1: tag '{tag}' is not allowed in a spec" in error_of(text)


def test_standard_tag_on_the_wrong_node() -> None:
    message = error_of("input: 4\nname: !!str {a: 1}\nlayers: [{units: 1}]\n")
    assert message == "spec.yaml, line 2: name: tag '!!str' does not fit a mapping; remove it"


def test_implicit_timestamp_must_be_quoted() -> None:
    message = error_of("input: 4\nname: 2024-01-01\nlayers: [{units: 1}]\n")
    assert message == (
        "spec.yaml, line 2: name: value '2024-01-01' reads as a YAML timestamp; "
        "quote it if you mean a string"
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [("0b_", "int"), ("!!int abc", "int"), ("!!float x", "float"), ("!!bool maybe", "bool")],
)
def test_scalars_pyyaml_cannot_construct(value: str, kind: str) -> None:
    message = error_of(f"input: 4\nlayers:\n  - units: {value}\n")
    assert message.startswith("spec.yaml, line 3: units in layer 1: value ")
    assert f"is not a valid {kind}; fix it or quote it" in message


# --- keys and values ----------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest() -> None:
    assert error_of("input: 4\nlayer:\n  - {units: 1}\n") == (
        "spec.yaml, line 2: unknown key 'layer' at the top level; did you mean 'layers'? "
        "(valid keys: name, input, bias, init, layers)"
    )


def test_unknown_layer_key_suggests_the_closest() -> None:
    assert error_of("input: 4\nlayers:\n  - {units: 2}\n  - {unit: 5}\n") == (
        "spec.yaml, line 4: unknown key 'unit' in layer 2; did you mean 'units'? "
        "(valid keys: units, activation, bias, norm, dropout, repeat)"
    )


def test_unknown_key_with_nothing_close() -> None:
    message = error_of("input: 4\nlayers:\n  - units: 2\n    flavour: vanilla\n")
    assert message.startswith("spec.yaml, line 4: unknown key 'flavour' in layer 1; remove it")


def test_missing_input() -> None:
    assert error_of("\nlayers: [{units: 1}]\n") == (
        "spec.yaml, line 2: missing key 'input' at the top level; add it, e.g. input: 4 "
        "(an integer ≥ 1)"
    )


def test_missing_layers() -> None:
    message = error_of("input: 4\n")
    assert message.startswith("spec.yaml, line 1: missing key 'layers' at the top level; add it")


def test_missing_units_names_the_line_of_the_layer() -> None:
    assert error_of("input: 4\nlayers:\n  - {units: 2}\n  - activation: relu\n") == (
        "spec.yaml, line 4: missing key 'units' in layer 2; add it, e.g. units: 64 (an integer ≥ 1)"
    )


def test_a_layer_that_is_not_a_mapping() -> None:
    assert error_of("input: 4\nlayers:\n  - {units: 2}\n  - 5\n") == (
        "spec.yaml, line 4: layer 2 must be a mapping, got 5; "
        "write e.g. - {units: 5, activation: relu}"
    )


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('units: "5"', "units in layer 1 must be an integer ≥ 1, got '5' (a string)"),
        ("units: 5.5", "units in layer 1 must be an integer ≥ 1, got 5.5"),
        ("units: true", "units in layer 1 must be an integer ≥ 1, got true"),
        ("units: ", "units in layer 1 must be an integer ≥ 1, got null (an empty value)"),
        ('bias: "yes"', "bias in layer 1 must be true or false, got 'yes' (a string)"),
        ("bias: 1", "bias in layer 1 must be true or false, got 1"),
        ("dropout: true", "dropout in layer 1 must be a number p with 0 ≤ p < 1, got true"),
        ("dropout: '0.1'", "dropout in layer 1 must be a number p with 0 ≤ p < 1, got '0.1'"),
        ("repeat: 2.0", "repeat in layer 1 must be an integer ≥ 1, got 2.0"),
        ("activation: 3", "activation in layer 1 must be one of relu, leaky_relu"),
    ],
)
def test_wrong_types_in_a_layer(line: str, expected: str) -> None:
    text = (
        f"input: 4\nlayers:\n  - {line}\n"
        if "units" in line
        else (f"input: 4\nlayers:\n  - units: 2\n    {line}\n")
    )
    message = error_of(text)
    assert message.startswith(f"spec.yaml, line {3 if 'units' in line else 4}: {expected}")
    assert "; write e.g. " in message


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("input: '4'\nlayers: [{units: 1}]", 1, "input must be an integer ≥ 1, got '4' (a string)"),
        ("input: true\nlayers: [{units: 1}]", 1, "input must be an integer ≥ 1, got true"),
        ("input: 4\nlayers: {}", 2, "layers must be a non-empty list of layers, got a mapping"),
        ("input: 4\nlayers: 3", 2, "layers must be a non-empty list of layers, got 3"),
        ("input: 4\nbias: \nlayers: [{units: 1}]", 2, "bias must be true or false, got null"),
        ("input: 4\nname: 7\nlayers: [{units: 1}]", 2, "name must be a string, got 7"),
        (
            "input: 4\ninit: 0.1\nlayers: [{units: 1}]",
            2,
            "init must be a scheme string or a mapping of rules, got 0.1",
        ),
    ],
)
def test_wrong_types_at_top_level(text: str, line: int, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(f"spec.yaml, line {line}: {expected}")
    assert "; write e.g. " in message


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        ("input: 4\nlayers: [{units: 0}]", 2, "units in layer 1 must be an integer ≥ 1, got 0"),
        ("input: 4\nlayers: [{units: -3}]", 2, "units in layer 1 must be an integer ≥ 1, got -3"),
        ("input: 4\nlayers: [{units: 1, repeat: 0}]", 2, "repeat in layer 1 must be an integer"),
        (
            "input: 4\nlayers:\n- units: 1\n  dropout: 1.0",
            4,
            "dropout in layer 1 must be a number p with 0 ≤ p < 1, got 1.0",
        ),
        (
            "input: 4\nlayers:\n- units: 1\n  dropout: -0.1",
            4,
            "dropout in layer 1 must be a number p with 0 ≤ p < 1, got -0.1",
        ),
        ("input: 4\nlayers:\n- units: 1\n  dropout: .nan", 4, "dropout in layer 1 must be a"),
        ("input: 0\nlayers: [{units: 1}]", 1, "input must be an integer ≥ 1, got 0"),
        ("input: 4\nlayers: []", 2, "layers must be a non-empty list of layers, got an empty list"),
    ],
)
def test_out_of_range_values(text: str, line: int, expected: str) -> None:
    message = error_of(text)
    assert message.startswith(f"spec.yaml, line {line}: {expected}")
    assert "; write e.g. " in message


def test_unknown_activation_lists_the_valid_ones() -> None:
    assert error_of("input: 4\nlayers:\n  - {units: 2, activation: swish}\n") == (
        "spec.yaml, line 3: activation in layer 1 must be one of relu, leaky_relu, tanh, "
        "sigmoid, gelu, silu, selu, elu, identity, got 'swish'; write e.g. activation: relu"
    )


def test_misspelt_activation_suggests_the_closest() -> None:
    message = error_of("input: 4\nlayers:\n  - {units: 2, activation: rleu}\n")
    assert message.endswith("got 'rleu'; did you mean 'relu'?")


def test_unknown_norm_lists_the_valid_ones() -> None:
    assert error_of("input: 4\nlayers:\n  - {units: 2, norm: groupnorm}\n") == (
        "spec.yaml, line 3: norm in layer 1 must be one of batchnorm, layernorm, "
        "got 'groupnorm'; write e.g. norm: layernorm"
    )


def test_unknown_init_scheme_names_the_line() -> None:
    message = error_of("input: 4\nbias: true\ninit: kaimin\nlayers: [{units: 1}]\n")
    assert message.startswith("spec.yaml, line 3: init: unknown scheme 'kaimin'; ")
    assert "did you mean 'kaiming'?" in message


def test_bad_init_scheme_parameter() -> None:
    message = error_of("input: 4\ninit: 'normal:std=x'\nlayers: [{units: 1}]\n")
    assert message.startswith("spec.yaml, line 2: init: normal")


def test_a_misspelt_key_is_reported_before_the_missing_one() -> None:
    message = error_of("inpt: 4\nlayers: [{units: 1}]\n")
    assert message.startswith(
        "spec.yaml, line 1: unknown key 'inpt' at the top level; did you mean 'input'?"
    )


def test_default_source_name() -> None:
    with pytest.raises(SpecError, match=r"^<spec>, line 1: missing key 'layers'"):
        parse_spec("input: 4")


# --- properties ---------------------------------------------------------------------------------


def assert_spec_or_spec_error(text: str) -> None:
    try:
        result = parse_spec(text, "fuzz.yaml")
    except SpecError as exc:
        message = str(exc)
        assert len(message.splitlines()) == 1, message
        assert message.startswith("fuzz.yaml"), message
    else:
        assert isinstance(result, MLPSpec)


@FUZZ
@given(st.text())
def test_any_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    assert_spec_or_spec_error(text)


YAMLISH = st.text(alphabet="{}[]:-,!&*#|>?'\"%@`~\n\t .0123456789aeinpstuyrl", max_size=60)


@FUZZ
@given(YAMLISH)
def test_yaml_like_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    assert_spec_or_spec_error(text)


KEYS = st.sampled_from(
    ["name", "input", "bias", "init", "layers", "units", "activation", "norm", "dropout", "repeat"]
) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from([*ACTIVATIONS, *NORMS, "kaiming", "normal:std=0.1", "xavier:gain=x"])
)
TREES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=20,
)
SPEC_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "name": TREES,
        "input": st.integers(-1, 8) | TREES,
        "bias": st.booleans() | TREES,
        "init": TREES,
        "layers": st.lists(st.dictionaries(KEYS, st.integers(-1, 8) | TREES), max_size=4) | TREES,
        "extra": TREES,
    },
)


@FUZZ
@given(TREES | SPEC_LIKE)
def test_any_yaml_structure_gives_a_spec_or_a_spec_error(data: object) -> None:
    assert_spec_or_spec_error(yaml.safe_dump(data, sort_keys=False))


VALID_LAYERS = st.fixed_dictionaries(
    {"units": st.integers(1, 6)},
    optional={
        "activation": st.none() | st.sampled_from(ACTIVATIONS),
        "bias": st.booleans(),
        "norm": st.none() | st.sampled_from(NORMS),
        "dropout": st.sampled_from([0, 0.0, 0.1, 0.5, 0.99]),
        "repeat": st.integers(1, 3),
    },
)
VALID_SPECS = st.fixed_dictionaries(
    {"input": st.integers(1, 6), "layers": st.lists(VALID_LAYERS, min_size=1, max_size=4)},
    optional={"name": st.text(max_size=10), "bias": st.booleans(), "init": st.just("xavier")},
)


@FUZZ
@given(VALID_SPECS)
def test_valid_specs_build_with_the_exact_parameter_count(data: dict[str, object]) -> None:
    spec = parse_spec(yaml.safe_dump(data, sort_keys=False))
    expected, fan_in, n_linear = 0, data["input"], 0
    assert isinstance(fan_in, int)
    layers = data["layers"]
    assert isinstance(layers, list)
    for layer in layers:
        units = layer["units"]
        bias = layer.get("bias", data.get("bias", True))
        for _ in range(layer.get("repeat", 1)):
            expected += fan_in * units + (units if bias else 0)
            expected += 2 * units if layer.get("norm") else 0
            fan_in = units
            n_linear += 1
    model = build_mlp(spec)
    assert n_params(model) == expected
    assert [name for name, _ in model.named_children() if name.startswith("fc")] == [
        f"fc{i}" for i in range(1, n_linear + 1)
    ]
    assert spec.name == data.get("name")
