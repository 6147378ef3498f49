"""Hand-built reports for the view tests: no model is built, no tensor is measured."""

from __future__ import annotations

import io

import pytest

from initcli.measure.counting import Counts, ModuleCount, TorchinfoCount
from initcli.render import OutputFormat, View, file_console, write
from initcli.report import CountReport, InspectReport, ParamReport


def render(view: View, fmt: OutputFormat, width: int = 100) -> str:
    """What `initcli ... -f FMT -o FILE` would write for this view."""
    buffer = io.StringIO()
    console = file_console(buffer)
    console.width = width
    write(view, fmt, console)
    return buffer.getvalue()


@pytest.fixture
def counts() -> CountReport:
    c = Counts(
        total=51,
        trainable=43,
        frozen=8,
        buffers=4,
        torchinfo=TorchinfoCount(59, 51),
        agree=False,
        notes=("tied weights: a.weight and b.weight are one tensor of 8 elements; counted once.",),
        modules=(
            ModuleCount("fc1", "Linear", 25, "4×5 + 5"),
            ModuleCount("fc2", "Linear", 26, "5×5 + 1"),
        ),
    )
    return CountReport("net.py:Net", c, "meta")


def param(name: str, status: str = "ok", **changes: object) -> ParamReport:
    values: dict[str, object] = {
        "name": name, "module": "Linear", "shape": (5, 4), "numel": 20, "fan_in": 4,
        "fan_out": 5, "mean": 0.25, "var": 0.5, "std": 0.7071, "min": -1.5, "max": 1.25,
        "expected_mean": 0.0, "expected_var": 0.5, "init": "kaiming_normal(mode=fan_in)",
        "requires_grad": True, "dtype": "float32", "status": status,
    }  # fmt: skip
    values.update(changes)
    return ParamReport(**values)  # type: ignore[arg-type]


@pytest.fixture
def inspected(counts: CountReport) -> InspectReport:
    return InspectReport(
        "net.py:Net",
        "kaiming_normal(mode=fan_in)",
        7,
        (
            param("fc1.weight"),
            param("fc1.bias", shape=(5,), numel=5, fan_in=None, fan_out=None, mean=0.0, var=0.0,
                  std=0.0, min=0.0, max=0.0, expected_var=0.0, init="zeros"),
            param("fc2.weight", "off", var=float("nan"), requires_grad=False),
        ),
        counts,
    )  # fmt: skip
