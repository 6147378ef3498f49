"""Issue 13 through the command line: user code cannot choose the exit code, signals and full
disks leave nothing behind, outputs never overwrite inputs, bounds hold, names print safely."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run
from safetensors.torch import save_file

INITCLI = Path(sys.executable).parent / "initcli"


def _one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[0]


EXITING = {
    "import": "import sys\n{call}\nfrom torch import nn\nclass Net(nn.Linear):\n"
    "    def __init__(self):\n        super().__init__(2, 2)\n",
    "init": "import sys\nfrom torch import nn\nclass Net(nn.Linear):\n"
    "    def __init__(self):\n        super().__init__(2, 2)\n        {call}\n",
    "forward": "import sys\nfrom torch import nn\nclass Net(nn.Linear):\n"
    "    def __init__(self):\n        super().__init__(2, 2)\n"
    "    def forward(self, x):\n        {call}\n",
}


@pytest.mark.parametrize("where", ["import", "init"])
@pytest.mark.parametrize(
    ("call", "shown"),
    [
        ("sys.exit(0)", "sys.exit(0)"),
        ("sys.exit(3)", "sys.exit(3)"),
        ("raise SystemExit('bye')", "sys.exit('bye')"),
        ("exit()", "sys.exit()"),
    ],
)
def test_user_code_exiting_is_an_error_for_count_expect(
    tmp_path: Path, where: str, call: str, shown: str
) -> None:
    model = tmp_path / "m.py"
    model.write_text(EXITING[where].format(call=call))
    code, out, err = run("count", f"{model}:Net", "--expect", "12345", "-f", "json")
    assert (code, out) == (2, "")
    assert f"called {shown} while being" in _one_error(err)


def test_keyboard_interrupt_raised_at_import_is_not_a_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(EXITING["import"].format(call="raise KeyboardInterrupt"))
    code, _, err = run("inspect", f"{tmp_path / 'm.py'}:Net")
    assert code == 2 and "raised KeyboardInterrupt while being imported" in _one_error(err)


def test_exit_in_forward_is_an_error_for_probe_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(EXITING["forward"].format(call="sys.exit(0)"))
    out_file = tmp_path / "probe.json"
    code, out, err = run("probe", f"{tmp_path / 'm.py'}:Net", "-i", "kaiming", "-o", str(out_file))
    assert (code, out) == (2, "")
    assert "called sys.exit(0) while being run" in _one_error(err)
    assert not out_file.exists()


def test_user_prints_go_to_stderr_and_json_stays_one_document(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "from torch import nn\nclass Net(nn.Linear):\n"
        "    def __init__(self):\n        print('built'); super().__init__(2, 2)\n"
        "    def forward(self, x):\n        print('forward'); return super().forward(x)\n"
    )
    for args in (["probe", "-i", "kaiming"], ["inspect"], ["count"], ["defaults"]):
        code, out, err = run(args[0], f"{tmp_path / 'm.py'}:Net", *args[1:], "-f", "json")
        assert code == 0, err
        json.loads(out)
        assert "built" in err


def test_snapshot_and_check_update_with_an_exiting_model(tmp_path: Path) -> None:
    model = tmp_path / "m.py"
    model.write_text(EXITING["init"].format(call="pass"))
    baseline = tmp_path / "b.json"
    assert run("snapshot", f"{model}:Net", "-o", str(baseline))[0] == 0
    before = baseline.read_bytes()
    model.write_text(EXITING["init"].format(call="sys.exit(0)"))
    for args in (["snapshot", f"{model}:Net", "-o", str(baseline), "--update"],
                 ["check", str(baseline), "--update"]):  # fmt: skip
        code, _, err = run(*args)
        assert code == 2 and "called sys.exit(0)" in _one_error(err)
        assert baseline.read_bytes() == before


@pytest.mark.parametrize("entry", ['{"target": "os:system", "args": {"command": "touch MARKER"}}',
                                   '{"target": "builtins:exit"}'])  # fmt: skip
@pytest.mark.parametrize("update", [False, True])
def test_a_baseline_naming_no_model_runs_nothing(
    tmp_path: Path, entry: str, update: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    baseline = tmp_path / "b.json"
    text = f'{{"initcli": 1, "models": [{entry[:-1]}, "total": 1, "trainable": 1, "frozen": 0, "buffers": 0, "modules": []}}]}}'  # noqa: E501
    baseline.write_text(text)
    code, _, err = run("check", str(baseline), *(["--update"] if update else []))
    assert code == 2, err
    _one_error(err)
    assert not (tmp_path / "MARKER").exists()
    assert baseline.read_text() == text


def _model_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text("from torch import nn\nclass Net(nn.Linear):\n"
                    "    def __init__(self):\n        super().__init__(4, 3)\n")  # fmt: skip
    return path


def test_output_and_save_never_overwrite_inputs_or_each_other(tmp_path: Path) -> None:
    model = _model_file(tmp_path)
    before = model.read_bytes()
    target = f"{model}:Net"
    same = tmp_path / "x.safetensors"
    for args in (
        ["inspect", target, "-o", str(model), "--force"],
        ["inspect", target, "--save", str(model), "--force"],
        ["inspect", target, "-o", str(same), "--save", str(same), "--force"],
        ["count", target, "-o", str(model), "--force"],
        ["probe", target, "-i", "kaiming", "-o", str(model), "--force"],
        ["defaults", target, "-o", str(model), "--force"],
    ):
        code, out, err = run(*args)
        assert (code, out) == (2, ""), args
        assert "initcli does not write over its own inputs" in _one_error(err)
    assert model.read_bytes() == before
    assert not same.exists()


def test_check_output_onto_its_baseline_is_refused(tmp_path: Path) -> None:
    model = _model_file(tmp_path)
    baseline = tmp_path / "b.json"
    assert run("snapshot", f"{model}:Net", "-o", str(baseline))[0] == 0
    before = baseline.read_bytes()
    code, _, err = run("check", str(baseline), "-o", str(baseline), "--force")
    assert code == 2 and "is also the baseline being checked" in _one_error(err)
    assert baseline.read_bytes() == before


def test_force_never_replaces_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    code, _, err = run("schemes", "-o", str(fifo), "--force")
    assert code == 2
    _one_error(err)
    assert fifo.is_fifo()


MLP = "sample_models/mlp.yaml"
MOONS = ["compare", "sample_models/moons.yaml", "-i", "kaiming"]
PROBE = ["probe", MLP, "-i", "kaiming"]
BOUNDS = [
    (["inspect", MLP, "--seed", str(2**64)], "out of range"),
    ([*PROBE, "--seed", str(2**70)], "out of range"),
    ([*PROBE, "--input-shape", "4,,4"], "not a shape"),
    ([*PROBE, "--input-shape", " 4 , 4 x"], "not a shape"),
    ([*PROBE, "-b", "99999999999999999999"], "lower --batch-size"),
    ([*MOONS, "--train", "1000000000"], "--train 1,000,000,000 is out of range"),
    ([*MOONS, "--train", "5", "--lr", "1e308"], "--lr"),
    ([*MOONS, "--train", "5", "--lr", "nan"], "--lr"),
    ([*MOONS, "--train", "5", "--points", "1000000000"], "--points"),
    (["inspect", "sample_models.mlp:mlp", "--arg", "depth=" + "9" * 5000], "--arg"),
]


@pytest.mark.parametrize(("args", "words"), BOUNDS)
def test_bounds_are_one_error_line(
    args: list[str], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    started = time.monotonic()
    code, out, err = run(*args)
    assert (code, out) == (2, "")
    assert words in _one_error(err)
    assert time.monotonic() - started < 20


def test_trunc_normal_far_tail_is_ok_through_inspect() -> None:
    for bounds in ("a=10,b=11", "a=-9,b=-8"):
        code, out, err = run("inspect", "sample_models/mlp.yaml", "-i", f"trunc_normal:{bounds}",
                             "--bias-init", f"trunc_normal:{bounds}", "-f", "json")  # fmt: skip
        assert code == 0, err
        assert {p["status"] for p in json.loads(out)["params"]} == {"ok"}


def test_units_beyond_the_limit_name_it(tmp_path: Path) -> None:
    for units in (2**62, 2**63, 10**29):
        spec = tmp_path / "s.yaml"
        spec.write_text(f"input: 4\nlayers:\n  - {{units: {units}}}\n")
        code, _, err = run("count", str(spec))
        assert code == 2 and "units" in _one_error(err)


def test_control_characters_in_tensor_names_are_escaped_in_tables(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    save_file({"a\x1b[31mred": torch.zeros(2, 2)}, str(weights))
    code, out, _ = run("inspect", str(weights))
    assert code == 0 and "\x1b" not in out and "a\\x1b[31mred" in out
    code, out, _ = run("inspect", str(weights), "-f", "csv")
    assert code == 0 and "\x1b" not in out and out.splitlines()[1].startswith("a\\x1b[31mred,")
    code, out, _ = run("inspect", str(weights), "-f", "json")
    assert json.loads(out)["params"][0]["name"] == "a\x1b[31mred"  # data stays exact


def test_a_table_beyond_its_row_limit_says_how_many_rows_it_left_out(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    save_file({f"t{i}": torch.zeros(1) for i in range(1_005)}, str(weights))
    code, out, _ = run("inspect", str(weights))
    assert code == 0
    assert "… and 5 more tensors not shown: the table lists the first 1,000" in out
    code, out, _ = run("inspect", str(weights), "-f", "csv")
    assert len(out.splitlines()) == 1_006


# A suite started under nohup passes SIGHUP on as ignored, and one started as a background job of
# a non-interactive shell passes SIGINT on as ignored; initcli honours both (as the shell means):
# the installed script is exec'd with their default dispositions back.
_HANGUP_DEFAULT = (
    "import os, signal, sys; signal.signal(signal.SIGHUP, signal.SIG_DFL); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
)


def _installed(*args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", _HANGUP_DEFAULT, str(INITCLI), *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_broken_pipe_is_quiet_through_the_installed_script() -> None:
    done = subprocess.run(
        f"'{INITCLI}' schemes | head -1; echo \"${{PIPESTATUS[0]}}\" >&2",
        shell=True, executable="/bin/bash", capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.stdout.startswith("initialization schemes")
    assert done.stderr == "0\n"


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 143, "Error: terminated (SIGTERM); stopped"),
        (signal.SIGHUP, 129, "Error: hung up (SIGHUP); stopped"),
        (signal.SIGINT, 130, "Error: aborted"),
    ],
)
def test_a_signal_during_save_leaves_no_temporary_file(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    model = tmp_path / "big.py"
    model.write_text(
        "from torch import nn\nclass Big(nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(*[nn.Linear(4096, 4096) for _ in range(12)])\n"
    )
    out = tmp_path / "out"
    out.mkdir()
    save = out / "big.safetensors"
    proc = _installed("inspect", f"{model}:Big", "-i", "zeros", "--save", str(save), "-q")
    deadline = time.monotonic() + 120
    while not any(n.endswith(".tmp") for n in os.listdir(out)):
        assert proc.poll() is None and time.monotonic() < deadline, "the save never started"
        time.sleep(0.001)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code
    assert err.splitlines()[-1] == line
    assert os.listdir(out) == []


def test_ctrl_c_is_one_error_line_and_exit_130(tmp_path: Path) -> None:
    # typer turns KeyboardInterrupt into a silent exit 130; the contract's line is still written
    # (docs/contract/exit-codes.md).
    model = tmp_path / "slow.py"
    model.write_text(
        "import time\nfrom torch import nn\nclass Slow(nn.Linear):\n    def __init__(self):\n"
        "        print('building', flush=True)\n        time.sleep(60)\n"
        "        super().__init__(2, 2)\n"
    )
    proc = _installed("inspect", f"{model}:Slow")
    assert proc.stderr is not None
    assert proc.stderr.readline() == "building\n"  # user code prints to stderr
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out, err) == (130, "", "Error: aborted\n")


def test_save_under_an_address_space_limit_is_one_error_line(tmp_path: Path) -> None:
    import resource

    model = tmp_path / "big.py"
    model.write_text(
        "from torch import nn\nclass Big(nn.Sequential):\n    def __init__(self):\n"
        "        super().__init__(*[nn.Linear(4096, 4096, bias=False) for _ in range(16)])\n"
    )
    limit = int(1.5 * 2**30)  # torch fits; the 1 GiB model's state dict, twice over, does not

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    save = tmp_path / "big.safetensors"
    done = subprocess.run(
        [str(INITCLI), "inspect", f"{model}:Big", "-i", "zeros", "--save", str(save), "-q"],
        capture_output=True, text=True, preexec_fn=cap, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (2, "")
    assert "needs 1.1 GB, more than half the free memory" in _one_error(done.stderr)
    assert [n for n in os.listdir(tmp_path) if "safetensors" in n] == []
