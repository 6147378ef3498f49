"""Golden files: every command's output, byte for byte (regenerate with --update-golden).

The JSON of count/inspect/probe/compare/defaults/check on every sample model is the contract
(docs/contract/json-output.md); the tables, Markdown and CSV are what users and pull requests
read. A change to any of
them shows up here as a diff of tests/golden/, to be reviewed and re-recorded on purpose.
Whatever a case writes to stderr (its `Note:` lines) is a golden `NAME.stderr` beside the stdout
one; a case with no such file must write nothing there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, run
from sample_targets import SAMPLES

GOLDEN = Path(__file__).parents[1] / "golden"

COUNT_SAMPLES = [
    "sample_models/mlp.yaml",
    "sample_models.lenet:LeNet5",
    "sample_models.tied_lm:TiedLM",
    "sample_models.lstm:LSTMClassifier",
]
FORMATS = ["table", "markdown", "csv", "json"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text.removeprefix("sample_models")).strip("_")


def _cases() -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = []
    for target in COUNT_SAMPLES:
        for fmt in FORMATS:
            cases.append((f"count-{_slug(target)}.{fmt}", ["count", target, "-f", fmt]))
    for target in SAMPLES:
        slug = _slug(target)
        if target not in COUNT_SAMPLES:
            cases.append((f"count-{slug}.json", ["count", target, "-f", "json"]))
        cases += [
            (f"inspect-{slug}.json", ["inspect", target, "-f", "json"]),
            (f"probe-{slug}.json",
             ["probe", target, "-i", "kaiming_normal", "-b", "16", "-f", "json"]),
            (
                f"compare-{slug}.json",
                ["compare", target, "-i", "kaiming_normal", "-i", "xavier_normal", "-b", "16",
                 "-f", "json"],
            ),
            (f"defaults-{slug}.json", ["defaults", target, "-f", "json"]),
        ]  # fmt: skip
    for scheme in ("kaiming_normal", "xavier_uniform:gain=relu", "default"):
        for fmt in ("table", "json"):
            name = f"inspect-mlp_yaml-{_slug(scheme)}.{fmt}"
            cases.append((name, ["inspect", "sample_models/mlp.yaml", "-i", scheme, "-f", fmt]))
    for fmt in FORMATS:
        cases.append((f"schemes.{fmt}", ["schemes", "-f", fmt]))
        cases.append((f"gain.{fmt}", ["gain", "-f", fmt]))
    for target in ("sample_models/relu20.yaml", "sample_models.lenet:LeNet5"):
        for fmt in ("table", "markdown"):
            cases.append((f"defaults-{_slug(target)}.{fmt}", ["defaults", target, "-f", fmt]))
    tanh = ["probe", "sample_models/tanh10.yaml", "-i", "xavier_normal", "-i", "normal:std=0.01"]
    for fmt in FORMATS:
        cases.append((f"probe-tanh10.{fmt}", [*tanh, "-f", fmt]))
    for fmt in ("table", "json"):
        cases.append((f"probe-tanh10-seeds.{fmt}", [*tanh, "--seeds", "3", "-b", "64", "-f", fmt]))
    moons = ["compare", "sample_models/moons.yaml", "-i", "kaiming_normal", "-i", "zeros"]
    for fmt in FORMATS:
        cases.append((f"compare-moons-train.{fmt}", [*moons, "--train", "20", "-f", fmt]))
    for fmt in FORMATS:
        check = ["check", "baselines/sample_models.json", "-f", fmt]
        cases.append((f"check-sample_models.{fmt}", check))
    return cases + NOTE_CASES + DEEP_CASES


LENET_INIT = "sample_models.lenet5_init:LeNet5Init"
# Cases whose finding is a `Note:` on stderr (besides inspect-transformer_TinyTransformer.json,
# where MultiheadAttention's default divides by the fans of 3 stacked matrices).
NOTE_CASES = [
    # kaiming fan_out on an LSTM's 4 stacked gates: the variance is 0.25x the forward fan_out's.
    ("inspect-lstm_LSTMClassifier-kaiming_fan_out.json",
     ["inspect", "sample_models.lstm:LSTMClassifier", "-i", "kaiming_normal:mode=fan_out",
      "-f", "json"]),
    # The model's own init function that forgets the Linear layers.
    ("inspect-lenet5_init-fn_no_linear.json",
     ["inspect", LENET_INIT, "--init", "fn:sample_models.lenet5_init:init_weights_no_linear",
      "-f", "json"]),
    # A policy rule that sets nothing: the conv biases are credited to the first class rule.
    ("inspect-lenet5_init-idle_rule.json",
     ["inspect", LENET_INIT, "--init",
      "Conv2d=xavier_normal; BatchNorm2d=ones; Linear=normal:std=0.01; _ConvNd=orthogonal",
      "-f", "json"]),
]  # fmt: skip
# Repeated blocks as group rows (docs/deep-models.md): a 24-block GPT-2's table and Markdown, the
# JSON (every param, and `groups`) of a 3-block one, and count's module table.
DEEP_CASES = [
    ("inspect-deep_gpt2_24.table", ["inspect", "tests/deep_models.py:gpt2_24", "-f", "table"]),
    ("inspect-deep_gpt2_24.markdown",
     ["inspect", "tests/deep_models.py:gpt2_24", "-f", "markdown"]),
    ("inspect-deep_gpt2_3.json", ["inspect", "tests/hf_models.py:gpt2", "-f", "json"]),
    ("count-deep_gpt2_24.table", ["count", "tests/deep_models.py:gpt2_24", "-f", "table"]),
]  # fmt: skip
NOTES = [
    "inspect-transformer_TinyTransformer.json",
    *(name for name, _ in NOTE_CASES),
]


CASES = _cases()


def test_case_names_are_unique() -> None:
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))


def test_every_stderr_golden_has_its_case_and_the_note_cases_have_one() -> None:
    names = {f"{name}.stderr" for name, _ in CASES}
    recorded = {path.name for path in GOLDEN.glob("*.stderr")}
    assert recorded <= names, f"stale: {sorted(recorded - names)}"
    for name in NOTES:
        assert (GOLDEN / f"{name}.stderr").read_text(encoding="utf-8").startswith("Note: ")


@pytest.mark.parametrize(("name", "args"), CASES, ids=[name for name, _ in CASES])
def test_golden(
    name: str, args: list[str], update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = run(*args)
    assert code == 0, err
    path, err_path = GOLDEN / name, GOLDEN / f"{name}.stderr"
    if update_golden:
        path.write_text(out, encoding="utf-8")
        if err:
            err_path.write_text(err, encoding="utf-8")
        else:
            err_path.unlink(missing_ok=True)
        return
    assert path.exists(), f"no golden file {path.name}: run pytest --update-golden"
    assert out == path.read_text(encoding="utf-8")
    assert err == (err_path.read_text(encoding="utf-8") if err_path.exists() else "")
