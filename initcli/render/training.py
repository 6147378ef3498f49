"""`compare --train` and `--seeds`: loss checkpoints, per-seed intervals, paired verdicts."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.experiments.seeds import ALPHA, Interval
from initcli.render.cells import finite, num, wrap_scheme

if TYPE_CHECKING:
    from initcli.report import ProbeReport, SchemeProbe

# compare --train prints the loss at this many evenly spaced steps after step 0.
CHECKPOINTS = 5
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}


def seeds_parts(sp: SchemeProbe) -> dict[str, Any]:
    """A scheme's JSON keys from --seeds: `seeds_probe`; with --train `runs`, `seeds_summary`."""
    data: dict[str, Any] = {}
    if sp.across is not None:
        ratios = [r for r in sp.across.std_ratios if r is not None and math.isfinite(r)]
        data["seeds_probe"] = {
            "std_ratios": [finite(r) for r in sp.across.std_ratios],
            "verdicts": list(sp.across.verdicts),
            "holds": sp.across.holds,
            "std_ratio_min": min(ratios) if ratios else None,
            "std_ratio_max": max(ratios) if ratios else None,
            "std_ratio_interval": (
                None if sp.across.ratio is None else interval_dict(sp.across.ratio)
            ),
        }
    if sp.summary is not None:
        reach = sp.summary.to_target
        data["runs"] = [
            {
                "seed_offset": k,
                "losses": [finite(v) for v in run.losses],
                "final_loss": finite(run.losses[-1]),
                "val_loss": finite(run.val_loss),
                "accuracy": run.accuracy,
                "steps_to_target": reach[k],
            }
            for k, run in enumerate(sp.runs)
        ]
        acc = sp.summary.accuracy
        data["seeds_summary"] = {
            "final_loss": interval_dict(sp.summary.final_loss),
            "accuracy": None if acc is None else interval_dict(acc),
            "steps_to_target": list(reach),
        }
    return data


def train_parts(report: ProbeReport) -> dict[str, Any]:
    """The report's top-level JSON keys from --train: `train` and `train_outcome`."""
    data: dict[str, Any] = {}
    if report.train is not None:
        t = report.train
        extra = {"optimizer": OPTIMIZER_NAMES.get(t.optimizer, t.optimizer), "data": "two moons"}
        if report.outcome is not None and report.outcome.data != "moons":
            extra["data"] = report.outcome.data
        data["train"] = asdict(t) | extra | {"data_option": t.data}
    if report.outcome is not None:
        o = report.outcome
        data["train_outcome"] = {
            "task": o.task,
            "steps": o.steps,
            "target_loss": o.target_loss,
            "loss_floor": o.floor,
            "metric": o.metric,
            "test": "paired t-test across seeds (scipy.stats.ttest_rel), Holm-adjusted",
            "alpha": ALPHA,
            "comparisons": [
                {
                    "a": t.a,
                    "b": t.b,
                    "metric": t.metric,
                    "mean_diff": finite(t.mean_diff),
                    "p_value": t.p_value,
                    "clear": t.clear,
                }
                for t in o.tests
            ],
        }
    return data


def checkpoints(steps: int) -> list[int]:
    return sorted({round(steps * k / CHECKPOINTS) for k in range(CHECKPOINTS + 1)})


def interval_dict(iv: Interval) -> dict[str, Any]:
    return {"mean": finite(iv.mean), "low": finite(iv.low), "high": finite(iv.high), "n": iv.n}


def across_lines(report: ProbeReport) -> list[Text]:
    """--seeds: each scheme's std ratio range, mean ± 95% t-interval, and the verdict only where
    every seed agrees."""
    lines = []
    for sp in report.schemes:
        a = sp.across
        if a is None:
            continue
        ratios = [r for r in a.std_ratios if r is not None and math.isfinite(r)]
        spread = f"{min(ratios):.3g}–{max(ratios):.3g}" if ratios else "undefined"
        if a.ratio is not None and a.ratio.half_width is not None:
            spread += f", mean {a.ratio.mean:.3g} ± {a.ratio.half_width:.2g} (95% t-interval)"
        n = len(a.verdicts)
        if a.holds is not None:
            said = f"{a.holds} at all {n} seeds"
        else:
            counts = {v: a.verdicts.count(v) for v in dict.fromkeys(a.verdicts)}
            said = (
                "no verdict: the seeds disagree ("
                + ", ".join(f"{v} {c}" for v, c in counts.items())
                + ")"
            )
        lines.append(Text(f"{sp.scheme} over {n} seeds: std ratio {spread}; {said}"))
    return lines


def seed_rows(report: ProbeReport) -> list[dict[str, Any]]:
    rows = []
    for sp in report.schemes:
        if sp.summary is None:
            continue
        final, acc = sp.summary.final_loss, sp.summary.accuracy
        rows.append(
            {
                "scheme": sp.scheme,
                "final_loss": finite(final.mean),
                "final_loss_low": finite(final.low),
                "final_loss_high": finite(final.high),
                "accuracy": None if acc is None else acc.mean,
                "accuracy_low": None if acc is None else finite(acc.low),
                "accuracy_high": None if acc is None else finite(acc.high),
                "steps_to_target": " ".join(
                    "–" if r is None else str(r) for r in sp.summary.to_target
                ),
            }
        )
    return rows


def loss_table(report: ProbeReport) -> Table:
    assert report.train is not None
    t = report.train
    o = report.outcome
    if o is None or (
        o.data == "moons" and t.seeds == 1 and t.batch is None and t.optimizer == "adam"
    ):
        title = (
            f"two moons ({t.points} points, noise {t.noise:g}) · Adam lr {t.lr:g}, full batch · "
            f"cross-entropy loss"
        )
    else:
        batch = "full batch" if t.batch is None else f"minibatch {t.batch}"
        loss = "cross-entropy" if o.task == "classification" else "MSE"
        seed = f" · seed {report.seed}" if t.seeds > 1 else ""
        title = (
            f"{o.data} · {OPTIMIZER_NAMES.get(t.optimizer, t.optimizer)} lr {t.lr:g}, {batch} · "
            f"{loss} training loss{seed}"
        )
    steps = len(next(sp for sp in report.schemes if sp.training).training.losses) - 1  # type: ignore[union-attr]
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("step", justify="right")
    trained = [sp for sp in report.schemes if sp.training is not None]
    for sp in trained:
        table.add_column(wrap_scheme(sp.scheme, 20), justify="right", overflow="fold")
    for step in checkpoints(steps):
        table.add_row(
            str(step), *[num(sp.training.losses[step], 4) for sp in trained if sp.training]
        )
    table.add_section()
    table.add_row("accuracy", *[percent(sp.training.accuracy) for sp in trained if sp.training])
    return table


def floor_lines(report: ProbeReport) -> list[Text]:
    """The least reachable loss, where the data knows it (--data markov: its entropy rate)."""
    o = report.outcome
    if o is None or o.floor is None:
        return []
    return [Text(f"loss floor: {o.floor:.4f} nats per token (the chain's entropy rate)")]


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def interval_text(iv: Interval | None, digits: int, percent: bool = False) -> str:
    if iv is None:
        return "–"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    mean = f"{iv.mean * scale:.{digits}f}{unit}"
    if iv.half_width is None:
        return mean
    return f"{mean} ± {iv.half_width * scale:.{digits}f}"


def seeds_table(report: ProbeReport) -> list[RenderableType]:
    """Per scheme over --seeds: mean ± 95% t-interval, steps to the target, the paired verdict."""
    o = report.outcome
    assert o is not None and report.train is not None
    n = report.train.seeds
    table = Table(
        title=(
            f"over {n} seed{'s' if n > 1 else ''} ({report.seed}…{report.seed + n - 1}) · "
            f"mean ± 95% t-interval"
        ),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("scheme", style="bold")
    table.add_column(f"final {o.metric}", justify="right", no_wrap=True)
    if o.task == "classification":
        table.add_column("accuracy", justify="right", no_wrap=True)
    table.add_column(f"steps to loss ≤ {o.target_loss:.3g}", justify="right")
    for sp in report.schemes:
        if sp.summary is None:
            continue
        reach = sp.summary.to_target
        cells = [wrap_scheme(sp.scheme), interval_text(sp.summary.final_loss, 4)]
        if o.task == "classification":
            cells.append(interval_text(sp.summary.accuracy, 1, percent=True))
        cells.append(" ".join("–" if r is None else str(r) for r in reach))
        table.add_row(*cells)
    return [table, *[Text(line) for line in verdict_lines(report)]]


def verdict_lines(report: ProbeReport) -> list[str]:
    """One line per pair of schemes: clear (Holm-adjusted paired t-test) or within noise."""
    o = report.outcome
    assert o is not None
    lines = []
    for t in o.tests:
        better, worse = (t.a, t.b) if t.mean_diff < 0 else (t.b, t.a)
        diff = abs(t.mean_diff)
        if t.p_value is None:
            what = "no spread to test (identical per-seed values or one seed)"
            lines.append(f"{t.a} vs {t.b}: {o.metric} differs by {diff:.4g}; {what}")
        elif t.clear:
            lines.append(
                f"clear: {better} has the lower {o.metric} than {worse} by {diff:.4g} "
                f"(paired t-test over seeds, p = {t.p_value:.2g}, Holm-adjusted α {ALPHA:g})"
            )
        else:
            lines.append(
                f"within noise: {t.a} vs {t.b}, {o.metric} differs by {diff:.4g} "
                f"(paired t-test over seeds, p = {t.p_value:.2g})"
            )
    return lines


def shows_seeds(report: ProbeReport) -> bool:
    """Today's single moons run keeps its output; anything new gets the summary table."""
    t = report.train
    o = report.outcome
    return (
        t is not None
        and o is not None
        and (t.seeds > 1 or o.data != "moons" or bool(t.val_fraction))
    )
