"""The `initcli` command line: parse options, call the report layer, render, and exit."""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from initcli import __version__, verdict
from initcli.errors import ArgError, InitcliError, first_line
from initcli.expect import ExpectedCount, Tolerance, parse_count, parse_tolerance
from initcli.render import OutputFormat

if TYPE_CHECKING:
    from initcli.render import Report

# Exit codes (DESIGN §1, a contract): 0 success, 1 a check failed, 2 bad input or usage.
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2


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
            _error(
                f"unexpected {first_line(exc)} — rerun with INITCLI_DEBUG=1 for "
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
# inspect and count also read weights files.
ModelOrWeightsArg = Annotated[str, typer.Argument(
    metavar="TARGET",
    help="pkg.module:Name, path/file.py:Name or spec.yaml (Name: a Module class, factory or "
         "instance); or a weights file: .safetensors, or a .pt/.pth/.bin/.ckpt state dict, read "
         "without running code.",
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
OutputOpt = Annotated[Path | None, typer.Option(
    "--output", "-o", metavar="FILE", dir_okay=False,
    help="Write the output to FILE instead of stdout (atomically; an existing FILE needs "
         "--force).",
    show_default=False,
)]  # fmt: skip
ForceOpt = Annotated[bool, typer.Option(
    "--force", help="Replace files that already exist (--output, --save, --plot).",
)]  # fmt: skip
InitOpt = Annotated[str | None, typer.Option(
    "--init", "-i", metavar="SCHEME",
    help="Scheme for every ≥2-D weight, name or name:key=value,... "
         "(default: the spec's init:, else 'default' = the constructors' own init).",
    show_default=False,
)]  # fmt: skip
BiasInitOpt = Annotated[str | None, typer.Option(
    "--bias-init", metavar="SCHEME",
    help="Scheme for biases and other 1-D parameters with a named --init or --against "
         "(default: zeros).",
    show_default=False,
)]  # fmt: skip
SeedOpt = Annotated[int, typer.Option(
    "--seed", "-s", min=0,
    help="torch.manual_seed before the init (before the build for 'default').",
)]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="No progress bar and no notes on stderr (errors still go there).",
)]  # fmt: skip
DeviceOpt = Annotated[str, typer.Option(
    "--device", "-d", metavar="DEVICE",
    help="Where to materialize, initialize and measure: cpu, cuda, cuda:N or mps.",
)]  # fmt: skip

# What --device accepts, checked before torch is imported; whether it exists is torch's to say.
_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d+)?")


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"initcli {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            is_eager=True,
            callback=_show_version,
            help="Print initcli's version and exit.",
        ),
    ] = False,
) -> None:
    """Inspect the starting weights of a PyTorch model: counts, fans, init statistics."""


InputShapeOpt = Annotated[str | None, typer.Option(
    "--input-shape", metavar="SHAPE",
    help="One sample's shape, without the batch dimension: 256, or 3,32,32 (default: the "
         "spec's input:, else inferred from the first Linear, Conv or Embedding).",
    show_default=False,
)]  # fmt: skip
LazyShapeOpt = Annotated[str | None, typer.Option(
    "--input-shape", metavar="SHAPE",
    help="One sample's shape, without the batch dimension (256, or 3,32,32): a forward pass on a "
         "dummy batch gives lazy layers (LazyLinear, ...) their shapes first; inspect --init auto "
         "also traces it to see which activation follows each weight.",
    show_default=False,
)]  # fmt: skip
InitsOpt = Annotated[list[str] | None, typer.Option(
    "--init", "-i", metavar="SCHEME",
    help="A scheme to probe (name or name:key=value,...; 'initcli schemes' lists them). "
         "Repeatable: each gets a freshly built model.",
    show_default=False,
)]  # fmt: skip
ProbeSeedOpt = Annotated[int, typer.Option(
    "--seed", "-s", min=0,
    help="torch.manual_seed after each build, before the init (before the build for "
         "'default'); the input batch draws from a separate stream derived from it.",
)]  # fmt: skip
BatchOpt = Annotated[int, typer.Option(
    "--batch-size", "-b", min=1, help="Samples in the random input batch.",
)]  # fmt: skip
PlotOpt = Annotated[Path | None, typer.Option(
    "--plot", metavar="FILE",
    help="Also draw the figures into FILE (.png, .svg or .pdf), written atomically. Needs "
         "matplotlib: pip install 'initcli\\[plot]'.",
    show_default=False,
)]  # fmt: skip


def _args(pairs: Sequence[str] | None) -> dict[str, object]:
    from initcli.loading import parse_args

    return parse_args(pairs or [])


def _emit(report: Report, fmt: OutputFormat, output: Path | None, force: bool) -> None:
    """Print a report on stdout, or write it to --output atomically (never over a file unasked)."""
    from initcli.render import print_report

    _emit_with(lambda console: print_report(report, fmt, console), output, force)


def _emit_with(printer: Callable[[Any], None], output: Path | None, force: bool) -> None:
    """Run a printer on the terminal's console, or on a plain one whose text goes to --output."""
    from initcli.render import file_console, stdout_console

    if output is None:
        printer(stdout_console())
        return
    buffer = io.StringIO()
    printer(file_console(buffer))
    _write_text(buffer.getvalue(), output, force)


def _write_text(text: str, output: Path | None, force: bool, what: str = "") -> None:
    """stdout, or FILE via files.write_atomic; all that initcli writes goes one of these ways."""
    from initcli.files import write_atomic

    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text.encode("utf-8"), force)
    _note(f"Wrote {output}{what}")


def _check_output(output: Path | None, force: bool) -> None:
    """Before the work: an --output that write_atomic would refuse is an error now, not later."""
    from initcli.files import check_writable

    if output is not None:
        check_writable(output, force)


def _note(message: str) -> None:
    sys.stderr.write(f"{message}\n")


def _notes(remarks: Sequence[str], quiet: bool) -> None:
    # How the numbers were obtained (e.g. a real build instead of a meta one): not results, so
    # stderr, where --quiet can drop them.
    if not quiet:
        for remark in remarks:
            _note(f"Note: {remark}")


def _progress(quiet: bool) -> Any:
    """A progress bar on stderr, or None when stderr is not a terminal or with --quiet."""
    if quiet:
        return None
    from initcli.progress import stderr_bar

    return stderr_bar()


def _count_value(text: str) -> ExpectedCount:
    try:
        return parse_count(text)
    except ArgError as exc:
        raise typer.BadParameter(str(exc)) from None


def _tolerance_value(text: str) -> Tolerance:
    try:
        return parse_tolerance(text)
    except ArgError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def inspect(
    target: ModelOrWeightsArg,
    init: InitOpt = None,
    bias_init: BiasInitOpt = None,
    seed: SeedOpt = 0,
    arg: ArgOpt = None,
    input_shape: LazyShapeOpt = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="SCHEME",
            help="For a weights file: compare each tensor with what SCHEME would draw for its "
            "shape (var ratio, status).",
            show_default=False,
        ),
    ] = None,
    save: Annotated[
        Path | None,
        typer.Option(
            "--save",
            metavar="FILE.safetensors",
            dir_okay=False,
            help="Also write the initialized weights (the state dict measured) as safetensors.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
) -> None:
    """Per-parameter table: shape, fans, mean and variance against the scheme's formula.

    With --init auto, a second table says what each weight got and why. A weights file
    (.safetensors, .pt) is read without running code; --against compares it with a scheme.
    Named schemes are streamed: the model is built on the meta device and each parameter is
    materialized, initialized and measured in turn, so memory stays near the largest parameter.
    """
    if not _DEVICE.fullmatch(device.strip()):
        raise click_exceptions.BadParameter(
            f"{device!r} is not a device; use cpu, cuda, cuda:N or mps",
            param_hint="'--device'",
        )
    from initcli.checkpoint import is_checkpoint
    from initcli.report import inspect as inspect_report
    from initcli.report import inspect_checkpoint

    _check_output(output, force)
    report: Report
    if is_checkpoint(target):
        options = {"--init": init, "--arg": arg, "--save": save}
        given = [name for name, value in options.items() if value]
        if given:
            raise ArgError(
                f"{given[0]} does not apply to a weights file; compare it with a scheme "
                "using --against SCHEME"
            )
        report = inspect_checkpoint(target, against, bias_init)
    else:
        if against is not None:
            raise ArgError(
                "--against compares a weights file (.safetensors, .pt) with a scheme; "
                "for a model, choose the scheme with --init"
            )
        report = inspect_report(
            target,
            init,
            bias_init,
            seed,
            _args(arg),
            input_shape=_shape(input_shape),
            save=save,
            force=force,
            device=device.strip(),
            progress=_progress(quiet),
        )
        _notes(report.remarks, quiet)
        if save is not None:
            _note(f"Wrote {save}")
    _emit(report, output_format, output, force)


@app.command()
def count(
    target: ModelOrWeightsArg,
    arg: ArgOpt = None,
    input_shape: LazyShapeOpt = None,
    expect: Annotated[
        ExpectedCount | None,
        typer.Option(
            "--expect",
            metavar="N",
            parser=_count_value,
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
            parser=_count_value,
            help="Exit 1 unless the trainable count is N (same forms as --expect).",
            show_default=False,
        ),
    ] = None,
    tolerance: Annotated[
        Tolerance | None,
        typer.Option(
            "--tolerance",
            metavar="T",
            parser=_tolerance_value,
            help="Accepted difference for --expect/--expect-trainable: parameters (1000, 5K) or a "
            "percentage of N (0.1%). Replaces the rounding rule; 0 means exactly N.",
            show_default=False,
        ),
    ] = None,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Exact parameter totals: initcli's own count beside torchinfo's, differences explained.

    Nothing is allocated: specs are counted by arithmetic, other models built on the meta device.
    """
    from initcli.expect import check_count
    from initcli.report import count as count_report

    if tolerance is not None and expect is None and expect_trainable is None:
        raise ArgError("--tolerance needs --expect N or --expect-trainable N")
    _check_output(output, force)
    report = count_report(target, _args(arg), _shape(input_shape))
    _notes(report.remarks, quiet)
    _emit(report, output_format, output, force)
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
        raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def schemes(
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """Every init scheme: name, aliases, parameters, formula and expected variance."""
    from initcli.report import scheme_rows

    _emit(scheme_rows(), output_format, output, force)


@app.command()
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
    from initcli import baseline

    if update and output is None:
        raise ArgError("--update needs the baseline file: -o FILE")
    if not update:
        _check_output(output, force)
    recorded = baseline.snapshot(targets, _args(arg), stats, init, bias_init, seed)
    if update and output is not None and output.exists():
        recorded = baseline.merge(baseline.load(output), recorded)
        force = True
    n = len(recorded.models)
    _write_text(baseline.dumps(recorded), output, force, f" ({n} target{'s' if n != 1 else ''})")


@app.command()
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
    from initcli import baseline
    from initcli.render import check_summary

    _check_output(output, force)
    report = baseline.check(baseline_file)
    _emit(report, output_format, output, force)
    if report.ok:
        return
    if update:
        _write_text(baseline.dumps(report.current), baseline_file, True, " (re-recorded)")
        return
    sys.stderr.write(
        f"Check failed: {check_summary(report)}; if the change is intended, re-record it with "
        f"initcli check {baseline_file} --update\n"
    )
    raise typer.Exit(EXIT_CHECK_FAILED)


@app.command()
def schema(output: OutputOpt = None, force: ForceOpt = False) -> None:
    """The JSON Schema of the YAML MLP spec, for editor completion and validation."""
    import json

    from initcli.spec import spec_json_schema

    _write_text(json.dumps(spec_json_schema(), indent=2, ensure_ascii=False) + "\n", output, force)


def _shape(text: str | None) -> tuple[int, ...] | None:
    from initcli.probe import parse_shape

    return None if text is None else parse_shape(text)


def _plot_first(plot: Path | None, force: bool) -> None:
    # Checked before the (possibly long) probe, so a missing extra or an existing file fails fast.
    if plot is not None:
        from initcli.plot import check_destination, require_matplotlib

        require_matplotlib()
        check_destination(plot, force)


def _plot_last(report: Any, plot: Path | None, force: bool) -> None:
    if plot is not None:
        from initcli.plot import write_plot

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
    from initcli.render import print_probe
    from initcli.report import probe_report

    _plot_first(plot, force)
    _check_output(output, force)
    report = probe_report(
        target, init or [], bias_init, seed, _args(arg), _shape(input_shape), batch_size
    )
    _emit_with(lambda console: print_probe(report, output_format, console), output, force)
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
    from initcli.render import print_probe
    from initcli.report import TrainSetup, probe_report

    _plot_first(plot, force)
    _check_output(output, force)
    setup = None if train is None else TrainSetup(train, lr, points, noise)
    report = probe_report(
        target, init or [], bias_init, seed, _args(arg), _shape(input_shape), batch_size, setup
    )
    _emit_with(
        lambda console: print_probe(report, output_format, console, compare=True), output, force
    )
    _plot_last(report, plot, force)


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
    from initcli.render import print_defaults
    from initcli.report import defaults as defaults_report

    _check_output(output, force)
    report = defaults_report(target, _args(arg), _shape(input_shape))
    _emit_with(lambda console: print_defaults(report, output_format, console), output, force)


@app.command()
def gain(
    slope: Annotated[float, typer.Option("--slope", help="leaky_relu's negative slope.")] = 0.01,
    output_format: FormatOpt = OutputFormat.table,
    output: OutputOpt = None,
    force: ForceOpt = False,
) -> None:
    """torch.nn.init.calculate_gain for every nonlinearity: formula and value."""
    from initcli.render import print_gains
    from initcli.report import gains

    _check_output(output, force)
    rows = gains(slope)
    _emit_with(lambda console: print_gains(rows, output_format, console), output, force)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="initcli")
