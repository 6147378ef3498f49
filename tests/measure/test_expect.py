"""count --expect/--expect-trainable/--tolerance: the forms people write, and the exit codes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from typer.testing import CliRunner

from initcli.cli import app
from initcli.errors import ArgError
from initcli.measure.expect import check_count, parse_count, parse_tolerance


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("text", "value", "low", "high"),
    [
        ("51", 51, 51, 51),
        ("3,200", 3200, 3200, 3200),
        ("3_200", 3200, 3200, 3200),
        ("1,234,567", 1234567, 1234567, 1234567),
        # A suffix states a precision: the count must round (half up) to what was written.
        ("124.4M", 124_400_000, 124_350_000, 124_449_999),
        ("124.40M", 124_400_000, 124_395_000, 124_404_999),
        ("124M", 124_000_000, 123_500_000, 124_499_999),
        ("1.2B", 1_200_000_000, 1_150_000_000, 1_249_999_999),
        ("7b", 7_000_000_000, 6_500_000_000, 7_499_999_999),
        ("1.5G", 1_500_000_000, 1_450_000_000, 1_549_999_999),
        ("62k", 62_000, 61_500, 62_499),
        ("0.1K", 100, 50, 149),
        ("2T", 2 * 10**12, 15 * 10**11, 25 * 10**11 - 1),
        (" 51 ", 51, 51, 51),
    ],
)
def test_counts_and_the_range_they_stand_for(text: str, value: int, low: int, high: int) -> None:
    wanted = parse_count(text)
    assert wanted.value == value
    check = check_count("parameters", value, wanted)
    assert (check.low, check.high) == (low, high)
    assert check_count("parameters", low, wanted).ok
    assert check_count("parameters", high, wanted).ok
    assert not check_count("parameters", low - 1, wanted).ok
    assert not check_count("parameters", high + 1, wanted).ok


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lots", "is not a parameter count"),
        ("", "is not a parameter count"),
        ("-5", "is not a parameter count"),
        ("1e6", "is not a parameter count"),
        ("3,20", "is not a parameter count"),
        ("12,34,567", "is not a parameter count"),
        ("1.2.3", "is not a parameter count"),
        ("5X", "is not a parameter count"),
        ("51.5", "is not a whole number"),
        ("1.2345K", "is not a whole number"),
    ],
)
def test_bad_counts(text: str, message: str) -> None:
    with pytest.raises(ArgError, match=message):
        parse_count(text)


def test_tolerance_forms() -> None:
    assert parse_tolerance("1000").amount == 1000
    assert parse_tolerance("5K").amount == 5000
    assert parse_tolerance("1,000").amount == 1000
    pct = parse_tolerance("0.1%")
    assert pct.percent and pct.amount == Decimal("0.1")
    assert pct.of(Decimal(124_400_000)) == Decimal(124_400)
    for bad in ("-1%", "abc%", "%", "1%%", "x", "-3"):
        with pytest.raises(ArgError, match="--tolerance"):
            parse_tolerance(bad)


def test_an_explicit_tolerance_replaces_the_rounding_rule() -> None:
    wanted = parse_count("124.4M")
    exact = check_count("parameters", 124_400_000, wanted, parse_tolerance("0"))
    assert (exact.low, exact.high, exact.ok) == (124_400_000, 124_400_000, True)
    assert not check_count("parameters", 124_400_001, wanted, parse_tolerance("0")).ok
    pct = check_count("parameters", 124_500_000, wanted, parse_tolerance("0.1%"))
    assert (pct.low, pct.high, pct.ok) == (124_275_600, 124_524_400, True)
    absolute = check_count("parameters", 52, parse_count("50"), parse_tolerance("2"))
    assert (absolute.low, absolute.high, absolute.ok) == (48, 52, True)


def test_failure_messages() -> None:
    assert (
        check_count("parameters", 51, parse_count("50")).message("m.yaml")
        == "Check failed: expected 50 parameters, counted 51 (+1) in m.yaml"
    )
    assert check_count("trainable parameters", 51, parse_count("1.2B")).message("m.yaml") == (
        "Check failed: expected 1.2B trainable parameters (1,150,000,000 to 1,249,999,999, "
        "as rounded), counted 51 (-1,199,999,949 vs 1,200,000,000) in m.yaml"
    )
    assert check_count("parameters", 60, parse_count("50"), parse_tolerance("10%")).message(
        "m.yaml"
    ) == (
        "Check failed: expected 50 parameters (45 to 55, ± 10%), counted 60 (+10 vs 50) in m.yaml"
    )


# --- through the command line -------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--expect", "51"],
        ["--expect", "0.05K"],
        ["--expect", "50", "--tolerance", "1"],
        ["--expect", "50", "--tolerance", "2%"],
        ["--expect-trainable", "51"],
        ["--expect", "51", "--expect-trainable", "51"],
    ],
)
def test_expect_passes(args: list[str]) -> None:
    code, _, err = run("count", "sample_models/mlp.yaml", "-f", "json", *args)
    assert (code, err) == (0, "")


def test_expect_trainable_uses_the_trainable_count() -> None:
    # PartlyFrozen: 90 parameters, of which 72 are frozen.
    target = "sample_models.frozen:PartlyFrozen"
    code, _, err = run("count", target, "-f", "json", "--expect", "90", "--expect-trainable", "18")
    assert (code, err) == (0, ""), err
    code, _, err = run("count", target, "-f", "json", "--expect-trainable", "90")
    assert code == 1
    assert err == f"Check failed: expected 90 trainable parameters, counted 18 (-72) in {target}\n"


def test_both_checks_report_when_both_fail() -> None:
    code, out, err = run(
        "count", "sample_models/mlp.yaml", "--expect", "1.2B", "--expect-trainable", "50"
    )
    assert code == 1
    assert "total" in out  # the report is still printed, on stdout
    assert err.splitlines() == [
        "Check failed: expected 1.2B parameters (1,150,000,000 to 1,249,999,999, as rounded), "
        "counted 51 (-1,199,999,949 vs 1,200,000,000) in sample_models/mlp.yaml",
        "Check failed: expected 50 trainable parameters, counted 51 (+1) in sample_models/mlp.yaml",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--expect", "12.5"], "Error: Invalid value for '--expect': '12.5' is not a whole number"),
        (["--expect-trainable", "x"], "Error: Invalid value for '--expect-trainable': 'x' is not"),
        (["--expect", "51", "--tolerance", "lots"], "Error: Invalid value for '--tolerance'"),
        (["--tolerance", "1%"], "Error: --tolerance needs --expect N or --expect-trainable N"),
    ],
)
def test_bad_expectations_exit_2(args: list[str], message: str) -> None:
    code, out, err = run("count", "sample_models/mlp.yaml", *args)
    assert (code, out) == (2, "")
    assert err.startswith(message), err
    assert err.count("\n") == 1
