"""`initcli schemes` and `initcli gain`: the formula tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.writer import View

if TYPE_CHECKING:
    from initcli.report import GainRow, SchemeRow


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


def schemes_view(rows: Sequence[SchemeRow]) -> View:
    data = schemes_dicts(rows)
    return View(data, data, lambda _width: schemes_table(rows))


def gain_dicts(rows: Sequence[GainRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def gains_table(rows: Sequence[GainRow]) -> list[RenderableType]:
    table = Table(title="torch.nn.init.calculate_gain", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("nonlinearity", style="bold")
    table.add_column("formula")
    table.add_column("gain", justify="right")
    table.add_column("gain²", justify="right")
    for r in rows:
        table.add_row(r.nonlinearity, r.formula, f"{r.gain:.6g}", f"{r.gain * r.gain:.6g}")
    note = Text(
        "kaiming: variance gain²/fan; xavier: 2·gain²/(fan_in+fan_out). "
        "--slope sets leaky_relu's negative slope.",
        style="dim",
    )
    return [table, note]


def gains_view(rows: Sequence[GainRow]) -> View:
    data = gain_dicts(rows)
    return View(data, data, lambda _width: gains_table(rows))
