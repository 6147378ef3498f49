"""`initcli inspect` on a model: the inspect object (JSON contract) and the per-parameter table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import (
    AUTO_ARROW,
    STATUS_STYLE,
    finite,
    shape_text,
    shown,
    wrap_dotted,
)
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
from initcli.render.writer import View
from initcli.text import first_and_more

if TYPE_CHECKING:
    from initcli.report import InspectReport, ParamReport
    from initcli.report.grouping import RowGroup


_FLOAT_KEYS = (
    "mean", "var", "std", "min", "max", "expected_mean", "expected_var", "var_ratio", "mean_shift",
)  # fmt: skip


def param_dict(p: ParamReport) -> dict[str, Any]:
    row = asdict(p)
    row["shape"] = None if p.shape is None else list(p.shape)
    for key in _FLOAT_KEYS:
        if key in row:
            row[key] = finite(row[key])
    # looks_like and fit came later than every other key (a weights file's var_ratio too): last.
    row["looks_like"] = row.pop("looks_like")
    fit = row.pop("fit")
    row["fit"] = (
        None
        if fit is None
        else {
            "family": fit["family"],
            "std": finite(fit["std"]),
            "bound": finite(fit["bound"]),
            "matches": list(fit["matches"]),
        }
    )
    # The forward pass's fans came later still (issue 12): last.
    row["forward_fan_in"] = row.pop("forward_fan_in")
    row["forward_fan_out"] = row.pop("forward_fan_out")
    return row


def param_rows(params: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """CSV/Markdown rows: the JSON params with `fit` as two flat cells (its matches stay JSON's)."""
    rows = []
    for param in params:
        row = {k: v for k, v in param.items() if k != "fit"}
        fit = param.get("fit") or {}
        row["fit_family"] = fit.get("family")
        row["fit_std"] = fit.get("std")
        # The forward fans came after fit: after its cells too, so every column keeps its place.
        for key in ("forward_fan_in", "forward_fan_out"):
            row[key] = row.pop(key, None)
        rows.append(row)
    return rows


# Statuses whose rows earn a `looks like` cell: where the values are not what was asked for.
_LOOK_STATUSES = frozenset({"custom", "uninitialized", "off", "unknown"})


def looks_cell(p: ParamReport) -> str | None:
    """What the values look like where that is not the init: None where the init column says it
    (ok rows); "–" for uninitialized values (the reason is in the summary line under the table)."""
    if p.status not in _LOOK_STATUSES:
        return None
    if p.looks_like is None or p.status == "uninitialized":
        return "–"
    return p.looks_like.replace(" — torch default", " (default)")


def shows_looks(params: tuple[ParamReport, ...]) -> bool:
    """Whether the `looks like` column says anything the init/status columns do not."""
    return any(p.status in _LOOK_STATUSES and p.looks_like is not None for p in params)


def forward_differs(p: ParamReport) -> bool:
    """Whether the forward pass's fans are not torch's (HF Conv1D, ConvTranspose, groups, ...)."""
    forward = (p.forward_fan_in, p.forward_fan_out)
    return None not in forward and forward != (p.fan_in, p.fan_out)


def fans_cell(p: ParamReport) -> str:
    """torch's fans, marked `*` where the forward pass's differ (listed under the table)."""
    if p.fan_in is None:
        return "–"
    return f"{p.fan_in}→{p.fan_out}" + ("*" if forward_differs(p) else "")


def forward_line(params: tuple[ParamReport, ...]) -> str | None:
    """The line under the table that gives the forward fans of the rows marked `*`."""
    differ = [p for p in params if forward_differs(p)]
    if not differ:
        return None
    shown = first_and_more(
        differ, 4, show=lambda p: f"{p.name} {p.forward_fan_in}→{p.forward_fan_out}"
    )
    return f"* torch's fans; the forward pass has: {shown} (JSON forward_fan_in/out)"


def inspect_dict(report: InspectReport) -> dict[str, Any]:
    """The `initcli inspect --format json` object (docs/contract/json-output.md)."""
    return {
        "target": report.target,
        "scheme": report.scheme,
        "seed": report.seed,
        "params": [param_dict(p) for p in report.params],
        "counts": count_dict(report.counts),
        # Came later than the others: last.
        "groups": groups_json(report.groups, [p.name for p in report.params]),
    }


def _param_row(
    ps: Sequence[ParamReport],
    group: RowGroup | None,
    with_grad: bool,
    with_looks: bool,
) -> list[RenderableType]:
    """One parameter's row, or a group's (`ps` its members): numbers as their range, the worst
    status, the label where the members share it."""
    p = ps[0]
    fans = fans_cell(p)
    worst = p.status if group is None or group.status is None else group.status
    status = Text(worst, style=STATUS_STYLE.get(worst, ""))
    init = _shown_init(p.init)
    # Where the values are not what the init says (custom, off, ...), what they look like instead.
    looks = group_looks(ps, group) if with_looks else None
    init_cell: RenderableType = init if looks is None else Text(looks, style="italic")
    means = span((q.mean for q in ps), 3, stacked=True)
    variances = span((q.var for q in ps), stacked=True)
    expected = span((q.expected_var for q in ps), stacked=True)
    # With looks-like labels the row trades fans, var and expected for the std those labels name.
    middle = (
        [means, span((q.std for q in ps), stacked=True)]
        if with_looks
        else [fans, means, variances, expected]
    )
    row: list[RenderableType] = [
        # Broken at its dots once every row's other cells are known (with_names).
        p.name if group is None else label(group),
        shape_text(p.shape),
        *middle,
        init_cell,
        status,
    ]
    if with_grad:
        row.append(Text("yes") if p.requires_grad else Text("frozen", style="cyan"))
    return row


def group_looks(ps: Sequence[ParamReport], group: RowGroup | None) -> str | None:
    """The looks-like cell of a row or a group: the members' label where they share it (or the
    peers' label every member fits: report.grouping), else the family the labels name, its
    numbers being the std column's range."""
    cells = {looks_cell(p) for p in ps}
    if len(cells) == 1:
        return cells.pop()
    if group is not None and group.looks_like is not None:
        return looks_cell(replace(ps[0], looks_like=group.looks_like))
    fit = ps[0].fit
    return "varies" if fit is None else f"{fit.family}(…)"


def _shown_init(init: str) -> str:
    # The table names the init function only; its arguments are in the JSON and in `schemes`.
    # An `auto` choice keeps its short label (`kaiming_normal(relu)`); the reason is listed below.
    if AUTO_ARROW in init:
        return init.split(AUTO_ARROW, maxsplit=1)[0]
    shown = init.split("(", maxsplit=1)[0].rstrip()
    # A long rule (`Linear=normal:std=0.01`) may break after its `=` rather than mid-word.
    return shown.replace("=", "= ", 1) if "=" in init and len(shown) > 16 else shown


def inspect_table(
    report: InspectReport, width: int = 100, expand: bool = False
) -> list[RenderableType]:
    # The heading is printed above the table, not as its title: a title wraps at the table's
    # width, and a long scheme description is wider than a small model's table.
    heading = Text(f"{report.target} · {report.scheme} · seed {report.seed}", style="italic")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # Everything but the name is short and fixed; the name gets what is left, broken at dots.
    name_width = max(16, width - 82)
    looks = shows_looks(report.params)
    if looks:
        # Fans, var and expected give way to std and a label of up to 26: the name gets what the
        # other columns (3 spaces apart) leave.
        widest = max(len(looks_cell(p) or p.init.split("(")[0]) for p in report.params)
        shapes = max(len(shape_text(p.shape)) for p in report.params)
        statuses = max(len(p.status) for p in report.params)
        others = max(5, shapes) + 10 + 10 + min(max(17, widest), 26) + max(6, statuses) + 15
        name_width = max(
            16, width - others - (9 if any(not p.requires_grad for p in report.params) else 0)
        )
    auto_labels = [p.init.split(AUTO_ARROW)[0] for p in report.params if AUTO_ARROW in p.init]
    if auto_labels:
        # auto's labels (`xavier_normal(gain=tanh)`) are wider than a bare function name.
        name_width = max(16, name_width - max(0, max(map(len, auto_labels)) - 14))
    rule_labels = [_shown_init(p.init) for p in report.params if "=" in p.init]
    if rule_labels:
        # So are a policy's rules (`Linear=normal:std=0.01`).
        name_width = max(16, name_width - max(0, max(map(len, rule_labels)) - 14))
    table.add_column("parameter", overflow="fold")
    table.add_column("shape", no_wrap=True)
    if looks:
        table.add_column("mean", justify="right", no_wrap=True)
        table.add_column("std", justify="right", no_wrap=True)
        table.add_column("init / looks like", overflow="fold", max_width=26)
    else:
        table.add_column("fans", justify="right", no_wrap=True)
        table.add_column("mean", justify="right", no_wrap=True)
        table.add_column("var", justify="right", no_wrap=True)
        table.add_column("expected", justify="right", no_wrap=True)
        # A policy's rules may wrap (at their `=`) rather than squeeze the parameter names.
        table.add_column("init", no_wrap=not rule_labels, overflow="fold")
    auto = any(AUTO_ARROW in p.init for p in report.params)
    table.add_column("status", no_wrap=True)
    # The trainable column only earns its width when something is frozen.
    with_grad = any(not p.requires_grad for p in report.params)
    if with_grad:
        table.add_column("grad", no_wrap=True)
    table_rows = entries(len(report.params), report.groups, expand)
    rows, more = shown(table_rows, "parameters")
    cells = []
    for group, members in rows:
        ps = [report.params[i] for i in members]
        cells.append((group is not None, _param_row(ps, group, with_grad, looks)))
    for row in with_names(cells, name_width):
        table.add_row(*row)
    below: list[RenderableType] = [*more]
    folded = folded_line(report.groups, expand, "parameters")
    if folded is not None:
        below.append(Text(folded))
    forward = None if looks else forward_line(report.params)
    if forward is not None:
        below.append(Text(forward))
    if looks:
        below.append(Text("looks like: " + "; ".join(report.looks_like)))
    if auto:
        below.append(_auto_table(report, width, expand))
    return [heading, table, *below, totals_panel(report.counts)]


def _auto_table(report: InspectReport, width: int, expand: bool) -> Table:
    """What `auto` chose for each weight, and the activation (or its absence) it chose from; a
    group's members share both (report.grouping), so a group row gives its first member's."""
    table = Table(
        title="auto: what each weight got, and why",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("parameter", overflow="fold")
    table.add_column("chosen", no_wrap=True)
    table.add_column("because of what follows it", overflow="fold")
    for group, members in entries(len(report.params), report.groups, expand):
        p = report.params[members[0]]
        if AUTO_ARROW in p.init:
            chosen, why = p.init.split(AUTO_ARROW, 1)
            name = p.name if group is None else label(group)
            table.add_row(wrap_dotted(name, max(16, width // 3)), chosen, why)
    return table


def inspect_view(report: InspectReport, expand: bool = False) -> View:
    """Every format of an inspect report; the table and Markdown show each group of repeated
    blocks as one row unless `expand` (--all); JSON and CSV list every parameter."""
    data = inspect_dict(report)
    folded = folded_line(report.groups, expand, "parameters")
    notes = [
        f"scheme {report.scheme}, seed {report.seed}",
        *([folded] if folded else []),
        *(["looks like: " + "; ".join(report.looks_like)] if report.looks_like else []),
        totals_line(report.counts),
        *report.counts.counts.notes,
    ]
    rows = param_rows(data["params"])
    return View(
        data,
        with_group_column(rows, report.groups),
        lambda width: inspect_table(report, width, expand),
        notes=notes,
        markdown_rows=markdown_rows(rows, () if expand else report.groups, "name"),
    )
