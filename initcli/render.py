"""Render report dataclasses as a rich table, JSON, CSV or Markdown; no tensor math here."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TextIO, TypeGuard, cast

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from initcli.verdict import fraction

if TYPE_CHECKING:
    from initcli.baseline import CheckReport, TargetCheck
    from initcli.probe import BlockStats, LayerStats
    from initcli.report import (
        CheckpointReport,
        CountReport,
        DefaultsReport,
        GainRow,
        InspectReport,
        ParamReport,
        ProbeReport,
        SchemeProbe,
        SchemeRow,
    )

    Report = CountReport | InspectReport | CheckpointReport | CheckReport | Sequence[SchemeRow]


PIPED_WIDTH = 100


def stdout_console() -> Console:
    """The console results go to: colour only on a terminal and never with NO_COLOR (rich's own
    rules); piped output gets 100 columns (rich would pick 80) unless COLUMNS says otherwise."""
    console = Console(soft_wrap=False)
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


STATUS_STYLE = {"ok": "green", "off": "bold red", "symmetric": "yellow", "unknown": "dim"}
# How schemes.initialize labels an `auto` choice: `<scheme> ← <why>`.
AUTO_ARROW = " ← "


def _finite(value: float | None) -> float | None:
    # JSON has no NaN/Inf; such tensors are reported with status "off", the value as null.
    return value if value is None or math.isfinite(value) else None


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


# --- plain data (JSON / CSV / Markdown) ---------------------------------------------------------


def count_dict(report: CountReport) -> dict[str, Any]:
    """The `initcli count --format json` object (DESIGN §2), keys in contract order."""
    c = report.counts
    return {
        "target": report.target,
        "total": c.total,
        "trainable": c.trainable,
        "frozen": c.frozen,
        "buffers": c.buffers,
        "torchinfo": None
        if c.torchinfo is None
        else {"total": c.torchinfo.total, "trainable": c.torchinfo.trainable},
        "agree": c.agree,
        "notes": list(c.notes),
        "modules": [asdict(m) for m in c.modules],
    }


_FLOAT_KEYS = (
    "mean", "var", "std", "min", "max", "expected_mean", "expected_var", "var_ratio", "mean_shift",
)  # fmt: skip


def param_dict(p: ParamReport) -> dict[str, Any]:
    row = asdict(p)
    row["shape"] = None if p.shape is None else list(p.shape)
    for key in _FLOAT_KEYS:
        if key in row:
            row[key] = _finite(row[key])
    return row


def inspect_dict(report: InspectReport) -> dict[str, Any]:
    """The `initcli inspect --format json` object (DESIGN §2)."""
    return {
        "target": report.target,
        "scheme": report.scheme,
        "seed": report.seed,
        "params": [param_dict(p) for p in report.params],
        "counts": count_dict(report.counts),
    }


def checkpoint_dict(report: CheckpointReport) -> dict[str, Any]:
    """`initcli inspect FILE --format json`: the inspect object, `scheme` being --against (or
    null) and `seed` null; each param adds `var_ratio` and `mean_shift`."""
    return {
        "target": report.target,
        "scheme": report.against,
        "seed": None,
        "params": [param_dict(p) for p in report.params],
        "counts": count_dict(report.counts),
    }


def _args_text(args: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in args.items())


def change_rows(report: CheckReport) -> list[dict[str, Any]]:
    """One row per difference found by `initcli check`, for CSV and Markdown."""
    return [
        {
            "target": t.target,
            "args": _args_text(t.args),
            "field": c.field,
            "name": c.name,
            "type": c.type,
            "baseline": c.before,
            "now": c.after,
            "change": None if c.delta is None else f"{c.delta:+,}",
        }
        for t in report.targets
        for c in t.changes
    ]


def check_dict(report: CheckReport) -> dict[str, Any]:
    """`initcli check --format json`."""
    return {
        "baseline": report.baseline,
        "ok": report.ok,
        "targets": [
            {
                "target": t.target,
                "args": dict(t.args),
                "ok": t.ok,
                "total": {"baseline": t.total_before, "now": t.total_after},
                "changes": [
                    {
                        "field": c.field,
                        "name": c.name,
                        "type": c.type,
                        "baseline": c.before,
                        "now": c.after,
                        "change": c.delta,
                    }
                    for c in t.changes
                ],
            }
            for t in report.targets
        ],
    }


def check_summary(report: CheckReport) -> str:
    n = len(report.targets)
    if report.ok:
        return f"all {n} target{'s' if n != 1 else ''} match {report.baseline}"
    return f"{len(report.changed)} of {n} targets changed since {report.baseline}"


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


def _csv(rows: Sequence[dict[str, Any]], header: Sequence[str] = ()) -> str:
    if not rows and not header:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: " ".join(map(str, v)) if isinstance(v, list) else ("" if v is None else v)
                for k, v in row.items()
            }
        )
    return out.getvalue()


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
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
            value = _num(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            value = f"{value:,}"  # read by people in a pull request: 118,282, not 118282
        return str(value).replace("|", "\\|")

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(row[k]) for k in header) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _totals_line(report: CountReport) -> str:
    c = report.counts
    ti = "torchinfo n/a" if c.torchinfo is None else f"torchinfo {c.torchinfo.total:,}"
    verdict = "agree" if c.agree else "differ"
    return (
        f"total {c.total:,} · trainable {c.trainable:,} · frozen {c.frozen:,} · "
        f"buffers {c.buffers:,} · {ti} ({verdict})"
    )


def _is_check(report: object) -> TypeGuard[CheckReport]:
    # Only `initcli check` makes a CheckReport, and it has loaded initcli.baseline to do so;
    # other commands need not import it (and pydantic with it: ~60 ms of every `count`).
    baseline = sys.modules.get("initcli.baseline")
    return baseline is not None and isinstance(report, baseline.CheckReport)


def render_text(report: Report, fmt: OutputFormat) -> str:
    """JSON, CSV or Markdown text for a report."""
    from initcli.report import CheckpointReport, CountReport, InspectReport

    header: list[str] = []
    if isinstance(report, CountReport):
        data: Any = count_dict(report)
        rows = data["modules"]
        extra = [_totals_line(report), *report.counts.notes]
    elif isinstance(report, InspectReport):
        data = inspect_dict(report)
        rows = data["params"]
        extra = [
            f"scheme {report.scheme}, seed {report.seed}",
            _totals_line(report.counts),
            *report.counts.counts.notes,
        ]
    elif isinstance(report, CheckpointReport):
        data = checkpoint_dict(report)
        rows = data["params"]
        against = f"against {report.against}" if report.against else "no --against scheme"
        extra = [
            f"{report.format} weights file, {against}",
            _totals_line(report.counts),
            *report.counts.counts.notes,
        ]
    elif _is_check(report):
        data = check_dict(report)
        rows = change_rows(report)
        header = ["target", "args", "field", "name", "type", "baseline", "now", "change"]
        extra = [check_summary(report)]
    else:
        # What is left is the schemes listing (a TypeGuard does not narrow the else branch).
        data = schemes_dicts(cast("Sequence[SchemeRow]", report))
        rows = data
        extra = []
    if fmt is OutputFormat.json:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.csv:
        return _csv(rows, header)
    if fmt is OutputFormat.markdown:
        tail = "".join(f"\n{line}\n" for line in extra)
        return (_markdown(rows) + tail).lstrip("\n")
    raise ValueError(f"{fmt} is not a text format")


# --- rich tables ---------------------------------------------------------------------------------


def _totals_panel(report: CountReport) -> Panel:
    c = report.counts
    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", style="bold")
    grid.add_column(justify="right")
    grid.add_column()
    grid.add_row("total", f"{c.total:,}", "parameters, each tensor once")
    grid.add_row("trainable", f"{c.trainable:,}", "")
    grid.add_row("frozen", f"{c.frozen:,}", "")
    grid.add_row("buffers", f"{c.buffers:,}", "elements, not in the total")
    if c.torchinfo is None:
        grid.add_row("torchinfo", "–", Text("no count (see notes)", style="yellow"))
    else:
        verdict = Text("agrees", style="green") if c.agree else Text("differs", style="bold red")
        grid.add_row("torchinfo", f"{c.torchinfo.total:,}", verdict)
    parts: list[RenderableType] = [grid]
    if c.notes:
        parts.append(Text(""))
        parts.extend(Text(f"• {note}") for note in c.notes)
    return Panel(Group(*parts), title="totals", title_align="left", box=box.ROUNDED, expand=False)


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "uninit."
    return "×".join(map(str, shape)) if shape else "scalar"


def count_table(report: CountReport) -> list[RenderableType]:
    table = Table(title=f"parameters of {report.target}", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("module", overflow="fold")
    table.add_column("type")
    table.add_column("hand count", overflow="fold")
    table.add_column("params", justify="right")
    for m in report.counts.modules:
        table.add_row(m.name, m.type, m.formula, f"{m.params:,}")
    return [table, _totals_panel(report)]


def wrap_after(text: str, separator: str, width: int) -> str:
    """Break `text` after each `separator` where needed so lines fit `width` (greedy packing).

    The separator's trailing space is dropped throughout: ", " is written as ",".
    """
    lines: list[str] = []
    line = ""
    kept = separator.rstrip()
    for part in text.replace(separator, kept + "\n").split("\n"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = ""
        line += part
    lines.append(line)
    return "\n".join(lines)


def wrap_dotted(name: str, width: int) -> str:
    """A long dotted parameter name broken after its dots (rich itself breaks only on spaces)."""
    return wrap_after(name, ".", width)


def _param_row(p: ParamReport, with_grad: bool, name_width: int) -> list[RenderableType]:
    fans = "–" if p.fan_in is None else f"{p.fan_in}→{p.fan_out}"
    status = Text(p.status, style=STATUS_STYLE.get(p.status, ""))
    # The table names the init function only; its arguments are in the JSON and in `schemes`.
    # An `auto` choice keeps its short label (`kaiming_normal(relu)`); the reason is listed below.
    init = p.init.split(AUTO_ARROW)[0] if AUTO_ARROW in p.init else p.init.split("(")[0]
    row: list[RenderableType] = [
        wrap_dotted(p.name, name_width),
        _shape(p.shape),
        fans,
        _num(p.mean, 3),
        _num(p.var),
        _num(p.expected_var),
        init,
        status,
    ]
    if with_grad:
        row.append(Text("yes") if p.requires_grad else Text("frozen", style="cyan"))
    return row


def inspect_table(report: InspectReport, width: int = 100) -> list[RenderableType]:
    # The heading is printed above the table, not as its title: a title wraps at the table's
    # width, and a long scheme description is wider than a small model's table.
    heading = Text(f"{report.target} · {report.scheme} · seed {report.seed}", style="italic")
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    # Everything but the name is short and fixed; the name gets what is left, broken at dots.
    name_width = max(16, width - 82)
    auto_labels = [p.init.split(AUTO_ARROW)[0] for p in report.params if AUTO_ARROW in p.init]
    if auto_labels:
        # auto's labels (`xavier_normal(gain=tanh)`) are wider than a bare function name.
        name_width = max(16, name_width - max(0, max(map(len, auto_labels)) - 14))
    table.add_column("parameter", overflow="fold")
    table.add_column("shape", no_wrap=True)
    table.add_column("fans", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("var", justify="right", no_wrap=True)
    table.add_column("expected", justify="right", no_wrap=True)
    auto = any(AUTO_ARROW in p.init for p in report.params)
    table.add_column("init", no_wrap=True)
    table.add_column("status", no_wrap=True)
    # The trainable column only earns its width when something is frozen.
    with_grad = any(not p.requires_grad for p in report.params)
    if with_grad:
        table.add_column("grad", no_wrap=True)
    for p in report.params:
        table.add_row(*_param_row(p, with_grad, name_width))
    if not auto:
        return [heading, table, _totals_panel(report.counts)]
    return [heading, table, _auto_table(report, width), _totals_panel(report.counts)]


def _auto_table(report: InspectReport, width: int) -> Table:
    """What `auto` chose for each weight, and the activation (or its absence) it chose from."""
    table = Table(
        title="auto: what each weight got, and why",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("parameter", overflow="fold")
    table.add_column("chosen", no_wrap=True)
    table.add_column("because of what follows it", overflow="fold")
    for p in report.params:
        if AUTO_ARROW in p.init:
            chosen, why = p.init.split(AUTO_ARROW, 1)
            table.add_row(wrap_dotted(p.name, max(16, width // 3)), chosen, why)
    return table


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


def checkpoint_table(report: CheckpointReport, width: int = 100) -> list[RenderableType]:
    against = f"against {report.against}" if report.against else "no --against scheme"
    table = Table(
        title=f"{report.target} · {report.format} · {against}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    compared = report.against is not None
    # As in inspect_table: the other columns are short, the name gets the rest (module types are
    # in the JSON/CSV and in `initcli count FILE`).
    name_width = max(16, width - 74)
    table.add_column("parameter", overflow="fold")
    table.add_column("shape", no_wrap=True)
    table.add_column("fans", justify="right", no_wrap=True)
    table.add_column("mean", justify="right", no_wrap=True)
    table.add_column("std", justify="right", no_wrap=True)
    if compared:
        table.add_column("expected", justify="right", no_wrap=True)
        table.add_column("var ratio", justify="right", no_wrap=True)
        table.add_column("status", no_wrap=True)
    else:
        table.add_column("min", justify="right", no_wrap=True)
        table.add_column("max", justify="right", no_wrap=True)
    for p in report.params:
        row: list[RenderableType] = [
            wrap_dotted(p.name, name_width),
            _shape(p.shape),
            "–" if p.fan_in is None else f"{p.fan_in}→{p.fan_out}",
            _num(p.mean, 3),
            _num(p.std),
        ]
        if compared:
            expected = None if p.expected_var is None else math.sqrt(p.expected_var)
            row += [
                _num(expected),
                _num(p.var_ratio, 3),
                Text(p.status, style=STATUS_STYLE.get(p.status, "")),
            ]
        else:
            row += [_num(p.min, 3), _num(p.max, 3)]
        table.add_row(*row)
    return [table, _totals_panel(report.counts)]


def _value(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, list):
        return "×".join(map(str, value)) or "scalar"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return _num(value)
    return str(value)


def _check_target_table(t: TargetCheck) -> Table:
    args = f" ({_args_text(t.args)})" if t.args else ""
    moved = t.total_after - t.total_before
    total = (
        f"total {t.total_before:,} → {t.total_after:,} ({moved:+,})"
        if moved
        else f"total {t.total_after:,} (unchanged)"
    )
    table = Table(
        title=f"✗ {t.target}{args}: {total}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        title_style="bold red",
    )
    table.add_column("what")
    table.add_column("name", overflow="fold")
    table.add_column("type")
    table.add_column("baseline", justify="right")
    table.add_column("now", justify="right")
    table.add_column("change", justify="right")
    for c in t.changes:
        delta = "" if c.delta is None else f"{c.delta:+,}"
        if c.before is None:
            delta += " (new)"
        elif c.after is None:
            delta += " (gone)"
        table.add_row(c.field, c.name, c.type, _value(c.before), _value(c.after), delta)
    return table


def check_table(report: CheckReport) -> list[RenderableType]:
    parts: list[RenderableType] = [_check_target_table(t) for t in report.changed]
    same = Table.grid(padding=(0, 2))
    same.add_column()
    same.add_column(justify="right")
    same.add_column()
    for t in report.targets:
        if t.ok:
            args = f" ({_args_text(t.args)})" if t.args else ""
            same.add_row(Text("✓", style="green"), f"{t.total_after:,}", f"{t.target}{args}")
    if same.row_count:
        parts.append(same)
    parts.append(Text(check_summary(report), style="green" if report.ok else "bold red"))
    return parts


def print_report(report: Report, fmt: OutputFormat, console: Console) -> None:
    """Write a report to the console: a rich table, or text in the chosen format."""
    from initcli.report import CheckpointReport, CountReport, InspectReport

    if fmt is not OutputFormat.table:
        console.file.write(render_text(report, fmt))
        return
    if isinstance(report, CountReport):
        parts = count_table(report)
    elif isinstance(report, InspectReport):
        parts = inspect_table(report, console.width)
    elif isinstance(report, CheckpointReport):
        parts = checkpoint_table(report, console.width)
    elif _is_check(report):
        parts = check_table(report)
    else:
        parts = schemes_table(cast("Sequence[SchemeRow]", report))
    for part in parts:
        console.print(part)


# --- probe / compare -----------------------------------------------------------------------------

SPARK = "▁▂▃▄▅▆▇█"
BAR_WIDTH = 16
# A sparkline shows at most this many blocks (evenly spaced through a deeper net).
MAX_SPARK = 40
# compare --train prints the loss at this many evenly spaced steps after step 0.
CHECKPOINTS = 5
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
        "mean": _finite(layer.mean),
        "std": _finite(layer.std),
        "zero_frac": layer.zero_frac,
        "saturated_frac": layer.saturated_frac,
        "grad_norm": _finite(layer.grad_norm),
        "ends_block": layer.ends_block,
    }


def block_dict(block: BlockStats) -> dict[str, Any]:
    return {
        "name": block.name,
        "layer": block.layer,
        "mean": _finite(block.mean),
        "std": _finite(block.std),
        "zero_frac": block.zero_frac,
        "saturated_frac": block.saturated_frac,
        "grad_norm": _finite(block.grad_norm),
    }


def scheme_probe_dict(sp: SchemeProbe) -> dict[str, Any]:
    r = sp.result
    data: dict[str, Any] = {
        "scheme": sp.scheme,
        "verdict": r.verdict.value,
        "reason": r.reason,
        "std_ratio": _finite(r.std_ratio),
        "probe_loss": _finite(r.loss),
        "layers": [layer_dict(layer) for layer in r.layers],
        "blocks": [block_dict(b) for b in r.blocks],
        "grads": [{"name": g.name, "grad_norm": _finite(g.grad_norm)} for g in r.grads],
    }
    if sp.training is not None:
        data["losses"] = [_finite(v) for v in sp.training.losses]
        data["accuracy"] = sp.training.accuracy
    return data


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
        data["train"] = asdict(report.train) | {"optimizer": "Adam", "data": "two moons"}
    return data


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


def _summary_rows(report: ProbeReport) -> list[dict[str, Any]]:
    rows = []
    for sp in report.schemes:
        r = sp.result
        sats = [b.saturated_frac for b in r.blocks if b.saturated_frac is not None]
        row: dict[str, Any] = {
            "scheme": sp.scheme,
            "verdict": r.verdict.value,
            "first_std": _finite(r.blocks[0].std),
            "last_std": _finite(r.blocks[-1].std),
            "std_ratio": _finite(r.std_ratio),
            "max_zero_frac": max(b.zero_frac for b in r.blocks),
            "max_saturated_frac": max(sats) if sats else None,
        }
        if sp.training is not None:
            losses = sp.training.losses
            for step in _checkpoints(len(losses) - 1):
                row[f"loss@{step}"] = _finite(losses[step])
            row["accuracy"] = sp.training.accuracy
        row["reason"] = r.reason
        rows.append(row)
    return rows


def _input_line(report: ProbeReport) -> str:
    shape = "×".join(map(str, report.input_shape))
    return (
        f"input {shape} ({report.input_kind}; shape from {report.input_source}), seed {report.seed}"
    )


def probe_text(report: ProbeReport, fmt: OutputFormat, compare: bool = False) -> str:
    """JSON, CSV or Markdown for probe and compare."""
    if fmt is OutputFormat.json:
        return json.dumps(probe_dict(report), indent=2, ensure_ascii=False) + "\n"
    if fmt is OutputFormat.csv:
        if compare and report.train is not None:
            # compare --train: the loss curves, one row per scheme and step.
            rows = [
                {
                    "scheme": sp.scheme,
                    "step": step,
                    "loss": _finite(loss),
                    "accuracy": sp.training.accuracy
                    if step == len(sp.training.losses) - 1
                    else None,
                }
                for sp in report.schemes
                if sp.training is not None
                for step, loss in enumerate(sp.training.losses)
            ]
            return _csv(rows)
        return _csv(
            [
                {"scheme": sp.scheme, "verdict": sp.result.verdict.value} | layer_dict(layer)
                for sp in report.schemes
                for layer in sp.result.layers
            ]
        )
    if fmt is OutputFormat.markdown:
        parts = [_markdown(_summary_rows(report))]
        if compare:
            parts.append(_markdown(_side_by_side_rows(report)))
        else:
            for sp in report.schemes:
                parts.append(f"**{sp.scheme}**: {sp.result.verdict.value}\n")
                parts.append(_markdown([block_dict(b) for b in sp.result.blocks]))
        parts.append(_input_line(report) + "\n")
        return "\n".join(parts)
    raise ValueError(f"{fmt} is not a text format")


def _side_by_side_rows(report: ProbeReport) -> list[dict[str, Any]]:
    """Block by block, each scheme's output std in its own column (schemes share the model)."""
    longest = max(report.schemes, key=lambda sp: len(sp.result.blocks))
    rows = []
    for i, block in enumerate(longest.result.blocks):
        row: dict[str, Any] = {"block": block.name}
        for sp in report.schemes:
            blocks = sp.result.blocks
            row[f"std {sp.scheme}"] = _finite(blocks[i].std) if i < len(blocks) else None
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
            f"{_num(r.blocks[0].std, 3)} → {_num(r.blocks[-1].std, 3)}",
            _num(r.std_ratio, 3),
        )
    reasons = [Text(f"{sp.scheme}: {sp.result.reason}") for sp in report.schemes]
    return [table, *reasons]


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
            b.name,
            _num(b.mean, 3),
            _num(b.std, 3),
            std_bar(b.std, scale),
            _pct(b.zero_frac),
            _pct(b.saturated_frac),
            _num(b.grad_norm, 3),
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
        cells: list[RenderableType] = [row["block"]]
        for sp in report.schemes:
            std = row[f"std {sp.scheme}"]
            cells.append(f"{_num(std, 3)} {sparkline([std], scale)}")
        table.add_row(*cells)
    return table


def _loss_table(report: ProbeReport) -> Table:
    assert report.train is not None
    t = report.train
    table = Table(
        title=(
            f"two moons ({t.points} points, noise {t.noise:g}) · Adam lr {t.lr:g}, full batch · "
            f"cross-entropy loss"
        ),
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    table.add_column("step", justify="right")
    trained = [sp for sp in report.schemes if sp.training is not None]
    for sp in trained:
        table.add_column(_wrap_scheme(sp.scheme, 20), justify="right", overflow="fold")
    for step in _checkpoints(t.steps):
        table.add_row(
            str(step), *[_num(sp.training.losses[step], 4) for sp in trained if sp.training]
        )
    table.add_section()
    table.add_row("accuracy", *[f"{sp.training.accuracy:.1%}" for sp in trained if sp.training])
    return table


def print_probe(
    report: ProbeReport, fmt: OutputFormat, console: Console, compare: bool = False
) -> None:
    """Write a probe (or, with compare, the side-by-side view and losses) to the console."""
    if fmt is not OutputFormat.table:
        console.file.write(probe_text(report, fmt, compare))
        return
    scale = _scale(report)
    if compare:
        console.print(_side_by_side_table(report, scale))
    else:
        for sp in report.schemes:
            console.print(_blocks_table(report, sp, scale))
    for part in _summary_table(report, scale):
        console.print(part)
    if report.train is not None:
        console.print(_loss_table(report))
    console.print(Text(_input_line(report), style="dim"))


# --- defaults / gain -----------------------------------------------------------------------------


def defaults_dict(report: DefaultsReport) -> dict[str, Any]:
    return {
        "target": report.target,
        "types": [
            {"type": t.type, "modules": list(t.modules), "params": [asdict(r) for r in t.rules]}
            for t in report.types
        ],
        "checks": [asdict(c) for c in report.checks],
        "warnings": list(report.warnings),
        "notes": list(report.notes),
    }


def _modules_cell(names: Sequence[str]) -> str:
    # fc1, fc2, ..., fc20 would crowd the table: first and last, and how many.
    if len(names) <= 3:
        return "\n".join(names)
    return f"{names[0]} … {names[-1]} ({len(names)})"


def _type_rows(report: DefaultsReport) -> list[dict[str, Any]]:
    return [
        {
            "type": t.type,
            "modules": _modules_cell(t.modules),
            "param": r.param,
            "init": r.init,
            "values": r.values,
            "variance": r.variance,
        }
        for t in report.types
        for r in t.rules
    ]


def defaults_text(report: DefaultsReport, fmt: OutputFormat) -> str:
    if fmt is OutputFormat.json:
        return json.dumps(defaults_dict(report), indent=2, ensure_ascii=False) + "\n"
    checks = [asdict(c) for c in report.checks]
    if fmt is OutputFormat.csv:
        return _csv(checks)
    if fmt is OutputFormat.markdown:
        lines = [_markdown(_type_rows(report)), _markdown(checks)]
        lines += [f"⚠ {warning}\n" for warning in report.warnings]
        lines += [f"{note}\n" for note in report.notes]
        return "\n".join(lines)
    raise ValueError(f"{fmt} is not a text format")


def print_defaults(report: DefaultsReport, fmt: OutputFormat, console: Console) -> None:
    if fmt is not OutputFormat.table:
        console.file.write(defaults_text(report, fmt))
        return
    types = Table(
        title=f"PyTorch's default init in {report.target}",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for col in ("type", "modules", "param", "init", "values", "variance"):
        types.add_column(col, overflow="fold")
    previous = None
    for row in _type_rows(report):
        first = row["type"] != previous
        previous = row["type"]
        types.add_row(
            row["type"] if first else "",
            row["modules"] if first else "",
            row["param"],
            row["init"],
            row["values"],
            row["variance"],
        )
    console.print(types)
    checks = Table(
        title="each weight against the activation after it",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        pad_edge=False,
    )
    for col, justify in (
        ("weight", "left"),
        ("fans", "right"),
        ("default var", "right"),
        ("followed by", "left"),
        ("auto would use", "left"),
        ("its var", "right"),
        ("ratio", "right"),
    ):
        checks.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for c in report.checks:
        fans = "–" if c.fan_in is None else f"{c.fan_in}→{c.fan_out}"
        ratio = "–" if c.ratio is None else fraction(c.ratio)
        checks.add_row(
            c.name,
            fans,
            _num(c.expected_var),
            c.followed_by or "–",
            (c.recommended or "–").split(AUTO_ARROW)[0],
            _num(c.recommended_var),
            Text(ratio, style="bold yellow" if c.warning else ""),
        )
    console.print(checks)
    for warning in report.warnings:
        console.print(Text(f"⚠ {warning}", style="yellow"))
    for note in report.notes:
        console.print(Text(f"• {note}", style="dim"))


def gain_dicts(rows: Sequence[GainRow]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]


def print_gains(rows: Sequence[GainRow], fmt: OutputFormat, console: Console) -> None:
    if fmt is OutputFormat.json:
        console.file.write(json.dumps(gain_dicts(rows), indent=2, ensure_ascii=False) + "\n")
        return
    if fmt is OutputFormat.csv:
        console.file.write(_csv(gain_dicts(rows)))
        return
    if fmt is OutputFormat.markdown:
        console.file.write(_markdown(gain_dicts(rows)))
        return
    table = Table(title="torch.nn.init.calculate_gain", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("nonlinearity", style="bold")
    table.add_column("formula")
    table.add_column("gain", justify="right")
    table.add_column("gain²", justify="right")
    for r in rows:
        table.add_row(r.nonlinearity, r.formula, f"{r.gain:.6g}", f"{r.gain * r.gain:.6g}")
    console.print(table)
    console.print(
        Text(
            "kaiming: variance gain²/fan; xavier: 2·gain²/(fan_in+fan_out). "
            "--slope sets leaky_relu's negative slope.",
            style="dim",
        )
    )
