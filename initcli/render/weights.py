"""`initcli inspect FILE`: a weights file's tensors as JSON and as a table."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import STATUS_STYLE, shape_text, shown
from initcli.render.counts import count_dict, totals_line, totals_panel
from initcli.render.grouped import (
    entries,
    folded_line,
    groups_json,
    label,
    markdown_rows,
    span,
    with_group_column,
    with_names,
)
from initcli.render.inspection import group_looks, param_dict, param_rows
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
        # Came later than the others: last.
        "groups": groups_json(report.groups, [p.name for p in report.params]),
    }


_STATE_STYLE = {
    "at init": "",
    "trained": "green",
    "undecided": "dim",
    "uninitialized": "bold magenta",
}


def checkpoint_table(
    report: CheckpointReport, width: int = 100, expand: bool = False
) -> list[RenderableType]:
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
    table_rows = entries(len(report.params), report.groups, expand)
    rows, more = shown(table_rows, "tensors")
    cells: list[tuple[bool, list[RenderableType]]] = []
    for group, members in rows:
        ps = [report.params[i] for i in members]
        p = ps[0]
        row: list[RenderableType] = [
            p.name if group is None else label(group),
            shape_text(p.shape),
            "–" if p.fan_in is None else f"{p.fan_in}→{p.fan_out}",
            span((q.mean for q in ps), 3, stacked=True),
            span((q.std for q in ps), stacked=True),
        ]
        if compared:
            expected = [None if q.expected_var is None else math.sqrt(q.expected_var) for q in ps]
            worst = p.status if group is None or group.status is None else group.status
            row += [
                span(expected, stacked=True),
                span((q.var_ratio for q in ps), 3, stacked=True),
                Text(worst, style=STATUS_STYLE.get(worst, "")),
            ]
        else:
            # The group's kind holds the state and the fresh flag: its members share them.
            flagged = p.name.rpartition(".")[0] in fresh
            row += [
                group_looks(ps, group) or "–",
                # The tensor's own state, as in the JSON, and the module's flag beside it.
                Text(
                    f"{p.state}, fresh?" if flagged else p.state,
                    style="bold yellow" if flagged else _STATE_STYLE.get(p.state, ""),
                ),
            ]
        cells.append((group is not None, row))
    for row in with_names(cells, name_width):
        table.add_row(*row)
    folded = folded_line(report.groups, expand, "tensors")
    if folded is not None:
        more.append(Text(folded))
    return [table, *more, totals_panel(report.counts)]


def checkpoint_view(report: CheckpointReport, expand: bool = False) -> View:
    """Every format of a weights file's report; the table and Markdown show each group of
    repeated blocks as one row unless `expand` (--all); JSON and CSV list every tensor."""
    data = checkpoint_dict(report)
    against = f"against {report.against}" if report.against else "no --against scheme"
    folded = folded_line(report.groups, expand, "tensors")
    notes = [
        f"{report.format} weights file, {against}",
        *([folded] if folded else []),
        totals_line(report.counts),
        *report.counts.counts.notes,
    ]
    rows = param_rows(data["params"])
    return View(
        data,
        with_group_column(rows, report.groups),
        lambda width: checkpoint_table(report, width, expand),
        notes=notes,
        markdown_rows=markdown_rows(rows, () if expand else report.groups, "name"),
    )
