"""Every command of docs/probe-real-models.md, run as written (with -f json; --plot into a temporary
folder), against the figures the page quotes. Slow: the fast versions of each claim are in
test_probe_real.py and test_train_real.py."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import run

DOC = Path(__file__).resolve().parents[2] / "docs" / "probe-real-models.md"


def _commands() -> list[list[str]]:
    lines = DOC.read_text(encoding="utf-8").splitlines()
    return [shlex.split(line)[1:] for line in lines if line.startswith("initcli ")]


def _run(args: list[str]) -> dict:  # type: ignore[type-arg]
    code, out, err = run(*args, "-f", "json")
    assert code == 0, err
    return json.loads(out)  # type: ignore[no-any-return]


def test_the_page_holds_five_commands() -> None:
    assert [c[:2] for c in _commands()] == [
        ["probe", "sample_models/gpt2_residual.py:gpt2"],
        ["probe", "sample_models/gpt2_residual.py:gpt2"],
        ["compare", "sample_models/gpt2_residual.py:gpt2"],
        ["compare", "sample_models/small_vit.py:vit"],
        ["probe", "sample_models/gpt2_residual.py:gpt2"],
    ]


@pytest.mark.slow
def test_input_factory_command() -> None:
    d = _run(_commands()[0])
    (s,) = d["schemes"]
    assert s["probe_loss_kind"] == "the model's own loss (labels from --input)"
    assert d["input"]["shape"] == [256, 32]


@pytest.mark.slow
def test_gpt2_residual_figures(tmp_path: Path) -> None:
    args = _commands()[1]
    args[args.index("--plot") + 1] = str(tmp_path / "probe.png")
    d = _run(args)
    scaled, unscaled = d["schemes"]
    table = {0: (0.0306, 0.0650), 3: (0.0370, 0.1317), 6: (0.0429, 0.1727), 9: (0.0477, 0.2153)}
    table[11] = (0.0503, 0.2314)
    for block, (a, b) in table.items():
        assert round(scaled["blocks"][block]["std"], 4) == a
        assert round(unscaled["blocks"][block]["std"], 4) == b
    assert (
        round(scaled["depth_exponent"], 2) == 0.21 and round(unscaled["depth_exponent"], 2) == 0.52
    )
    assert round(scaled["std_ratio"], 2) == 1.64 and round(unscaled["std_ratio"], 2) == 3.56
    assert (tmp_path / "probe.png").stat().st_size > 0


@pytest.mark.slow
def test_markov_figures() -> None:
    d = _run(_commands()[2])
    assert round(d["train_outcome"]["loss_floor"], 4) == 1.5309
    means = [round(s["seeds_summary"]["final_loss"]["mean"], 4) for s in d["schemes"]]
    assert means == [1.6249, 1.6745]
    (test,) = d["train_outcome"]["comparisons"]
    assert test["clear"] and round(test["p_value"], 3) == 0.011


@pytest.mark.slow
def test_digits_vit_figures() -> None:
    d = _run(_commands()[3])
    means = [round(s["seeds_summary"]["final_loss"]["mean"], 4) for s in d["schemes"]]
    assert means == [1.6293, 0.8172]
    assert [round(s["depth_exponent"], 2) for s in d["schemes"]] == [0.15, 0.63]


@pytest.mark.slow
def test_width_sweep_figures() -> None:
    d = _run(_commands()[4])
    (s,) = d["schemes"]
    first, last = s["blocks"][0], s["blocks"][-1]
    assert [round(v, 4) for v in first["stds"]] == [0.0305, 0.0354, 0.0506]
    assert round(first["update_exponent"]["k"], 2) == 1.44
    assert last["update_exponent"]["verdict"] == "grows"
    assert [b["exponent"]["verdict"] for b in s["blocks"]] == ["unclear"] * 4
