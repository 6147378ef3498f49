"""`initcli defaults`: PyTorch's own init per module type, against the activation after it."""

from __future__ import annotations

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
)
from initcli.render import OutputFormat


@app.command(short_help="PyTorch's default init per module type, and misfits.")
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
    from initcli.report.pytorch_defaults import defaults as defaults_report

    check_output(output, force, input_files(target))
    report = defaults_report(target, parse_kwargs(arg), parse_shape_option(input_shape))
    emit(defaults_view(report), output_format, output, force)
