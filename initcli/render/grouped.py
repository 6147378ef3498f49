"""Repeated blocks in a view: which rows a table shows, a group's cells as ranges, its JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.text import Text

from initcli.render.cells import finite, num, wrap_dotted

if TYPE_CHECKING:
    from initcli.report.grouping import RowGroup

# A table entry: the group it stands for (None for a row of its own) and the rows behind it.
Entry = tuple["RowGroup | None", tuple[int, ...]]


def entries(count: int, groups: Sequence[RowGroup], expand: bool = False) -> list[Entry]:
    """What a table of `count` rows shows: each group as one row where its first member was, the
    rows of its pattern that differ right after it, every other row as it was; with `expand`,
    every row."""
    if expand or not groups:
        return [(None, (i,)) for i in range(count)]
    first = {g.members[0]: g for g in groups}
    last = {g.pattern: g for g in groups}  # sorted by first member: the pattern's last group
    folded = {i for g in groups for i in g.members} | {i for g in groups for i in g.apart}
    found: list[Entry] = []
    for i in range(count):
        group = first.get(i)
        if group is not None:
            found.append((group, group.members))
            if last[group.pattern] is group:
                found += [(None, (j,)) for j in group.apart]
        elif i not in folded:
            found.append((None, (i,)))
    return found


def label(group: RowGroup) -> str:
    """A group row's name: its pattern and how many rows it stands for."""
    return f"{group.pattern} ×{len(group.members)}"


def span(values: Iterable[float | None], digits: int = 4, stacked: bool = False) -> str:
    """One value as `num` writes it, or the range `low…high` of several (to one digit less: the
    ends of a range need less precision than a value, and the parameter names need the room);
    `stacked` puts `high` on a second line, so a table's column stays one value wide."""
    known = [v for v in values if v is not None]
    if not known:
        return "–"
    shown = {num(v, digits) for v in known}
    if len(shown) == 1:
        return shown.pop()
    if not all(math.isfinite(v) for v in known):
        return "varies"
    short = max(2, digits - 1)
    between = "…\n" if stacked else "…"
    return f"{num(min(known), short)}{between}{num(max(known), short)}"


def merged_row(rows: Sequence[Mapping[str, Any]], name_key: str, group: RowGroup) -> dict[str, Any]:
    """A group's Markdown row from its members' rows: its label as the name, its worst status and
    its label (where it has them), a cell the members share as it is, numbers as their range,
    other differences as `varies`."""
    merged: dict[str, Any] = {}
    known = {"status": group.status, "looks_like": group.looks_like}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if key == name_key:
            merged[key] = label(group)
        elif known.get(key) is not None:
            merged[key] = known[key]
        elif all(v == values[0] for v in values):
            merged[key] = values[0]
        elif all(isinstance(v, float) for v in values):
            merged[key] = span(values)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            merged[key] = f"{min(values):,}…{max(values):,}"
        else:
            merged[key] = "varies"
    return merged


def markdown_rows(
    rows: Sequence[Mapping[str, Any]], groups: Sequence[RowGroup], name_key: str
) -> list[dict[str, Any]]:
    """The Markdown table: the CSV rows as the table shows them, groups as one row each."""
    return [
        dict(rows[members[0]])
        if group is None
        else merged_row([rows[i] for i in members], name_key, group)
        for group, members in entries(len(rows), groups)
    ]


def with_group_column(
    rows: Sequence[Mapping[str, Any]], groups: Sequence[RowGroup]
) -> list[dict[str, Any]]:
    """CSV rows, every one kept, with a last `group` cell: the pattern of the row it is folded
    into in the table, empty for a row shown on its own."""
    pattern = {i: g.pattern for g in groups for i in g.members}
    return [{**row, "group": pattern.get(i)} for i, row in enumerate(rows)]


def groups_json(
    groups: Sequence[RowGroup], names: Sequence[str], stats: bool = True
) -> list[dict[str, Any]]:
    """The `groups` key (docs/contract/json-output.md): each group's pattern, count, member names
    and the names of its pattern shown apart; with `stats`, the mean and std ranges, the worst
    status and the shared looks_like."""
    found = []
    for g in groups:
        item: dict[str, Any] = {
            "pattern": g.pattern,
            "count": len(g.members),
            "names": [names[i] for i in g.members],
            "apart": [names[i] for i in g.apart],
        }
        if stats:
            item["mean"] = None if g.mean is None else [finite(v) for v in g.mean]
            item["std"] = None if g.std is None else [finite(v) for v in g.std]
            item["status"] = g.status
            item["looks_like"] = g.looks_like
        found.append(item)
    return found


def folded_line(
    groups: Sequence[RowGroup], expand: bool, what: str, ranges: bool = True
) -> str | None:
    """The line under a grouped table that says what its `×N` rows are and how to see each."""
    if expand or not groups:
        return None
    folded = sum(len(g.members) for g in groups)
    how = "the range low…high across them, the worst status" if ranges else "alike"
    return (
        f"{folded:,} {what} of repeated blocks shown as {len(groups):,} "
        f"row{'s' if len(groups) > 1 else ''} (pattern ×N: {how}); "
        "--all shows each"
    )


def with_names(rows: Sequence[tuple[bool, list[Any]]], name_width: int) -> list[list[Any]]:
    """Table rows, (is a group, cells) with the name first, as the table shows them: each name
    broken at its dots to fit what the other cells leave (name_room)."""
    width = name_room(rows, name_width)
    return [[wrap_dotted(str(cells[0]), width), *cells[1:]] for _, cells in rows]


def _text(cell: object) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _width(cell: object) -> int:
    return max(map(len, _text(cell).split("\n")))


def name_room(rows: Sequence[tuple[bool, Sequence[object]]], name_width: int) -> int:
    """The name column's width once group rows' ranges (`lo…` over `hi`, at times wider than one
    value) have taken what they need from it: `rows` are (is a group, cells), the name first. Only
    range cells count: the other columns' widths are the caller's, from every row."""
    extra = 0
    for column in range(1, max((len(cells) for _, cells in rows), default=0)):
        single = max((_width(c[column]) for g, c in rows if not g), default=0)
        ranges = [_width(c[column]) for g, c in rows if g and "…\n" in _text(c[column])]
        extra += max(0, max(ranges, default=0) - single)
    return max(16, name_width - extra)
