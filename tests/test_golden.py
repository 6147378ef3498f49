"""Golden files: every command's output, byte for byte (regenerate with --update-golden).

The JSON of count/inspect/probe/compare/defaults/check on every sample model is the contract
(DESIGN §2); the tables, Markdown and CSV are what users and pull requests read. A change to any of
them shows up here as a diff of tests/golden/, to be reviewed and re-recorded on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT, run
from sample_targets import SAMPLES

GOLDEN = Path(__file__).parent / "golden"

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
    return cases


CASES = _cases()


def test_case_names_are_unique() -> None:
    names = [name for name, _ in CASES]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("name", "args"), CASES, ids=[name for name, _ in CASES])
def test_golden(
    name: str, args: list[str], update_golden: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    code, out, err = run(*args)
    assert code == 0, err
    path = GOLDEN / name
    if update_golden:
        path.write_text(out, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path.name}: run pytest --update-golden"
    assert out == path.read_text(encoding="utf-8")
