"""`--plot`: per-block histograms, std by depth, loss curves; a sweep's std against width."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from initcli.errors import OutputError, PlotError
from initcli.files import check_writable, write_atomic
from initcli.render.cells import wrap_after

if TYPE_CHECKING:
    from initcli.report import ProbeReport
    from initcli.report.sweeping import SweepReport

INSTALL_HINT = "pip install 'initcli[plot]'"
SUFFIXES = (".png", ".svg", ".pdf")
# Figure geometry, in inches at DPI dots per inch: 1600 px wide, 200 px per scheme row of
# histograms plus 400 px for the charts, so a PNG's size is known in advance (and tested).
DPI = 100
WIDTH_IN = 16.0
ROW_IN = 2.0
CHARTS_IN = 4.0
# At most this many histograms per scheme: evenly spaced blocks, first and last always included.
MAX_COLUMNS = 10


# A sweep's figure: one panel per scheme side by side (a second row with --step), each this size.
PANEL_IN = (6.0, 4.5)


def figure_pixels(n_schemes: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG written for this many schemes."""
    return round(WIDTH_IN * DPI), round((ROW_IN * n_schemes + CHARTS_IN) * DPI)


def sweep_pixels(n_schemes: int, step: bool) -> tuple[int, int]:
    """(width, height) in pixels of a --sweep figure: a panel per scheme (and per --step row)."""
    return round(PANEL_IN[0] * n_schemes * DPI), round(PANEL_IN[1] * (2 if step else 1) * DPI)


def require_matplotlib() -> None:
    """Fail early, before any work, when the optional extra is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotError(f"--plot needs matplotlib, not installed here: {INSTALL_HINT}") from None


def check_destination(path: Path, force: bool) -> None:
    """Refuse a plot file that cannot or should not be written, before any work is done."""
    if path.is_dir():
        raise PlotError(f"--plot {path} is a directory; name a file, e.g. {path / 'probe.png'}")
    if path.suffix.lower() not in SUFFIXES:
        raise PlotError(
            f"--plot {path}: the name must end in {', '.join(SUFFIXES)} (it picks the format)"
        )
    try:
        check_writable(path, force)
    except OutputError as exc:
        raise PlotError(f"--plot {exc}") from None


def _columns(n_blocks: int) -> list[int]:
    if n_blocks <= MAX_COLUMNS:
        return list(range(n_blocks))
    step = (n_blocks - 1) / (MAX_COLUMNS - 1)
    return sorted({round(i * step) for i in range(MAX_COLUMNS)})


def _short(block: str) -> str:
    # `fc3 → act3` is titled by where the block ends: the output the histogram shows.
    return block.rsplit(" → ", maxsplit=1)[-1]


def build_figure(report: ProbeReport) -> Any:
    """The figure: a row of histograms per scheme, then std by depth (and the loss curves)."""
    from matplotlib.figure import Figure

    n = len(report.schemes)
    fig = Figure(figsize=(WIDTH_IN, ROW_IN * n + CHARTS_IN), dpi=DPI, layout="constrained")
    ncols = max(len(_columns(len(sp.result.blocks))) for sp in report.schemes)
    grid = fig.add_gridspec(n + 1, ncols, height_ratios=[ROW_IN] * n + [CHARTS_IN])
    colors = [f"C{i % 10}" for i in range(n)]
    for row, sp in enumerate(report.schemes):
        blocks = sp.result.blocks
        for col, index in enumerate(_columns(len(blocks))):
            block = blocks[index]
            ax = fig.add_subplot(grid[row, col])
            h = block.hist
            bins = len(h.counts)
            edges = [h.lo + (h.hi - h.lo) * i / bins for i in range(bins + 1)]
            ax.stairs(h.counts, edges, fill=True, color=colors[row], alpha=0.75)
            # A little margin, so mass piled in the edge bins (saturated tanh) stays visible.
            pad = 0.03 * (h.hi - h.lo)
            ax.set_xlim(h.lo - pad, h.hi + pad)
            ax.set_yticks([])
            ax.tick_params(axis="x", labelsize=7)
            ax.set_title(f"{_short(block.name)}  σ={_fmt(block.std)}", fontsize=8)
            if col == 0:
                ax.set_ylabel(
                    f"{wrap_after(sp.scheme, ', ', 22)}\n{sp.result.verdict.value}", fontsize=8
                )
    charts = grid[n, :].subgridspec(1, 2 if report.train is not None else 1)
    _std_chart(fig.add_subplot(charts[0, 0]), report, colors)
    if report.train is not None:
        _loss_chart(fig.add_subplot(charts[0, 1]), report, colors)
    fig.suptitle(f"{report.target}: activations per block at init (seed {report.seed})")
    return fig


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.3g}"


def _std_chart(ax: Any, report: ProbeReport, colors: Sequence[str]) -> None:
    from matplotlib.ticker import MaxNLocator

    for sp, color in zip(report.schemes, colors, strict=True):
        stds = [b.std for b in sp.result.blocks]
        # A log axis cannot show 0 or NaN: those points are left out and the legend says so.
        ys = [s if s is not None and s > 0 and math.isfinite(s) else math.nan for s in stds]
        missing = sum(1 for y in ys if math.isnan(y))
        label = f"{sp.scheme}: {sp.result.verdict.value}"
        if missing:
            label += f" ({missing} not drawn: std 0 or NaN)"
        ax.plot(range(1, len(ys) + 1), ys, marker="o", markersize=3, color=color, label=label)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("block (depth)")
    ax.set_ylabel("output std")
    ax.set_title("std by depth")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def _loss_chart(ax: Any, report: ProbeReport, colors: Sequence[str]) -> None:
    assert report.train is not None
    for sp, color in zip(report.schemes, colors, strict=True):
        if sp.training is not None:
            acc = sp.training.accuracy
            label = sp.scheme if acc is None else f"{sp.scheme}: {acc:.0%}"
            ax.plot(sp.training.losses, color=color, linewidth=1.5, label=label)
    t = report.train
    o = report.outcome
    if o is None or o.data == "moons":
        ax.axhline(math.log(2), color="grey", linestyle=":", linewidth=1, label="ln 2 (chance)")
        ax.set_title(f"two moons: loss (Adam lr {t.lr:g}, {t.points} points, noise {t.noise:g})")
    else:
        ax.set_title(f"{o.data}: training loss ({t.optimizer} lr {t.lr:g}, seed {report.seed})")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy" if o is None or o.task == "classification" else "MSE")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)


def build_sweep_figure(report: SweepReport) -> Any:
    """The coord check: per scheme, each block's output std against width on log-log axes (and,
    with --step, the update size below), one line per block labelled with its k and verdict."""
    from matplotlib.figure import Figure

    n = len(report.schemes)
    rows = 2 if report.step else 1
    fig = Figure(figsize=(PANEL_IN[0] * n, PANEL_IN[1] * rows), dpi=DPI, layout="constrained")
    axes = fig.subplots(rows, n, squeeze=False)
    for col, scheme in enumerate(report.schemes):
        std_lines = [(b.name, b.stds, b.exponent) for b in scheme.blocks]
        _sweep_panel(axes[0][col], report, std_lines, "output std")
        axes[0][col].set_title(
            f"{wrap_after(scheme.scheme, ', ', 48)}\n{scheme.verdict}", fontsize=9
        )
        if report.step:
            ups = [
                (b.name, b.updates, b.update_exponent)
                for b in scheme.blocks
                if b.updates is not None and b.update_exponent is not None
            ]
            _sweep_panel(axes[1][col], report, ups, "update size (one Adam step)")
    fig.suptitle(
        f"{report.target}: coord check, std ∝ {report.key}^k (seed {report.seed}; "
        f"width-stable: |k| < {report.threshold:g})"
    )
    return fig


def _sweep_panel(
    ax: Any,
    report: SweepReport,
    lines: Sequence[tuple[str, Sequence[float | None], Any]],
    what: str,
) -> None:
    for i, (name, values, e) in enumerate(lines):
        ys = [v if v is not None and v > 0 and math.isfinite(v) else math.nan for v in values]
        k = "k undefined" if e.k is None else f"k {e.k:+.2f} ± {e.high - e.k:.2f}"
        label = f"{name}: {k}, {e.verdict}"
        ax.plot(report.widths, ys, marker="o", markersize=4, color=f"C{i % 10}", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(report.widths, [str(w) for w in report.widths])
    ax.minorticks_off()
    ax.set_xlabel(report.key)
    ax.set_ylabel(what)
    ax.grid(True, alpha=0.3, which="both")
    ax.legend(fontsize=7)


def write_plot(report: ProbeReport | SweepReport, path: Path, force: bool) -> tuple[int, int]:
    """Draw, then write with files.write_atomic (never over a file without `force`).

    Returns the figure's size in pixels.
    """
    from initcli.report.sweeping import SweepReport

    require_matplotlib()
    if isinstance(report, SweepReport):
        fig = build_sweep_figure(report)
        size = sweep_pixels(len(report.schemes), report.step)
    else:
        fig = build_figure(report)
        size = figure_pixels(len(report.schemes))
    drawn = io.BytesIO()
    fig.savefig(drawn, dpi=DPI, format=path.suffix.lower().lstrip("."))
    try:
        write_atomic(path, drawn.getvalue(), force)
    except OutputError as exc:
        raise PlotError(f"--plot {exc}") from None
    return size
