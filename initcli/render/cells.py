"""Table cells shared by every view: numbers, shapes, names broken to fit, status colours."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from rich.text import Text

from initcli.text import printable

# A table shows at most this many rows: rich lays a table out in one piece, so 10⁵ rows take
# minutes; the rows beyond are counted in a line under it, and JSON/CSV always hold them all.
MAX_TABLE_ROWS = 1_000
T = TypeVar("T")

STATUS_STYLE = {
    "ok": "green",
    "off": "bold red",
    "symmetric": "yellow",
    "unknown": "dim",
    "custom": "cyan",
    "uninitialized": "bold magenta",
}
# How assign.initialize labels an `auto` choice: `<scheme> ← <why>`.
AUTO_ARROW = " ← "


def finite(value: float | None) -> float | None:
    # JSON has no NaN/Inf; such tensors are reported with status "off", the value as null.
    return value if value is None or math.isfinite(value) else None


def num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


def shape_text(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "uninit."
    return "×".join(map(str, shape)) if shape else "scalar"


def wrap_after(text: str, separator: str, width: int) -> str:
    """Break `text` after each `separator` where needed so lines fit `width` (greedy packing).

    The separator's trailing space is dropped throughout: ", " is written as ",".
    """
    lines: list[str] = []
    line = ""
    kept = separator.rstrip()
    for part in text.replace(separator, kept + "\n").split("\n"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return "\n".join(lines)


def wrap_dotted(name: str, width: int) -> str:
    """A long dotted parameter name broken after its dots (rich itself breaks only on spaces)."""
    return wrap_after(printable(name), ".", width)


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


def value_text(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "×".join(map(str, value)) or "scalar"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return num(value)
    return str(value)


def args_text(args: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def shown(rows: Sequence[T], what: str) -> tuple[Sequence[T], list[Text]]:
    """The rows a table shows, and the line that says how many more there are (if any)."""
    if len(rows) <= MAX_TABLE_ROWS:
        return rows, []
    more = len(rows) - MAX_TABLE_ROWS
    line = Text(
        f"… and {more:,} more {what} not shown: the table lists the first {MAX_TABLE_ROWS:,}; "
        "-f json or -f csv lists them all",
        style="yellow",
    )
    return rows[:MAX_TABLE_ROWS], [line]


def wrap_scheme(text: str, width: int = 28) -> str:
    """Break a scheme description after its commas so each line fits `width`."""
    lines: list[str] = []
    line = ""
    for part in text.replace(", ", ",\n").split("\n"):
        if line and len(line) + len(part) + 1 > width:
            lines.append(line)
            line = ""
        line += part if not line else f" {part}"
    lines.append(line)
    return "\n".join(lines)
