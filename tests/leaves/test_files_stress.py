"""Files under stress: signals mid-write, special files, inputs as outputs, full disks, pipes."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from initcli import files
from initcli.errors import OutputError

WRITER = """\
import sys, time
import signal
from initcli import files
signal.signal(signal.SIGHUP, signal.SIG_DFL)  # nohup passes it on ignored; initcli honours that
signal.signal(signal.SIGINT, signal.default_int_handler)  # so does a shell's background job
files.install_signal_handlers()
try:
    with files.atomic_writer(sys.argv[1]) as handle:
        for i in range(100_000):
            handle.write(bytes(1 << 20))
            if i == 3:
                print("ready", flush=True)
            time.sleep(0.005)
except KeyboardInterrupt:
    print("Error: aborted", file=sys.stderr)
    sys.exit(130)
"""


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGTERM, 143, "Error: terminated (SIGTERM); stopped"),
        (signal.SIGHUP, 129, "Error: hung up (SIGHUP); stopped"),
        (signal.SIGINT, 130, "Error: aborted"),
    ],
)
def test_signal_during_a_streamed_write_leaves_no_temporary_file(
    tmp_path: Path, signum: int, code: int, line: str
) -> None:
    target = tmp_path / "big.safetensors"
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
    assert len(os.listdir(tmp_path)) == 1  # the temporary file, 4 MB in
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == code
    assert err.splitlines() == [line]
    assert os.listdir(tmp_path) == []


def test_a_real_ctrl_c_in_user_code_stays_an_interrupt() -> None:
    script = (
        "import os, signal, time\n"
        "from initcli import files\n"
        "from initcli.model import resolve\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"  # a background job ignores it
        "files.install_signal_handlers()\n"
        "try:\n"
        "    with resolve.user_code('m.py:Net', 'run'):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "except BaseException as exc:\n"
        "    print(type(exc).__name__)\n"
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.stdout == "KeyboardInterrupt\n"


@pytest.mark.parametrize("force", [False, True])
def test_a_fifo_is_never_replaced(tmp_path: Path, force: bool) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match="is a FIFO \\(named pipe\\), not a regular file"):
        files.write_atomic(fifo, b"x", force=force)
    assert fifo.is_fifo() and os.listdir(tmp_path) == ["pipe"]


def test_device_and_links_to_devices_are_refused_without_touching_them(tmp_path: Path) -> None:
    # Only checked, never written: check_writable runs before any temporary file exists.
    with pytest.raises(OutputError, match=r"^/dev/null is a device, not a regular file"):
        files.check_writable("/dev/null", force=True)
    link = tmp_path / "out"
    link.symlink_to("/dev/null")
    with pytest.raises(OutputError, match="is a device, not a regular file"):
        files.write_atomic(link, b"x", force=True)
    assert link.is_symlink() and os.listdir(tmp_path) == ["out"]


def test_a_symlink_to_a_regular_file_is_still_replaced_with_force(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    files.write_atomic(tmp_path / "link", b"new", force=True)
    assert (tmp_path / "link").read_bytes() == b"new" and (tmp_path / "real").read_bytes() == b"old"


def test_output_naming_an_input_or_another_output_is_refused(tmp_path: Path) -> None:
    spec = tmp_path / "mlp.yaml"
    spec.write_text("input: 4\n")
    (tmp_path / "alias.yaml").symlink_to(spec)
    os.link(spec, tmp_path / "hard.yaml")
    for name in ("mlp.yaml", "alias.yaml", "hard.yaml", "./sub/../mlp.yaml"):
        with pytest.raises(OutputError, match="is also the spec; initcli does not write over"):
            files.check_not_input(tmp_path / name, {"the spec": spec, "--save": None})
    with pytest.raises(OutputError, match=r"out\.safetensors is also --save"):
        files.check_not_input(
            tmp_path / "out.safetensors", {"--save": tmp_path / "out.safetensors"}
        )
    files.check_not_input(tmp_path / "report.txt", {"the spec": spec, "--save": tmp_path / "w"})
    assert spec.read_text() == "input: 4\n"


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def test_a_write_past_a_file_size_limit_is_one_sentence_and_leaves_nothing(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from initcli import files\n"
        "from initcli.errors import OutputError\n"
        "try:\n"
        "    files.write_atomic(sys.argv[1], bytes(1 << 20))\n"
        "except OutputError as exc:\n"
        "    print(exc)\n"
    )
    target = tmp_path / "out.bin"
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        capture_output=True, text=True, preexec_fn=_small_file_limit, check=False,
    )  # fmt: skip
    assert done.stdout == (
        f"cannot write {target}: the file is larger than the file system or a limit (ulimit -f) "
        "allows; free space or choose another folder\n"
    )
    assert os.listdir(tmp_path) == []


def test_broken_pipe_exits_0_quietly() -> None:
    script = (
        "import sys\n"
        "from initcli import files\n"
        "try:\n"
        "    for i in range(100_000):\n"
        "        print(f'line {i}')\n"
        "    sys.stdout.flush()\n"
        "except BrokenPipeError:\n"
        "    sys.exit(files.on_broken_pipe())\n"
    )
    done = subprocess.run(
        f"{sys.executable} -c \"{script}\" | head -1; echo \"${{PIPESTATUS[0]}}\" >&2",
        shell=True, executable="/bin/bash", capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.stdout == "line 0\n"
    assert done.stderr == "0\n"
