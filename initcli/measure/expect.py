"""`--expect 124.4M --tolerance 0.1%`: parameter counts as people write them, and the check."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from initcli.errors import ArgError

__all__ = [
    "CountCheck",
    "ExpectedCount",
    "Tolerance",
    "check_count",
    "parse_count",
    "parse_tolerance",
]

SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}

# 51 | 3,200 | 3_200 | 124.4M | 1.2b | 7B — digits grouped by commas must come in threes.
_COUNT = re.compile(
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+(?:_\d+)*)(?:\.(?P<frac>\d+))?\s*(?P<suffix>[kmbgt]?)",
    re.IGNORECASE,
)
_COUNT_EXAMPLES = "e.g. 51, 3,200, 124.4M or 1.2B (suffixes K, M, B/G, T)"


@dataclass(frozen=True)
class ExpectedCount:
    """A count as written: its `value`, and `half_unit`, half its last stated digit (0: exact).

    `124.4M` is 124,400,000 with half_unit 50,000: it stands for any count that rounds to 124.4M.
    """

    text: str
    value: Decimal
    half_unit: Decimal


@dataclass(frozen=True)
class Tolerance:
    """`--tolerance`: an absolute number of parameters, or a percentage of the expected count."""

    text: str
    amount: Decimal
    percent: bool

    def of(self, expected: Decimal) -> Decimal:
        return expected * self.amount / 100 if self.percent else self.amount


@dataclass(frozen=True)
class CountCheck:
    """One `--expect` check: the accepted range [low, high] and whether `actual` lies in it."""

    what: str  # "parameters" or "trainable parameters"
    expected: ExpectedCount
    tolerance: Tolerance | None
    actual: int
    low: int
    high: int

    @property
    def ok(self) -> bool:
        return self.low <= self.actual <= self.high

    @property
    def difference(self) -> int:
        """actual minus the expected count as written (rounded to a whole parameter)."""
        return self.actual - int(self.expected.value.to_integral_value())

    def message(self, target: str) -> str:
        """`Check failed: ...` wording, for a failed check."""
        if self.tolerance is None and not self.expected.half_unit:
            return (
                f"Check failed: expected {self.low:,} {self.what}, counted {self.actual:,} "
                f"({self.difference:+,}) in {target}"
            )
        why = f"± {self.tolerance.text}" if self.tolerance else "as rounded"
        nominal = int(self.expected.value.to_integral_value())
        return (
            f"Check failed: expected {self.expected.text} {self.what} ({self.low:,} to "
            f"{self.high:,}, {why}), counted {self.actual:,} ({self.difference:+,} vs "
            f"{nominal:,}) in {target}"
        )


def parse_count(text: str) -> ExpectedCount:
    """`51`, `3,200`, `124.4M`, `1.2B`: the value and the precision it was written with."""
    raw = text.strip()
    match = _COUNT.fullmatch(raw)
    if match is None:
        raise ArgError(f"{text!r} is not a parameter count; write {_COUNT_EXAMPLES}")
    digits = match["int"].replace(",", "").replace("_", "")
    frac = match["frac"] or ""
    scale = SUFFIXES[match["suffix"].lower()]
    value = Decimal(f"{digits}.{frac}" if frac else digits) * scale
    if value != value.to_integral_value():
        raise ArgError(
            f"{text!r} is not a whole number of parameters; use fewer decimals or a smaller "
            "suffix (124.4M, not 124.4567891M)"
        )
    # The last digit written sets the precision: `124.4M` is good to 0.1M, `51` to exactly 1.
    half = Decimal(scale) / (10 ** len(frac)) / 2 if match["suffix"] else Decimal(0)
    return ExpectedCount(raw, value, half)


def parse_tolerance(text: str) -> Tolerance:
    """`1000`, `5K` (parameters) or `0.1%` (of the expected count)."""
    raw = text.strip()
    if raw.endswith("%"):
        number = raw[:-1].strip()
        try:
            amount = Decimal(number)
        except ArithmeticError:
            amount = Decimal(-1)
        if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", number) or amount < 0:
            raise ArgError(
                f"--tolerance {text!r} is not a percentage; write e.g. 0.1% (or a count: 1000, 5K)"
            )
        return Tolerance(raw, amount, percent=True)
    try:
        count = parse_count(raw)
    except ArgError:
        raise ArgError(
            f"--tolerance {text!r} is neither a count nor a percentage; write e.g. 1000, 5K or 0.1%"
        ) from None
    return Tolerance(raw, count.value, percent=False)


def check_count(
    what: str, actual: int, expected: ExpectedCount, tolerance: Tolerance | None = None
) -> CountCheck:
    """Compare a count with what was expected.

    With a tolerance, the count may differ from the written value by at most that much. Without
    one, a plain number must match exactly, and a number with a suffix must round to what was
    written: `124.4M` accepts 124,350,000 up to 124,449,999 (half-way rounds up, as printing does).
    """
    if tolerance is not None:
        slack = tolerance.of(expected.value)
        low = expected.value - slack
        high = expected.value + slack
        low_int = int(low.to_integral_value(ROUND_CEILING))
        high_int = int(high.to_integral_value(ROUND_FLOOR))
    elif expected.half_unit:
        low_int = int((expected.value - expected.half_unit).to_integral_value(ROUND_CEILING))
        # Half-open above: the count that is exactly half-way rounds up to the next written value.
        top = expected.value + expected.half_unit
        high_int = int(top.to_integral_value(ROUND_CEILING)) - 1
    else:
        low_int = high_int = int(expected.value)
    return CountCheck(what, expected, tolerance, actual, max(low_int, 0), high_int)
