"""Where output goes and in which format: consoles, the View every command renders, one writer."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TextIO, assert_never

from rich.console import Console, RenderableType

from initcli.render.cells import num
from initcli.text import printable

PIPED_WIDTH = 100


class _StdoutConsole(Console):
    def on_broken_pipe(self) -> None:
        # rich's own handling exits 1; a closed pipe (`| head -1`) is the CLI's to end, with 0.
        self.quiet = True
        raise BrokenPipeError


def stdout_console() -> Console:
    """The console results go to: colour only on a terminal and never with NO_COLOR (rich's own
    rules); piped output gets 100 columns (rich would pick 80) unless COLUMNS says otherwise."""
    console = _StdoutConsole(soft_wrap=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPED_WIDTH
    return console


def file_console(file: TextIO) -> Console:
    """A console for --output: what a pipe would get, no colour, 100 columns."""
    return Console(file=file, width=PIPED_WIDTH, no_color=True, soft_wrap=False)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


@dataclass(frozen=True)
class View:
    """One command's output in every format: what `write` needs, built by that command's module."""

    data: Any  # the --format json value (the contract, docs/contract/json-output.md)
    rows: Sequence[Mapping[str, Any]]  # CSV rows, and the Markdown table
    tables: Callable[[int], Sequence[RenderableType]]  # the rich table view, for a console width
    header: Sequence[str] = ()  # CSV columns when there may be no rows
    notes: Sequence[str] = ()  # Markdown: lines after the table
    markdown: Callable[[], str] | None = None  # Markdown that is more than one table
    # Markdown's table where it is not the CSV rows: the table's (repeated blocks as one row).
    markdown_rows: Sequence[Mapping[str, Any]] | None = None


def write(view: View, fmt: OutputFormat, console: Console) -> None:
    """Write a view to the console in the chosen format."""
    match fmt:
        case OutputFormat.json:
            # dump into one buffer, not dumps: with indent, dumps holds every piece of the text
            # at once (10⁶ modules: ~0.6 GB of small strings), and the console's file takes
            # millions of small writes slowly.
            text = io.StringIO()
            json.dump(view.data, text, indent=2, ensure_ascii=False)
            text.write("\n")
            console.file.write(text.getvalue())
        case OutputFormat.csv:
            console.file.write(to_csv(view.rows, view.header))
        case OutputFormat.markdown:
            if view.markdown is not None:
                console.file.write(view.markdown())
            else:
                tail = "".join(f"\n{line}\n" for line in view.notes)
                rows = view.rows if view.markdown_rows is None else view.markdown_rows
                console.file.write((to_markdown(rows) + tail).lstrip("\n"))
        case OutputFormat.table:
            for part in view.tables(console.width):
                console.print(part)
        case _:
            assert_never(fmt)


def _csv_cell(value: object) -> object:
    if isinstance(value, list):
        return " ".join(map(str, value))
    if isinstance(value, str):
        return printable(value)  # a name from a file or model: no terminal control sequences
    return "" if value is None else value


def to_csv(rows: Sequence[Mapping[str, Any]], header: Sequence[str] = ()) -> str:
    if not rows and not header:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return out.getvalue()


def to_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
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
            value = num(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"  # read by people in a pull request: 118,282, not 118282
        # Names from a file or model lose their control characters. A line break would end the
        # table row, so a cell's lines are joined by <br>, which GitHub renders inside a cell.
        lines = str(value).split("\n")
        return "<br>".join(map(printable, lines)).replace("|", "\\|")

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"
