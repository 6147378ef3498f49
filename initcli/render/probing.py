"""`initcli probe` and `compare`: the probe object (JSON contract), verdicts, sparklines, losses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import finite, num, pct, wrap_scheme
from initcli.render.training import (
    across_lines,
    checkpoints,
    floor_lines,
    loss_table,
    seed_rows,
    seeds_parts,
    seeds_table,
    shows_seeds,
    train_parts,
    verdict_lines,
)
from initcli.render.writer import View, to_markdown
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.experiments.probe import BlockStats, LayerStats
    from initcli.report import ProbeReport, SchemeProbe

SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 16
# A sparkline shows at most this many blocks (evenly spaced through a deeper net).
MAX_SPARK = 40
VERDICT_STYLE = {
    "stable": "green",
    "vanishing": "bold red",
    "exploding": "bold red",
    "saturated": "bold yellow",
    "dead": "bold red",
    "symmetric": "bold yellow",
}


def _log_scale(stds: Sequence[float | None]) -> tuple[float, float]:
    """The log10 range of the positive, finite stds: one scale for a whole report."""
    logs = [math.log10(s) for s in stds if s is not None and s > 0 and math.isfinite(s)]
    if not logs:
        return 0.0, 1.0
    lo, hi = min(logs), max(logs)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _level(std: float, scale: tuple[float, float], levels: int) -> int:
    lo, hi = scale
    frac = (math.log10(std) - lo) / (hi - lo)
    return min(levels - 1, max(0, round(frac * (levels - 1))))


def sparkline(stds: Sequence[float | None], scale: tuple[float, float]) -> str:
    """Std by depth on a log scale: `·` an output that is exactly constant, `!` NaN/Inf."""
    out = []
    for std in stds:
        if std is None or not math.isfinite(std):
            out.append("!")
        elif std == 0:
            out.append("·")
        else:
            out.append(SPARK[_level(std, scale, len(SPARK))])
    return "".join(out)


def std_bar(std: float | None, scale: tuple[float, float], width: int = BAR_WIDTH) -> str:
    """A bar whose length is the std's place on the report's log scale."""
    if std is None or not math.isfinite(std):
        return "!"
    if std == 0:
        return "·"
    return "█" * (1 + _level(std, scale, width))


def layer_dict(layer: LayerStats) -> dict[str, Any]:
    return {
        "name": layer.name,
        "type": layer.type,
        "shape": list(layer.shape),
        "mean": finite(layer.mean),
        "std": finite(layer.std),
        "zero_frac": layer.zero_frac,
        "saturated_frac": layer.saturated_frac,
        "grad_norm": finite(layer.grad_norm),
        "ends_block": layer.ends_block,
    }


def block_dict(block: BlockStats) -> dict[str, Any]:
    return {
        "name": block.name,
        "layer": block.layer,
        "mean": finite(block.mean),
        "std": finite(block.std),
        "zero_frac": block.zero_frac,
        "saturated_frac": block.saturated_frac,
        "grad_norm": finite(block.grad_norm),
    }


def scheme_probe_dict(sp: SchemeProbe) -> dict[str, Any]:
    r = sp.result
    data: dict[str, Any] = {
        "scheme": sp.scheme,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "std_ratio": finite(r.std_ratio),
        "depth_exponent": finite(r.depth_exponent),
        "output": r.output,
        "probe_loss": finite(r.loss),
        "probe_loss_kind": r.loss_kind,
        "layers": [layer_dict(layer) for layer in r.layers],
        "blocks": [block_dict(b) for b in r.blocks],
        "grads": [{"name": g.name, "grad_norm": finite(g.grad_norm)} for g in r.grads],
    }
    if sp.training is not None:
        data["losses"] = [finite(v) for v in sp.training.losses]
        data["accuracy"] = sp.training.accuracy
        data["val_loss"] = finite(sp.training.val_loss)
    data |= seeds_parts(sp)
    return data


def probe_dict(report: ProbeReport) -> dict[str, Any]:
    """The `initcli probe|compare --format json` object (docs/contract/json-output.md)."""
    from initcli.experiments import verdict

    data: dict[str, Any] = {
        "target": report.target,
        "seed": report.seed,
        "input": {
            "shape": list(report.input_shape),
            "kind": report.input_kind,
            "source": report.input_source,
        },
        "thresholds": {
            "vanishing_ratio": verdict.VANISHING_RATIO,
            "exploding_ratio": verdict.EXPLODING_RATIO,
            "saturation_level": verdict.SATURATION_LEVEL,
            "saturated_frac": verdict.SATURATED_FRAC,
            "dead_frac": verdict.DEAD_FRAC,
        },
        "schemes": [scheme_probe_dict(sp) for sp in report.schemes],
    }
    data |= train_parts(report)
    # The policies' remarks (the `Note:` lines on stderr) came later than every other key: last.
    data["remarks"] = list(report.remarks)
    return data


def _summary_rows(report: ProbeReport) -> list[dict[str, Any]]:
    rows = []
    for sp in report.schemes:
        r = sp.result
        sats = [b.saturated_frac for b in r.blocks if b.saturated_frac is not None]
        row: dict[str, Any] = {
            "scheme": sp.scheme,
            "verdict": r.verdict.value,
            "first_std": finite(r.blocks[0].std),
            "last_std": finite(r.blocks[-1].std),
            "std_ratio": finite(r.std_ratio),
            "depth_exponent": finite(r.depth_exponent),
            "max_zero_frac": max(b.zero_frac for b in r.blocks),
            "max_saturated_frac": max(sats) if sats else None,
        }
        if sp.training is not None:
            losses = sp.training.losses
            for step in checkpoints(len(losses) - 1):
                row[f"loss@{step}"] = finite(losses[step])
            row["accuracy"] = sp.training.accuracy
        row["reason"] = r.reason
        rows.append(row)
    return rows


def _input_line(report: ProbeReport) -> str:
    shape = "×".join(map(str, report.input_shape))
    line = (
        f"input {shape} ({report.input_kind}; shape from {report.input_source}), seed {report.seed}"
    )
    # What the gradients are of, where it is not the plain mean(output²) of an output tensor.
    kinds = dict.fromkeys(sp.result.loss_kind for sp in report.schemes)
    plain = "mean(output²) of the output tensor"
    return line if list(kinds) == [plain] else f"{line}; loss: {', '.join(kinds)}"


def _csv_rows(report: ProbeReport, compare: bool) -> list[dict[str, Any]]:
    if compare and report.train is not None:
        # compare --train: the loss curves, one row per scheme and step.
        return [
            {
                "scheme": sp.scheme,
                "step": step,
                "loss": finite(loss),
                "accuracy": sp.training.accuracy if step == len(sp.training.losses) - 1 else None,
            }
            for sp in report.schemes
            if sp.training is not None
            for step, loss in enumerate(sp.training.losses)
        ]
    return [
        {"scheme": sp.scheme, "verdict": sp.result.verdict.value} | layer_dict(layer)
        for sp in report.schemes
        for layer in sp.result.layers
    ]


def _markdown(report: ProbeReport, compare: bool) -> str:
    parts = [to_markdown(_summary_rows(report))]
    if compare:
        parts.append(to_markdown(_side_by_side_rows(report)))
    else:
        for sp in report.schemes:
            parts.append(f"**{sp.scheme}**: {sp.result.verdict.value}\n")
            parts.append(to_markdown([block_dict(b) for b in sp.result.blocks]))
    if report.outcome is not None and shows_seeds(report):
        parts.append(to_markdown(seed_rows(report)))
        parts.append("\n".join(verdict_lines(report)) + "\n")
    parts.append(_input_line(report) + "\n")
    return "\n".join(parts)


def _side_by_side_rows(report: ProbeReport) -> list[dict[str, Any]]:
    """Block by block, each scheme's output std in its own column (schemes share the model)."""
    longest = max(report.schemes, key=lambda sp: len(sp.result.blocks))
    rows = []
    for i, block in enumerate(longest.result.blocks):
        row: dict[str, Any] = {"block": block.name}
        for sp in report.schemes:
            blocks = sp.result.blocks
            row[f"std {sp.scheme}"] = finite(blocks[i].std) if i < len(blocks) else None
        rows.append(row)
    return rows


def _scale(report: ProbeReport) -> tuple[float, float]:
    return _log_scale([b.std for sp in report.schemes for b in sp.result.blocks])


def _verdict_text(value: str) -> Text:
    return Text(value, style=VERDICT_STYLE.get(value, ""))


def _summary_table(report: ProbeReport, scale: tuple[float, float]) -> list[RenderableType]:
    table = Table(
        title="verdicts · std by depth: block outputs, on one log scale for all rows",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("scheme", style="bold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("std by depth", no_wrap=True)
    table.add_column("first → last std", no_wrap=True, justify="right")
    table.add_column("ratio", justify="right", no_wrap=True)
    table.add_column("depth k", justify="right", no_wrap=True)
    for sp in report.schemes:
        r = sp.result
        stds = _thin([b.std for b in r.blocks], MAX_SPARK)
        table.add_row(
            wrap_scheme(sp.scheme),
            _verdict_text(r.verdict.value),
            sparkline(stds, scale),
            f"{num(r.blocks[0].std, 3)} → {num(r.blocks[-1].std, 3)}",
            num(r.std_ratio, 3),
            num(r.depth_exponent, 2),
        )
    reasons = [Text(f"{sp.scheme}: {sp.result.reason}") for sp in report.schemes]
    return [table, *reasons, *across_lines(report)]


def _thin(values: Sequence[float | None], most: int) -> list[float | None]:
    """At most `most` evenly spaced values, first and last kept: a sparkline for a deep net."""
    if len(values) <= most:
        return list(values)
    step = (len(values) - 1) / (most - 1)
    return [values[round(i * step)] for i in range(most)]


def _blocks_table(report: ProbeReport, sp: SchemeProbe, scale: tuple[float, float]) -> Table:
    r = sp.result
    table = Table(
        title=Text.assemble(f"{report.target} · {sp.scheme} · ", _verdict_text(r.verdict.value)),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("block", overflow="fold")
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("std", justify="right", no_wrap=True)
    table.add_column("std (log scale)", no_wrap=True)
    table.add_column("zeros", justify="right", no_wrap=True)
    table.add_column("saturated", justify="right", no_wrap=True)
    table.add_column("grad norm", justify="right", no_wrap=True)
    for b in r.blocks:
        table.add_row(
            printable(b.name),
            num(b.mean, 3),
            num(b.std, 3),
            std_bar(b.std, scale),
            pct(b.zero_frac),
            pct(b.saturated_frac),
            num(b.grad_norm, 3),
        )
    return table


def _side_by_side_table(report: ProbeReport, scale: tuple[float, float]) -> Table:
    table = Table(
        title=f"{report.target} · output std per block",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("block", overflow="fold")
    for sp in report.schemes:
        table.add_column(wrap_scheme(sp.scheme, 20), justify="right", overflow="fold")
    for row in _side_by_side_rows(report):
        cells: list[RenderableType] = [printable(row["block"])]
        for sp in report.schemes:
            std = row[f"std {sp.scheme}"]
            cells.append(f"{num(std, 3)} {sparkline([std], scale)}")
        table.add_row(*cells)
    return table


def _tables(report: ProbeReport, compare: bool) -> list[RenderableType]:
    scale = _scale(report)
    parts: list[RenderableType] = []
    if compare:
        parts.append(_side_by_side_table(report, scale))
    else:
        parts += [_blocks_table(report, sp, scale) for sp in report.schemes]
    parts += _summary_table(report, scale)
    if report.train is not None:
        parts.append(loss_table(report))
        parts += floor_lines(report)
        if report.outcome is not None and shows_seeds(report):
            parts += seeds_table(report)
    parts.append(Text(_input_line(report), style="dim"))
    return parts


def probe_view(report: ProbeReport, compare: bool = False) -> View:
    """probe (per scheme, block by block) or, with compare, schemes side by side and losses."""
    return View(
        probe_dict(report),
        _csv_rows(report, compare),
        lambda _width: _tables(report, compare),
        markdown=lambda: _markdown(report, compare),
    )
