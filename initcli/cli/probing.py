"""`initcli probe` and `initcli compare`: what each init does to a forward pass (and training)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from initcli.cli._app import DEFAULT_TRAIN_STEPS, app
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
    input_files,
    notes,
    parse_kwargs,
    parse_shape_option,
)
from initcli.errors import ArgError
from initcli.experiments import verdict
from initcli.files import check_not_input
from initcli.render import OutputFormat

InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        metavar="FILE.py:FN",
        help="The batch: a function of your code (file.py:make_batch or pkg.mod:make_batch) "
        "taking any of batch_size, seed, model by name and returning a tensor or a dict of "
        "keyword arguments for the forward (a 'labels' entry makes the model take its own loss). "
        "Default: built from the model's input (token ids, pixel values, features).",
        show_default=False,
    ),
]


def _plot_first(plot: Path | None, force: bool) -> None:
    # Checked before the (possibly long) probe, so a missing extra or an existing file fails fast.
    if plot is not None:
        from initcli.render.plot import check_destination, require_matplotlib

        require_matplotlib()
        check_destination(plot, force)


def _check_outputs(
    target: str,
    output: Path | None,
    plot: Path | None,
    force: bool,
    inits: list[str] | None,
    data: str | None = None,
    input_fn: str | None = None,
) -> None:
    """Before any work: --plot and --output must be writable, and neither may be an input."""
    inputs = input_files(target, [("--init", i) for i in inits or []], data, batch=input_fn)
    if plot is not None:
        check_not_input(plot, inputs)
    _plot_first(plot, force)
    check_output(output, force, {**inputs, "--plot": plot})


def _plot_last(report: Any, plot: Path | None, force: bool) -> None:
    if plot is not None:
        from initcli.render.plot import write_plot

        width, height = write_plot(report, plot, force)
        sys.stderr.write(f"wrote {plot} ({width}×{height} px)\n")


@app.command(
    short_help="What each init does to a forward pass, with a verdict.", epilog=verdict.HELP
)
def probe(
    target: TargetArg,
    init: InitsOpt = None,
    bias_init: BiasInitOpt = None,
    seed: ProbeSeedOpt = 0,
    arg: ArgOpt = None,
    input_shape: InputShapeOpt = None,
    input_fn: InputOpt = None,
    batch_size: BatchOpt = 256,
    sweep: Annotated[
        str | None,
        typer.Option(
            "--sweep",
            metavar="KEY=W1,W2,...",
            help="Width sweep (coord check): rebuild the model at each width (a constructor "
            "argument; for a YAML spec layers.units, every layer but the last) and fit "
            "std ∝ width^k per block.",
            show_default=False,
        ),
    ] = None,
    step: Annotated[
        bool,
        typer.Option("--step", help="With --sweep: also the update size after one Adam step."),
    ] = False,
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Probe at --seed, --seed+1, ...: the std ratio's range and a verdict only "
            "where every seed agrees.",
        ),
    ] = 1,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
) -> None:
    """What each init does to a forward pass, block by block, with a verdict.

    One seeded random batch through a freshly built model per scheme, hooks on every leaf module:
    per block, the output's mean, std, fraction of exact zeros and of saturated values, and the
    gradient norm after one backward pass of mean(output²), or of the model's own loss where
    labels can be made (a transformers LM or classifier). A model's repeated modules (h.N,
    layers.N, encoder.layer.N) are its blocks: their outputs are the residual stream.
    """
    from initcli.render.probing import probe_view
    from initcli.report.probing import probe_report

    if sweep is not None:
        from initcli.render.sweeping import sweep_view
        from initcli.report.sweeping import sweep_report

        if seeds != 1:
            raise ArgError(
                "--seeds does not apply to --sweep (one seeded batch per width); to check a "
                "sweep's seed noise, rerun it with another --seed"
            )
        _check_outputs(target, output, plot, force, init, input_fn=input_fn)
        swept = sweep_report(
            target,
            init or [],
            sweep,
            bias_init,
            seed,
            parse_kwargs(arg),
            parse_shape_option(input_shape),
            batch_size,
            step,
            input_fn,
        )
        emit(sweep_view(swept), output_format, output, force)
        _plot_last(swept, plot, force)
        return
    if step:
        raise ArgError("--step goes with --sweep (the update size per width)")
    _check_outputs(target, output, plot, force, init, input_fn=input_fn)
    report = probe_report(
        target,
        init or [],
        bias_init,
        seed,
        parse_kwargs(arg),
        parse_shape_option(input_shape),
        batch_size,
        seeds_count=seeds,
        input_fn=input_fn,
    )
    notes(report.remarks, False)
    emit(probe_view(report), output_format, output, force)
    _plot_last(report, plot, force)


@app.command(
    short_help="Schemes side by side: output std, verdicts, training.", epilog=verdict.HELP
)
def compare(
    target: TargetArg,
    init: InitsOpt = None,
    train: Annotated[
        int | None,
        typer.Option(
            "--train",
            "--steps",
            metavar="[STEPS]",
            help="Also train a fresh copy per scheme for STEPS updates (bare --train: "
            f"{DEFAULT_TRAIN_STEPS}; full-batch Adam on two moons unless --data/--optimizer/"
            "--train-batch say otherwise) and report the losses.",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        str,
        typer.Option(
            "--data",
            metavar="DATA",
            help="--train's data: moons, digits (scikit-learn's 8×8 digits; the 'data' extra; "
            "1×8×8 pixel values for a vision model), markov (a synthetic language: sequences of "
            "a fixed random Markov chain, next-token cross-entropy, its entropy rate the floor), "
            "or pkg.mod:name / file.py:name returning (X, y), a dict of 'train'/'validation' "
            "splits or a torch Dataset. Integer y: classification; float y: regression (MSE).",
        ),
    ] = "moons",
    epochs: Annotated[
        int | None,
        typer.Option(
            "--epochs",
            help="Train for this many passes over the training split (with --train-batch) "
            "instead of --train STEPS.",
            show_default=False,
        ),
    ] = None,
    train_batch: Annotated[
        int | None,
        typer.Option(
            "--train-batch",
            help="Minibatch size for --train (default: 64 for digits and markov, else full "
            "batch). Not the probe's --batch-size.",
            show_default=False,
        ),
    ] = None,
    optimizer: Annotated[
        str, typer.Option("--optimizer", help="--train's optimizer: adam or sgd.")
    ] = "adam",
    seeds: Annotated[
        int,
        typer.Option(
            "--seeds",
            help="Train every scheme once per seed (--seed, --seed+1, ...) and report mean ± "
            "95% t-interval and paired t-tests between schemes.",
        ),
    ] = 1,
    val_fraction: Annotated[
        float | None,
        typer.Option(
            "--val-fraction",
            help="Share of an unsplit data set held out for validation (default 0.2; moons 0).",
            show_default=False,
        ),
    ] = None,
    target_loss: Annotated[
        float | None,
        typer.Option(
            "--target-loss",
            help="Report steps to reach this training loss (default: a quarter of the chance "
            "loss: ln(classes), or var(y) for regression; for markov a quarter of the way from "
            "its floor to chance).",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[float, typer.Option("--lr", help="The learning rate for --train.")] = 0.01,
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
    input_fn: InputOpt = None,
    batch_size: BatchOpt = 256,
    plot: PlotOpt = None,
    force: ForceOpt = False,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
) -> None:
    """Schemes side by side: output std per block, verdicts and, with --train, loss curves.

    --train [N] trains a fresh copy per scheme for N steps (bare: 300): full-batch Adam on an
    in-process two-moons set by default, or --data digits / your own data; --seeds K repeats it per
    seed and reports mean ± 95% intervals and paired tests between schemes.
    """
    from initcli.render.probing import probe_view
    from initcli.report.probing import TrainSetup, probe_report

    _check_outputs(target, output, plot, force, init, data, input_fn)
    if epochs is not None and train is not None:
        raise ArgError("give --train STEPS or --epochs N, not both")
    steps = train if epochs is None else 1
    setup = (
        None
        if steps is None
        else TrainSetup(
            steps,
            lr,
            points,
            noise,
            data,
            optimizer.lower(),
            train_batch,
            epochs,
            seeds,
            val_fraction,
            target_loss,
        )
    )
    report = probe_report(
        target,
        init or [],
        bias_init,
        seed,
        parse_kwargs(arg),
        parse_shape_option(input_shape),
        batch_size,
        setup,
        seeds_count=seeds,
        input_fn=input_fn,
    )
    notes(report.remarks, False)
    emit(probe_view(report, compare=True), output_format, output, force)
    _plot_last(report, plot, force)
