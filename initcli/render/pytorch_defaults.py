"""`initcli defaults`: PyTorch's own init per module type and each weight against its activation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.experiments.verdict import fraction
from initcli.render.cells import AUTO_ARROW, num
from initcli.render.writer import View, to_markdown
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.report import DefaultsReport


def defaults_dict(report: DefaultsReport) -> dict[str, Any]:
    return {
        "target": report.target,
        "types": [
            {"type": t.type, "modules": list(t.modules), "params": [asdict(r) for r in t.rules]}
            for t in report.types
        ],
        "checks": [asdict(c) for c in report.checks],
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }


def _modules_cell(names: Sequence[str]) -> str:
    # fc1, fc2, ..., fc20 would crowd the table: first and last, and how many.
    names = [printable(name) for name in names]
    if len(names) <= 3:
        return "\n".join(names)
    return f"{names[0]} … {names[-1]} ({len(names)})"


def _type_rows(report: DefaultsReport) -> list[dict[str, Any]]:
    return [
        {
            "type": t.type,
            "modules": _modules_cell(t.modules),
            "param": r.param,
            "init": r.init,
            "values": r.values,
            "variance": r.variance,
        }
        for t in report.types
        for r in t.rules
    ]


def _markdown(report: DefaultsReport) -> str:
    checks = [asdict(c) for c in report.checks]
    lines = [to_markdown(_type_rows(report)), to_markdown(checks)]
    lines += [f"⚠ {warning}\n" for warning in report.warnings]
    lines += [f"{note}\n" for note in report.notes]
    return "\n".join(lines)


def _tables(report: DefaultsReport) -> list[RenderableType]:
    types = Table(
        title=f"PyTorch's default init in {report.target}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for col in ("type", "modules", "param", "init", "values", "variance"):
        types.add_column(col, overflow="fold")
    previous = None
    for row in _type_rows(report):
        first = row["type"] != previous
        previous = row["type"]
        types.add_row(
            row["type"] if first else "",
            row["modules"] if first else "",
            row["param"],
            row["init"],
            row["values"],
            row["variance"],
        )
    checks = Table(
        title="each weight against the activation after it",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for col, justify in (
        ("weight", "left"),
        ("fans", "right"),
        ("default var", "right"),
        ("followed by", "left"),
        ("auto would use", "left"),
        ("its var", "right"),
        ("ratio", "right"),
    ):
        checks.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in report.checks:
        fans = "–" if c.fan_in is None else f"{c.fan_in}→{c.fan_out}"
        ratio = "–" if c.ratio is None else fraction(c.ratio)
        checks.add_row(
            printable(c.name),
            fans,
            num(c.expected_var),
            c.followed_by or "–",
            (c.recommended or "–").split(AUTO_ARROW)[0],
            num(c.recommended_var),
            Text(ratio, style="bold yellow" if c.warning else ""),
        )
    parts: list[RenderableType] = [types, checks]
    parts += [Text(f"⚠ {warning}", style="yellow") for warning in report.warnings]
    parts += [Text(f"• {note}", style="dim") for note in report.notes]
    return parts


def defaults_view(report: DefaultsReport) -> View:
    return View(
        defaults_dict(report),
        [asdict(c) for c in report.checks],
        lambda _width: _tables(report),
        markdown=lambda: _markdown(report),
    )
