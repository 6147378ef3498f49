"""No output overwrites an input (folders, links, --force); no read blocks on a FIFO (issue 17)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest
import torch
from conftest import run
from safetensors.torch import save_file

from initcli import files
from initcli.errors import NotRegularFileError, OutputError

INITCLI = Path(sys.executable).parent / "initcli"
# A read that blocks on a FIFO blocks forever; refusing it takes well under a second.
HANG_SECONDS = 20
# A process also imports torch first: ~2 s, several times that on a loaded CI machine.
PROCESS_SECONDS = 30

SHARDS = ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")


def _one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "Traceback" not in err
    return lines[0]


def _hf_folder(folder: Path) -> Path:
    """What save_pretrained writes: two shards, their index, config.json, generation_config."""
    folder.mkdir()
    torch.manual_seed(0)
    save_file({"fc.weight": torch.randn(3, 4)}, folder / SHARDS[0])
    save_file({"fc.bias": torch.randn(3)}, folder / SHARDS[1])
    index = {
        "metadata": {"total_size": 60},
        "weight_map": {"fc.weight": SHARDS[0], "fc.bias": SHARDS[1]},
    }
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "config.json").write_text('{"model_type": "gpt2"}')
    (folder / "generation_config.json").write_text("{}")
    return folder


def _dcp_folder(folder: Path) -> Path:
    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "assuming the intent is to save in a single process"
        dcp.save({"fc.weight": torch.ones(3, 4)}, checkpoint_id=folder, no_dist=True)
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("inputs")
    return {"hf": _hf_folder(root / "hf"), "dcp": _dcp_folder(root / "dcp")}


def _sums(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


def _way(way: str, file: Path, elsewhere: Path) -> Path:
    """The output name that reaches `file`: itself, a symlink to it, or a hard link to it."""
    if way == "path":
        return file
    elsewhere.mkdir(exist_ok=True)
    dest = elsewhere / file.name
    if way == "symlink":
        dest.symlink_to(file)
    else:
        os.link(file, dest)
    return dest


@pytest.mark.parametrize("way", ["path", "symlink", "hardlink"])
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("hf", SHARDS[0]),
        ("hf", "model.safetensors.index.json"),
        ("hf", "config.json"),
        ("hf", "generation_config.json"),
        ("dcp", ".metadata"),
        ("dcp", "__0_0.distcp"),
    ],
)
def test_no_output_overwrites_a_file_of_a_folder_target(
    folders: dict[str, Path], tmp_path: Path, kind: str, name: str, way: str
) -> None:
    folder = folders[kind]
    before = _sums(folder)
    dest = _way(way, folder / name, tmp_path / "elsewhere")
    for args in (
        ["count", str(folder), "-o", str(dest), "--force"],
        ["inspect", str(folder), "-o", str(dest), "--force"],
        ["snapshot", str(folder), "-o", str(dest), "--force"],
    ):
        code, out, err = run(*args)
        assert (code, out) == (2, ""), (args, err)
        line = _one_error(err)
        assert str(dest) in line and "even with --force" in line, line
        assert ("inside the target folder" if way != "hardlink" else name) in line, line
    assert _sums(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(before)


def test_a_new_file_inside_a_folder_target_is_refused(tmp_path: Path) -> None:
    folder = _hf_folder(tmp_path / "hf")
    before = _sums(folder)
    for args in (
        ["count", str(folder), "-o", str(folder / "report.json")],
        ["snapshot", str(folder), "-o", str(folder / "baseline.json")],
    ):
        code, _, err = run(*args)
        assert code == 2 and "inside the target folder" in _one_error(err), err
    assert _sums(folder) == before


def test_a_shard_that_links_out_of_its_folder_is_still_an_input(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    folder = tmp_path / "hf"
    folder.mkdir()
    real = store / "blob.safetensors"
    save_file({"fc.weight": torch.ones(2, 2)}, real)
    (folder / "model.safetensors").symlink_to(real)  # as the HF cache lays out its snapshots
    before = real.read_bytes()
    code, _, err = run("count", str(folder), "-o", str(real), "--force")
    line = _one_error(err)
    assert code == 2 and "is also model.safetensors in the target folder" in line, line
    assert real.read_bytes() == before
    # Read on its own, such a folder is refused too: a shard must stay inside its folder (only the
    # HF cache's snapshot-to-blob links are followed, see tests/weights/test_hf.py).
    code, _, err = run("count", str(folder), "-o", str(tmp_path / "ok.txt"))
    assert code == 2 and "links to a file outside" in _one_error(err)


def _model_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.py"
    path.write_text("from torch import nn\nclass Net(nn.Linear):\n"
                    "    def __init__(self):\n        super().__init__(4, 3)\n"
                    "def init(m):\n    pass\n"
                    "def data():\n    import torch\n"
                    "    return torch.randn(8, 4), torch.randint(0, 3, (8,))\n")  # fmt: skip
    return path


def test_files_named_by_options_are_inputs_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    model = _model_file(tmp_path)
    spec = tmp_path / "mlp.yaml"
    spec.write_text("input: 4\nlayers:\n  - units: 3\n")
    policy = tmp_path / "p.yaml"
    policy.write_text("Linear: kaiming_normal\n")
    (tmp_path / "spec.png").symlink_to(spec)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(model.read_text())
    inputs = [model, spec, policy, tmp_path / "pkg" / "mod.py"]
    before = [p.read_bytes() for p in inputs]
    for args in (
        ["inspect", str(spec), "--init", f"@{policy}", "-o", str(policy), "--force"],
        ["inspect", f"{model}:Net", "--init", f"fn:{model}:init", "-o", str(model), "--force"],
        ["inspect", str(spec), "--init", f"fn:{model}:init", "--save", str(model), "--force"],
        ["count", "pkg.mod:Net", "-o", "pkg/mod.py", "--force"],
        ["snapshot", str(spec), "--init", f"@{policy}", "-o", str(policy), "--force"],
        ["probe", str(spec), "-i", "kaiming", "--plot", "spec.png", "--force"],
        ["probe", str(spec), "-i", f"@{policy}", "-o", str(policy), "--force"],
        ["compare", str(spec), "-i", "kaiming", "-i", "normal", "--train", "1",
         "--data", f"{model}:data", "-o", str(model), "--force"],
    ):  # fmt: skip
        code, out, err = run(*args)
        assert (code, out) == (2, ""), (args, err)
        assert "initcli does not write over its own inputs" in _one_error(err), args
    assert [p.read_bytes() for p in inputs] == before


def test_check_never_writes_a_file_its_targets_read(tmp_path: Path) -> None:
    model = _model_file(tmp_path)
    folder = _shards_folder(tmp_path / "hf", index=True)
    baseline = tmp_path / "b.json"
    assert run("snapshot", f"{model}:Net", str(folder), "-o", str(baseline))[0] == 0
    before = [model.read_bytes(), _sums(folder)]
    for dest, words in ((model, "is also the file of"), (folder / SHARDS[1], "inside")):
        code, _, err = run("check", str(baseline), "-o", str(dest), "--force")
        assert code == 2 and words in _one_error(err), err
    # --update rewrites the baseline by design, but not where it is a target's own file.
    inside = folder / "b.json"
    inside.write_bytes(baseline.read_bytes())
    code, _, err = run("check", str(inside), "--update")
    assert code == 2 and "inside the target folder" in _one_error(err), err
    inside.unlink()
    assert [model.read_bytes(), _sums(folder)] == before
    assert run("check", str(baseline), "--update")[0] == 0


# --- FIFOs --------------------------------------------------------------------------------------


def _fifo(path: Path) -> Path:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    os.mkfifo(path)
    return path


def _shards_folder(folder: Path, index: bool) -> Path:
    folder = _hf_folder(folder)
    (folder / "config.json").unlink()
    (folder / "generation_config.json").unlink()
    if not index:
        (folder / "model.safetensors.index.json").unlink()
    return folder


def _target_fifo(tmp: Path) -> tuple[list[str], Path]:
    return ["count", str(tmp / "x.safetensors")], _fifo(tmp / "x.safetensors")


def _scanned_shard_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _shards_folder(tmp / "f", index=False)
    return ["count", str(folder)], _fifo(folder / "model-00003-of-00003.safetensors")


def _index_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _shards_folder(tmp / "f", index=True)
    return ["count", str(folder)], _fifo(folder / "model.safetensors.index.json")


@pytest.mark.parametrize("make", [_target_fifo, _scanned_shard_fifo])
def test_a_fifo_never_blocks_the_real_process(
    tmp_path: Path, make: Callable[[Path], tuple[list[str], Path]]
) -> None:
    """The CLI as users run it exits 2 naming the FIFO; blocked, it would never exit."""
    args, fifo = make(tmp_path)
    try:
        done = subprocess.run(
            [str(INITCLI), *args],
            capture_output=True,
            text=True,
            timeout=PROCESS_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"blocked on {fifo} for {PROCESS_SECONDS} s")
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    line = _one_error(done.stderr)
    assert str(fifo) in line and "FIFO (named pipe)" in line, line


class _Hung(BaseException):
    pass


@contextlib.contextmanager
def _no_hang() -> Iterator[None]:
    # In-process, a read blocked on a FIFO is interrupted by SIGALRM: the test fails, not hangs.
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise _Hung

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _named_shard_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _shards_folder(tmp / "f", index=True)
    return ["count", str(folder)], _fifo(folder / SHARDS[1])


def _config_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _shards_folder(tmp / "f", index=True)
    return ["count", str(folder)], _fifo(folder / "config.json")


def _spec_fifo(tmp: Path) -> tuple[list[str], Path]:
    return ["count", str(tmp / "spec.yaml")], _fifo(tmp / "spec.yaml")


def _policy_fifo(tmp: Path) -> tuple[list[str], Path]:
    spec = tmp / "mlp.yaml"
    spec.write_text("input: 4\nlayers:\n  - units: 3\n")
    return ["inspect", str(spec), "--init", f"@{tmp / 'p.yaml'}"], _fifo(tmp / "p.yaml")


def _baseline_fifo(tmp: Path) -> tuple[list[str], Path]:
    return ["check", str(tmp / "b.json")], _fifo(tmp / "b.json")


def _torch_fifo(tmp: Path) -> tuple[list[str], Path]:
    return ["inspect", str(tmp / "w.pt")], _fifo(tmp / "w.pt")


def _py_fifo(tmp: Path) -> tuple[list[str], Path]:
    return ["count", f"{tmp / 'm.py'}:Net"], _fifo(tmp / "m.py")


def _fn_fifo(tmp: Path) -> tuple[list[str], Path]:
    spec = tmp / "mlp.yaml"
    spec.write_text("input: 4\nlayers:\n  - units: 3\n")
    return ["inspect", str(spec), "--init", f"fn:{tmp / 'i.py'}:f"], _fifo(tmp / "i.py")


def _dcp_metadata_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _dcp_folder(tmp / "d")
    return ["count", str(folder)], _fifo(folder / ".metadata")


def _dcp_data_fifo(tmp: Path) -> tuple[list[str], Path]:
    folder = _dcp_folder(tmp / "d")
    return ["inspect", str(folder)], _fifo(folder / "__0_0.distcp")


def _symlinked_fifo(tmp: Path) -> tuple[list[str], Path]:
    fifo = _fifo(tmp / "pipe")
    (tmp / "w.safetensors").symlink_to(fifo)
    return ["inspect", str(tmp / "w.safetensors")], tmp / "w.safetensors"


@pytest.mark.parametrize(
    "make",
    [
        _target_fifo,
        _scanned_shard_fifo,
        _index_fifo,
        _named_shard_fifo,
        _config_fifo,
        _spec_fifo,
        _policy_fifo,
        _baseline_fifo,
        _torch_fifo,
        _py_fifo,
        _fn_fifo,
        _dcp_metadata_fifo,
        _dcp_data_fifo,
        _symlinked_fifo,
    ],
)
def test_every_file_read_refuses_a_fifo(
    tmp_path: Path, make: Callable[[Path], tuple[list[str], Path]]
) -> None:
    args, fifo = make(tmp_path)
    start = time.monotonic()
    with _no_hang():
        code, out, err = run(*args)
    assert (code, out) == (2, ""), err
    line = _one_error(err)
    assert str(fifo) in line and "not a regular file" in line, line
    assert time.monotonic() - start < HANG_SECONDS


def test_open_regular_refuses_a_fifo_swapped_in_after_the_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The stat check passed (a regular file), then the name became a FIFO: O_NONBLOCK opens it
    # at once and fstat on the open descriptor refuses it.
    fifo = _fifo(tmp_path / "x.yaml")
    monkeypatch.setattr(files, "require_regular", lambda path: None)
    with _no_hang(), pytest.raises(NotRegularFileError, match="FIFO"):
        files.open_regular(fifo)


def test_read_regular_reads_files_and_refuses_devices(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"0123456789")
    assert files.read_regular(tmp_path / "a") == b"0123456789"
    assert files.read_regular(tmp_path / "a", 4) == b"0123"
    with pytest.raises(NotRegularFileError, match="/dev/null is a device"):
        files.read_regular("/dev/null")
    with pytest.raises(FileNotFoundError):
        files.read_regular(tmp_path / "missing")
    with pytest.raises(IsADirectoryError):
        files.read_regular(tmp_path)


def test_a_folder_too_large_to_scan_refuses_an_existing_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.safetensors").write_bytes(b"x")
    out = tmp_path / "out.txt"
    files.check_not_input(out, {"the target folder f": folder})  # new: cannot be a link
    out.write_text("old")
    files.check_not_input(out, {"the target folder f": folder})
    monkeypatch.setattr(files, "MAX_FOLDER_SCAN", 3)
    with pytest.raises(OutputError, match="holds over 3 entries"):
        files.check_not_input(out, {"the target folder f": folder})
