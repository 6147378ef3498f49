"""`initcli inspect FILE`: a weights file's tensors as JSON and as a table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import STATUS_STYLE, num, shape_text, shown, wrap_dotted
from initcli.render.counts import count_dict, totals_line, totals_panel
from initcli.render.inspection import looks_cell, param_dict, param_rows
from initcli.render.writer import View

if TYPE_CHECKING:
    from initcli.report import CheckpointReport


def checkpoint_dict(report: CheckpointReport) -> dict[str, Any]:
    """`initcli inspect FILE --format json`: the inspect object, `scheme` being --against (or
    null) and `seed` null; each param adds `var_ratio`, `mean_shift` and `state` (at init,
    trained, undecided, uninitialized); `fresh_modules` lists the modules that look freshly
    initialized among trained ones."""
    return {
        "target": report.target,
        "scheme": report.against,
        "seed": None,
        "params": [param_dict(p) for p in report.params],
        "counts": count_dict(report.counts),
        "fresh_modules": list(report.fresh_modules),
    }


_STATE_STYLE = {
    "at init": "",
    "trained": "green",
    "undecided": "dim",
    "uninitialized": "bold magenta",
}


def checkpoint_table(report: CheckpointReport, width: int = 100) -> list[RenderableType]:
    against = f"against {report.against}" if report.against else "no --against scheme"
    table = Table(
        title=f"{report.target} · {report.format} · {against}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    compared = report.against is not None
    # As in inspect_table: the other columns are short, the name gets the rest (module types are
    # in the JSON/CSV and in `initcli count FILE`).
    name_width = max(16, width - (74 if compared else 91))
    table.add_column("parameter", overflow="fold")
    table.add_column("shape", no_wrap=True)
    table.add_column("fans", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("std", justify="right", no_wrap=True)
    if compared:
        table.add_column("expected", justify="right", no_wrap=True)
        table.add_column("var ratio", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
    else:
        # min/max stay in the JSON/CSV; the table says what the values look like instead.
        table.add_column("looks like", overflow="fold", max_width=26)
        table.add_column("state", no_wrap=True)
    fresh = set(report.fresh_modules)
    rows, more = shown(report.params, "tensors")
    for p in rows:
        row: list[RenderableType] = [
            wrap_dotted(p.name, name_width),
            shape_text(p.shape),
            "–" if p.fan_in is None else f"{p.fan_in}→{p.fan_out}",
            num(p.mean, 3),
            num(p.std),
        ]
        if compared:
            expected = None if p.expected_var is None else math.sqrt(p.expected_var)
            row += [
                num(expected),
                num(p.var_ratio, 3),
                Text(p.status, style=STATUS_STYLE.get(p.status, "")),
            ]
        else:
            flagged = p.name.rpartition(".")[0] in fresh
            row += [
                looks_cell(p) or "–",
                # The tensor's own state, as in the JSON, and the module's flag beside it.
                Text(
                    f"{p.state}, fresh?" if flagged else p.state,
                    style="bold yellow" if flagged else _STATE_STYLE.get(p.state, ""),
                ),
            ]
        table.add_row(*row)
    return [table, *more, totals_panel(report.counts)]


def checkpoint_view(report: CheckpointReport) -> View:
    data = checkpoint_dict(report)
    against = f"against {report.against}" if report.against else "no --against scheme"
    notes = [
        f"{report.format} weights file, {against}",
        totals_line(report.counts),
        *report.counts.counts.notes,
    ]
    rows = param_rows(data["params"])
    return View(data, rows, lambda width: checkpoint_table(report, width), notes=notes)
