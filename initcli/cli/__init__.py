"""The `initcli` command line: parse options, call the report layer, render, and exit."""

# One module per command family; importing each registers its commands on the typer app.

from initcli.cli import baseline, counts, formulas, inspection, probing, pytorch_defaults
from initcli.cli._app import StdoutClosedError, app

__all__ = [
    "app",
    "baseline",
    "counts",
    "formulas",
    "inspection",
    "main",
    "probing",
    "pytorch_defaults",
]


def main() -> None:
    """Console-script entry point: signals clean up temp files; a closed pipe is not an error."""
    import sys

    from initcli.files import install_signal_handlers, on_broken_pipe
    from initcli.threads import wait_passively

    wait_passively()
    install_signal_handlers()
    try:
        code = app(prog_name="initcli", standalone_mode=False)
        sys.stdout.flush()
    except (BrokenPipeError, StdoutClosedError):
        code = on_broken_pipe()
    sys.exit(code)
