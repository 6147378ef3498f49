"""Only what can be a model is called; user code's exits and prints do not steer initcli."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from initcli.errors import BaselineError, TargetError
from initcli.model import resolve
from initcli.report import baseline

ROOT = Path(__file__).resolve().parents[2]

NET = """\
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
"""


def _baseline(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    models = [
        {"target": e["target"], "args": e.get("args", {}), "total": 10, "trainable": 10,
         "frozen": 0, "buffers": 0, "modules": {}}
        for e in entries
    ]  # fmt: skip
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": 1, "models": models}))
    return path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"target": "os:system", "args": {"command": "touch MARKER"}},
            "os:system: os:system names the standard library module 'os', not a model",
        ),
        ({"target": "builtins:exit"}, "builtins:exit names the standard library module"),
        (
            {"target": "subprocess:run", "args": {"args": "touch MARKER", "shell": True}},
            "subprocess:run names the standard library module",
        ),
        ({"target": "shutil:rmtree", "args": {"path": "."}}, "shutil:rmtree names the standard"),
    ],
)
def test_baseline_naming_the_standard_library_is_refused_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: dict[str, object], message: str
) -> None:
    (tmp_path / "net.py").write_text(NET.replace("class Net", "open('BUILT', 'w')\n\n\nclass Net"))
    monkeypatch.chdir(tmp_path)
    # The good entry comes first: it must not be built either.
    path = _baseline(tmp_path, [{"target": "net.py:Net"}, entry])
    with pytest.raises(TargetError) as info:
        baseline.check(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert sorted(os.listdir(tmp_path)) == ["baseline.json", "net.py"]


def test_baseline_entry_cli_exit_code_is_2_and_no_marker(tmp_path: Path) -> None:
    path = _baseline(tmp_path, [{"target": "os:system", "args": {"command": "touch MARKER"}}])
    done = subprocess.run(
        [sys.executable, "-m", "initcli", "check", str(path)],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.count("Error:") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import functools\nmake = functools.partial(print, 'x')\n", "is a partial, not an nn"),
        ("make = len\n", "is a builtin_function_or_method, not an nn.Module class, a Python"),
        ("from os import system as make\n", "is a builtin_function_or_method"),
        ("from shutil import rmtree as make\n", "function of Python's standard library (shutil)"),
        ("make = exit\n", "is a Quitter, not an nn.Module class"),
        ("class make:\n    pass\n", "is a class but not an nn.Module subclass"),
    ],
)
def test_callables_that_cannot_be_models_are_refused_before_the_call(
    tmp_path: Path, code: str, message: str
) -> None:
    file = tmp_path / "odd.py"
    file.write_text(code)
    with pytest.raises(TargetError, match=re.escape("odd.py:make is")) as info:
        resolve.resolve(f"{file}:make")
    assert message in str(info.value)


def test_site_packages_function_needs_an_nn_module_return_annotation() -> None:
    # torch.save lives in site-packages and returns None: writing files is not building a model.
    message = "torch.serialization:save is a function of an installed package"
    with pytest.raises(TargetError, match=re.escape(message)):
        resolve.check_model_factory("torch.serialization:save", torch.save)

    def own() -> nn.Module:
        return nn.Linear(1, 1)

    resolve.check_model_factory("here:own", own)  # the user's own function: allowed


def test_stdlib_file_path_is_refused_before_it_is_run() -> None:
    import shutil

    with pytest.raises(TargetError, match="is a file of Python's standard library"):
        resolve.resolve(f"{shutil.__file__}:rmtree")


@pytest.mark.parametrize(
    ("where", "code", "phase", "call"),
    [
        ("import", "import sys\nsys.exit(0)\n", "imported", "sys.exit(0)"),
        ("import", "raise SystemExit('bye')\n", "imported", "sys.exit('bye')"),
        ("import", "raise KeyboardInterrupt\n", "imported", "KeyboardInterrupt"),
        ("build", "import sys\ndef make():\n    sys.exit(3)\n", "built", "sys.exit(3)"),
        ("build", "def make():\n    exit()\n", "built", "sys.exit()"),
    ],
)
def test_user_code_exits_become_one_error(
    tmp_path: Path, where: str, code: str, phase: str, call: str
) -> None:
    file = tmp_path / "quits.py"
    file.write_text(code + "\nfrom torch import nn\ndef Net():\n    return nn.Linear(1, 1)\n")
    name = "make" if where == "build" else "Net"
    with pytest.raises(TargetError) as info:
        resolve.resolve(f"{file}:{name}").build()
    assert str(info.value).startswith(f"{file}") and f" while being {phase}" in str(info.value)
    assert call in str(info.value)


def test_user_code_prints_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with resolve.user_code("t", "run"):
        print("chatter")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "chatter\n")


def test_count_json_exit_2_when_the_model_exits_and_stdout_stays_clean(tmp_path: Path) -> None:
    file = tmp_path / "m.py"
    file.write_text("print('hello')\nimport sys\nsys.exit(0)\n")
    done = subprocess.run(
        [sys.executable, "-m", "initcli", "count", f"{file}:Net", "--expect", "12345",
         "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines()[-1] == (
        f"Error: {file} called sys.exit(0) while being imported; initcli stopped: a model's "
        "code must not exit the program, remove that call or guard it with "
        "`if __name__ == '__main__':`"
    )


def test_deeply_nested_baseline_json_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(BaselineError, match="nests lists or objects too deeply"):
        baseline.read_baseline(path)
