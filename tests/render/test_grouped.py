"""Group rows in views (initcli.render.grouped): row order, ranges, Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

from initcli.render import OutputFormat
from initcli.render.grouped import entries, markdown_rows, merged_row, span, with_group_column
from initcli.render.inspection import inspect_view
from initcli.report import CountReport, InspectReport
from initcli.report.grouping import RowGroup

from .conftest import param, render

# Rows 0..5: wte, h.0..h.3's weight (h.2 differs), ln_f; one group of h.0, h.1, h.3.
GROUP = RowGroup("h.*.w", (1, 2, 4), (3,), (0.0, 0.5), (1.0, 2.0), "custom", "normal(std=1)")


def test_a_group_takes_its_first_members_place_and_its_odd_rows_follow_it() -> None:
    assert entries(6, [GROUP]) == [
        (None, (0,)),
        (GROUP, (1, 2, 4)),
        (None, (3,)),
        (None, (5,)),
    ]
    assert entries(6, [GROUP], expand=True) == [(None, (i,)) for i in range(6)]
    assert entries(3, []) == [(None, (0,)), (None, (1,)), (None, (2,))]


def test_span_is_one_value_or_a_range_one_digit_shorter() -> None:
    assert span([0.123456, 0.123456]) == "0.1235"
    assert span([0.123456, 0.2]) == "0.123…0.2"
    assert span([0.123456, 0.2], stacked=True) == "0.123…\n0.2"
    assert span([None, 0.5], 3) == "0.5"
    assert span([None]) == "–"
    assert span([float("nan")]) == "nan"
    assert span([float("nan"), 1.0]) == "varies"


def test_a_markdown_group_row_shares_equal_cells_ranges_numbers_and_names_the_rest() -> None:
    rows = [
        {"name": f"h.{i}.w", "shape": [4, 4], "numel": 16 + i, "std": 1.0 + i / 2, "init": init,
         "status": "ok", "looks_like": "normal(std=1)"}
        for i, init in enumerate(["a", "a", "b"])
    ]  # fmt: skip
    group = RowGroup("h.*.w", (0, 1, 2), status="custom", looks_like="normal(std=1)")
    assert merged_row(rows, "name", group) == {
        "name": "h.*.w ×3", "shape": [4, 4], "numel": "16…18", "std": "1…2", "init": "varies",
        "status": "custom", "looks_like": "normal(std=1)",
    }  # fmt: skip
    assert [r["name"] for r in markdown_rows(rows, [group], "name")] == ["h.*.w ×3"]


def test_csv_rows_keep_every_row_and_name_their_group() -> None:
    rows = [{"name": f"r{i}"} for i in range(6)]
    assert [r["group"] for r in with_group_column(rows, [GROUP])] == [
        None, "h.*.w", "h.*.w", None, "h.*.w", None,
    ]  # fmt: skip


def test_an_inspect_view_of_repeated_blocks(counts: CountReport) -> None:
    params = tuple(
        param(f"h.{i}.weight", "ok", mean=0.01 * i, std=0.7 + 0.001 * i) for i in range(4)
    )
    report = InspectReport("m.py:M", "kaiming_normal", 0, params, counts)
    (group,) = report.groups
    assert group.members == (0, 1, 2, 3)
    table = render(inspect_view(report), OutputFormat.table)
    assert "h.*.weight ×4" in table and "h.0.weight" not in table
    assert "4 parameters of repeated blocks shown as 1 row (" in " ".join(table.split())
    assert "h.3.weight" in render(inspect_view(report, expand=True), OutputFormat.table)
    data = json.loads(render(inspect_view(report), OutputFormat.json))
    assert data["groups"] == [
        {"pattern": "h.*.weight", "count": 4, "names": [p.name for p in params], "apart": [],
         "mean": [0.0, 0.03], "std": [0.7, 0.703], "status": "ok", "looks_like": None},
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(render(inspect_view(report), OutputFormat.csv))))
    assert [r["group"] for r in rows] == ["h.*.weight"] * 4
    markdown = render(inspect_view(report), OutputFormat.markdown)
    assert "| h.*.weight ×4 | Linear | 5×4 | 20 | 4 | 5 | 0…0.03 |" in markdown
