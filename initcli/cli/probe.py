"""`initcli probe` and `initcli compare`: what each init does to a forward pass (and training)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from initcli import verdict
from initcli.cli._app import app
from initcli.cli.options import (
    ArgOpt,
    BatchOpt,
    BiasInitOpt,
    ForceOpt,
    FormatOpt,
    InitsOpt,
    InputShapeOpt,
    OutputOpt,
    PlotOpt,
    ProbeSeedOpt,
    TargetArg,
    check_output,
    emit,
    parse_kwargs,
    parse_shape_option,
    target_file,
)
from initcli.render import OutputFormat


def _plot_first(plot: Path | None, force: bool) -> None:
    # Checked before the (possibly long) probe, so a missing extra or an existing file fails fast.
    if plot is not None:
        from initcli.render.plot import check_destination, require_matplotlib

        require_matplotlib()
        check_destination(plot, force)


def _plot_last(report: Any, plot: Path | None, force: bool) -> None:
    if plot is not None:
        from initcli.render.plot import write_plot

        width, height = write_plot(report, plot, force)
        sys.stderr.write(f"wrote {plot} ({width}×{height} px)\n")


@app.command(epilog=verdict.HELP)
def probe(
    target: TargetArg,
    init: InitsOpt = None,
    bias_init: BiasInitOpt = None,
    seed: ProbeSeedOpt = 0,
    arg: ArgOpt = None,
    input_shape: InputShapeOpt = None,
    batch_size: BatchOpt = 256,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
) -> None:
    """What each init does to a forward pass, block by block, with a verdict.

    One seeded random batch through a freshly built model per scheme, hooks on every leaf module:
    per block, the output's mean, std, fraction of exact zeros and of saturated values, and the
    gradient norm after one backward pass of mean(output²).
    """
    from initcli.render.probing import probe_view
    from initcli.report import probe_report

    _plot_first(plot, force)
    check_output(output, force, {"the target's file": target_file(target), "--plot": plot})
    report = probe_report(
        target,
        init or [],
        bias_init,
        seed,
        parse_kwargs(arg),
        parse_shape_option(input_shape),
        batch_size,
    )
    emit(probe_view(report), output_format, output, force)
    _plot_last(report, plot, force)


@app.command(epilog=verdict.HELP)
def compare(
    target: TargetArg,
    init: InitsOpt = None,
    train: Annotated[
        int | None,
        typer.Option(
            "--train",
            metavar="STEPS",
            min=1,
            help="Also train a fresh copy per scheme for STEPS full-batch Adam steps on two "
            "moons (for models mapping 2 features to 2 logits) and report the losses.",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="Adam's learning rate for --train.")] = 0.01,
    points: Annotated[
        int, typer.Option("--points", min=2, help="Two-moons points for --train.")
    ] = 500,
    noise: Annotated[
        float, typer.Option("--noise", min=0.0, help="Two-moons noise (std) for --train.")
    ] = 0.2,
    bias_init: BiasInitOpt = None,
    seed: ProbeSeedOpt = 0,
    arg: ArgOpt = None,
    input_shape: InputShapeOpt = None,
    batch_size: BatchOpt = 256,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
) -> None:
    """Schemes side by side: output std per block, verdicts and, with --train, loss curves.

    --train N trains a fresh copy per scheme for N full-batch Adam steps on an in-process two-moons
    set (sklearn's make_moons layout), for models that map 2 features to 2 logits.
    """
    from initcli.render.probing import probe_view
    from initcli.report import TrainSetup, probe_report

    _plot_first(plot, force)
    check_output(output, force, {"the target's file": target_file(target), "--plot": plot})
    setup = None if train is None else TrainSetup(train, lr, points, noise)
    report = probe_report(
        target,
        init or [],
        bias_init,
        seed,
        parse_kwargs(arg),
        parse_shape_option(input_shape),
        batch_size,
        setup,
    )
    emit(probe_view(report, compare=True), output_format, output, force)
    _plot_last(report, plot, force)
