"""Init policies and the user's own init code: exact values vs plain PyTorch, statuses, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import run
from torch import nn

from initcli import report
from initcli.measure import stats
from sample_models.lenet5_init import LeNet5Init

TARGET = "sample_models.lenet5_init:LeNet5Init"
POLICY = "Conv2d=xavier_normal; BatchNorm2d=ones; Linear=normal:std=0.01; *.bias=zeros"


def tutorial(seed: int = 0) -> LeNet5Init:
    """The tutorial's loop, written as it is there (.data, fill_, zero_), after the seed."""
    torch.manual_seed(seed)
    model = LeNet5Init()
    torch.manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            torch.nn.init.xavier_normal_(m.weight.data)
            if m.bias is not None:
                m.bias.data.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            m.weight.data.fill_(1)
            m.bias.data.zero_()
        elif isinstance(m, nn.Linear):
            torch.nn.init.normal_(m.weight.data, 0, 0.01)
            m.bias.data.zero_()
    return model


def _same_values(found: report.InspectReport, model: nn.Module) -> None:
    params = dict(model.named_parameters())
    assert [p.name for p in found.params] == list(params)
    for p in found.params:
        ref = stats.tensor_stats(params[p.name].detach())
        assert (p.min, p.max) == (ref.min, ref.max), p.name
        # Equal values; the float64 sums differ only in the order torch's threads add them.
        assert p.mean == pytest.approx(ref.mean, rel=1e-12, abs=1e-300), p.name
        assert p.var == pytest.approx(ref.var, rel=1e-12, abs=1e-300), p.name


@pytest.mark.parametrize(
    "init",
    [
        "method:initialize_weights",
        POLICY,
        "fn:sample_models/lenet5_init.py:init_weights",
        "fn:sample_models.lenet5_init:init_weights",
    ],
)
def test_lenet_init_equals_the_tutorial_loop(init: str) -> None:
    found = report.inspect(TARGET, init)
    _same_values(found, tutorial())
    assert found.scheme == init
    assert {p.status for p in found.params} == {"ok"}


def test_policy_labels_say_which_rule_matched() -> None:
    found = {p.name: p.init for p in report.inspect(TARGET, POLICY).params}
    assert found["conv1.weight"] == "Conv2d=xavier_normal"
    assert found["conv1.bias"] == "*.bias=zeros"
    assert found["bn1.weight"] == "BatchNorm2d=ones"
    assert found["fc3.weight"] == "Linear=normal:std=0.01"


def test_code_labels_name_what_the_code_drew() -> None:
    found = {p.name: p for p in report.inspect(TARGET, "method:initialize_weights").params}
    assert found["conv1.weight"].init == "xavier_normal"
    assert found["fc1.weight"].init == "normal(std=0.01)"
    assert found["fc1.weight"].expected_var == pytest.approx(1e-4)
    assert found["bn1.weight"].init == "constant(val=1)"
    assert found["bn1.bias"].init == "zeros"


def test_bias_follows_bias_init_when_no_rule_names_it() -> None:
    found = report.inspect(TARGET, "Conv2d=xavier_normal; Linear=kaiming_normal", bias_init="ones")
    by = {p.name: p for p in found.params}
    assert by["conv1.bias"].init == "--bias-init=ones"
    assert by["conv1.bias"].mean == 1.0
    # BatchNorm2d has no rule: its parameters keep their constructors' values.
    assert by["bn1.weight"].init == "ones" and by["bn1.weight"].status == "ok"
    assert any("4 parameters" in r and "match no rule" in r for r in found.remarks)
    assert found.method == "real"  # constructor values need a real build


def test_mro_class_and_class_param_selectors() -> None:
    found = report.inspect(TARGET, "_ConvNd.weight=kaiming_normal; *=zeros")
    by = {p.name: p for p in found.params}
    assert by["conv2.weight"].init == "_ConvNd.weight=kaiming_normal"
    assert by["fc1.weight"].init == "*=zeros" and by["fc1.weight"].var == 0
    assert found.method == "stream"


def test_streamed_policy_equals_the_real_build() -> None:
    streamed = report.inspect(TARGET, POLICY, stream=True)
    real = report.inspect(TARGET, POLICY, stream=False)
    assert (streamed.method, real.method) == ("stream", "real")
    assert streamed.params == real.params
    _same_values(real, tutorial())


def test_forgotten_layer_is_flagged() -> None:
    found = report.inspect(TARGET, "fn:sample_models.lenet5_init:init_weights_no_linear")
    by = {p.name: p for p in found.params}
    assert by["fc1.weight"].init == "default (untouched by init_weights_no_linear)"
    assert by["fc1.weight"].status == "ok"  # torch's default, checked as such
    assert any(
        r.startswith("init_weights_no_linear left 6 parameters at torch's default: fc1.weight")
        and r.endswith("forgot a layer?")
        for r in found.remarks
    )


def test_policy_file_and_unmatched_rule_note(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "Conv2d: xavier_normal\nBatchNorm2d: ones\nLinear: normal:std=0.01\n"
        "'*.bias': zeros\nConv3d: orthogonal\n"
    )
    found = report.inspect(TARGET, f"@{policy}")
    _same_values(found, tutorial())
    assert "rule 'Conv3d=orthogonal' sets no parameter of " + TARGET in found.remarks
    code, _out, err = run("inspect", TARGET, "--init", f"@{policy}", "--format", "json")
    assert code == 0 and "Note: rule 'Conv3d=orthogonal' sets no parameter" in err


def test_spec_init_mapping(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text(
        "input: 4\ninit:\n  Linear.weight: xavier_normal\n  '*.bias': constant:val=0.1\n"
        "layers: [{units: 5, activation: relu}, {units: 2}]\n"
    )
    found = report.inspect(str(spec))
    assert found.scheme == "Linear.weight=xavier_normal; *.bias=constant:val=0.1"
    assert [p.init for p in found.params][:2] == [
        "Linear.weight=xavier_normal",
        "*.bias=constant:val=0.1",
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: 4\ninit: {Linear: nromal}\nlayers: [{units: 2}]\n")
    code, _, err = run("inspect", str(bad))
    assert code == 2 and "unknown scheme 'nromal'" in err and err.count("\n") == 1


def test_probe_and_compare_take_policies() -> None:
    probed = report.probe_report(TARGET, [POLICY, "method:initialize_weights"])
    assert [s.scheme for s in probed.schemes] == [POLICY, "method:initialize_weights"]
    # Same init, same batch: the same forward statistics.
    assert probed.schemes[0].result.layers == probed.schemes[1].result.layers


def test_snapshot_stats_take_a_policy(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    code, _, err = run("snapshot", TARGET, "-o", str(out), "--stats", "--init", POLICY)
    assert code == 0, err
    assert "Linear=normal:std=0.01" in out.read_text()


@pytest.mark.parametrize(
    ("init", "message"),
    [
        ("Conv2d=xavier_normal;; Linear=zeros", "rule 2 of 3 in the policy is empty"),
        ("Conv2d=xavier_normal; BatchNorm2d", "rule 'BatchNorm2d' has no '='"),
        ("Linear=normal:sd=0.01", "rule 'Linear=normal:sd=0.01': normal has no parameter 'sd'"),
        ("Conv2D=xavier_normal", "'Conv2D' is no module class of the model nor of torch.nn; "
         "did you mean 'Conv2d'?"),
        ("BatchNorm2d=orthogonal", "gives bn1.weight (shape (6,)) orthogonal"),
        ("*.bias=xavier_normal", "gives conv1.bias (shape (6,)) xavier_normal"),
        ("@nowhere.yaml", "nowhere.yaml: no such policy file"),
        ("Linear=auto", "auto chooses per weight itself"),
        ("method:reset_everything", "(LeNet5Init) has no method 'reset_everything'"),
        ("method:fc1", "has an attribute, not a method, 'fc1'"),
        ("fn:sample_models.lenet5_init:nothing", "has no attribute 'nothing'"),
        ("fn:sample_models.lenet5_init:LeNet5Init", "is a type, not a Python function"),
        ("fn:os.path:join", "names the standard library module 'os.path'"),
        ("fn:tests/models_for_tests.py:raising_init", "raising_init raised ValueError: boom"),
    ],
)  # fmt: skip
def test_bad_policies_are_one_error_line(init: str, message: str) -> None:
    code, _out, err = run("inspect", TARGET, "--init", init)
    assert code == 2, err
    assert [line for line in err.splitlines() if line.startswith("Error:")] == [err.strip()]
    assert "Traceback" not in err
    assert message in err


def test_policy_file_not_a_mapping(tmp_path: Path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("- Conv2d=xavier_normal\n")
    code, _, err = run("inspect", TARGET, "--init", f"@{policy}")
    assert code == 2 and f"{policy} must hold a mapping of rules" in err


def test_plain_scheme_text_is_not_a_policy() -> None:
    found = report.inspect(TARGET, "normal:std=0.01")
    assert found.scheme == "normal(mean=0, std=0.01)"
    assert found.params[0].init == "normal"


def test_schema_accepts_a_policy_mapping_under_init() -> None:
    import json

    code, out, _ = run("schema")
    assert code == 0
    init = json.loads(out)["properties"]["init"]
    assert {"additionalProperties": {"type": "string"}, "type": "object"} in init["anyOf"]
    assert {"type": "string"} in init["anyOf"]


def test_a_glob_that_matches_nothing_is_a_note() -> None:
    code, _, err = run("inspect", TARGET, "--init", f"{POLICY}; *.gamma=ones", "--format", "json")
    assert code == 0
    assert f"Note: rule '*.gamma=ones' sets no parameter of {TARGET}\n" in err


def test_a_rule_shadowed_by_earlier_rules_says_so() -> None:
    found = report.inspect(TARGET, "*=zeros; Linear=ones")
    assert found.remarks == (
        f"rule 'Linear=ones' sets no parameter of {TARGET} (earlier rules set them first)",
    )


@pytest.mark.parametrize(
    ("policy", "idle"),
    [
        # conv biases: Conv2d claims them first, then _ConvNd; --bias-init sets them, and the
        # credit goes to Conv2d, so _ConvNd is the idle rule.
        (
            "Conv2d=xavier_normal; BatchNorm2d=ones; Linear=normal:std=0.01; _ConvNd=orthogonal",
            "_ConvNd=orthogonal",
        ),
        # Conv2d sets no weight (the glob before it does): only the biases it claims first
        # keep it from being idle; _ConvNd, after it, sets nothing.
        (
            "conv*.weight=xavier_normal; Conv2d=orthogonal; _ConvNd=ones; BatchNorm2d=ones; "
            "Linear=normal:std=0.01",
            "_ConvNd=ones",
        ),
    ],
    ids=["class-rules-for-one-module", "credit-keeps-the-first-rule-busy"],
)
def test_bias_is_credited_to_the_first_class_rule_that_claims_it(policy: str, idle: str) -> None:
    found = report.inspect(TARGET, policy)
    assert found.remarks == (
        f"rule '{idle}' sets no parameter of {TARGET} (earlier rules set them first)",
    )
    by = {p.name: p.init for p in found.params}
    assert by["conv1.bias"] == by["conv2.bias"] == "--bias-init=zeros"
