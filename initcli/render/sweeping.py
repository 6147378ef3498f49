"""`initcli probe --sweep`: the width-sweep object (JSON), its table and verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import finite, num
from initcli.render.writer import View
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.experiments.sweep import Exponent
    from initcli.report.sweeping import BlockSweep, SweepReport

STYLE = {
    "width-stable": "green",
    "grows": "bold red",
    "shrinks": "bold yellow",
    "unclear": "yellow",
}


def _exp_dict(e: Exponent | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"k": finite(e.k), "low": finite(e.low), "high": finite(e.high), "verdict": e.verdict}


def _block_dict(b: BlockSweep) -> dict[str, Any]:
    return {
        "name": b.name,
        "stds": [finite(s) for s in b.stds],
        "exponent": _exp_dict(b.exponent),
        "updates": None if b.updates is None else [finite(u) for u in b.updates],
        "update_exponent": _exp_dict(b.update_exponent),
    }


def sweep_dict(report: SweepReport) -> dict[str, Any]:
    return {
        "target": report.target,
        "sweep": {"key": report.key, "widths": list(report.widths)},
        "seed": report.seed,
        "input": {"shape": list(report.input_shape)},
        "step": report.step,
        "thresholds": {"stable_exponent": report.threshold},
        "schemes": [
            {"scheme": s.scheme, "verdict": s.verdict, "blocks": [_block_dict(b) for b in s.blocks]}
            for s in report.schemes
        ],
        "notes": list(report.notes),
    }


def _rows(report: SweepReport) -> list[dict[str, Any]]:
    rows = []
    for s in report.schemes:
        for b in s.blocks:
            row: dict[str, Any] = {"scheme": s.scheme, "block": b.name}
            for w, std in zip(report.widths, b.stds, strict=True):
                row[f"std@{w}"] = finite(std)
            row |= {"k": finite(b.exponent.k), "k_low": finite(b.exponent.low)}
            row |= {"k_high": finite(b.exponent.high), "verdict": b.exponent.verdict}
            if b.update_exponent is not None:
                row["update_k"] = finite(b.update_exponent.k)
                row["update_verdict"] = b.update_exponent.verdict
            rows.append(row)
    return rows


def _k(e: Exponent) -> str:
    if e.k is None:
        return "–"
    half = None if e.high is None else e.high - e.k
    return f"{e.k:+.3f}" if half is None else f"{e.k:+.3f} ± {half:.3f}"


def _table(
    report: SweepReport, title: Text, rows: Sequence[tuple[str, Sequence[float | None], Exponent]]
) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    table.add_column("block", overflow="fold")
    for w in report.widths:
        table.add_column(str(w), justify="right", no_wrap=True)
    table.add_column("k ± 95%", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    for name, values, e in rows:
        cells: list[RenderableType] = [printable(name), *[num(v, 3) for v in values]]
        cells += [_k(e), Text(e.verdict, style=STYLE.get(e.verdict, ""))]
        table.add_row(*cells)
    return table


def _tables(report: SweepReport) -> list[RenderableType]:
    parts: list[RenderableType] = []
    for s in report.schemes:
        head = f"{report.target} · {s.scheme} · "
        title = Text.assemble(
            f"{head}output std ∝ {report.key}^k · ", Text(s.verdict, style=STYLE.get(s.verdict, ""))
        )
        parts.append(_table(report, title, [(b.name, b.stds, b.exponent) for b in s.blocks]))
        if report.step:
            ups = [
                (b.name, b.updates, b.update_exponent)
                for b in s.blocks
                if b.updates is not None and b.update_exponent is not None
            ]
            title = Text(f"{head}update size after one Adam step (lr 1e-3) ∝ {report.key}^k")
            parts.append(_table(report, title, ups))
    parts.append(
        Text(
            f"k: least-squares slope of log std on log {report.key}, 95% t-interval; "
            f"width-stable when the interval lies within ±{report.threshold:g}; grows/shrinks "
            f"when |k| ≥ {report.threshold:g} and the interval excludes 0; else unclear"
            + (
                " · update: std of each block output's change after the step" if report.step else ""
            ),
            style="dim",
        )
    )
    parts += [Text(note) for note in report.notes]
    return parts


def sweep_view(report: SweepReport) -> View:
    rows = _rows(report)
    return View(
        sweep_dict(report),
        rows,
        lambda _width: _tables(report),
        notes=report.notes,
    )
