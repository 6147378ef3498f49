"""--output/--force everywhere, --version, schema, completion, and the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initcli import __version__
from initcli.cli import app

ROOT = Path(__file__).resolve().parents[2]
INITCLI = Path(sys.executable).parent / "initcli"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def installed(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(INITCLI), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


COMMANDS = [
    ["inspect", "sample_models/mlp.yaml", "--init", "xavier"],
    ["count", "sample_models.lenet:LeNet5"],
    ["schemes"],
    ["probe", "sample_models/mlp.yaml", "-i", "kaiming"],
    ["compare", "sample_models/mlp.yaml", "-i", "kaiming", "-i", "xavier_normal"],
    ["defaults", "sample_models.lenet:LeNet5"],
    ["gain"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_output_writes_what_stdout_would_show(tmp_path: Path, command: list[str], fmt: str) -> None:
    out = tmp_path / f"report.{fmt}"
    code, shown, _ = run(*command, "-f", fmt)
    assert code == 0
    code, stdout, err = run(*command, "-f", fmt, "--output", str(out))
    assert (code, stdout, err) == (0, "", f"Wrote {out}\n")
    assert out.read_text(encoding="utf-8") == shown
    if fmt == "json":
        json.loads(shown)
    # Never over an existing file without --force; with it, replaced whole.
    code, stdout, err = run(*command, "-f", fmt, "-o", str(out))
    assert (code, stdout) == (2, "")
    assert err == f"Error: {out} exists; pass --force to replace it, or choose another name\n"
    out.write_text("old")
    assert run(*command, "-f", fmt, "-o", str(out), "--force")[0] == 0
    assert out.read_text(encoding="utf-8") == shown


def test_output_is_written_even_when_the_check_fails(tmp_path: Path) -> None:
    out = tmp_path / "count.json"
    code, _, err = run(
        "count", "sample_models/mlp.yaml", "-f", "json", "-o", str(out), "--expect", "50"
    )
    assert code == 1
    assert err.splitlines() == [
        f"Wrote {out}",
        "Check failed: expected 50 parameters, counted 51 (+1) in sample_models/mlp.yaml",
    ]
    assert json.loads(out.read_text())["total"] == 51


def test_output_into_a_missing_folder_is_a_clean_error(tmp_path: Path) -> None:
    code, _, err = run("schemes", "-o", str(tmp_path / "nope" / "s.txt"))
    assert code == 2
    assert err.startswith("Error: cannot write ") and "does not exist; create it first" in err


def test_version() -> None:
    for flag in ("--version", "-V"):
        code, out, _ = run(flag)
        assert (code, out) == (0, f"initcli {__version__}\n")
    from importlib.metadata import version

    assert version("initcli") == __version__  # pyproject reads it from initcli.__version__


def test_schema_is_the_spec_json_schema(tmp_path: Path) -> None:
    from initcli.model.spec import spec_json_schema

    code, out, _ = run("schema")
    assert code == 0
    assert json.loads(out) == spec_json_schema()
    assert {"input", "layers"} <= set(json.loads(out)["properties"])
    target = tmp_path / "initcli-spec.schema.json"
    assert run("schema", "-o", str(target))[0] == 0
    assert target.read_text() == out


def test_shell_completion_is_offered_and_completes_commands() -> None:
    code, out, _ = run("--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out
    # typer detects the shell from the parent processes unless told which; a test run whose
    # parent shell has exited (a background job) has none, so the shell is named here.
    script = installed(
        "--show-completion", "bash", _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"
    )
    assert script.returncode == 0 and "_INITCLI_COMPLETE=complete_bash" in script.stdout
    words = installed(_INITCLI_COMPLETE="complete_bash", COMP_WORDS="initcli sn", COMP_CWORD="1")
    assert words.stdout.split() == ["snapshot"]
    options = installed(
        _INITCLI_COMPLETE="complete_bash", COMP_WORDS="initcli count x --expect-", COMP_CWORD="3"
    )
    assert options.stdout.split() == ["--expect-trainable"]


def test_version_and_schema_errors_do_not_import_torch() -> None:
    probe = (
        "import sys; from initcli.cli import main; sys.argv=['initcli', *sys.argv[1:]];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')"
    )
    for args in (["--version"], ["count", "x.yaml", "--expect", "lots"], ["check", "--help"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args], cwd=ROOT, text=True, capture_output=True,
            check=False,
        )  # fmt: skip
        assert result.stdout.strip().endswith("NO-TORCH"), (args, result.stdout[-200:])


def test_installed_console_script_end_to_end(tmp_path: Path) -> None:
    """CI use through the real `initcli` executable: --expect, snapshot, check, --update."""
    assert INITCLI.exists(), "pip install -e . puts the initcli console script next to python"
    version = installed("--version")
    assert (version.returncode, version.stdout) == (0, f"initcli {__version__}\n")

    failed = installed(
        "count", "sample_models/mlp.yaml", "--expect", "0.1M", "--expect-trainable", "51"
    )
    assert failed.returncode == 1 and "4×5 + 5" in failed.stdout
    assert failed.stderr == (
        "Check failed: expected 0.1M parameters (50,000 to 149,999, as rounded), counted 51 "
        "(-99,949 vs 100,000) in sample_models/mlp.yaml\n"
    )

    model = tmp_path / "model.py"
    model.write_text(
        "from torch import nn\n\n"
        "def build(width: int = 5) -> nn.Module:\n"
        "    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 2))\n"
    )
    base = tmp_path / "counts.json"
    snap = installed("snapshot", f"{model}:build", "--arg", "width=5", "-o", str(base))
    assert snap.returncode == 0 and snap.stderr == f"Wrote {base} (1 target)\n", snap.stderr
    model.write_text(model.read_text().replace("nn.Linear(4, width)", "nn.Linear(4, width * 2)"))
    check = installed("check", str(base), "-f", "markdown")
    assert check.returncode == 1
    assert f"| {model}:build | width=5 | params | 0 | Linear | 25 | 50 | +25 |" in check.stdout
    assert "Check failed: 1 of 1 targets changed" in check.stderr
    update = installed("check", str(base), "--update")
    assert (update.returncode, update.stderr) == (0, f"Wrote {base} (re-recorded)\n")
    assert json.loads(base.read_text())["models"][0]["total"] == 62


@pytest.mark.parametrize("command", ["inspect", "count"])
def test_an_existing_output_is_refused_before_the_work(tmp_path: Path, command: str) -> None:
    out = tmp_path / "r.json"
    out.write_text("keep")
    # The constructor of Raises fails; the existing file is reported first, so nothing was built.
    code, _, err = run(command, "tests/models_for_tests.py:Raises", "-o", str(out))
    assert code == 2 and err.startswith(f"Error: {out} exists; pass --force"), err
    assert out.read_text() == "keep"
