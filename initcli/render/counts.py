"""`initcli count`: the count object (JSON contract), module rows and the totals panel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from initcli.render.cells import shown
from initcli.render.grouped import (
    entries,
    folded_line,
    groups_json,
    label,
    markdown_rows,
    with_group_column,
)
from initcli.render.writer import View
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.report import CountReport


def count_dict(report: CountReport) -> dict[str, Any]:
    """The `initcli count --format json` object (docs/contract/json-output.md), in key order."""
    c = report.counts
    return {
        "target": report.target,
        "total": c.total,
        "trainable": c.trainable,
        "frozen": c.frozen,
        "buffers": c.buffers,
        "torchinfo": None
        if c.torchinfo is None
        else {"total": c.torchinfo.total, "trainable": c.torchinfo.trainable},
        "agree": c.agree,
        "notes": list(c.notes),
        # Written out, not dataclasses.asdict: a weights file may list 10⁶ modules (asdict's
        # deep copy takes ~20 µs each).
        "modules": [
            {"name": m.name, "type": m.type, "params": m.params, "formula": m.formula}
            for m in c.modules
        ],
        # Came later than the others: last. The batch shape torchinfo's forward pass ran on
        # (--input-shape), or null: it only walked the modules.
        "torchinfo_input": None if c.torchinfo_input is None else list(c.torchinfo_input),
    }


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def totals_line(report: CountReport) -> str:
    c = report.counts
    ti = "torchinfo n/a" if c.torchinfo is None else f"torchinfo {c.torchinfo.total:,}"
    verdict = "agree" if c.agree else "differ"
    if c.torchinfo_input is not None:
        verdict += f", input {_shape(c.torchinfo_input)}"
    return (
        f"total {c.total:,} · trainable {c.trainable:,} · frozen {c.frozen:,} · "
        f"buffers {c.buffers:,} · {ti} ({verdict})"
    )


def totals_panel(report: CountReport) -> Panel:
    c = report.counts
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column(justify="right")
    grid.add_column()
    grid.add_row("total", f"{c.total:,}", "parameters, each tensor once")
    grid.add_row("trainable", f"{c.trainable:,}", "")
    grid.add_row("frozen", f"{c.frozen:,}", "")
    grid.add_row("buffers", f"{c.buffers:,}", "elements, not in the total")
    if c.torchinfo is None:
        grid.add_row("torchinfo", "–", Text("no count (see notes)", style="yellow"))
    else:
        verdict = Text("agrees", style="green") if c.agree else Text("differs", style="bold red")
        if c.torchinfo_input is not None:
            verdict.append(f" (forward pass on a {_shape(c.torchinfo_input)} input)")
        grid.add_row("torchinfo", f"{c.torchinfo.total:,}", verdict)
    parts: list[RenderableType] = [grid]
    if c.notes:
        parts.append(Text(""))
        parts.extend(Text(f"• {note}") for note in c.notes)
    return Panel(Group(*parts), title="totals", title_align="left", box=box.ROUNDED, expand=False)


def count_table(report: CountReport, expand: bool = False) -> list[RenderableType]:
    table = Table(title=f"parameters of {report.target}", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("module", overflow="fold")
    table.add_column("type")
    table.add_column("hand count", overflow="fold")
    table.add_column("params", justify="right")
    modules = report.counts.modules
    rows, more = shown(entries(len(modules), report.groups, expand), "modules")
    for group, members in rows:
        # A group's modules share their type, hand count and parameters (report.grouping).
        m = modules[members[0]]
        name = m.name if group is None else label(group)
        table.add_row(printable(name), m.type, m.formula, f"{m.params:,}")
    folded = folded_line(report.groups, expand, "modules", ranges=False)
    below = [Text(folded)] if folded is not None else []
    return [table, *more, *below, totals_panel(report)]


def count_view(report: CountReport, expand: bool = False) -> View:
    """Every format of a count report; the table and Markdown show the modules of repeated blocks
    as one row each (parameters per module) unless `expand` (--all); JSON and CSV list them all."""
    modules = report.counts.modules
    # Came later than the others: last. Only `count`'s own object has it (not inspect's counts).
    data = count_dict(report) | {
        "groups": groups_json(report.groups, [m.name for m in modules], stats=False)
    }
    folded = folded_line(report.groups, expand, "modules", ranges=False)
    return View(
        data,
        with_group_column(data["modules"], report.groups),
        lambda _width: count_table(report, expand),
        notes=[*([folded] if folded else []), totals_line(report), *report.counts.notes],
        markdown_rows=markdown_rows(data["modules"], () if expand else report.groups, "name"),
    )
