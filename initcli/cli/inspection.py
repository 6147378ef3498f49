"""`initcli inspect`: a model under an init, or a weights file against one."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from initcli.cli._app import app
from initcli.cli.options import (
    ArgOpt,
    BiasInitOpt,
    DeviceOpt,
    ExpandOpt,
    ForceOpt,
    FormatOpt,
    InitOpt,
    LazyShapeOpt,
    ModelOrWeightsArg,
    OutputOpt,
    QuietOpt,
    SeedOpt,
    check_output,
    emit,
    input_files,
    note,
    notes,
    parse_kwargs,
    parse_shape_option,
    progress_bar,
)
from initcli.errors import ArgError
from initcli.files import check_not_input
from initcli.render import OutputFormat, View

# What --device accepts, checked before torch is imported; whether it exists is torch's to say.
_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d+)?")


@app.command(short_help="Per parameter: shape, fans, mean and variance vs init.")
def inspect(
    ctx: typer.Context,
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
    download: Annotated[
        bool,
        typer.Option(
            "--download",
            help="For hf:ORG/NAME not in the local HF cache: download its safetensors weights "
            "and config.json into the cache first (huggingface_hub; resumable).",
        ),
    ] = False,
    loaded: Annotated[
        bool,
        typer.Option(
            "--loaded",
            help="For a model whose code loads weights (a factory calling from_pretrained): "
            "judge each tensor at init or trained and flag modules still fresh among trained "
            "ones, as for a weights folder.",
        ),
    ] = False,
    output_format: FormatOpt = OutputFormat.table,
    expand: ExpandOpt = False,
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
        raise typer.BadParameter(
            f"{device!r} is not a device; use cpu, cuda, cuda:N or mps",
            param_hint="'--device'",
        )
    from initcli.model.resolve import is_hub_target
    from initcli.render.inspection import inspect_view
    from initcli.render.weights import checkpoint_view
    from initcli.report._shared import is_weights
    from initcli.report.inspection import inspect as inspect_report
    from initcli.report.weights import inspect_checkpoint, inspect_loaded

    inputs = input_files(target, [("--init", init), ("--against", against)])
    check_output(output, force, {**inputs, "--save": save})
    if save is not None:
        check_not_input(save, inputs)
    view: View
    if download and not is_hub_target(target):
        raise ArgError("--download applies to a Hub target, hf:ORG/NAME[@REVISION]")
    if loaded and not is_weights(target):
        unused: dict[str, object] = {"--init": init, "--bias-init": bias_init}
        unused |= {"--against": against, "--save": save, "--input-shape": input_shape}
        unused |= {"--device": device.strip() != "cpu"}
        given = [name for name, value in unused.items() if value]
        if given:
            raise ArgError(
                f"{given[0]} does not apply with --loaded, which judges the weights the model's "
                "own code loaded; drop it"
            )
        report_ = inspect_loaded(target, parse_kwargs(arg), seed, progress=progress_bar(quiet))
        notes(report_.counts.remarks, quiet)
        view = checkpoint_view(report_)
    elif is_weights(target):
        # --seed has a default (0) for models; for a weights file, only an explicit one is wrong.
        source = ctx.get_parameter_source("seed")
        seeded = source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")
        options = {"--init": init, "--seed": seeded, "--arg": arg, "--save": save}
        options |= {"--input-shape": input_shape, "--device": device.strip() != "cpu"}
        options |= {"--loaded": loaded}
        given = [name for name, value in options.items() if value]
        if given:
            raise ArgError(
                f"{given[0]} does not apply to a weights file; compare it with a scheme "
                "using --against SCHEME"
            )
        report_ = inspect_checkpoint(
            target, against, bias_init, progress_bar(quiet), download, quiet
        )
        notes(report_.counts.remarks, quiet)
        view = checkpoint_view(report_, expand)
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
            parse_kwargs(arg),
            input_shape=parse_shape_option(input_shape),
            save=save,
            force=force,
            device=device.strip(),
            progress=progress_bar(quiet),
        )
        notes(report.remarks, quiet)
        if save is not None:
            note(f"Wrote {save}")
        view = inspect_view(report, expand)
    emit(view, output_format, output, force)
