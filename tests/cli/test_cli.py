"""The command line via typer's CliRunner and `python -m initcli`: output, JSON, exit codes."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initcli.cli import app

ODD = "tests/models_for_tests.py"
ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_count_json_is_the_contract_object() -> None:
    code, out, err = run("count", "sample_models/mlp.yaml", "--format", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert list(data) == [
        "target",
        "total",
        "trainable",
        "frozen",
        "buffers",
        "torchinfo",
        "agree",
        "notes",
        "modules",
        "torchinfo_input",
        "groups",
    ]
    assert data == {
        "target": "sample_models/mlp.yaml", "total": 51, "trainable": 51, "frozen": 0,
        "buffers": 0, "torchinfo": {"total": 51, "trainable": 51}, "agree": True, "notes": [],
        "modules": [
            {"name": "fc1", "type": "Linear", "params": 25, "formula": "4×5 + 5"},
            {"name": "fc2", "type": "Linear", "params": 18, "formula": "5×3 + 3"},
            {"name": "fc3", "type": "Linear", "params": 8, "formula": "3×2 + 2"},
        ],
        "torchinfo_input": None,
        "groups": [],
    }  # fmt: skip


def test_count_tied_json_disagrees_with_a_note() -> None:
    code, out, _ = run("count", "sample_models.tied_lm:TiedLM", "-f", "json")
    data = json.loads(out)
    assert code == 0
    assert (data["total"], data["torchinfo"]["total"], data["agree"]) == (68160, 132160, False)
    assert "embed.weight" in data["notes"][0] and "head.weight" in data["notes"][0]


def test_inspect_json_keys_and_values() -> None:
    code, out, err = run(
        "inspect", "sample_models/mlp.py:MLP", "--init", "kaiming", "--format", "json"
    )
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert list(data) == ["target", "scheme", "seed", "params", "counts", "groups"]
    assert data["scheme"] == "kaiming_normal(mode=fan_in, nonlinearity=leaky_relu, a=0)"
    assert data["seed"] == 0
    first = data["params"][0]
    assert list(first) == [
        "name",
        "module",
        "shape",
        "numel",
        "fan_in",
        "fan_out",
        "mean",
        "var",
        "std",
        "min",
        "max",
        "expected_mean",
        "expected_var",
        "init",
        "requires_grad",
        "dtype",
        "status",
        "looks_like",
        "fit",
        "forward_fan_in",
        "forward_fan_out",
    ]
    assert (first["forward_fan_in"], first["forward_fan_out"]) == (4, 5)  # a Linear: torch's
    assert list(first["fit"]) == ["family", "std", "bound", "matches"]
    assert first["fit"]["family"] in ("normal", "uniform", "trunc_normal")  # 20 values: any fits
    assert "kaiming_normal(fan_in, relu)" in first["fit"]["matches"]
    assert (first["name"], first["module"], first["shape"], first["numel"]) == (
        "fc1.weight",
        "Linear",
        [5, 4],
        20,
    )
    assert (first["fan_in"], first["fan_out"], first["expected_var"]) == (4, 5, 0.5)
    assert (first["init"], first["requires_grad"], first["dtype"], first["status"]) == (
        "kaiming_normal",
        True,
        "float32",
        "ok",
    )
    bias = data["params"][1]
    assert (bias["fan_in"], bias["fan_out"], bias["status"]) == (None, None, "ok")
    assert data["counts"]["total"] == 51


def test_inspect_table_fits_100_columns_and_has_totals() -> None:
    code, out, _ = run("inspect", "sample_models.transformer:TinyTransformer")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100
    assert "in_proj_weight" in out and "xavier_uniform" in out
    assert "torchinfo" in out and "33,792" in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_count_table_shows_formulas() -> None:
    code, out, _ = run("count", "sample_models.lenet:LeNet5")
    assert code == 0
    assert "6×3×5×5 + 6" in out and "62,006" in out and "agrees" in out


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_text_formats(fmt: str) -> None:
    code, out, _ = run("inspect", "sample_models/mlp.yaml", "--init", "xavier", "-f", fmt)
    assert code == 0
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["name"] for r in rows] == [
            "fc1.weight",
            "fc1.bias",
            "fc2.weight",
            "fc2.bias",
            "fc3.weight",
            "fc3.bias",
        ]
        assert rows[0]["shape"] == "5 4" and rows[0]["fan_in"] == "4"
    else:
        assert out.startswith("| name | module | shape |")
        assert "| fc1.weight | Linear | 5×4 | 20 | 4 | 5 |" in out
        assert "total 51" in out


def test_schemes_lists_every_scheme() -> None:
    code, out, _ = run("schemes", "-f", "json")
    assert code == 0
    data = json.loads(out)
    names = [row["name"] for row in data]
    assert names[:3] == ["default", "zeros", "ones"]
    assert {"kaiming_normal", "xavier_uniform", "orthogonal", "lecun_normal"} <= set(names)
    code, out, _ = run("schemes")
    assert "he_normal" in out and "gain² / fan" in out


def test_expect() -> None:
    assert run("count", "sample_models/mlp.yaml", "--expect", "51")[0] == 0
    code, _, err = run("count", "sample_models/mlp.yaml", "--expect", "50")
    assert code == 1
    assert (
        err == "Check failed: expected 50 parameters, counted 51 (+1) in sample_models/mlp.yaml\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["inspect", "nope.yaml"], "Error: nope.yaml: no such file; check the path"),
        (
            ["inspect", "sample_models/"],
            "Error: sample_models/ is a directory; name a .py file in it",
        ),
        (["count", "nope_pkg_xyz.mod:Net"], "Error: cannot import 'nope_pkg_xyz.mod'"),
        (["count", "sample_models/mlp.py:Nope"], "Error: 'sample_models/mlp.py' has no attribute"),
        (
            ["count", f"{ODD}:NeedsArgs"],
            "Error: tests/models_for_tests.py:NeedsArgs needs constructor arguments: width, depth",
        ),
        (
            ["count", f"{ODD}:NeedsArgs", "--arg", "width=3", "--arg", "depth=2", "--arg", "x=1"],
            "does not accept --arg x",
        ),
        (["count", f"{ODD}:Raises"], "failed: RuntimeError: CUDA is required for this model"),
        (["count", f"{ODD}:not_a_module"], "returned a int, not an nn.Module"),
        (["count", f"{ODD}:NUMBER"], "is a int, not an nn.Module class"),
        (
            ["count", "sample_models.mlp:mlp", "--arg", "depth"],
            "Error: --arg 'depth' is not key=value",
        ),
        (
            ["inspect", "sample_models/mlp.yaml", "--init", "kaimin"],
            "Error: unknown scheme 'kaimin'; did you mean 'kaiming'?",
        ),
        (
            ["inspect", "sample_models/mlp.yaml", "--init", "normal:sdt=1"],
            "Error: normal has no parameter 'sdt'; did you mean 'std'?",
        ),
        (
            ["inspect", "sample_models/mlp.yaml", "--seed", "-1"],
            "Error: Invalid value for '--seed'",
        ),
        (
            ["inspect", "sample_models/mlp.yaml", "--format", "xml"],
            "Error: Invalid value for '--format'",
        ),
        (["inspect", "sample_models/mlp.yaml", "--bogus"], "Error: No such option: --bogus"),
        (["inspect"], "Error: Missing argument 'TARGET'"),
        (
            ["count", "sample_models/mlp.yaml", "--expect", "lots"],
            "Error: Invalid value for '--expect'",
        ),
        (["frobnicate"], "Error: No such command 'frobnicate'"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(args: list[str], message: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert out == ""
    assert err.startswith("Error: ") and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_spec_names_key_and_line(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("input: 4\nlayers:\n  - {units: 5, activation: relu}\n  - {unit: 3}\n")
    code, _, err = run("count", str(spec))
    assert code == 2
    assert "line 4" in err and "'unit'" in err and "did you mean 'units'?" in err


def _installed(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "initcli", *args],
        cwd=ROOT,
        text=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_biases_kept_at_default_are_the_same_every_run() -> None:
    # The seed goes before the build too, so the constructors' biases are reproducible
    # (docs/contract/schemes.md); each run is a fresh process.
    args = ("inspect", "sample_models/mlp.yaml", "--init", "kaiming_normal")
    runs = [_installed(*args, "--bias-init", "default", "-f", "json") for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr
    assert runs[0].stdout == runs[1].stdout
    bias = json.loads(runs[0].stdout)["params"][1]
    assert bias["name"] == "fc1.bias" and bias["var"] > 0


def test_python_m_initcli_runs_and_errors_cleanly() -> None:
    ok = _installed("count", "sample_models/mlp.yaml", "--format", "json")
    assert ok.returncode == 0 and json.loads(ok.stdout)["total"] == 51
    bad = _installed("inspect", "sample_models/mlp.yaml", "--init", "nope")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("Error: unknown scheme 'nope'") and "Traceback" not in bad.stderr


def test_help_and_argument_errors_do_not_import_torch() -> None:
    probe = (
        "import sys; from initcli.cli import main; sys.argv=['initcli', *sys.argv[1:]];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    for args in (
        ["--help"],
        ["inspect", "--help"],
        ["count", "x.yaml", "--bogus"],
        ["probe", "--help"],
        ["compare", "--help"],
        ["defaults", "--help"],
        ["gain", "--help"],
        ["inspect", "x.yaml", "--device", "gpu"],
    ):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=False,
        )
        assert result.stdout.strip().endswith("NO-TORCH"), (args, result.stdout[-200:])


def test_no_color_env_and_pipe_give_plain_text() -> None:
    result = _installed("count", "sample_models/mlp.yaml", env={"NO_COLOR": "1"})
    assert result.returncode == 0
    assert "\x1b[" not in result.stdout and "4×5 + 5" in result.stdout


def test_no_command_prints_help_and_one_error_line() -> None:
    code, out, err = run()
    assert code == 2
    assert "Commands" in out
    # In-process the program is named after the app object; `initcli` in a shell.
    assert err.startswith("Error: no command given: choose one of the commands above (see '")
    assert err.endswith(" --help')\n") and err.count("\n") == 1


def test_help_shows_percent_signs_once() -> None:
    code, out, _ = run("compare", "--help")
    assert code == 0
    assert "95% t-interval" in " ".join(out.split())
    assert "%%" not in out


def test_markdown_cells_with_several_lines_stay_in_their_row() -> None:
    # defaults groups modules of one type into one cell: a raw line break would end the row.
    code, out, _ = run(
        "defaults", str(ROOT / "sample_models/lenet.py") + ":LeNet5", "-f", "markdown"
    )
    assert code == 0
    table = [line for line in out.splitlines() if line][:6]
    assert all(line.startswith("|") and line.endswith("|") for line in table)
    assert "| Conv2d | conv1<br>conv2 | weight |" in out
