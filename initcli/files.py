"""Every file initcli writes goes through `write_atomic`: all of it or nothing, never a clobber."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import FrameType
from typing import BinaryIO

from initcli.errors import OutputError

__all__ = [
    "atomic_writer",
    "check_not_input",
    "check_writable",
    "install_signal_handlers",
    "on_broken_pipe",
    "signal_received",
    "write_atomic",
]

# Temporary files being written right now: a SIGTERM/SIGHUP/SIGINT handler removes them.
_TEMP_PATHS: set[str] = set()
_RECEIVED: list[int] = []  # the signal the handlers saw (a list: no `global`)
# Exit codes for the signals initcli handles: 128 + the signal number, as shells report them.
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
_SIGNAL_WORDS = {signal.SIGTERM: "terminated (SIGTERM)", signal.SIGHUP: "hung up (SIGHUP)"}
# errno values that mean "this folder cannot take the file": one sentence each, not strerror.
_WRITE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is larger than the file system or a limit (ulimit -f) allows",
    errno.EROFS: "the file system is read-only",
}


def signal_received() -> int | None:
    """The signal (SIGINT, SIGTERM, SIGHUP) the installed handlers saw, or None.

    `loading.user_code` uses it to tell a real Ctrl-C from a KeyboardInterrupt raised by user code.
    """
    return _RECEIVED[0] if _RECEIVED else None


def _remove_temp_files() -> None:
    for name in list(_TEMP_PATHS):
        with contextlib.suppress(OSError):
            os.unlink(name)
        _TEMP_PATHS.discard(name)


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _RECEIVED[:] = [signum]
    _remove_temp_files()
    if signum == signal.SIGINT:
        raise KeyboardInterrupt  # the CLI's own handling: "aborted", exit 130
    # SIGTERM / SIGHUP: leave now. os._exit, because user code could swallow SystemExit, and
    # nothing half-written is left to finish: the temporary files are gone.
    os.write(2, f"Error: {_SIGNAL_WORDS[signal.Signals(signum)]}; stopped\n".encode())
    os._exit(SIGNAL_EXIT[signal.Signals(signum)])


def install_signal_handlers() -> None:
    """Make SIGINT, SIGTERM and SIGHUP remove initcli's temporary files before the process ends.

    Called once by the CLI entry point. SIGINT still raises KeyboardInterrupt (exit 130); SIGTERM
    exits 143 and SIGHUP 129, each after one `Error:` line on stderr. A signal ignored when
    initcli started (`nohup` ignores SIGHUP) stays ignored.
    """
    for signum in SIGNAL_EXIT:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _on_signal)


def on_broken_pipe() -> int:
    """What the CLI does when stdout's reader went away (`initcli schemes | head -1`): exit 0.

    Python's documented recipe: point stdout at /dev/null so the flush at exit cannot fail again.
    Call it from `except BrokenPipeError:` around the command and exit with what it returns.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 0


def check_not_input(
    output: str | os.PathLike[str], inputs: Mapping[str, str | os.PathLike[str] | None]
) -> None:
    """Refuse an output path that is one of the inputs (or another output), even with --force.

    `inputs` maps how each was given (`"the spec"`, `"--save"`, `"the baseline"`) to its path;
    None entries (a dotted TARGET, an option not given) are skipped. Paths are compared resolved
    (symlinks followed) and, where both exist, as the same file (hard links, bind mounts).
    """
    out = Path(output)
    for role, given in inputs.items():
        if given is None:
            continue
        other = Path(given)
        same = out.resolve() == other.resolve()
        if not same and out.exists() and other.exists():
            with contextlib.suppress(OSError):
                same = out.samefile(other)
        if same:
            raise OutputError(
                f"{out} is also {role}; initcli does not write over its own inputs or one output "
                "over another: choose another file name"
            )


def _new_file_mode() -> int:
    # The temporary file is created 0600; a written report should get the mode `open()` would
    # give it. The umask can only be read by setting it, so it is set back at once.
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
    _refuse_special(target)
    if target.exists() and not force:
        raise _exists(target)
    if not target.parent.is_dir():
        raise OutputError(
            f"cannot write {target}: folder {target.parent} does not exist; create it first"
        )


def _refuse_special(target: Path) -> None:
    # Only regular files (and symlinks, which are replaced, not followed) may be replaced: a
    # device, FIFO or socket would become a regular file (as root, /dev/null itself). A symlink
    # to such a file (/dev/stdout) is refused too.
    for info in (_stat(target, follow=False), _stat(target, follow=True)):
        if info is None or stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
            continue
        kind = (
            "a directory" if stat.S_ISDIR(info.st_mode)
            else "a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode)
            else "a socket" if stat.S_ISSOCK(info.st_mode)
            else "a device"
        )  # fmt: skip
        raise OutputError(
            f"{target} is {kind}, not a regular file; initcli writes only regular files, "
            "even with --force: give a file name"
        )


def _stat(target: Path, follow: bool) -> os.stat_result | None:
    try:
        return target.stat() if follow else target.lstat()
    except OSError:
        return None


def _write_error(target: Path, exc: OSError) -> OutputError:
    reason = _WRITE_ERRORS.get(exc.errno or 0)
    if reason is not None:
        return OutputError(f"cannot write {target}: {reason}; free space or choose another folder")
    return OutputError(f"cannot write {target}: {exc.strerror or exc}")


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], force: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file whose contents take the name `path` only if the block completes.

    What `write_atomic` does, for writers that produce their bytes piece by piece (a streamed
    safetensors file): the temporary file is registered for the signal handlers, removed on any
    error, and write errors (disk full, file too large, read-only) become one-sentence
    OutputErrors.
    """
    target = Path(path)
    check_writable(target, force)
    folder = target.parent
    mode = target.stat().st_mode & 0o7777 if target.exists() else _new_file_mode()
    # The name is registered before the file exists: a signal handler (it may be triggered from
    # any thread, e.g. one of torch's) then always knows what to remove.
    while True:
        tmp_name = str(folder / f".{target.name}.{secrets.token_hex(4)}.tmp")
        _TEMP_PATHS.add(tmp_name)
        try:
            fd = os.open(tmp_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            _TEMP_PATHS.discard(tmp_name)
        except OSError as exc:
            _TEMP_PATHS.discard(tmp_name)
            raise _write_error(target, exc) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
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
        raise _write_error(target, exc) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        _TEMP_PATHS.discard(tmp_name)


def write_atomic(path: str | os.PathLike[str], data: bytes, force: bool = False) -> Path:
    """Write `data` to `path` so readers see the old file or all of the new one, nothing between.

    The bytes go to a temporary file in the same folder (same file system, so the final step is a
    rename), are flushed to disk, and only then take the name. Without `force` an existing `path`
    is never replaced, and the check cannot race with another writer: the name is taken with
    `os.link`, which fails if it exists. Raises OutputError (exit 2) with what to do instead.
    """
    with atomic_writer(path, force) as handle:
        handle.write(data)
    return Path(path)


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
