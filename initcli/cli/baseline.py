"""`initcli snapshot` and `initcli check`: parameter counts of many models against a baseline."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from initcli.cli._app import app
from initcli.cli.options import (
    ArgOpt,
    BiasInitOpt,
    ForceOpt,
    FormatOpt,
    InitOpt,
    OutputOpt,
    SeedOpt,
    check_output,
    emit,
    input_files,
    parse_kwargs,
    write_text,
)
from initcli.errors import ArgError, ExitCode
from initcli.files import check_not_input
from initcli.render import OutputFormat


@app.command(short_help="Record per-module parameter counts as a baseline.")
def snapshot(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="TARGET...",
            help="Models (or weights files) to record, in any TARGET form.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            dir_okay=False,
            help="Baseline file to write (atomically; an existing one needs --force or --update). "
            "Without it the JSON goes to stdout.",
            show_default=False,
        ),
    ] = None,
    arg: ArgOpt = None,
    stats: Annotated[
        bool,
        typer.Option(
            "--stats",
            help="Also record each parameter's init statistics (shape, init, mean, std, "
            "expected variance, status) under --init/--seed.",
        ),
    ] = False,
    init: InitOpt = None,
    bias_init: BiasInitOpt = None,
    seed: SeedOpt = 0,
    force: ForceOpt = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Add these targets to an existing baseline, replacing entries with the "
            "same target and --arg values and keeping the others.",
        ),
    ] = False,
) -> None:
    """Record parameter counts (per module) as a baseline for `initcli check`."""
    from initcli.report import baseline

    if update and output is None:
        raise ArgError("--update needs the baseline file: -o FILE")
    inputs = input_files(None, [("--init", init)])
    for t in targets:
        inputs |= input_files(t, label=t)
    if not update:
        check_output(output, force, inputs)
    elif output is not None:
        check_not_input(output, inputs)
    recorded = baseline.snapshot(targets, parse_kwargs(arg), stats, init, bias_init, seed)
    if update and output is not None and output.exists():
        recorded = baseline.merge(baseline.read_baseline(output), recorded)
        force = True
    n = len(recorded.models)
    write_text(baseline.dumps(recorded), output, force, f" ({n} target{'s' if n != 1 else ''})")


@app.command(short_help="Rebuild a baseline's targets; exit 1 on any change.")
def check(
    baseline_file: Annotated[
        Path,
        typer.Argument(
            metavar="BASELINE",
            help="A baseline written by initcli snapshot.",
            show_default=False,
        ),
    ],
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="After an intended change: show the diff, then re-record BASELINE from "
            "what the targets build now (same --arg values and options) and exit 0.",
        ),
    ] = False,
) -> None:
    """Rebuild every target of a baseline; exit 1 with a per-module diff if anything changed."""
    from initcli.render.baseline import check_summary, check_view
    from initcli.report import baseline

    # What the baseline's targets read (their files and folders, policy and fn: files) is
    # input too: read here, before the long rebuild, so a bad output fails at once.
    targets: dict[str, str | None] = {}
    for entry in baseline.read_baseline(baseline_file).models:
        stats = [("--init", entry.stats.init)] if entry.stats is not None else []
        targets |= input_files(entry.target, stats, label=entry.target)
    check_output(output, force, {"the baseline being checked": baseline_file, **targets})
    if update:
        # --update rewrites BASELINE itself, by design; never a file its targets read.
        check_not_input(baseline_file, targets)
    report = baseline.check(baseline_file)
    emit(check_view(report), output_format, output, force)
    if report.ok:
        return
    if update:
        write_text(baseline.dumps(report.current), baseline_file, True, " (re-recorded)")
        return
    sys.stderr.write(
        f"Check failed: {check_summary(report)}; if the change is intended, re-record it with "
        f"initcli check {baseline_file} --update\n"
    )
    raise typer.Exit(ExitCode.CHECK_FAILED)
