"""The `initcli` command line: parse options, call the report layer, render, and exit."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from initcli.errors import InitcliError
from initcli.render import OutputFormat

# Exit codes (DESIGN §1, a contract): 0 success, 1 a check failed, 2 bad input or usage.
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
PIPED_WIDTH = 100


def _error(message: str) -> None:
    # One line, on stderr, never a traceback: the whole error contract for users and CI logs.
    first = " ".join(message.split())
    sys.stderr.write(f"Error: {first}\n")
    sys.stderr.flush()


class _Group(TyperGroup):
    """Runs commands so every failure ends as `Error: ...` plus the contract's exit code."""

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
        except click_exceptions.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _error(f"{exc.format_message()}{where}")
            code = EXIT_BAD_INPUT
        except InitcliError as exc:
            _error(str(exc))
            code = EXIT_BAD_INPUT
        except typer.Abort:
            _error("aborted")
            code = 130
        except Exception as exc:
            # A bug (ours or in the user's model code) still ends in one line, never a traceback,
            # unless INITCLI_DEBUG asks for it.
            if os.environ.get("INITCLI_DEBUG"):
                raise
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            _error(
                f"unexpected {type(exc).__name__}: {detail} — rerun with INITCLI_DEBUG=1 for "
                "the traceback and report it if initcli is at fault"
            )
            code = EXIT_BAD_INPUT
        code = code if isinstance(code, int) else 0
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

TargetArg = Annotated[str, typer.Argument(
    metavar="TARGET",
    help="pkg.module:Name, path/file.py:Name, or spec.yaml (Name: a Module class, factory or "
         "instance).",
    show_default=False,
)]  # fmt: skip
ArgOpt = Annotated[list[str] | None, typer.Option(
    "--arg", metavar="KEY=VALUE",
    help="Keyword argument for the class or factory, value read as YAML (depth=5, act=tanh). "
         "Repeatable.",
)]  # fmt: skip
FormatOpt = Annotated[OutputFormat, typer.Option(
    "--format", "-f", help="Output format.", case_sensitive=False,
)]  # fmt: skip


def _console() -> Any:
    from rich.console import Console

    # Results on stdout; rich drops colour by itself when stdout is not a terminal or NO_COLOR is
    # set. Piped output gets 100 columns (rich would pick 80) unless COLUMNS says otherwise.
    console = Console(soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def _args(pairs: Sequence[str] | None) -> dict[str, object]:
    from initcli.loading import parse_args

    return parse_args(pairs or [])


@app.command()
def inspect(
    target: TargetArg,
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            "-i",
            metavar="SCHEME",
            help="Scheme for every ≥2-D weight, name or name:key=value,... "
            "(default: the spec's init:, else 'default' = the constructors' own init).",
            show_default=False,
        ),
    ] = None,
    bias_init: Annotated[
        str | None,
        typer.Option(
            "--bias-init",
            metavar="SCHEME",
            help="Scheme for biases and other 1-D parameters with a named --init (default: zeros).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            "--seed",
            "-s",
            min=0,
            help="torch.manual_seed before the init (before the build for 'default').",
        ),
    ] = 0,
    arg: ArgOpt = None,
    output_format: FormatOpt = OutputFormat.table,
) -> None:
    """Per-parameter table: shape, fans, mean and variance against the scheme's formula."""
    from initcli.render import print_report
    from initcli.report import inspect as inspect_report

    report = inspect_report(target, init, bias_init, seed, _args(arg))
    print_report(report, output_format, _console())


@app.command()
def count(
    target: TargetArg,
    arg: ArgOpt = None,
    expect: Annotated[
        int | None,
        typer.Option(
            "--expect",
            metavar="N",
            min=0,
            help="Exit 1 unless the total (each tensor once) is exactly N.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOpt = OutputFormat.table,
) -> None:
    """Exact parameter totals: initcli's own count beside torchinfo's, differences explained."""
    from initcli.render import print_report
    from initcli.report import count as count_report

    report = count_report(target, _args(arg))
    print_report(report, output_format, _console())
    if expect is not None and report.counts.total != expect:
        diff = report.counts.total - expect
        sys.stderr.write(
            f"Check failed: expected {expect:,} parameters, counted "
            f"{report.counts.total:,} ({diff:+,}) in {report.target}\n"
        )
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def schemes(output_format: FormatOpt = OutputFormat.table) -> None:
    """Every init scheme: name, aliases, parameters, formula and expected variance."""
    from initcli.render import print_report
    from initcli.report import scheme_rows

    print_report(scheme_rows(), output_format, _console())


def main() -> None:
    """Console-script entry point."""
    app(prog_name="initcli")
