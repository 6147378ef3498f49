"""Every file initcli writes goes through `write_atomic`: all of it or nothing, never a clobber."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from initcli.errors import OutputError

__all__ = ["check_writable", "write_atomic"]


def _new_file_mode() -> int:
    # mkstemp creates 0600; a written report should get the mode `open()` would give it. The umask
    # can only be read by setting it, so it is set back at once.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _exists(target: Path) -> OutputError:
    return OutputError(f"{target} exists; pass --force to replace it, or choose another name")


def check_writable(path: str | os.PathLike[str], force: bool = False) -> None:
    """Raise OutputError now if `write_atomic(path, ..., force)` would refuse the name.

    For callers with long work ahead of the write: say so before the work, not after it.
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError(f"{target} is a directory; give a file name")
    if target.exists() and not force:
        raise _exists(target)
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot write {target}: folder {target.parent} does not exist; create it first"
        )


def write_atomic(path: str | os.PathLike[str], data: bytes, force: bool = False) -> Path:
    """Write `data` to `path` so readers see the old file or all of the new one, nothing between.

    The bytes go to a temporary file in the same folder (same file system, so the final step is a
    rename), are flushed to disk, and only then take the name. Without `force` an existing `path`
    is never replaced, and the check cannot race with another writer: the name is taken with
    `os.link`, which fails if it exists. Raises OutputError (exit 2) with what to do instead.
    """
    target = Path(path)
    check_writable(target, force)
    folder = target.parent
    mode = target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode()
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        if force:
            os.replace(tmp, target)
        else:
            _link_new(tmp, target)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target


def _link_new(tmp: Path, target: Path) -> None:
    """Give `tmp`'s contents the name `target` only if that name is free."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError:
        # File systems without hard links (some network and FAT mounts): check, then rename. The
        # window between the two is tiny and only matters to a concurrent writer of the same name.
        if target.exists():
            raise _exists(target) from None
        os.replace(tmp, target)
