"""files.write_atomic: whole file or nothing, never over an existing file without force."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from initcli import files
from initcli.errors import OutputError
from initcli.files import write_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_writes_a_new_file_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    assert write_atomic(target, b"{}\n") == target
    assert target.read_bytes() == b"{}\n"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert _leftovers(tmp_path) == []


def test_refuses_an_existing_file_without_force(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match=r"out\.json exists; pass --force to replace it"):
        write_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_force_replaces_and_keeps_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_atomic(target, b"new", force=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_a_failed_rename_leaves_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def broken(src: object, dst: object) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(OutputError, match=r"cannot write .*I/O error"):
        write_atomic(target, b"new", force=True)
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_a_name_taken_while_writing_is_not_clobbered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another writer creates the file between our existence check and the final step: os.link
    # refuses to take an existing name, so their file survives.
    target = tmp_path / "out.json"
    real_link = os.link

    def racing_link(src: str, dst: str) -> None:
        Path(dst).write_bytes(b"theirs")
        real_link(src, dst)

    monkeypatch.setattr(files.os, "link", racing_link)
    with pytest.raises(OutputError, match="exists"):
        write_atomic(target, b"ours")
    assert target.read_bytes() == b"theirs"
    assert _leftovers(tmp_path) == []


def test_file_systems_without_hard_links_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "link", no_links)
    target = tmp_path / "out.json"
    write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    with pytest.raises(OutputError, match="exists"):
        write_atomic(target, b"again")
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/out.json", r"folder .*missing does not exist; create it first"),
        (".", "is a directory; give a file name"),
    ],
)
def test_bad_destinations(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(OutputError, match=message):
        write_atomic(tmp_path / name, b"x")
