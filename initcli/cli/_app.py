"""The typer app: every failure ends as one `Error: ...` line and the contract's exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from initcli import __version__, heard
from initcli.errors import ExitCode, InitcliError, first_line

# ctx.meta key (shared by every context of a run): the command was given -q/--quiet.
QUIET = "initcli.quiet"


def error(message: str) -> None:
    """One line, on stderr, never a traceback: the whole error contract for users and CI logs."""
    first = " ".join(message.split())
    sys.stderr.write(f"Error: {first}\n")
    sys.stderr.flush()


# `compare --train` without a number trains this many steps (300 minibatch steps of 64 on digits:
# ~13 epochs, where He init and PyTorch's default are clearly apart; ~10 s for 2 schemes × 5 seeds).
DEFAULT_TRAIN_STEPS = 300
# Options whose value may be left out, per command: what the bare option means. typer has no
# optional-value options, so the value is put in before parsing.
BARE_VALUES: dict[str, dict[str, str]] = {
    "compare": {"--train": str(DEFAULT_TRAIN_STEPS), "--steps": str(DEFAULT_TRAIN_STEPS)}
}


def fill_bare_values(args: Sequence[str]) -> list[str]:
    """`compare T --train --data digits` → `compare T --train 300 --data digits`."""
    out = list(args)
    command = next((a for a in out if not a.startswith("-")), None)
    bare = BARE_VALUES.get(command or "", {})
    i = 0
    while i < len(out) and out[i] != "--":
        if out[i] in bare:
            nxt = out[i + 1] if i + 1 < len(out) else None
            # A negative number is a (bad) value, reported as such; another option is not.
            if nxt is None or (nxt.startswith("-") and not nxt[1:2].isdigit()):
                out.insert(i + 1, bare[out[i]])
        i += 1
    return out


class StdoutClosedError(Exception):
    """stdout's reader went away (`initcli schemes | head -1`): not an error, exit 0."""


def _unexpected(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.filename is not None:
        # A path the system refuses before any reader sees it (a name longer than the file system
        # allows, a loop of links): the user's input, named, not a bug to report.
        return f"cannot use {exc.filename}: {exc.strerror}; check the path"
    return (
        f"unexpected {first_line(exc)} — rerun with INITCLI_DEBUG=1 for "
        "the traceback and report it if initcli is at fault"
    )


class _Group(TyperGroup):
    """Runs commands so every failure ends as `Error: ...` plus the contract's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            # What libraries say about the user's model (transformers' config warnings) becomes
            # `Note:` lines after a command that succeeds, which -q drops: never raw lines.
            stopped: typer.Exit | None = None
            with heard.library_messages() as messages:
                try:
                    found = super().invoke(ctx)
                except typer.Exit as exc:  # an outcome, not an error: `check` found a change
                    stopped = exc
            if not ctx.meta.get(QUIET, False):
                for message in messages:
                    sys.stderr.write(f"Note: {message}\n")
            if stopped is not None:
                raise stopped
            return found
        except BrokenPipeError:
            # Raised as another type so click's own EPIPE handling (exit 1) does not see it.
            raise StdoutClosedError from None
        except KeyboardInterrupt:
            # Ctrl-C (files.install_signal_handlers raises it on SIGINT). typer would turn it into
            # a silent exit 130; as an Abort, main() prints the contract's `Error: aborted`.
            raise typer.Abort from None

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            # `initcli` alone: the help on stdout, then main's one error line (click would put
            # the whole help into the error message).
            sys.stdout.write(ctx.get_help() + "\n")
            ctx.fail("")
        result: list[str] = super().parse_args(ctx, args)
        return result

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        args = fill_bare_values(sys.argv[1:] if args is None else args)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except typer.Abort:
            error("aborted")
            code = ExitCode.INTERRUPTED
        except typer.TyperException as exc:
            # typer's usage errors (click's, vendored): a bad option, value or command.
            ctx = getattr(exc, "ctx", None)
            where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            format_message = getattr(exc, "format_message", None)
            message = format_message() if format_message else str(exc)
            # `initcli` alone: the help is printed, and click's error has no text of its own.
            error(f"{message or 'no command given: choose one of the commands above'}{where}")
            code = ExitCode.BAD_INPUT
        except InitcliError as exc:
            error(str(exc))
            code = ExitCode.BAD_INPUT
        except (BrokenPipeError, StdoutClosedError):
            raise  # the reader of stdout went away (`| head`): main() ends quietly, exit 0
        except Exception as exc:
            # A bug (ours or in the user's model code) still ends in one line, never a traceback,
            # unless INITCLI_DEBUG asks for it.
            if os.environ.get("INITCLI_DEBUG"):
                raise
            error(_unexpected(exc))
            code = ExitCode.BAD_INPUT
        code = int(code) if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=_Group,
    help="Inspect the starting weights of a PyTorch model: counts, fans, init statistics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain click help, not typer's rich panels: typer's rich help imports rich.markdown and
    # markdown_it and renders through a console (0.28 s for `initcli --help` against 0.13 s;
    # issue 21 asks for 0.2 s). Tables and errors still go through rich (render/).
    rich_markup_mode=None,
    # Up to 100 columns where the terminal has them (click's own default stops at 80).
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"initcli {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_show_version,
            help="Print initcli's version and exit.",
        ),
    ] = False,
) -> None:
    """Inspect the starting weights of a PyTorch model: counts, fans, init statistics."""
