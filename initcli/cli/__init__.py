"""The `initcli` command line: parse options, call the report layer, render, and exit.

One module per command family; importing each registers its commands on the typer app.
"""

from initcli.cli import baselines, count, formulas, inspect, probe
from initcli.cli._app import app

__all__ = ["app", "baselines", "count", "formulas", "inspect", "main", "probe"]


def main() -> None:
    """Console-script entry point."""
    app(prog_name="initcli")
