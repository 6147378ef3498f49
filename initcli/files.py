"""Files in and out: reads only of regular files; writes atomic, never a clobber, never an input."""

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

from initcli.errors import ExitCode, NotRegularFileError, OutputError

__all__ = [
    "MAX_FOLDER_SCAN",
    "atomic_writer",
    "check_not_input",
    "check_writable",
    "install_signal_handlers",
    "on_broken_pipe",
    "open_regular",
    "read_regular",
    "require_regular",
    "signal_received",
    "write_atomic",
]

# An existing output is compared, by inode, with every file of a folder it must not be (a folder
# TARGET): at most this many entries are looked at. Past it the output is refused: a link to a
# file the command reads cannot be ruled out.
MAX_FOLDER_SCAN = 100_000
_NEVER_OVER_INPUTS = (
    "initcli does not write over its own inputs or one output over another, even with --force: "
    "choose another file name"
)

# Temporary files being written right now: a SIGTERM/SIGHUP/SIGINT handler removes them.
_TEMP_PATHS: set[str] = set()
_RECEIVED: list[int] = []  # the signal the handlers saw (a list: no `global`)
# Exit codes for the signals initcli handles: 128 + the signal number, as shells report them.
SIGNAL_EXIT = {
    signal.SIGINT: ExitCode.INTERRUPTED,
    signal.SIGTERM: ExitCode.TERMINATED,
    signal.SIGHUP: ExitCode.HANGUP,
}
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

    `model.resolve.user_code` uses it to tell a real Ctrl-C from a KeyboardInterrupt raised by
    user code.
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


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    return "a socket" if stat.S_ISSOCK(mode) else "a device"


def _not_regular(path: str | os.PathLike[str], mode: int) -> NotRegularFileError:
    return NotRegularFileError(
        f"{os.fspath(path)} is {_kind(mode)}, not a regular file; initcli reads only regular "
        "files: copy what it holds into a file and name that"
    )


def require_regular(path: str | os.PathLike[str]) -> None:
    """Raise NotRegularFileError if `path` is a FIFO, socket or device (symlinks followed).

    `os.stat` never blocks, where opening a FIFO waits for a writer forever. A missing path or a
    folder is left to the caller, whose own open or check says what to name instead. For readers
    that open the path themselves (safetensors' safe_open, torch.load, transformers, importlib):
    the file could be swapped between this check and their open, a window only a local attacker
    racing initcli could use, to make it hang rather than run anything.
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
        raise _not_regular(path, info.st_mode)


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for reading, refusing anything but a regular file without ever blocking.

    Checked by `require_regular` first, then opened with O_NONBLOCK (a FIFO swapped in meanwhile
    opens at once instead of waiting for a writer) and checked again on the open descriptor:
    no race. Raises FileNotFoundError, IsADirectoryError and other OSErrors as `open` does.
    """
    require_regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """A regular file's bytes (at most `limit` of them), read as `open_regular` opens it."""
    with open_regular(path) as handle:
        return handle.read(-1 if limit is None else limit)


def check_not_input(
    output: str | os.PathLike[str], inputs: Mapping[str, str | os.PathLike[str] | None]
) -> None:
    """Refuse an output path that is one of the inputs (or another output), even with --force.

    `inputs` maps how each was given (`"the spec"`, `"--save"`, `"the target folder f/"`) to
    its path; None entries (a dotted TARGET, an option not given) are skipped. Paths are compared
    resolved (symlinks followed) and, where both exist, as the same file (hard links, bind
    mounts). A folder covers everything in it: an output inside it is refused, and so is an
    existing output that is the same file as any file in it (a link from outside to a shard, or
    a shard that is a symlink to the output).
    """
    out = Path(output)
    resolved = out.resolve()
    out_info = _stat(out, follow=True)
    for role, given in inputs.items():
        if given is None:
            continue
        other = Path(given)
        if other.is_dir():
            _check_not_in_folder(out, resolved, out_info, role, other)
            continue
        same = resolved == other.resolve()
        if not same and out_info is not None:
            other_info = _stat(other, follow=True)
            same = other_info is not None and _same_file(out_info, other_info)
        if same:
            raise OutputError(f"{out} is also {role}; {_NEVER_OVER_INPUTS}")


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _check_not_in_folder(
    out: Path, resolved: Path, out_info: os.stat_result | None, role: str, folder: Path
) -> None:
    root = folder.resolve()
    if resolved.is_relative_to(root):
        raise OutputError(
            f"{out} is inside {role}; initcli does not write into a folder it reads, "
            "even with --force: write it elsewhere"
        )
    if out_info is None:  # a new file cannot be a link to one in the folder
        return
    for seen, file in enumerate(_walk(root)):
        if seen >= MAX_FOLDER_SCAN:
            raise OutputError(
                f"{out} exists and {role} holds over {MAX_FOLDER_SCAN:,} entries, too "
                f"many to rule out that {out} is one of them by a link; {_NEVER_OVER_INPUTS}"
            )
        info = _stat(file, follow=True)
        if info is not None and _same_file(info, out_info):
            raise OutputError(
                f"{out} is also {file.relative_to(root)} in {role} (the same file by a "
                f"link); {_NEVER_OVER_INPUTS}"
            )


def _walk(root: Path) -> Iterator[Path]:
    # Every entry under root, symlinked folders followed (a loop only runs into the cap).
    for folder, dirs, names in os.walk(root, followlinks=True):
        for name in (*dirs, *names):
            yield Path(folder, name)


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
        raise OutputError(
            f"{target} is {_kind(info.st_mode)}, not a regular file; initcli writes only "
            "regular files, even with --force: give a file name"
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
