"""What the commands share: typed options, parsing helpers, and the one way output is written."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from initcli.cli._app import QUIET
from initcli.errors import ArgError
from initcli.measure.expect import ExpectedCount, Tolerance, parse_count, parse_tolerance
from initcli.render import OutputFormat

if TYPE_CHECKING:
    from initcli.render import View

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
         "without running code; or a weights folder; or hf:ORG/NAME[@REVISION], a Hub "
         "repository (the local HF cache first).",
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
    help="Scheme for every ≥2-D weight, name or name:key=value,...; or a policy "
         "'Conv2d=xavier_normal; *.bias=zeros' or @policy.yaml; or your own init code "
         "fn:pkg.mod:init_weights / method:initialize_weights "
         "(default: the spec's init:, else 'default' = the constructors' own init).",
    show_default=False,
)]  # fmt: skip
BiasInitOpt = Annotated[str | None, typer.Option(
    "--bias-init", metavar="SCHEME",
    help="Scheme for biases and other 1-D parameters with a named --init or --against "
         "(default: zeros).",
    show_default=False,
)]  # fmt: skip


def _seed(value: int) -> int:
    from initcli.limits import check_seed

    try:
        return check_seed(value)
    except ArgError as exc:
        raise typer.BadParameter(str(exc)) from None


SeedOpt = Annotated[int, typer.Option(
    "--seed", "-s", min=0, callback=_seed,
    help="torch.manual_seed before the build and again before the init.",
)]  # fmt: skip


def _quiet(ctx: typer.Context, value: bool) -> bool:
    # Where the command's context is gone (the app's own wrapper, which prints what libraries
    # said as notes), ctx.meta, shared by every context of the run, still says it.
    ctx.meta[QUIET] = value
    return value


QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", callback=_quiet,
    help="No progress bar and no notes on stderr (errors still go there).",
)]  # fmt: skip
ExpandOpt = Annotated[bool, typer.Option(
    "--all", "--expand",
    help="Every row in the table and Markdown: without it, the rows of repeated blocks "
         "(h.0 … h.23) share one row per pattern (h.*.attn.c_proj.weight ×24) where they agree, "
         "and a block that differs gets its own. JSON and CSV always list every row.",
)]  # fmt: skip
DeviceOpt = Annotated[str, typer.Option(
    "--device", "-d", metavar="DEVICE",
    help="Where to materialize, initialize and measure: cpu, cuda, cuda:N or mps.",
)]  # fmt: skip

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
         "also traces it to see which activation follows each weight; torchinfo's count runs "
         "its forward pass on a batch of 2.",
    show_default=False,
)]  # fmt: skip
InitsOpt = Annotated[list[str] | None, typer.Option(
    "--init", "-i", metavar="SCHEME",
    help="A scheme to probe (name or name:key=value,...; 'initcli schemes' lists them). "
         "Repeatable: each gets a freshly built model.",
    show_default=False,
)]  # fmt: skip
ProbeSeedOpt = Annotated[int, typer.Option(
    "--seed", "-s", min=0, callback=_seed,
    help="torch.manual_seed before each build and again before the init; the input batch "
         "draws from a separate stream derived from it.",
)]  # fmt: skip
BatchOpt = Annotated[int, typer.Option(
    "--batch-size", "-b", min=1, help="Samples in the random input batch.",
)]  # fmt: skip
PlotOpt = Annotated[Path | None, typer.Option(
    "--plot", metavar="FILE",
    help="Also draw the figures into FILE (.png, .svg or .pdf), written atomically. Needs "
         "matplotlib: pip install 'initcli[plot]'.",
    show_default=False,
)]  # fmt: skip


def parse_kwargs(pairs: Sequence[str] | None) -> dict[str, object]:
    from initcli.model.resolve import parse_args

    return parse_args(pairs or [])


def secondary_rank() -> bool:
    """Whether this process is a rank other than 0 of an initialized process group (a factory
    that shards its model across ranks, run under torchrun): only rank 0 prints and writes."""
    if "torch.distributed" not in sys.modules:  # no group without it; spare the import
        return False
    from initcli.measure.distributed import is_primary

    return not is_primary()


def emit(view: View, fmt: OutputFormat, output: Path | None, force: bool) -> None:
    """Write a command's view on stdout, or to --output atomically (never over a file unasked)."""
    from initcli.render import file_console, stdout_console, write

    if secondary_rank():
        return
    if output is None:
        write(view, fmt, stdout_console())
        return
    buffer = io.StringIO()
    write(view, fmt, file_console(buffer))
    write_text(buffer.getvalue(), output, force)


def write_text(text: str, output: Path | None, force: bool, what: str = "") -> None:
    """stdout, or FILE via files.write_atomic; all that initcli writes goes one of these ways."""
    from initcli.files import write_atomic

    if secondary_rank():
        return
    if output is None:
        sys.stdout.write(text)
        return
    write_atomic(output, text.encode("utf-8"), force)
    note(f"Wrote {output}{what}")


def check_output(
    output: Path | None,
    force: bool,
    inputs: Mapping[str, str | os.PathLike[str] | None] | None = None,
) -> None:
    """Before the work: an --output that write_atomic would refuse is an error now, not later.

    `inputs` names the files the command reads or also writes (a TARGET's file, the baseline,
    --save, --plot): an --output that is one of them is refused even with --force.
    """
    from initcli.files import check_not_input, check_writable

    if output is not None:
        check_not_input(output, inputs or {})
        check_writable(output, force)


def target_path(target: str) -> str | None:
    """The file or folder a TARGET reads, if any: a spec, a weights file or folder, `file.py` of
    `file.py:Name`, or `pkg/mod.py` of `pkg.mod:Name` where that is under the current folder."""
    from initcli.model.resolve import is_hub_target

    text = target.strip()
    if os.path.isdir(text) or os.path.isfile(text):
        return text
    if is_hub_target(text):
        return None  # read from the HF cache or the Hub, never a file named here
    location = text.rsplit(":", 1)[0] if ":" in text else text
    if os.path.isfile(location):
        return location
    parts = location.split(".")
    if all(part.isidentifier() for part in parts):
        # A module TARGET is imported with the current folder first on sys.path: where it is
        # found there is known without importing anything.
        for candidate in (Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")):
            if candidate.is_file():
                return str(candidate)
    return None


def _code_file(given: str) -> str | None:
    # `file.py:name` or `pkg.mod:name` (fn:, --data): the file it runs; a bare word is a name.
    return target_path(given) if ":" in given else None


def input_files(
    target: str | None,
    schemes: Sequence[tuple[str, str | None]] = (),
    data: str | None = None,
    label: str | None = None,
    batch: str | None = None,
) -> dict[str, str | None]:
    """Every file and folder a command reads, by how it was given: what no output may be.

    `schemes` pairs an option with its value (`("--init", "@policy.yaml")`): a policy file or
    `fn:` code file is read. `label` names the target in the roles where a command has several
    (snapshot, check); a folder's role carries its path, which the message then shows.
    """
    found: dict[str, str | None] = {}
    path = None if target is None else target_path(target)
    if path is not None and os.path.isdir(path):
        found[f"the target folder {path}"] = path
    elif path is not None:
        found["the target's file" if label is None else f"the file of {label}"] = path
    for option, text in schemes:
        given = (text or "").strip()
        if given.startswith("@"):
            found[f"the file of {option} {given}"] = given[1:].strip() or None
        elif given.startswith("fn:"):
            found[f"the file of {option} {given}"] = _code_file(given[3:].strip())
    if data is not None:
        found[f"the file of --data {data}"] = _code_file(data.strip())
    if batch is not None:
        found[f"the file of --input {batch}"] = _code_file(batch.strip())
    return found


def note(message: str) -> None:
    if not secondary_rank():
        sys.stderr.write(f"{message}\n")


def notes(remarks: Sequence[str], quiet: bool) -> None:
    # How the numbers were obtained (e.g. a real build instead of a meta one): not results, so
    # stderr, where --quiet can drop them.
    if not quiet:
        for remark in remarks:
            note(f"Note: {remark}")


def progress_bar(quiet: bool) -> Any:
    """A progress bar on stderr, or None when stderr is not a terminal or with --quiet."""
    if quiet:
        return None
    from initcli.render.progress import stderr_bar

    return stderr_bar()


def count_value(text: str) -> ExpectedCount:
    try:
        return parse_count(text)
    except ArgError as exc:
        raise typer.BadParameter(str(exc)) from None


def tolerance_value(text: str) -> Tolerance:
    try:
        return parse_tolerance(text)
    except ArgError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_shape_option(text: str | None) -> tuple[int, ...] | None:
    from initcli.experiments.batches import parse_shape

    return None if text is None else parse_shape(text)
