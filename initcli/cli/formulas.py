"""`initcli schemes`, `gain`, `schema`: the scheme formulas, the gains and the spec schema."""

from __future__ import annotations

from typing import Annotated

import typer

from initcli.cli._app import app
from initcli.cli.options import (
    ForceOpt,
    FormatOpt,
    OutputOpt,
    check_output,
    emit,
    write_text,
)
from initcli.render import OutputFormat


@app.command(short_help="Every init scheme: formula and expected variance.")
def schemes(
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Every init scheme: name, aliases, parameters, formula and expected variance."""
    from initcli.render.formulas import schemes_view
    from initcli.report.formulas import scheme_rows

    emit(schemes_view(scheme_rows()), output_format, output, force)


@app.command(short_help="calculate_gain for every nonlinearity: formula, value.")
def gain(
    slope: Annotated[float, typer.Option("--slope", help="leaky_relu's negative slope.")] = 0.01,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """torch.nn.init.calculate_gain for every nonlinearity: formula and value."""
    from initcli.render.formulas import gains_view
    from initcli.report.formulas import gains

    check_output(output, force)
    emit(gains_view(gains(slope)), output_format, output, force)


@app.command(short_help="The JSON Schema of the YAML MLP spec.")
def schema(output: OutputOpt = None, force: ForceOpt = False) -> None:
    """The JSON Schema of the YAML MLP spec, for editor completion and validation."""
    import json

    from initcli.model.spec import spec_json_schema

    write_text(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n", output, force)
