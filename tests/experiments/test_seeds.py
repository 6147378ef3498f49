"""initcli.experiments.seeds: the t-interval and the Holm-corrected paired tests across seeds."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run
from scipy import stats

from initcli.experiments import seeds

MOONS = "sample_models/moons.yaml"


@pytest.mark.parametrize(
    "values",
    [[1.0, 2.0, 3.0], [0.31, 0.29, 0.35, 0.30], [2.5, -1.0], [1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2]],
    ids=["n=3", "n=4", "n=2", "n=5"],
)
def test_interval_is_scipys_student_t_interval(values: list[float]) -> None:
    iv = seeds.interval(values)
    n = len(values)
    low, high = stats.t.interval(0.95, n - 1, loc=sum(values) / n, scale=stats.sem(values))
    assert iv.n == n and iv.mean == pytest.approx(sum(values) / n, rel=1e-15)
    assert (iv.low, iv.high) == pytest.approx((low, high), rel=1e-12)
    assert iv.half_width == pytest.approx((high - low) / 2, rel=1e-12)


def test_interval_of_equal_values_has_no_width() -> None:
    iv = seeds.interval([0.5, 0.5, 0.5])
    assert (iv.mean, iv.low, iv.high, iv.half_width) == (0.5, 0.5, 0.5, 0.0)


def test_paired_tests_are_scipys_ttest_rel_per_pair() -> None:
    a, b = [0.52, 0.48, 0.61, 0.55], [0.50, 0.41, 0.60, 0.47]
    (test,) = seeds.paired_tests("val_loss", [("a", a), ("b", b)])
    assert (test.a, test.b, test.metric) == ("a", "b", "val_loss")
    assert test.mean_diff == pytest.approx(float(np.mean(np.subtract(a, b))), rel=1e-12)
    assert test.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12, abs=0)
    assert test.clear == (test.p_value < seeds.ALPHA)
    # One seed: nothing to test.
    (one,) = seeds.paired_tests("loss", [("a", [1.0]), ("b", [2.0])])
    assert (one.mean_diff, one.p_value, one.clear) == (-1.0, None, False)


def test_interval_and_holm() -> None:
    iv = seeds.interval([1.0, 2.0, 3.0])
    assert iv.mean == 2.0 and iv.half_width == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3))
    assert seeds.interval([5.0]).low is None
    tests = seeds.paired_tests("loss", [("a", [1.0, 2.0, 3.0, 4.0]), ("b", [1.0, 2.0, 3.0, 4.0])])
    assert tests[0].p_value is None and not tests[0].clear


def _holm_adjusted(p_values: list[float]) -> list[float]:
    """Holm's adjusted p-values, written as the textbook defines them: sorted ascending, the
    i-th (from 0) times m − i, made non-decreasing, capped at 1; returned in the input order."""
    order = sorted(range(len(p_values)), key=lambda k: p_values[k])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - i) * p_values[k]))
        adjusted[k] = running
    return adjusted


# Losses of 3 schemes over 5 seeds, chosen for their paired t-test p-values (scipy's ttest_rel).
# Step-down over 3 pairs: 0.00319·3 = 0.0096 < 0.05 clear; 0.0312·2 = 0.0625 stops there, so
# 0.0459 (below 0.05 alone, and ·1 below it too) is not clear either. Uncorrected: all 3 clear;
# without the stop: b–c and a–c; step-up (Hochberg): all 3.
HOLM_STOPS = (
    [("a", [10.0, 12.0, 11.0, 13.0, 9.0]), ("b", [10.0, 16.0, 16.0, 15.0, 12.0]),
     ("c", [6.0, 8.0, 12.0, 10.0, 4.0])],
    [0.0312298139, 0.0459115124, 0.0031911782],
    [0.0624596278, 0.0624596278, 0.0095735345],
    [False, False, True],
)  # fmt: skip
# 0.0046·3 = 0.0138 clear; 0.0222·2 = 0.0444 clear (Bonferroni's ·3 = 0.0666 would not be);
# 0.794 not.
HOLM_STEPS_DOWN = (
    [("a", [10.0, 12.0, 11.0, 13.0, 9.0]), ("b", [16.0, 15.0, 15.0, 15.0, 13.0]),
     ("c", [11.0, 14.0, 12.0, 7.0, 9.0])],
    [0.0045970095, 0.7942947428, 0.0221943199],
    [0.0137910286, 0.7942947428, 0.0443886398],
    [True, False, True],
)  # fmt: skip


@pytest.mark.parametrize(
    ("per_scheme", "raw", "adjusted", "clear"),
    [HOLM_STOPS, HOLM_STEPS_DOWN],
    ids=["stops-at-the-first-failure", "not-bonferroni"],
)
def test_holm_correction_over_three_schemes_matches_a_hand_computation(
    per_scheme: list[tuple[str, list[float]]],
    raw: list[float],
    adjusted: list[float],
    clear: list[bool],
) -> None:
    tests = seeds.paired_tests("loss", per_scheme)
    assert [(t.a, t.b) for t in tests] == [("a", "b"), ("a", "c"), ("b", "c")]
    assert [t.p_value for t in tests] == pytest.approx(raw, rel=1e-6, abs=0)
    assert _holm_adjusted(raw) == pytest.approx(adjusted, rel=1e-6)
    assert [t.clear for t in tests] == clear == [a < seeds.ALPHA for a in adjusted]


def test_compare_three_schemes_over_seeds_reports_holm_adjusted_clear() -> None:
    code, out, err = run("compare", MOONS, "-i", "kaiming_normal", "-i", "xavier_uniform", "-i",
                         "orthogonal", "--train", "15", "--seeds", "5", "-f", "json")  # fmt: skip
    assert code == 0, err
    data = json.loads(out)
    comparisons = data["train_outcome"]["comparisons"]
    assert len(comparisons) == 3
    raw = [c["p_value"] for c in comparisons]
    # Seeded: p = 0.0316, 0.0162, 0.0388, each below α alone; Holm clears only 0.0162 (·3).
    assert all(p < seeds.ALPHA for p in raw)
    assert [c["clear"] for c in comparisons] == [a < seeds.ALPHA for a in _holm_adjusted(raw)]
    assert [c["clear"] for c in comparisons] == [False, True, False]


def _false_alarms(sets: int, runs: int, schemes: int) -> int:
    """Seed sets (of `runs` seeds) in which any pair of `schemes` is called `clear`, under the
    null: one scheme against itself under other init seeds (same data, same batches)."""
    from initcli.experiments import data as datasets
    from initcli.experiments import training

    d = datasets.load_data("moons", 0, 200, 0.2, None)
    alarms = 0
    for s in range(sets):
        finals: dict[str, list[float]] = {f"s{j}": [] for j in range(schemes)}
        for k in range(runs):
            for j, name in enumerate(finals):
                torch.manual_seed(s * 100 + k + 10_000 * j)
                model = torch.nn.Sequential(
                    torch.nn.Linear(2, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
                )
                r = training.fit(model, d, training.Schedule(20, 0.01), seed=s * 100 + k)
                finals[name].append(r.losses[-1])
        alarms += any(t.clear for t in seeds.paired_tests("loss", list(finals.items())))
    return alarms


@pytest.mark.slow
def test_paired_test_false_alarm_rate_on_real_training() -> None:
    """Over 200 seed sets of 5, the share called `clear` must stay near α = 0.05 (binomial 99%
    bound for n=200: ≤ 0.095)."""
    sets = 200
    rate = _false_alarms(sets, 5, 2) / sets
    print(f"false-alarm rate {rate:.3f} over {sets} seed sets of 5")
    assert rate <= 0.095


def test_paired_tests_false_alarms_on_real_training_smoke() -> None:
    # The slow test's null in small: 10 seed sets of 3 runs, 3 schemes (3 pairs, Holm-corrected:
    # any false `clear` in a set at most α = 0.05). Binomial(10, 0.05): ≥ 3 sets at 1.2%.
    assert _false_alarms(10, 3, 3) <= 2


def test_interval_every_field_and_two_seeds() -> None:
    # n = 2 is the smallest sample with an interval: t(0.975, 1) = 12.706, s = √2/2, √n = √2.
    iv = seeds.interval([1.0, 2.0])
    half = stats.t.ppf(0.975, 1) * (math.sqrt(2) / 2) / math.sqrt(2)
    assert (iv.mean, iv.n) == (1.5, 2)
    assert (iv.low, iv.high, iv.half_width) == pytest.approx((1.5 - half, 1.5 + half, half))
    assert seeds.interval([5.0]) == seeds.Interval(5.0, None, None, 1)
    assert seeds.interval([5.0]).half_width is None
    # The spread enters as a factor: s = 2 doubles the half-width of s = 1.
    wide, narrow = seeds.interval([0.0, 4.0, 2.0]), seeds.interval([1.0, 3.0, 2.0])
    assert wide.half_width == pytest.approx(2 * narrow.half_width)


def test_paired_tests_every_field_two_seeds_and_unequal_lengths() -> None:
    (t,) = seeds.paired_tests("acc", [("a", [1.0, 3.0]), ("b", [0.5, 2.0])])
    # Two seeds are enough for ttest_rel: diffs 0.5 and 1.0, mean 0.75, p = 0.205.
    p = stats.ttest_rel([1.0, 3.0], [0.5, 2.0]).pvalue
    assert (t.a, t.b, t.metric, t.mean_diff, t.p_value, t.clear) == (
        "a",
        "b",
        "acc",
        0.75,
        p,
        False,
    )
    assert 0.2 < p < 0.21
    with pytest.raises(ValueError, match="zip"):
        seeds.paired_tests("acc", [("a", [1.0, 3.0, 2.0]), ("b", [0.5, 2.0])])
