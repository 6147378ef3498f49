"""probe, compare, defaults and gain through the command line: JSON contract, formats, --plot."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path

import pytest
from conftest import png_size
from typer.testing import CliRunner

from initcli.cli import app
from initcli.experiments import verdict
from initcli.render import plot

MOONS = "sample_models/moons.yaml"
TANH10 = "sample_models/tanh10.yaml"
MLP = "sample_models/mlp.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_probe_json_has_the_contract_keys() -> None:
    code, out, err = run("probe", MLP, "--init", "kaiming", "--init", "zeros", "-f", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert [s["scheme"] for s in data["schemes"]] == [
        "kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0)",
        "zeros",
    ]
    for entry in data["schemes"]:
        assert {"scheme", "layers", "verdict"} <= set(entry) and "losses" not in entry
        assert entry["verdict"] in {v.value for v in verdict.Verdict}
        for layer in entry["layers"]:
            assert {"name", "mean", "std", "zero_frac", "saturated_frac", "grad_norm"} <= set(layer)
    names = [layer["name"] for layer in data["schemes"][0]["layers"]]
    assert names == ["fc1", "act1", "fc2", "act2", "fc3"]
    assert data["schemes"][1]["verdict"] == "symmetric"
    assert data["input"] == {"shape": [256, 4], "kind": "float32 N(0, 1)",
                             "source": "the spec's input:"}  # fmt: skip
    assert data["thresholds"]["vanishing_ratio"] == verdict.VANISHING_RATIO


def test_compare_train_json_adds_losses_and_is_identical_on_rerun() -> None:
    args = ("compare", MOONS, "-i", "kaiming_normal", "-i", "xavier_normal", "-i", "zeros",
            "--train", "200", "-f", "json")  # fmt: skip
    code, out, err = run(*args)
    assert (code, err) == (0, "")
    assert run(*args)[1] == out  # seeded: the same bytes every run
    data = json.loads(out)
    assert data["train"] == {"steps": 200, "lr": 0.01, "points": 500, "noise": 0.2,
                             "optimizer": "Adam", "data": "two moons",
                             # issue 11's keys, added (never renamed or dropped)
                             "batch": None, "epochs": None, "seeds": 1, "val_fraction": None,
                             "target_loss": None, "data_option": "moons"}  # fmt: skip
    losses = {s["scheme"].split("(")[0]: s["losses"] for s in data["schemes"]}
    assert all(len(v) == 201 for v in losses.values())
    # zeros stays at ln 2 (tolerance 1e-6); Kaiming and Xavier end below a tenth of it.
    assert abs(losses["zeros"][-1] - math.log(2)) < 1e-6
    assert losses["kaiming_normal"][-1] < 0.1 * math.log(2)
    assert losses["xavier_normal"][-1] < 0.1 * math.log(2)
    assert [s["accuracy"] for s in data["schemes"]][2] == 0.5


def test_compare_table_shows_losses_side_by_side() -> None:
    code, out, _ = run("compare", MOONS, "-i", "kaiming", "-i", "zeros", "--train", "50")
    assert code == 0
    assert "fc1 → act1" in out and "verdicts" in out and "accuracy" in out
    assert "0.6931" in out  # zeros' loss, at every checkpoint
    steps = [line.split()[0] for line in out.splitlines() if line.strip()[:2] in ("0 ", "10", "50")]
    assert {"0", "10", "50"} <= set(steps)


def test_probe_table_has_sparklines_and_verdicts() -> None:
    code, out, _ = run("probe", TANH10, "-i", "normal:std=0.01", "-i", "xavier_normal")
    assert code == 0
    assert "vanishing" in out and "stable" in out
    sparks = [line for line in out.splitlines() if "normal(mean=0, std=0.01)" in line]
    assert any(set("▁▂▃▄▅▆▇█") & set(line) for line in sparks)
    assert max(len(line) for line in out.splitlines()) <= 100


@pytest.mark.parametrize("command", ["probe", "compare"])
def test_csv_and_markdown(command: str) -> None:
    code, out, _ = run(command, MLP, "-i", "kaiming", "-i", "zeros", "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 10 and rows[0]["scheme"].startswith("kaiming_normal")
    assert {"verdict", "name", "std", "zero_frac", "grad_norm"} <= set(rows[0])
    code, out, _ = run(command, MLP, "-i", "kaiming", "-i", "zeros", "-f", "markdown")
    assert code == 0
    assert out.startswith("| scheme | verdict | first_std |") and "| zeros | symmetric |" in out


def test_compare_train_csv_is_the_loss_curves() -> None:
    code, out, _ = run("compare", MOONS, "-i", "zeros", "--train", "3", "-f", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["step"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[-1]["accuracy"] == "0.5" and rows[0]["accuracy"] == ""


# --- --plot --------------------------------------------------------------------------------------


def test_plot_png_size_and_no_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "probe.png"
    code, _, err = run("probe", TANH10, "-i", "normal:std=0.01", "-i", "xavier_normal",
                       "--plot", str(out), "-f", "json")  # fmt: skip
    assert code == 0 and "wrote" in err
    assert png_size(out) == (1600, 2 * 200 + 400) == plot.figure_pixels(2)
    assert [p.name for p in tmp_path.iterdir()] == ["probe.png"]  # the temp file is gone


def test_compare_plot_with_losses(tmp_path: Path) -> None:
    out = tmp_path / "moons.png"
    code, _, _ = run("compare", MOONS, "-i", "kaiming", "-i", "xavier_normal", "-i", "zeros",
                     "--train", "20", "--plot", str(out), "-f", "json")  # fmt: skip
    assert code == 0
    assert png_size(out) == (1600, 3 * 200 + 400)


def test_plot_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "probe.png"
    out.write_bytes(b"keep me")
    code, stdout, err = run("probe", MLP, "-i", "kaiming", "--plot", str(out))
    assert code == 2 and stdout == ""
    assert err.startswith("Error: --plot") and "--force" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"keep me"
    code, _, _ = run("probe", MLP, "-i", "kaiming", "--plot", str(out), "--force", "-f", "json")
    assert code == 0 and png_size(out) == (1600, 600)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("probe.txt", "must end in .png"),
        ("missing/probe.png", "does not exist"),
        (".", "directory"),
    ],
)
def test_plot_bad_destination(tmp_path: Path, name: str, message: str) -> None:
    code, _, err = run("probe", MLP, "-i", "kaiming", "--plot", str(tmp_path / name))
    assert code == 2 and message in err


def test_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib → ImportError
    code, stdout, err = run("probe", MLP, "-i", "kaiming", "--plot", str(tmp_path / "p.png"))
    assert code == 2 and stdout == ""  # refused before any work
    assert (
        err == "Error: --plot needs matplotlib, not installed here: pip install 'initcli[plot]'\n"
    )


# --- errors and help -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["probe", MLP], "give at least one --init"),
        (["probe", MLP, "-i", "kaiming", "--input-shape", "4,y"], "--input-shape '4,y'"),
        (["probe", "tests/probe_models.py:mismatched", "-i", "kaiming"], "in layer '2' (Linear)"),
        (["probe", "tests/probe_models.py:lstm_first", "-i", "kaiming"], "--input-shape"),
        (
            ["compare", "sample_models/relu20.yaml", "-i", "zeros", "--train", "5"],
            "takes 256 per sample",
        ),
        (["compare", MOONS, "-i", "zeros", "--train", "0"], "--train"),
        (["probe", MLP, "-i", "kaiming", "--batch-size", "0"], "--batch-size"),
        (["gain", "--slope", "nan"], "--slope"),
    ],
)
def test_errors_are_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("command", ["probe", "compare"])
def test_help_states_the_thresholds(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert f"< {verdict.VANISHING_RATIO:g}" in text and f"> {verdict.EXPLODING_RATIO:g}" in text
    assert f"≥ {verdict.DEAD_FRAC:.0%}" in text and f"≥ {verdict.SATURATED_FRAC:.0%}" in text
    assert f"|a| > {verdict.SATURATION_LEVEL:g}" in text


# --- inspect --init auto, schemes, defaults, gain ------------------------------------------------


def test_inspect_auto_shows_what_and_why() -> None:
    code, out, _ = run("inspect", MLP, "--init", "auto")
    assert code == 0
    assert "auto: what each weight got, and why" in out
    assert "kaiming_normal(relu)" in out and "act1 relu (spec)" in out
    code, out, _ = run("inspect", MLP, "--init", "auto", "-f", "json")
    data = json.loads(out)
    assert data["scheme"] == "auto"
    inits = {p["name"]: p["init"] for p in data["params"]}
    assert inits["fc1.weight"] == "kaiming_normal(relu) ← act1 relu (spec)"
    assert data["params"][0]["expected_var"] == 0.5  # 2/fan_in, fan_in 4


def test_schemes_lists_auto() -> None:
    code, out, _ = run("schemes", "-f", "json")
    assert code == 0
    assert "auto" in [row["name"] for row in json.loads(out)]


def test_defaults_command() -> None:
    code, out, _ = run("defaults", "sample_models/relu20.yaml")
    assert code == 0
    text = " ".join(out.split())
    assert "kaiming_uniform_(a=√5)" in text and "1/(3·fan_in)" in text
    assert (
        "⚠ Linear fc1 … fc20 (20) → relu" in text
        and "1/6 of kaiming_normal(relu)'s 2/fan_in" in text
    )
    code, out, _ = run("defaults", "sample_models.lenet:LeNet5", "-f", "json")
    data = json.loads(out)
    assert list(data) == ["target", "types", "checks", "warnings", "notes"]
    assert [t["type"] for t in data["types"]] == ["Conv2d", "Linear"]
    conv1 = data["checks"][0]
    assert conv1["name"] == "conv1.weight" and conv1["ratio"] == pytest.approx(1 / 6)
    for fmt in ("csv", "markdown"):
        assert run("defaults", MLP, "-f", fmt)[0] == 0


def test_gain_command() -> None:
    code, out, _ = run("gain", "--slope", "0.2", "-f", "json")
    assert code == 0
    rows = {r["nonlinearity"]: r for r in json.loads(out)}
    assert rows["leaky_relu"]["gain"] == pytest.approx(math.sqrt(2 / 1.04), rel=1e-15)
    assert rows["tanh"]["formula"] == "5/3" and rows["relu"]["formula"] == "√2"
    code, out, _ = run("gain")
    assert code == 0 and "1.41421" in out and "leaky_relu" in out
    for fmt in ("csv", "markdown"):
        assert run("gain", "-f", fmt)[0] == 0


def test_probe_prints_and_returns_the_policys_remarks() -> None:
    code, out, err = run(
        "probe", MLP, "--init", "Conv2d=xavier_normal; Linear=normal:std=0.01", "--format", "json"
    )
    assert code == 0
    said = "rule 'Conv2d=xavier_normal' sets no parameter of sample_models/mlp.yaml"
    assert json.loads(out)["remarks"] == [said]
    assert f"Note: {said}\n" in err


def test_compare_names_the_init_each_remark_belongs_to() -> None:
    code, out, err = run(
        "compare", MLP, "--init", "Conv2d=xavier_normal; Linear=normal:std=0.01",
        "--init", "*.bias=zeros", "--format", "json",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out)["remarks"] == [
        "--init Conv2d=xavier_normal; Linear=normal:std=0.01: rule 'Conv2d=xavier_normal' sets "
        "no parameter of sample_models/mlp.yaml",
        "--init *.bias=zeros: 3 parameters of sample_models/mlp.yaml match no rule and keep "
        "their constructors' values (default): fc1.weight, fc2.weight, fc3.weight",
    ]
    assert err.count("Note: --init ") == 2


def test_probe_without_a_policy_has_no_remarks() -> None:
    code, out, err = run("probe", MLP, "--init", "kaiming_normal", "--format", "json")
    assert code == 0 and json.loads(out)["remarks"] == [] and "Note:" not in err
