"""snapshot/check: stable baseline JSON, per-module diffs, exit codes, --update and --force."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initcli.cli import app
from initcli.report import baseline

ROOT = Path(__file__).resolve().parents[2]
INITCLI = Path(sys.executable).parent / "initcli"

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.encoder = nn.Linear(4, width)
        self.head = nn.Linear(width, 2)
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def net(tmp_path: Path) -> Path:
    path = tmp_path / "net.py"
    path.write_text(NET)
    return path


def test_snapshot_json_is_sorted_stable_and_ends_with_a_newline(tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    code, stdout, err = run(
        "snapshot", "sample_models/mlp.yaml", "sample_models.lenet:LeNet5", "-o", str(out)
    )
    assert (code, stdout, err) == (0, "", f"Wrote {out} (2 targets)\n")
    text = out.read_text()
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data["format"] == 1
    assert [m["target"] for m in data["models"]] == [
        "sample_models.lenet:LeNet5",
        "sample_models/mlp.yaml",
    ]
    mlp = data["models"][1]
    assert mlp == {
        "args": {}, "buffers": 0, "frozen": 0, "target": "sample_models/mlp.yaml", "total": 51,
        "trainable": 51,
        "modules": {"fc1": {"params": 25, "type": "Linear"},
                    "fc2": {"params": 18, "type": "Linear"},
                    "fc3": {"params": 8, "type": "Linear"}},
    }  # fmt: skip
    # Same input, same bytes: the order targets are named in does not matter.
    code, again, _ = run("snapshot", "sample_models.lenet:LeNet5", "sample_models/mlp.yaml")
    assert code == 0 and again == text


def test_snapshot_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    out.write_text("keep me")
    code, _, err = run("snapshot", "sample_models/mlp.yaml", "-o", str(out))
    assert code == 2
    assert err == f"Error: {out} exists; pass --force to replace it, or choose another name\n"
    assert out.read_text() == "keep me"
    code, _, _ = run("snapshot", "sample_models/mlp.yaml", "-o", str(out), "--force")
    assert code == 0 and json.loads(out.read_text())["models"][0]["total"] == 51


def test_check_passes_then_fails_with_a_per_module_diff(tmp_path: Path, net: Path) -> None:
    out = tmp_path / "counts.json"
    target = f"{net}:Net"
    assert run("snapshot", target, "--arg", "width=8", "-o", str(out))[0] == 0
    assert json.loads(out.read_text())["models"][0]["args"] == {"width": 8}
    code, stdout, err = run("check", str(out))
    assert (code, err) == (0, "")
    assert "✓" in stdout and f"all 1 target match {out}" in stdout

    # The model changes: the encoder grows and a module is added.
    net.write_text(
        NET.replace("nn.Linear(4, width)", "nn.Linear(6, width)").replace(
            "        self.head", "        self.norm = nn.LayerNorm(width)\n        self.head"
        )
    )
    code, stdout, err = run("check", str(out))
    assert code == 1
    assert err == (
        f"Check failed: 1 of 1 targets changed since {out}; if the change is intended, "
        f"re-record it with initcli check {out} --update\n"
    )
    assert "total 58 → 90 (+32)" in stdout
    rows = [line.split() for line in stdout.splitlines()]
    assert ["params", "encoder", "Linear", "40", "56", "+16"] in rows
    assert ["params", "norm", "LayerNorm", "–", "16", "+16", "(new)"] in rows

    code, stdout, _ = run("check", str(out), "-f", "json")
    data = json.loads(stdout)
    assert data["ok"] is False
    changes = data["targets"][0]["changes"]
    assert {"field": "params", "name": "encoder", "type": "Linear", "baseline": 40, "now": 56,
            "change": 16} in changes  # fmt: skip
    assert data["targets"][0]["args"] == {"width": 8}

    code, stdout, _ = run("check", str(out), "-f", "markdown")
    assert "| target | args | field | name | type | baseline | now | change |" in stdout
    assert "| params | norm | LayerNorm |  | 16 | +16 |" in stdout
    assert f"1 of 1 targets changed since {out}" in stdout

    code, stdout, _ = run("check", str(out), "-f", "csv")
    assert stdout.splitlines()[0] == "target,args,field,name,type,baseline,now,change"
    assert f"{target},width=8,params,encoder,Linear,40,56,+16" in stdout.splitlines()

    # After an intended change: --update shows the diff, re-records, and exits 0.
    code, _, err = run("check", str(out), "--update")
    assert (code, err) == (0, f"Wrote {out} (re-recorded)\n")
    assert json.loads(out.read_text())["models"][0]["total"] == 90
    assert json.loads(out.read_text())["models"][0]["args"] == {"width": 8}
    assert run("check", str(out))[0] == 0


def test_removed_modules_and_csv_without_changes(tmp_path: Path, net: Path) -> None:
    out = tmp_path / "counts.json"
    run("snapshot", f"{net}:Net", "-o", str(out))
    code, stdout, _ = run("check", str(out), "-f", "csv")
    assert (code, stdout) == (0, "target,args,field,name,type,baseline,now,change\n")
    net.write_text(NET.replace("        self.head = nn.Linear(width, 2)\n", ""))
    report = baseline.check(out)
    assert not report.ok
    (change,) = [c for c in report.targets[0].changes if c.field == "params"]
    assert (change.name, change.before, change.after, change.delta) == ("head", 18, None, -18)


def test_update_adds_targets_and_replaces_same_args(tmp_path: Path) -> None:
    out = tmp_path / "counts.json"
    run("snapshot", "sample_models/mlp.yaml", "-o", str(out))
    code, _, err = run(
        "snapshot", "sample_models.mlp:mlp", "--arg", "depth=3", "-o", str(out), "--update"
    )
    assert (code, err) == (0, f"Wrote {out} (2 targets)\n")
    run("snapshot", "sample_models.mlp:mlp", "--arg", "depth=4", "-o", str(out), "--update")
    run("snapshot", "sample_models.mlp:mlp", "--arg", "depth=4", "-o", str(out), "--update")
    models = json.loads(out.read_text())["models"]
    assert [(m["target"], m["args"]) for m in models] == [
        ("sample_models.mlp:mlp", {"depth": 3}),
        ("sample_models.mlp:mlp", {"depth": 4}),
        ("sample_models/mlp.yaml", {}),
    ]
    assert run("check", str(out))[0] == 0


def test_stats_catch_a_changed_init(tmp_path: Path, net: Path) -> None:
    out = tmp_path / "stats.json"
    code, _, err = run(
        "snapshot", f"{net}:Net", "--stats", "--init", "kaiming", "--seed", "1", "-o", str(out)
    )
    assert code == 0, err
    entry = json.loads(out.read_text())["models"][0]
    stats = entry["stats"]
    assert (stats["init"], stats["seed"]) == ("kaiming", 1)
    assert stats["params"]["encoder.weight"]["init"] == "kaiming_normal"
    assert stats["params"]["encoder.weight"]["shape"] == [8, 4]
    assert stats["params"]["encoder.weight"]["expected_var"] == 0.5
    assert run("check", str(out))[0] == 0

    # Same shapes and counts, but the model now re-initializes a layer itself: a named --init
    # overwrites it, so record with the model's own init to see it.
    run("snapshot", f"{net}:Net", "--stats", "-o", str(out), "--force")
    net.write_text(NET + "        nn.init.normal_(self.head.weight, std=5.0)\n")
    code, stdout, _ = run("check", str(out))
    assert code == 1
    rows = [line.split() for line in stdout.splitlines()]
    assert any(r[:2] == ["std", "head.weight"] for r in rows), stdout
    assert any(r[:2] == ["status", "head.weight"] for r in rows), stdout


def test_stats_of_a_weights_file(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    run("inspect", "sample_models/mlp.yaml", "--init", "xavier", "--save", str(weights))
    out = tmp_path / "b.json"
    code, _, err = run("snapshot", str(weights), "--stats", "--init", "xavier", "-o", str(out))
    assert code == 0, err
    entry = json.loads(out.read_text())["models"][0]
    assert entry["total"] == 51 and entry["stats"]["seed"] is None
    assert {p["status"] for p in entry["stats"]["params"].values()} == {"ok"}
    assert run("check", str(out))[0] == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "baseline {path} does not exist; create one with: initcli snapshot TARGET... -o"),
        ("{not json", "baseline {path} is not valid JSON (line 1: "),
        (
            '{"models": [{"target": "x"}]}',
            "baseline {path} is not an initcli baseline (models.0.args",
        ),
        (
            '{"format": 9, "models": []}',
            "baseline {path} has format 9; this initcli reads format 1",
        ),
        ("[1, 2]", "baseline {path} is not an initcli baseline (the top level: "),
    ],
)
def test_bad_baselines_exit_2(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "b.json"
    if content is not None:
        path.write_text(content)
    code, out, err = run("check", str(path))
    assert (code, out) == (2, "")
    assert err.startswith("Error: " + message.format(path=path)), err
    assert err.count("\n") == 1


def test_a_target_that_no_longer_builds_names_the_entry(tmp_path: Path, net: Path) -> None:
    out = tmp_path / "b.json"
    run("snapshot", f"{net}:Net", "-o", str(out))
    net.write_text(NET.replace("class Net", "class Renamed"))
    code, _, err = run("check", str(out))
    assert code == 2
    assert err.startswith(f"Error: {out}: {net}:Net: '{net}' has no attribute 'Net'"), err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sample_models/mlp.yaml", "--update"],
            "Error: --update needs the baseline file: -o FILE",
        ),
        (
            ["sample_models/mlp.yaml", "--init", "xavier"],
            "Error: --init and --bias-init only apply",
        ),
        (["sample_models/mlp.yaml", "sample_models/mlp.yaml"], "is named twice"),
        (["sample_models.mlp:mlp", "--arg", "d=2020-01-01"], "cannot be stored in a baseline"),
        ([], "Error: Missing argument 'TARGET...'"),
    ],
)
def test_snapshot_usage_errors(args: list[str], message: str) -> None:
    code, out, err = run("snapshot", *args)
    assert (code, out) == (2, "")
    assert message in err and err.count("\n") == 1, err


def test_ci_runs_the_readme_test_command_then_the_baseline_check() -> None:
    lines = (ROOT / ".ci/run").read_text().splitlines()
    readme = (ROOT / "README.md").read_text()
    command = (
        "python3 -m venv .venv && . .venv/bin/activate && pip install -q -c constraints.txt -e "
        '".[test]" && python -m pytest'
    )
    assert command in lines and command in readme
    assert lines[lines.index(command) + 1] == "initcli check baselines/sample_models.json"


def test_pre_commit_hook_runs_initcli_check() -> None:
    import yaml

    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    (hook,) = hooks
    assert hook["id"] == "initcli-check"
    assert hook["entry"] == "initcli check" and hook["pass_filenames"] is False
    assert hook["language"] == "system"
    # What pre-commit runs (entry + args), which is also the check .ci/run makes after the tests:
    # through the real console script, so a stale committed baseline fails here first.
    result = subprocess.run(
        [str(INITCLI), *hook["entry"].split()[1:], "baselines/sample_models.json"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 17 targets match baselines/sample_models.json" in result.stdout


def test_the_sample_baseline_covers_every_sample_model() -> None:
    targets = {
        m.target for m in baseline.read_baseline(ROOT / "baselines/sample_models.json").models
    }
    for spec in sorted((ROOT / "sample_models").glob("*.yaml")):
        assert f"sample_models/{spec.name}" in targets, spec.name
    for source in sorted((ROOT / "sample_models").glob("*.py")):
        if source.stem != "__init__":
            assert any(t.startswith(f"sample_models.{source.stem}:") for t in targets), source.name
