"""`initcli schemes` and `initcli gain`: the formula tables, no model involved."""

from __future__ import annotations

import math
from dataclasses import dataclass

from torch import nn

from initcli.errors import ArgError
from initcli.init import schemes


@dataclass(frozen=True)
class SchemeRow:
    name: str
    aliases: tuple[str, ...]
    params: tuple[str, ...]  # "key=default"
    values: str
    expected_var: str


def scheme_rows() -> tuple[SchemeRow, ...]:
    """`initcli schemes`: every scheme with its aliases, parameters and formulas."""
    return tuple(
        SchemeRow(
            info.name,
            info.aliases,
            tuple(f"{p.name}={schemes.format_value(p.default)}" for p in info.params),
            info.values,
            info.expected_var,
        )
        for info in schemes.SCHEMES.values()
    )


@dataclass(frozen=True)
class GainRow:
    nonlinearity: str
    formula: str
    gain: float


def gains(slope: float = 0.01) -> tuple[GainRow, ...]:
    """`initcli gain`: torch.nn.init.calculate_gain for every nonlinearity it knows."""
    if not math.isfinite(slope):
        raise ArgError(f"--slope must be a finite number, got {slope}")
    rows = []
    for nl in schemes.NONLINEARITIES:
        formula = schemes.GAIN_FORMULAS[nl]
        if nl == "leaky_relu":
            formula = f"{formula}, slope={slope:g}"
        value = nn.init.calculate_gain(nl, slope if nl == "leaky_relu" else None)  # type: ignore[arg-type]
        rows.append(GainRow(nl, formula, float(value)))
    return tuple(rows)
