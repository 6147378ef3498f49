"""Real transformers models (small configs, nothing downloaded) under `default`: initcli's view."""

from __future__ import annotations

from collections import Counter
from functools import cache

import pytest
import transformers  # noqa: F401  # the test extra's; tests/hf_models.py builds the models with it
from conftest import run

from initcli.report import inspect

# Which _init_weights distribution each weight family has (N(0, 0.02²) unless named here).
NORMAL = "normal(std=0.02)"
C_PROJ = "normal(std=0.02/√(2·3))"  # GPT-2: 0.02/√(2·n_layer) with n_layer = 3 (hf_models)
WEIGHTED = ("Linear", "Conv1D", "Embedding")


@cache
def _report(name: str):  # type: ignore[no-untyped-def]
    return inspect(f"tests/hf_models.py:{name}")


@pytest.mark.parametrize("name", ["gpt2", "bert", "t5", "llama"])
def test_nothing_off_or_unknown(name: str) -> None:
    report = _report(name)
    statuses = Counter(p.status for p in report.params)
    assert statuses["off"] == 0 and statuses["unknown"] == 0 and statuses["uninitialized"] == 0
    for p in report.params:
        if "Norm" in p.module:
            assert p.status == "ok", (p.name, p.looks_like)
        if p.module in WEIGHTED and p.name.endswith("weight"):
            assert p.status in ("ok", "custom") and p.fit is not None
            assert p.fit.family == "normal", (p.name, p.fit)


@pytest.mark.parametrize("name", ["gpt2", "bert", "llama"])
def test_weights_look_like_their_init_weights(name: str) -> None:
    for p in _report(name).params:
        if p.module in WEIGHTED and p.name.endswith("weight"):
            expected = C_PROJ if p.name.endswith("c_proj.weight") else NORMAL
            assert p.looks_like == expected, (p.name, p.looks_like, p.fit)
        elif p.name.endswith("bias") and p.module in WEIGHTED:
            assert p.looks_like == "constant(0)", p.name


def test_t5_weights_are_fan_scaled_normals() -> None:
    # T5 draws k/v/o/wi/wo from N(0, 1/fan_in), q from N(0, 1/(d_model·d_kv)) = N(0, 1/1024) and
    # the shared embedding from N(0, 1) (torch's own Embedding default).
    for p in _report("t5").params:
        if p.module != "Linear":
            continue
        assert p.fit is not None and p.std is not None
        if p.name.endswith(".q.weight"):
            assert abs(p.std - 1024**-0.5) < 0.05 * 1024**-0.5
        else:
            assert "kaiming_normal(fan_in, linear)" in p.fit.matches, p.name


def test_one_empty_parameter_is_uninitialized() -> None:
    report = _report("gated_gpt2")
    empty = [p.name for p in report.params if p.status == "uninitialized"]
    assert empty == ["gate"]
    assert any(
        line.startswith("1 uninitialized: gate (torch.empty leftovers?")
        for line in report.looks_like
    )


def test_table_and_markdown_say_what_the_values_look_like() -> None:
    code, out, _ = run("inspect", "tests/hf_models.py:gated_gpt2")
    assert code == 0
    assert "init / looks like" in out
    assert "normal(std=0.02/√(2·3))" in out
    assert "looks like: 12 constant(0) (custom); 8 normal(std=0.02) (custom);" in " ".join(
        out.split()
    )
    code, out, _ = run("inspect", "tests/hf_models.py:gated_gpt2", "-f", "markdown")
    assert code == 0 and "looks like: " in out and "1 uninitialized: gate (torch.empty" in out
