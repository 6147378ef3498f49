"""`initcli count`: exact totals beside torchinfo's; --expect makes it a check (exit 1)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from initcli.cli._app import app
from initcli.cli.options import (
    ArgOpt,
    ExpandOpt,
    ForceOpt,
    FormatOpt,
    LazyShapeOpt,
    ModelOrWeightsArg,
    OutputOpt,
    QuietOpt,
    check_output,
    count_value,
    emit,
    input_files,
    notes,
    parse_kwargs,
    parse_shape_option,
    tolerance_value,
)
from initcli.errors import ArgError, ExitCode
from initcli.measure.expect import ExpectedCount, Tolerance
from initcli.render import OutputFormat


@app.command(short_help="Exact parameter totals, initcli's beside torchinfo's.")
def count(
    target: ModelOrWeightsArg,
    arg: ArgOpt = None,
    input_shape: LazyShapeOpt = None,
    expect: Annotated[
        ExpectedCount | None,
        typer.Option(
            "--expect",
            metavar="N",
            parser=count_value,
            help="Exit 1 unless the total (each tensor once) is N. N may be 51, 3,200, 124.4M or "
            "1.2B; with a suffix it must round to N as written (124.4M: 124,350,000 to "
            "124,449,999) unless --tolerance is given.",
            show_default=False,
        ),
    ] = None,
    expect_trainable: Annotated[
        ExpectedCount | None,
        typer.Option(
            "--expect-trainable",
            metavar="N",
            parser=count_value,
            help="Exit 1 unless the trainable count is N (same forms as --expect).",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        Tolerance | None,
        typer.Option(
            "--tolerance",
            metavar="T",
            parser=tolerance_value,
            help="Accepted difference for --expect/--expect-trainable: parameters (1000, 5K) or a "
            "percentage of N (0.1%). Replaces the rounding rule; 0 means exactly N.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOpt = OutputFormat.table,
    expand: ExpandOpt = False,
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Exact parameter totals: initcli's own count beside torchinfo's, differences explained.

    Nothing is allocated: specs are counted by arithmetic, other models built on the meta device.
    """
    from initcli.measure.expect import check_count
    from initcli.render.counts import count_view
    from initcli.report.counts import count as count_report

    if tolerance is not None and expect is None and expect_trainable is None:
        raise ArgError("--tolerance needs --expect N or --expect-trainable N")
    check_output(output, force, input_files(target))
    report = count_report(target, parse_kwargs(arg), parse_shape_option(input_shape))
    notes(report.remarks, quiet)
    emit(count_view(report, expand), output_format, output, force)
    checks = [
        check_count(what, actual, wanted, tolerance)
        for what, actual, wanted in (
            ("parameters", report.counts.total, expect),
            ("trainable parameters", report.counts.trainable, expect_trainable),
        )
        if wanted is not None
    ]
    failed = [c for c in checks if not c.ok]
    for check in failed:
        sys.stderr.write(check.message(report.target) + "\n")
    if failed:
        raise typer.Exit(ExitCode.CHECK_FAILED)
