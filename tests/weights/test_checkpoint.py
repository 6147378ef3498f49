"""Weights files: inspect/count of .safetensors and state dicts, --against, --save, safe loading."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, load_model, save_file
from torch import nn
from typer.testing import CliRunner

from initcli import inspect as inspect_model
from initcli import inspect_checkpoint
from initcli.cli import app
from initcli.errors import CheckpointError, TargetError
from initcli.report import CheckpointParam, CheckpointReport
from sample_models.cnn_bn import SmallCNN
from sample_models.lenet import LeNet5
from sample_models.tied_lm import TiedLM

ROOT = Path(__file__).resolve().parents[2]
INITCLI = Path(sys.executable).parent / "initcli"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str) -> dict[str, object]:
    code, out, err = run(*args, "--format", "json")
    assert code == 0, err
    assert err in ("", f"Wrote {args[args.index('--save') + 1]}\n" if "--save" in args else "")
    data: dict[str, object] = json.loads(out)
    return data


class RunsCode:
    """A pickle payload: unpickling it runs a shell command that creates `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _params(data: dict[str, object]) -> list[dict[str, object]]:
    params = data["params"]
    assert isinstance(params, list)
    return params


# --- inspect --save, then inspect the file --------------------------------------------------------


def test_save_writes_exactly_the_measured_weights(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    inspected = run_json(
        "inspect", "sample_models/mlp.yaml", "--init", "kaiming", "--seed", "3", "--save", str(out)
    )
    # The seeding contract: build, manual_seed, torch.nn.init per parameter in order.
    torch.manual_seed(0)
    from initcli.model.spec import build_mlp, load_spec

    model = build_mlp(load_spec("sample_models/mlp.yaml"))
    torch.manual_seed(3)
    for param in model.parameters():
        if param.dim() >= 2:
            nn.init.kaiming_normal_(param)
        else:
            nn.init.zeros_(param)
    saved = load_file(out)
    assert set(saved) == {n for n, _ in model.named_parameters()}
    for name, param in model.named_parameters():
        assert torch.equal(saved[name], param.detach()), name
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    assert meta["initcli.target"] == "sample_models/mlp.yaml"
    assert meta["initcli.scheme"] == inspected["scheme"]
    assert meta["initcli.seed"] == "3"

    # Inspecting the saved file against the same scheme gives the same statistics, all ok.
    again = run_json("inspect", str(out), "--against", "kaiming")
    assert again["scheme"] == inspected["scheme"] and again["seed"] is None
    by_name = {p["name"]: p for p in _params(again)}
    for before in _params(inspected):
        after = by_name[str(before["name"])]
        for key in ("shape", "numel", "fan_in", "fan_out", "mean", "var", "expected_var", "status"):
            assert after[key] == before[key], (before["name"], key)
        assert after["module"] == "Linear?"
        assert after["requires_grad"] is True
        if before["expected_var"]:
            assert after["var_ratio"] == pytest.approx(before["var"] / before["expected_var"])
            assert after["mean_shift"] == pytest.approx(before["mean"])


def test_save_never_replaces_a_file_without_force(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"precious")
    code, stdout, err = run("inspect", "sample_models/mlp.yaml", "--save", str(out))
    assert (code, stdout) == (2, "")
    assert err == f"Error: {out} exists; pass --force to replace it, or choose another name\n"
    assert out.read_bytes() == b"precious"
    code, _, err = run("inspect", "sample_models/mlp.yaml", "--save", str(out), "--force")
    assert code == 0 and err == f"Wrote {out}\n"
    assert set(load_file(out)) == {f"fc{i}.{k}" for i in (1, 2, 3) for k in ("weight", "bias")}
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no temp file left


def test_save_needs_the_safetensors_suffix(tmp_path: Path) -> None:
    code, _, err = run("inspect", "sample_models/mlp.yaml", "--save", str(tmp_path / "w.pt"))
    assert code == 2
    assert err == "Error: --save writes safetensors; name the file *.safetensors (got w.pt)\n"
    assert not (tmp_path / "w.pt").exists()


def test_save_stores_tied_weights_once_and_load_model_restores_them(tmp_path: Path) -> None:
    out = tmp_path / "tied.safetensors"
    run_json("inspect", "sample_models.tied_lm:TiedLM", "--init", "xavier", "--save", str(out))
    stored = load_file(out)
    assert "embed.weight" in stored and "head.weight" not in stored
    with safe_open(str(out), framework="pt") as handle:
        assert json.loads(handle.metadata()["initcli.tied"]) == {"embed.weight": ["head.weight"]}
    model = TiedLM()
    load_model(model, out)
    assert model.head.weight is model.embed.weight
    assert torch.equal(model.embed.weight.detach(), stored["embed.weight"])
    counted = run_json("count", str(out))
    assert counted["total"] == 68160


# --- state dicts ----------------------------------------------------------------------------------


def test_state_dict_with_the_default_init(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet5()
    path = tmp_path / "lenet.pt"
    torch.save(model.state_dict(), path)
    data = run_json("inspect", str(path), "--against", "default")
    rows = _params(data)
    assert [r["name"] for r in rows] == [n for n, _ in model.named_parameters()]
    for row, (name, param) in zip(rows, model.named_parameters(), strict=True):
        fans = nn.init._calculate_fan_in_and_fan_out(param) if param.dim() >= 2 else (None, None)
        assert (row["fan_in"], row["fan_out"]) == fans, name
        assert row["status"] == "ok", name
        assert row["init"] in ("kaiming_uniform(a=√5)", "uniform(±1/√fan_in)")
    assert {r["module"] for r in rows} == {"Conv2d?", "Linear?"}
    counts = data["counts"]
    assert isinstance(counts, dict)
    assert (counts["total"], counts["buffers"], counts["torchinfo"]) == (62006, 0, None)
    assert [m["formula"] for m in counts["modules"]][:2] == ["6×3×5×5 + 6", "16×6×5×5 + 16"]


def test_moved_weights_are_off_with_the_variance_ratio(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = LeNet5()
    with torch.no_grad():
        model.fc1.weight.mul_(3.0)  # what training might do: std ×3, variance ×9
    path = tmp_path / "trained.pth"
    torch.save(model.state_dict(), path)
    report = inspect_checkpoint(path, "default")
    rows = {p.name: p for p in report.params}
    assert rows["fc1.weight"].status == "off"
    assert rows["fc1.weight"].var_ratio == pytest.approx(9.0, rel=0.05)
    assert rows["fc2.weight"].status == "ok"
    code, out, _ = run("inspect", str(path), "--against", "default")
    assert code == 0  # a report, not a check: moved weights are shown, not failed
    assert "var ratio" in out and "off" in out


def test_a_training_checkpoint_and_buffers(tmp_path: Path) -> None:
    model = SmallCNN()
    path = tmp_path / "last.ckpt"
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "lr": 0.1}, path)
    data = run_json("count", str(path))
    assert data["total"] == sum(p.numel() for p in model.parameters())
    assert data["buffers"] == sum(b.numel() for b in model.buffers())
    assert data["trainable"] == data["total"] and data["frozen"] == 0
    notes = data["notes"]
    assert isinstance(notes, list)
    assert notes[0] == (
        "weights read from the checkpoint's 'state_dict' entry; also in the file, not shown: "
        "epoch, lr."
    )
    types = {m["name"]: m["type"] for m in data["modules"]}  # type: ignore[union-attr]
    assert types == {"conv1": "Conv2d?", "bn1": "BatchNorm?", "conv2": "Conv2d?",
                     "bn2": "BatchNorm?", "fc": "Linear?"}  # fmt: skip
    report = inspect_checkpoint(path, "kaiming_normal")
    by_name = {p.name: p for p in report.params}
    assert "bn1.running_mean" not in by_name
    assert (by_name["bn1.weight"].init, by_name["bn1.weight"].status) == ("ones", "ok")
    assert by_name["conv1.weight"].init == "kaiming_normal"


def test_tensors_of_unknown_modules(tmp_path: Path) -> None:
    path = tmp_path / "loose.pt"
    torch.save([torch.randn(3, 4), {"scale": torch.ones(2)}, "a note"], path)
    report = inspect_checkpoint(path)
    assert [(p.name, p.module, p.init, p.status) for p in report.params] == [
        ("0", "-", "-", "unknown"),
        ("1.scale", "-", "-", "unknown"),
    ]
    assert report.params[0].fan_in == 4
    assert "entries that are not tensors were skipped: 2." in report.counts.counts.notes


def test_half_precision_safetensors(tmp_path: Path) -> None:
    path = tmp_path / "half.safetensors"
    torch.manual_seed(0)
    save_file({"proj.weight": torch.randn(64, 32).to(torch.bfloat16),
               "proj.bias": torch.zeros(64, dtype=torch.float16)}, str(path))  # fmt: skip
    report = inspect_checkpoint(path, "normal:std=1")
    rows = {p.name: p for p in report.params}
    assert rows["proj.weight"].dtype == "bfloat16" and rows["proj.weight"].status == "ok"
    assert rows["proj.bias"].status == "ok"  # --bias-init default: zeros
    assert isinstance(report, CheckpointReport) and isinstance(report.params[0], CheckpointParam)


@pytest.mark.parametrize("fmt", ["csv", "markdown"])
def test_checkpoint_text_formats(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "lenet.pt"
    torch.save(LeNet5().state_dict(), path)
    code, out, _ = run("inspect", str(path), "--against", "default", "-f", fmt)
    assert code == 0
    if fmt == "csv":
        header = out.splitlines()[0].split(",")
        assert header[-10:] == [
            "status", "var_ratio", "mean_shift", "state", "looks_like", "fit_family", "fit_std",
            "forward_fan_in", "forward_fan_out", "group",
        ]  # fmt: skip
    else:
        assert out.startswith("| name | module | shape |")
        assert "| conv1.weight | Conv2d? | 6×3×5×5 |" in out
        assert "torch weights file, against default" in out


# --- never running code from a file ------------------------------------------------------------


def _assert_refused(path: Path, marker: Path, installed: bool = False) -> None:
    for args in (["inspect", str(path)], ["count", str(path)]):
        code, out, err = run(*args)
        assert (code, out) == (2, ""), err
        assert err.startswith(f"Error: refused to load {path}: it ")
        assert (
            "and a full unpickle can run code; initcli loads weights only and never runs code"
            in err
        )
        assert err.count("\n") == 1
    if installed:
        result = subprocess.run(
            [str(INITCLI), "inspect", str(path)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 2 and result.stdout == ""
        assert result.stderr.startswith("Error: refused to load")
        assert "Traceback" not in result.stderr
    assert not marker.exists(), "loading the file ran its code"


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2, 2), "payload": RunsCode(marker)}, path)
    _assert_refused(path, marker, installed=True)
    err = run("inspect", str(path))[2]
    assert f"it names {os.system.__module__}.system, which only a full unpickle would load" in err
    # The control: the same file does run code when loaded the unsafe way.
    control = tmp_path / "control"
    torch.save({"payload": RunsCode(control)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists()


def test_a_plain_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "raw.bin"
    path.write_bytes(pickle.dumps(RunsCode(marker), protocol=2))
    _assert_refused(path, marker)
    path.write_bytes(pickle.dumps(RunsCode(marker)))  # protocol 5: framed
    _assert_refused(path, marker)
    assert "it is not a plain pickle of tensors (Unsupported operand" in run("count", str(path))[2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("garbage.pt", b"not a checkpoint at all", "refused to load"),
        ("text.pt", b"hello world", "is not a readable PyTorch checkpoint (KeyError"),
        ("empty.pth", b"", "is not a readable PyTorch checkpoint (EOFError"),
        ("bad.safetensors", b"\x00" * 16, "is not a readable safetensors file"),
        ("missing.pt", None, "no such file"),
    ],
)
def test_unreadable_weights_files(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out, err = run("inspect", str(path))
    assert (code, out) == (2, "")
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err


def test_a_file_with_no_tensors(tmp_path: Path) -> None:
    path = tmp_path / "meta.pt"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="holds no tensors"):
        inspect_checkpoint(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--init", "kaiming"], "Error: --init does not apply to a weights file"),
        (["--arg", "x=1"], "Error: --arg does not apply to a weights file"),
        (["--save", "x.safetensors"], "Error: --save does not apply to a weights file"),
        (["--bias-init", "zeros"], "Error: --bias-init needs --against SCHEME"),
        (["--against", "kaimin"], "Error: unknown scheme 'kaimin'"),
        (["--against", "auto"], "Error: --against auto: auto picks each weight's scheme"),
    ],
)
def test_options_that_do_not_fit_a_weights_file(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = tmp_path / "w.pt"
    torch.save(LeNet5().state_dict(), path)
    code, _, err = run("inspect", str(path), *args)
    assert code == 2 and err.startswith(message), err


def test_against_needs_a_weights_file() -> None:
    code, _, err = run("inspect", "sample_models/mlp.yaml", "--against", "kaiming")
    assert code == 2
    assert err.startswith("Error: --against compares a weights file")
    with pytest.raises(TargetError, match="is a weights file, not a model"):
        inspect_model("model.safetensors")


def test_installed_initcli_inspects_a_safetensors_file(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    first = subprocess.run(
        [str(INITCLI), "inspect", "sample_models/mlp.yaml", "--init", "xavier", "--save", str(out)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert first.returncode == 0 and first.stderr == f"Wrote {out}\n", first.stderr
    second = subprocess.run(
        [str(INITCLI), "inspect", str(out), "--against", "xavier"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "var ratio" in second.stdout and "fc1.weight" in second.stdout
    assert "off" not in second.stdout


def test_save_refuses_before_building_the_model(tmp_path: Path) -> None:
    # The constructor of Raises fails; the existing file is reported first, so no build was tried.
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"precious")
    code, _, err = run("inspect", "tests/models_for_tests.py:Raises", "--save", str(out))
    assert code == 2 and err.startswith(f"Error: {out} exists; pass --force")
    code, _, err = run("inspect", "tests/models_for_tests.py:Raises", "--save", "x/y.safetensors")
    assert code == 2 and "folder x does not exist" in err
    assert out.read_bytes() == b"precious"


def test_a_file_saved_by_initcli_says_where_it_came_from(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    inspect_model("sample_models/mlp.yaml", init="lecun_normal", seed=7, save=out)
    notes = inspect_checkpoint(out).counts.counts.notes
    assert notes[0] == (
        "written by initcli inspect --save: sample_models/mlp.yaml, lecun_normal, seed 7."
    )
