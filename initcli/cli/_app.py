"""The typer app: every failure ends as one `Error: ...` line and the contract's exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from initcli import __version__
from initcli.errors import ExitCode, InitcliError, first_line


def error(message: str) -> None:
    """One line, on stderr, never a traceback: the whole error contract for users and CI logs."""
    first = " ".join(message.split())
    sys.stderr.write(f"Error: {first}\n")
    sys.stderr.flush()


class StdoutClosedError(Exception):
    """stdout's reader went away (`initcli schemes | head -1`): not an error, exit 0."""


class _Group(TyperGroup):
    """Runs commands so every failure ends as `Error: ...` plus the contract's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Raised as another type so click's own EPIPE handling (exit 1) does not see it.
            raise StdoutClosedError from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
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
            error(f"{format_message() if format_message else exc}{where}")
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
            error(
                f"unexpected {first_line(exc)} — rerun with INITCLI_DEBUG=1 for "
                "the traceback and report it if initcli is at fault"
            )
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
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
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
