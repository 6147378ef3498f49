"""`initcli probe` and `compare`: the probe object (JSON contract), verdicts, sparklines, losses."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from initcli.render.cells import finite, num, pct
from initcli.render.writer import View, to_markdown
from initcli.seeds import ALPHA, Interval
from initcli.text import printable

if TYPE_CHECKING:
    from initcli.probe import BlockStats, LayerStats
    from initcli.report import ProbeReport, SchemeProbe

SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 16
# A sparkline shows at most this many blocks (evenly spaced through a deeper net).
MAX_SPARK = 40
# compare --train prints the loss at this many evenly spaced steps after step 0.
CHECKPOINTS = 5
OPTIMIZER_NAMES = {"adam": "Adam", "sgd": "SGD"}
VERDICT_STYLE = {
    "stable": "green",
    "vanishing": "bold red",
    "exploding": "bold red",
    "saturated": "bold yellow",
    "dead": "bold red",
    "symmetric": "bold yellow",
}


def _log_scale(stds: Sequence[float | None]) -> tuple[float, float]:
    """The log10 range of the positive, finite stds: one scale for a whole report."""
    logs = [math.log10(s) for s in stds if s is not None and s > 0 and math.isfinite(s)]
    if not logs:
        return 0.0, 1.0
    lo, hi = min(logs), max(logs)
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _level(std: float, scale: tuple[float, float], levels: int) -> int:
    lo, hi = scale
    frac = (math.log10(std) - lo) / (hi - lo)
    return min(levels - 1, max(0, round(frac * (levels - 1))))


def sparkline(stds: Sequence[float | None], scale: tuple[float, float]) -> str:
    """Std by depth on a log scale: `·` an output that is exactly constant, `!` NaN/Inf."""
    out = []
    for std in stds:
        if std is None or not math.isfinite(std):
            out.append("!")
        elif std == 0:
            out.append("·")
        else:
            out.append(SPARK[_level(std, scale, len(SPARK))])
    return "".join(out)


def std_bar(std: float | None, scale: tuple[float, float], width: int = BAR_WIDTH) -> str:
    """A bar whose length is the std's place on the report's log scale."""
    if std is None or not math.isfinite(std):
        return "!"
    if std == 0:
        return "·"
    return "█" * (1 + _level(std, scale, width))


def _checkpoints(steps: int) -> list[int]:
    return sorted({round(steps * k / CHECKPOINTS) for k in range(CHECKPOINTS + 1)})


def layer_dict(layer: LayerStats) -> dict[str, Any]:
    return {
        "name": layer.name,
        "type": layer.type,
        "shape": list(layer.shape),
        "mean": finite(layer.mean),
        "std": finite(layer.std),
        "zero_frac": layer.zero_frac,
        "saturated_frac": layer.saturated_frac,
        "grad_norm": finite(layer.grad_norm),
        "ends_block": layer.ends_block,
    }


def block_dict(block: BlockStats) -> dict[str, Any]:
    return {
        "name": block.name,
        "layer": block.layer,
        "mean": finite(block.mean),
        "std": finite(block.std),
        "zero_frac": block.zero_frac,
        "saturated_frac": block.saturated_frac,
        "grad_norm": finite(block.grad_norm),
    }


def scheme_probe_dict(sp: SchemeProbe) -> dict[str, Any]:
    r = sp.result
    data: dict[str, Any] = {
        "scheme": sp.scheme,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "std_ratio": finite(r.std_ratio),
        "probe_loss": finite(r.loss),
        "layers": [layer_dict(layer) for layer in r.layers],
        "blocks": [block_dict(b) for b in r.blocks],
        "grads": [{"name": g.name, "grad_norm": finite(g.grad_norm)} for g in r.grads],
    }
    if sp.training is not None:
        data["losses"] = [finite(v) for v in sp.training.losses]
        data["accuracy"] = sp.training.accuracy
        data["val_loss"] = finite(sp.training.val_loss)
    if sp.across is not None:
        ratios = [r for r in sp.across.std_ratios if r is not None and math.isfinite(r)]
        data["seeds_probe"] = {
            "std_ratios": [finite(r) for r in sp.across.std_ratios],
            "verdicts": list(sp.across.verdicts),
            "holds": sp.across.holds,
            "std_ratio_min": min(ratios) if ratios else None,
            "std_ratio_max": max(ratios) if ratios else None,
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
            "final_loss": _interval_dict(sp.summary.final_loss),
            "accuracy": None if acc is None else _interval_dict(acc),
            "steps_to_target": list(reach),
        }
    return data


def _interval_dict(iv: Interval) -> dict[str, Any]:
    return {"mean": finite(iv.mean), "low": finite(iv.low), "high": finite(iv.high), "n": iv.n}


def probe_dict(report: ProbeReport) -> dict[str, Any]:
    """The `initcli probe|compare --format json` object (DESIGN §2: `schemes[]`)."""
    from initcli import verdict

    data: dict[str, Any] = {
        "target": report.target,
        "seed": report.seed,
        "input": {
            "shape": list(report.input_shape),
            "kind": report.input_kind,
            "source": report.input_source,
        },
        "thresholds": {
            "vanishing_ratio": verdict.VANISHING_RATIO,
            "exploding_ratio": verdict.EXPLODING_RATIO,
            "saturation_level": verdict.SATURATION_LEVEL,
            "saturated_frac": verdict.SATURATED_FRAC,
            "dead_frac": verdict.DEAD_FRAC,
        },
        "schemes": [scheme_probe_dict(sp) for sp in report.schemes],
    }
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
    # The policies' remarks (the `Note:` lines on stderr) came later than every other key: last.
    data["remarks"] = list(report.remarks)
    return data


def _summary_rows(report: ProbeReport) -> list[dict[str, Any]]:
    rows = []
    for sp in report.schemes:
        r = sp.result
        sats = [b.saturated_frac for b in r.blocks if b.saturated_frac is not None]
        row: dict[str, Any] = {
            "scheme": sp.scheme,
            "verdict": r.verdict.value,
            "first_std": finite(r.blocks[0].std),
            "last_std": finite(r.blocks[-1].std),
            "std_ratio": finite(r.std_ratio),
            "max_zero_frac": max(b.zero_frac for b in r.blocks),
            "max_saturated_frac": max(sats) if sats else None,
        }
        if sp.training is not None:
            losses = sp.training.losses
            for step in _checkpoints(len(losses) - 1):
                row[f"loss@{step}"] = finite(losses[step])
            row["accuracy"] = sp.training.accuracy
        row["reason"] = r.reason
        rows.append(row)
    return rows


def _input_line(report: ProbeReport) -> str:
    shape = "×".join(map(str, report.input_shape))
    return (
        f"input {shape} ({report.input_kind}; shape from {report.input_source}), seed {report.seed}"
    )


def _csv_rows(report: ProbeReport, compare: bool) -> list[dict[str, Any]]:
    if compare and report.train is not None:
        # compare --train: the loss curves, one row per scheme and step.
        return [
            {
                "scheme": sp.scheme,
                "step": step,
                "loss": finite(loss),
                "accuracy": sp.training.accuracy if step == len(sp.training.losses) - 1 else None,
            }
            for sp in report.schemes
            if sp.training is not None
            for step, loss in enumerate(sp.training.losses)
        ]
    return [
        {"scheme": sp.scheme, "verdict": sp.result.verdict.value} | layer_dict(layer)
        for sp in report.schemes
        for layer in sp.result.layers
    ]


def _markdown(report: ProbeReport, compare: bool) -> str:
    parts = [to_markdown(_summary_rows(report))]
    if compare:
        parts.append(to_markdown(_side_by_side_rows(report)))
    else:
        for sp in report.schemes:
            parts.append(f"**{sp.scheme}**: {sp.result.verdict.value}\n")
            parts.append(to_markdown([block_dict(b) for b in sp.result.blocks]))
    if report.outcome is not None and _shows_seeds(report):
        parts.append(to_markdown(_seed_rows(report)))
        parts.append("\n".join(verdict_lines(report)) + "\n")
    parts.append(_input_line(report) + "\n")
    return "\n".join(parts)


def _seed_rows(report: ProbeReport) -> list[dict[str, Any]]:
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


def _side_by_side_rows(report: ProbeReport) -> list[dict[str, Any]]:
    """Block by block, each scheme's output std in its own column (schemes share the model)."""
    longest = max(report.schemes, key=lambda sp: len(sp.result.blocks))
    rows = []
    for i, block in enumerate(longest.result.blocks):
        row: dict[str, Any] = {"block": block.name}
        for sp in report.schemes:
            blocks = sp.result.blocks
            row[f"std {sp.scheme}"] = finite(blocks[i].std) if i < len(blocks) else None
        rows.append(row)
    return rows


def _scale(report: ProbeReport) -> tuple[float, float]:
    return _log_scale([b.std for sp in report.schemes for b in sp.result.blocks])


def _verdict_text(value: str) -> Text:
    return Text(value, style=VERDICT_STYLE.get(value, ""))


def _wrap_scheme(text: str, width: int = 28) -> str:
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


def _summary_table(report: ProbeReport, scale: tuple[float, float]) -> list[RenderableType]:
    table = Table(
        title="verdicts · std by depth: block outputs, on one log scale for all rows",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("scheme", style="bold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("std by depth", no_wrap=True)
    table.add_column("first → last std", no_wrap=True, justify="right")
    table.add_column("ratio", justify="right", no_wrap=True)
    for sp in report.schemes:
        r = sp.result
        stds = _thin([b.std for b in r.blocks], MAX_SPARK)
        table.add_row(
            _wrap_scheme(sp.scheme),
            _verdict_text(r.verdict.value),
            sparkline(stds, scale),
            f"{num(r.blocks[0].std, 3)} → {num(r.blocks[-1].std, 3)}",
            num(r.std_ratio, 3),
        )
    reasons = [Text(f"{sp.scheme}: {sp.result.reason}") for sp in report.schemes]
    return [table, *reasons, *_across_lines(report)]


def _across_lines(report: ProbeReport) -> list[Text]:
    """--seeds: each scheme's std ratio range and the verdict only where every seed agrees."""
    lines = []
    for sp in report.schemes:
        a = sp.across
        if a is None:
            continue
        ratios = [r for r in a.std_ratios if r is not None and math.isfinite(r)]
        spread = f"{min(ratios):.3g}–{max(ratios):.3g}" if ratios else "undefined"
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


def _thin(values: Sequence[float | None], most: int) -> list[float | None]:
    """At most `most` evenly spaced values, first and last kept: a sparkline for a deep net."""
    if len(values) <= most:
        return list(values)
    step = (len(values) - 1) / (most - 1)
    return [values[round(i * step)] for i in range(most)]


def _blocks_table(report: ProbeReport, sp: SchemeProbe, scale: tuple[float, float]) -> Table:
    r = sp.result
    table = Table(
        title=Text.assemble(f"{report.target} · {sp.scheme} · ", _verdict_text(r.verdict.value)),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("block", overflow="fold")
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("std", justify="right", no_wrap=True)
    table.add_column("std (log scale)", no_wrap=True)
    table.add_column("zeros", justify="right", no_wrap=True)
    table.add_column("saturated", justify="right", no_wrap=True)
    table.add_column("grad norm", justify="right", no_wrap=True)
    for b in r.blocks:
        table.add_row(
            printable(b.name),
            num(b.mean, 3),
            num(b.std, 3),
            std_bar(b.std, scale),
            pct(b.zero_frac),
            pct(b.saturated_frac),
            num(b.grad_norm, 3),
        )
    return table


def _side_by_side_table(report: ProbeReport, scale: tuple[float, float]) -> Table:
    table = Table(
        title=f"{report.target} · output std per block",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("block", overflow="fold")
    for sp in report.schemes:
        table.add_column(_wrap_scheme(sp.scheme, 20), justify="right", overflow="fold")
    for row in _side_by_side_rows(report):
        cells: list[RenderableType] = [printable(row["block"])]
        for sp in report.schemes:
            std = row[f"std {sp.scheme}"]
            cells.append(f"{num(std, 3)} {sparkline([std], scale)}")
        table.add_row(*cells)
    return table


def _loss_table(report: ProbeReport) -> Table:
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
        table.add_column(_wrap_scheme(sp.scheme, 20), justify="right", overflow="fold")
    for step in _checkpoints(steps):
        table.add_row(
            str(step), *[num(sp.training.losses[step], 4) for sp in trained if sp.training]
        )
    table.add_section()
    table.add_row("accuracy", *[_pct(sp.training.accuracy) for sp in trained if sp.training])
    return table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _iv(iv: Interval | None, digits: int, percent: bool = False) -> str:
    if iv is None:
        return "–"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    mean = f"{iv.mean * scale:.{digits}f}{unit}"
    if iv.half_width is None:
        return mean
    return f"{mean} ± {iv.half_width * scale:.{digits}f}"


def _seeds_table(report: ProbeReport) -> list[RenderableType]:
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
        cells = [_wrap_scheme(sp.scheme), _iv(sp.summary.final_loss, 4)]
        if o.task == "classification":
            cells.append(_iv(sp.summary.accuracy, 1, percent=True))
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


def _tables(report: ProbeReport, compare: bool) -> list[RenderableType]:
    scale = _scale(report)
    parts: list[RenderableType] = []
    if compare:
        parts.append(_side_by_side_table(report, scale))
    else:
        parts += [_blocks_table(report, sp, scale) for sp in report.schemes]
    parts += _summary_table(report, scale)
    if report.train is not None:
        parts.append(_loss_table(report))
        if report.outcome is not None and _shows_seeds(report):
            parts += _seeds_table(report)
    parts.append(Text(_input_line(report), style="dim"))
    return parts


def _shows_seeds(report: ProbeReport) -> bool:
    """Today's single moons run keeps its output; anything new gets the summary table."""
    t = report.train
    o = report.outcome
    return (
        t is not None
        and o is not None
        and (t.seeds > 1 or o.data != "moons" or bool(t.val_fraction))
    )


def probe_view(report: ProbeReport, compare: bool = False) -> View:
    """probe (per scheme, block by block) or, with compare, schemes side by side and losses."""
    return View(
        probe_dict(report),
        _csv_rows(report, compare),
        lambda _width: _tables(report, compare),
        markdown=lambda: _markdown(report, compare),
    )
