"""`initcli check`: the diff against a baseline as JSON, rows and one table per changed target."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import args_text, shown, value_text
from initcli.render.writer import View
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.report.baseline import CheckReport, TargetCheck


def change_rows(report: CheckReport) -> list[dict[str, Any]]:
    """One row per difference found by `initcli check`, for CSV and Markdown."""
    return [
        {
            "target": t.target,
            "args": args_text(t.args),
            "field": c.field,
            "name": c.name,
            "type": c.type,
            "baseline": c.before,
            "now": c.after,
            "change": None if c.delta is None else f"{c.delta:+,}",
        }
        for t in report.targets
        for c in t.changes
    ]


def check_dict(report: CheckReport) -> dict[str, Any]:
    """`initcli check --format json`."""
    return {
        "baseline": report.baseline,
        "ok": report.ok,
        "targets": [
            {
                "target": t.target,
                "args": dict(t.args),
                "ok": t.ok,
                "total": {"baseline": t.total_before, "now": t.total_after},
                "changes": [
                    {
                        "field": c.field,
                        "name": c.name,
                        "type": c.type,
                        "baseline": c.before,
                        "now": c.after,
                        "change": c.delta,
                    }
                    for c in t.changes
                ],
            }
            for t in report.targets
        ],
    }


def check_summary(report: CheckReport) -> str:
    n = len(report.targets)
    if report.ok:
        return f"all {n} target{'s' if n != 1 else ''} match {report.baseline}"
    return f"{len(report.changed)} of {n} targets changed since {report.baseline}"


def _check_target_table(t: TargetCheck) -> Table:
    args = f" ({args_text(t.args)})" if t.args else ""
    moved = t.total_after - t.total_before
    total = (
        f"total {t.total_before:,} → {t.total_after:,} ({moved:+,})"
        if moved
        else f"total {t.total_after:,} (unchanged)"
    )
    table = Table(
        title=f"✗ {t.target}{args}: {total}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        title_style="bold red",
    )
    table.add_column("what")
    table.add_column("name", overflow="fold")
    table.add_column("type")
    table.add_column("baseline", justify="right")
    table.add_column("now", justify="right")
    table.add_column("change", justify="right")
    changes, more = shown(t.changes, "changes")
    if more:
        table.caption = more[0]
    for c in changes:
        delta = "" if c.delta is None else f"{c.delta:+,}"
        if c.before is None:
            delta += " (new)"
        elif c.after is None:
            delta += " (gone)"
        table.add_row(
            c.field, printable(c.name), c.type, value_text(c.before), value_text(c.after), delta
        )
    return table


def check_table(report: CheckReport) -> list[RenderableType]:
    changed, more = shown(report.changed, "changed targets")
    parts: list[RenderableType] = [_check_target_table(t) for t in changed]
    parts += more
    same = Table.grid(padding=(0, 2))
    same.add_column()
    same.add_column(justify="right")
    same.add_column()
    unchanged, rest = shown([t for t in report.targets if t.ok], "unchanged targets")
    for t in unchanged:
        args = f" ({args_text(t.args)})" if t.args else ""
        same.add_row(Text("✓", style="green"), f"{t.total_after:,}", f"{t.target}{args}")
    if same.row_count:
        parts.append(same)
    parts += rest
    parts.append(Text(check_summary(report), style="green" if report.ok else "bold red"))
    return parts


CHANGE_COLUMNS = ("target", "args", "field", "name", "type", "baseline", "now", "change")


def check_view(report: CheckReport) -> View:
    return View(
        check_dict(report),
        change_rows(report),
        lambda _width: check_table(report),
        header=CHANGE_COLUMNS,
        notes=[check_summary(report)],
    )
