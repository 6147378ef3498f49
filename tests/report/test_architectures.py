"""What `inspect` says on 25 transformers architectures, checked against real builds (issue 19)."""

from __future__ import annotations

from functools import cache

import pytest
import transformers

from benchmarks.architectures import Row, audit
from benchmarks.models.hf_architectures import ARCHITECTURES
from initcli.report import InspectReport, inspect

TARGET = "benchmarks/models/hf_architectures.py:{}"
# One of each kind the issue names, fast enough for the default run; the slow test takes all 25.
SMOKE = ("gpt2", "bert", "t5", "gemma", "swin", "convnext", "whisper", "mamba")
# `looks_like` names whose variance is off the true one: two small ResNet convs that transformers
# leaves at torch's default among kaiming_normal peers (docs/architectures.md). May only go down.
WRONG_NAMES_AT_MOST = 2


@cache
def _audit(arch: str) -> tuple[Row, ...]:
    return tuple(audit(arch))


@cache
def _report(arch: str, init: str | None = None) -> InspectReport:
    return inspect(TARGET.format(arch), init=init, seed=0)


def _check(arch: str) -> None:
    rows = _audit(arch)
    assert rows and all(r.same_values for r in rows)
    wrong = [(r.name, r.status, r.looks_like, r.problem) for r in rows if r.problem]
    assert not [w for w in wrong if w[3] != "wrong_name"], wrong


def test_at_least_twenty_architectures() -> None:
    assert len(ARCHITECTURES) >= 20
    assert transformers.__version__


@pytest.mark.parametrize("arch", SMOKE)
def test_default_is_never_off_symmetric_unknown_nor_a_false_ok(arch: str) -> None:
    _check(arch)


@pytest.mark.slow
def test_every_architecture_counts() -> None:
    wrong = 0
    for arch in ARCHITECTURES:
        _check(arch)
        wrong += sum(r.problem == "wrong_name" for r in _audit(arch))
    assert wrong <= WRONG_NAMES_AT_MOST


def _row(report: InspectReport, name: str):  # type: ignore[no-untyped-def]
    return next(p for p in report.params if p.name == name)


def test_whisper_sinusoidal_positions_are_custom() -> None:
    p = _row(_report("whisper"), "model.encoder.embed_positions.weight")
    assert (p.status, p.looks_like) == ("custom", "sinusoidal")
    assert p.fit is not None and p.fit.family == "fixed"


def test_distilbert_interleaved_sinusoids() -> None:
    report = inspect("tests/models_for_tables.py:sinusoidal_distilbert", seed=0)
    p = _row(report, "embeddings.position_embeddings.weight")
    assert (p.status, p.looks_like) == ("custom", "sinusoidal")


def test_mamba_a_log_is_named() -> None:
    report = _report("mamba")
    for layer in (0, 1):
        p = _row(report, f"backbone.layers.{layer}.mixer.A_log")
        assert (p.status, p.looks_like) == ("custom", "log(arange(1, N+1)), N=8")


def test_a_computed_table_is_deterministic_whatever_it_resembles() -> None:
    report = inspect("tests/models_for_tables.py:Ramp", seed=0)
    p = _row(report, "ramp")
    assert (p.status, p.looks_like) == ("custom", "deterministic (no random draw)")
    drawn = _row(report, "drawn")
    assert drawn.looks_like != "deterministic (no random draw)"


def test_swin_zeroed_bias_table_is_custom_not_symmetric() -> None:
    report = _report("swin")
    rows = [p for p in report.params if p.name.endswith("relative_position_bias_table")]
    assert rows and all((p.status, p.looks_like) == ("custom", "constant(0)") for p in rows)


@pytest.mark.parametrize(
    ("arch", "name"),
    [("bert", "classifier.bias"), ("vit", "classifier.bias"), ("convnext", "classifier.bias")],
)
def test_zero_classifier_biases_are_not_claimed_as_torch_defaults(arch: str, name: str) -> None:
    p = _row(_report(arch), name)
    assert p.numel == 3 and p.looks_like == "constant(0)" and p.status == "custom"


def test_small_tensors_say_they_are_too_small_to_tell() -> None:
    report = inspect("tests/models_for_tables.py:TinyHead", seed=0)
    p = _row(report, "head.bias")
    assert p.status == "ok" and p.looks_like is not None
    assert p.looks_like.endswith("(3 values: too few to tell)")
    assert not _row(report, "body.weight").looks_like.endswith("too few to tell)")  # type: ignore[union-attr]


def test_ok_never_contradicts_the_identification() -> None:
    # ResNet's convs are kaiming_normal(fan_out, relu): normal values, not torch's uniform.
    for p in _report("resnet").params:
        if p.status == "ok" and p.expected_var:
            assert p.fit is not None
            assert any(m.endswith("torch default") for m in p.fit.matches), p.name


def test_kept_values_under_a_policy_are_judged_as_under_default() -> None:
    for arch in ("gpt2", "bert"):
        default = {p.name: (p.status, p.looks_like) for p in _report(arch).params}
        report = _report(arch, "Linear=xavier_uniform")
        kept = [p for p in report.params if "=" not in p.init]  # not a rule's, nor --bias-init
        assert kept
        for p in kept:
            assert (p.status, p.looks_like) == default[p.name], p.name
        assert not [p.name for p in report.params if p.status in ("off", "unknown")]


def test_gpt2_idle_rule_says_the_weight_is_tied() -> None:
    report = _report("gpt2", "Linear=xavier_uniform")
    target = TARGET.format("gpt2")
    assert (
        f"rule 'Linear=xavier_uniform' sets no parameter of {target}: its only match, "
        "lm_head.weight, is tied to transformer.wte.weight, and a tied tensor takes the rule of "
        "its first name (no rule sets it: kept as built)"
    ) in report.remarks


def test_torch_defaults_stay_ok_on_small_and_padded_layers() -> None:
    report = inspect("tests/models_for_tables.py:PaddedEmbedding", seed=0)
    p = _row(report, "embed.weight")
    assert p.status == "ok" and p.fit is not None and p.fit.family == "sparse"


def test_the_benchmark_prints_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks.architectures import main

    main(["gemma", "--rows"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "architecture", "rows", "same", "too_few", "ok_not_own", "flagged_own", "wrong_name",
    ]  # fmt: skip
    assert lines[1].split() == ["gemma", "20", "20", "0", "0", "0", "0"]
    assert lines[-1].split() == ["total", "20", "20", "0", "0", "0", "0"]
