"""`initcli schemes`, `gain`, `defaults`, `schema`: formulas, torch defaults, the spec schema."""

from __future__ import annotations

from typing import Annotated

import typer

from initcli.cli._app import app
from initcli.cli.options import (
    ArgOpt,
    ForceOpt,
    FormatOpt,
    InputShapeOpt,
    OutputOpt,
    TargetArg,
    check_output,
    emit,
    input_files,
    parse_kwargs,
    parse_shape_option,
    write_text,
)
from initcli.render import OutputFormat


@app.command()
def schemes(
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Every init scheme: name, aliases, parameters, formula and expected variance."""
    from initcli.render.formulas import schemes_view
    from initcli.report import scheme_rows

    emit(schemes_view(scheme_rows()), output_format, output, force)


@app.command()
def defaults(
    target: TargetArg,
    arg: ArgOpt = None,
    input_shape: InputShapeOpt = None,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """PyTorch's own init per module type, and where it mismatches the activation after it.

    E.g. Linear's kaiming_uniform_(a=√5) gives variance 1/(3·fan_in): in front of a ReLU that is
    a sixth of He's 2/fan_in. Every figure comes from the formulas shown.
    """
    from initcli.render.pytorch_defaults import defaults_view
    from initcli.report import defaults as defaults_report

    check_output(output, force, input_files(target))
    report = defaults_report(target, parse_kwargs(arg), parse_shape_option(input_shape))
    emit(defaults_view(report), output_format, output, force)


@app.command()
def gain(
    slope: Annotated[float, typer.Option("--slope", help="leaky_relu's negative slope.")] = 0.01,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """torch.nn.init.calculate_gain for every nonlinearity: formula and value."""
    from initcli.render.formulas import gains_view
    from initcli.report import gains

    check_output(output, force)
    emit(gains_view(gains(slope)), output_format, output, force)


@app.command()
def schema(output: OutputOpt = None, force: ForceOpt = False) -> None:
    """The JSON Schema of the YAML MLP spec, for editor completion and validation."""
    import json

    from initcli.model.spec import spec_json_schema

    write_text(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n", output, force)
