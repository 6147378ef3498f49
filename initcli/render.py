"""Render report dataclasses as a rich table, JSON, CSV or Markdown; no tensor math here."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from initcli.report import CountReport, InspectReport, ParamReport, SchemeRow


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


STATUS_STYLE = {"ok": "green", "off": "bold red", "symmetric": "yellow", "unknown": "dim"}


def _finite(value: float | None) -> float | None:
    # JSON has no NaN/Inf; such tensors are reported with status "off", the value as null.
    return value if value is None or math.isfinite(value) else None


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


# --- plain data (JSON / CSV / Markdown) ---------------------------------------------------------


def count_dict(report: CountReport) -> dict[str, Any]:
    """The `initcli count --format json` object (DESIGN §2), keys in contract order."""
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
        "modules": [asdict(m) for m in c.modules],
    }


def param_dict(p: ParamReport) -> dict[str, Any]:
    row = asdict(p)
    row["shape"] = None if p.shape is None else list(p.shape)
    for key in ("mean", "var", "std", "min", "max", "expected_mean", "expected_var"):
        row[key] = _finite(row[key])
    return row


def inspect_dict(report: InspectReport) -> dict[str, Any]:
    """The `initcli inspect --format json` object (DESIGN §2)."""
    return {
        "target": report.target,
        "scheme": report.scheme,
        "seed": report.seed,
        "params": [param_dict(p) for p in report.params],
        "counts": count_dict(report.counts),
    }


def schemes_dicts(rows: Sequence[SchemeRow]) -> list[dict[str, Any]]:
    return [
        {
            "name": r.name,
            "aliases": list(r.aliases),
            "params": list(r.params),
            "values": r.values,
            "expected_var": r.expected_var,
        }
        for r in rows
    ]


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: " ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    return out.getvalue()


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return ""

    def cell(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, list):
            value = (
                "×".join(map(str, value))
                if all(isinstance(v, int) for v in value)
                else ", ".join(map(str, value))
            )
        if isinstance(value, float):
            value = _num(value)
        return str(value).replace("|", "\\|")

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _totals_line(report: CountReport) -> str:
    c = report.counts
    ti = "torchinfo failed" if c.torchinfo is None else f"torchinfo {c.torchinfo.total:,}"
    verdict = "agree" if c.agree else "differ"
    return (
        f"total {c.total:,} · trainable {c.trainable:,} · frozen {c.frozen:,} · "
        f"buffers {c.buffers:,} · {ti} ({verdict})"
    )


def render_text(
    report: CountReport | InspectReport | Sequence[SchemeRow], fmt: OutputFormat
) -> str:
    """JSON, CSV or Markdown text for a report."""
    from initcli.report import CountReport, InspectReport

    if isinstance(report, CountReport):
        data: Any = count_dict(report)
        rows = data["modules"]
        extra = [_totals_line(report), *report.counts.notes]
    elif isinstance(report, InspectReport):
        data = inspect_dict(report)
        rows = data["params"]
        extra = [
            f"scheme {report.scheme}, seed {report.seed}",
            _totals_line(report.counts),
            *report.counts.counts.notes,
        ]
    else:
        data = schemes_dicts(report)
        rows = data
        extra = []
    if fmt is OutputFormat.json:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.csv:
        return _csv(rows)
    if fmt is OutputFormat.markdown:
        tail = "".join(f"\n{line}\n" for line in extra)
        return _markdown(rows) + tail
    raise ValueError(f"{fmt} is not a text format")


# --- rich tables ---------------------------------------------------------------------------------


def _totals_panel(report: CountReport) -> Panel:
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
        grid.add_row("torchinfo", "–", Text("failed (see notes)", style="yellow"))
    else:
        verdict = Text("agrees", style="green") if c.agree else Text("differs", style="bold red")
        grid.add_row("torchinfo", f"{c.torchinfo.total:,}", verdict)
    parts: list[RenderableType] = [grid]
    if c.notes:
        parts.append(Text(""))
        parts.extend(Text(f"• {note}") for note in c.notes)
    return Panel(Group(*parts), title="totals", title_align="left", box=box.ROUNDED, expand=False)


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "uninit."
    return "×".join(map(str, shape)) if shape else "scalar"


def count_table(report: CountReport) -> list[RenderableType]:
    table = Table(title=f"parameters of {report.target}", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("module", overflow="fold")
    table.add_column("type")
    table.add_column("hand count", overflow="fold")
    table.add_column("params", justify="right")
    for m in report.counts.modules:
        table.add_row(m.name, m.type, m.formula, f"{m.params:,}")
    return [table, _totals_panel(report)]


def wrap_dotted(name: str, width: int) -> str:
    """Break a long dotted name after its dots so each line fits `width` (rich breaks on spaces)."""
    if len(name) <= width:
        return name
    lines: list[str] = []
    line = ""
    for part in name.replace(".", ".\n").split("\n"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return "\n".join(lines)


def _param_row(p: ParamReport, with_grad: bool, name_width: int) -> list[RenderableType]:
    fans = "–" if p.fan_in is None else f"{p.fan_in}→{p.fan_out}"
    status = Text(p.status, style=STATUS_STYLE.get(p.status, ""))
    # The table names the init function only; its arguments are in the JSON and in `schemes`.
    init = p.init.split("(")[0]
    row: list[RenderableType] = [
        wrap_dotted(p.name, name_width),
        _shape(p.shape),
        fans,
        _num(p.mean, 3),
        _num(p.var),
        _num(p.expected_var),
        init,
        status,
    ]
    if with_grad:
        row.append(Text("yes") if p.requires_grad else Text("frozen", style="cyan"))
    return row


def inspect_table(report: InspectReport, width: int = 100) -> list[RenderableType]:
    table = Table(
        title=f"{report.target} · {report.scheme} · seed {report.seed}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    # Everything but the name is short and fixed; the name gets what is left, broken at dots.
    name_width = max(16, width - 82)
    table.add_column("parameter", overflow="fold")
    table.add_column("shape", no_wrap=True)
    table.add_column("fans", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("var", justify="right", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    table.add_column("init", no_wrap=True)
    table.add_column("status", no_wrap=True)
    # The trainable column only earns its width when something is frozen.
    with_grad = any(not p.requires_grad for p in report.params)
    if with_grad:
        table.add_column("grad", no_wrap=True)
    for p in report.params:
        table.add_row(*_param_row(p, with_grad, name_width))
    return [table, _totals_panel(report.counts)]


def schemes_table(rows: Sequence[SchemeRow]) -> list[RenderableType]:
    table = Table(
        title="initialization schemes (name:key=value,...)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("scheme", style="bold")
    table.add_column("aliases")
    table.add_column("parameters", no_wrap=True)
    table.add_column("values", overflow="fold")
    table.add_column("expected variance", overflow="fold")
    for r in rows:
        table.add_row(r.name, "\n".join(r.aliases), "\n".join(r.params), r.values, r.expected_var)
    note = Text(
        "fan: fan_in or fan_out by mode; gain: a number, or a nonlinearity name turned into "
        "torch.nn.init.calculate_gain (kaiming: of nonlinearity and a). A named scheme sets every "
        "≥2-D weight; biases follow --bias-init (zeros); norm layers start at weight 1, bias 0.",
        style="dim",
    )
    return [table, note]


def print_report(
    report: CountReport | InspectReport | Sequence[SchemeRow], fmt: OutputFormat, console: Console
) -> None:
    """Write a report to the console: a rich table, or text in the chosen format."""
    from initcli.report import CountReport, InspectReport

    if fmt is not OutputFormat.table:
        console.file.write(render_text(report, fmt))
        return
    if isinstance(report, CountReport):
        parts = count_table(report)
    elif isinstance(report, InspectReport):
        parts = inspect_table(report, console.width)
    else:
        parts = schemes_table(report)
    for part in parts:
        console.print(part)
