"""Measure parameters as they are drawn: one dataclass per parameter, a pipeline over two cores."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch
from torch import nn

from initcli.init import schemes, stacking
from initcli.measure import distributed, fans, identify, naming, stats, tables
from initcli.measure.default_status import default_status
from initcli.model import building
from initcli.text import block_pattern, first_and_more
from initcli.values.items import Item


@dataclass(frozen=True)
class ParamReport:
    """One parameter's shape, fans and statistics against what its init implies."""

    name: str
    module: str
    shape: tuple[int, ...] | None  # None: an uninitialized lazy parameter
    numel: int | None
    fan_in: int | None
    fan_out: int | None
    mean: float | None
    var: float | None
    std: float | None
    min: float | None
    max: float | None
    expected_mean: float | None
    expected_var: float | None
    init: str
    requires_grad: bool
    dtype: str
    status: str
    # What the values look like (initcli.measure.identify): a one-line description, and the fit
    # behind it
    # (family, std, bound, matches). For `uninitialized` values, looks_like gives the reason.
    looks_like: str | None = field(default=None, kw_only=True)
    fit: identify.Fit | None = field(default=None, kw_only=True)
    # The fans the forward pass has (initcli.measure.fans): torch's own where its layout is right,
    # the
    # layer's where it misleads (HF Conv1D, ConvTranspose, groups, stacked gates); None below 2
    # dimensions and where the module is not known (a weights file).
    forward_fan_in: int | None = field(default=None, kw_only=True)
    forward_fan_out: int | None = field(default=None, kw_only=True)


def fixed_rows(
    rows: tuple[ParamReport, ...], undrawn: Callable[[], frozenset[str]]
) -> tuple[ParamReport, ...]:
    """`rows` (the constructors' own values) with each row that no random draw set
    (`undrawn()`, read from the meta build's record only when some row could be one) and that
    is neither a constant nor a named table made `custom`, looking like `deterministic (no random
    draw)`: a table the model computes is no init, whatever family its values resemble."""
    doubtful = {
        r.name
        for r in rows
        if r.mean is not None
        and r.fit
        and r.fit.family not in ("constant", "fixed", "uninitialized")
    }
    fixed = undrawn() & doubtful if doubtful else frozenset()
    if not fixed:
        return rows
    label = tables.DETERMINISTIC
    return tuple(
        replace(
            r,
            status=stats.Status.CUSTOM.value,
            looks_like=label,
            fit=identify.Fit("fixed", r.std, None, (label,)),
        )
        if r.name in fixed
        else r
        for r in rows
    )


def looks_like_summary(params: Iterable[ParamReport]) -> tuple[str, ...]:
    """What the model's values look like, grouped: one entry per (looks_like, status), largest
    group first, then each uninitialized parameter by name with its reason."""
    groups: dict[tuple[str, str], int] = {}
    empty: list[ParamReport] = []
    for p in params:
        if p.status == stats.Status.UNINITIALIZED:
            empty.append(p)
        elif p.looks_like is not None:
            key = (p.looks_like, p.status)
            groups[key] = groups.get(key, 0) + 1
    ranked = sorted(groups.items(), key=lambda kv: -kv[1])
    lines = [f"{count} {looks} ({status})" for (looks, status), count in ranked]
    if empty:
        shown = first_and_more(
            empty,
            3,
            show=lambda p: f"{p.name} ({(p.looks_like or '').removeprefix('uninitialized: ')})",
        )
        lines.append(f"{len(empty)} uninitialized: {shown}")
    return tuple(lines)


class Progress(Protocol):
    """Where inspect reports how far it is (a rich bar in the CLI; anything in the API)."""

    def start(self, params: int, elements: int) -> None:
        """Called once with the totals, before the first parameter is drawn."""

    def advance(self, name: str, elements: int) -> None:
        """Called after each parameter is initialized and measured."""

    def finish(self) -> None:
        """Called once at the end, also when inspect fails."""


def measure(
    name: str,
    module: str,
    param: torch.Tensor,
    exp: schemes.Expectation,
    requires_grad: bool,
    *,
    default: bool = False,
    depth: int | None = None,
    trained: bool = False,
    forward: fans.Forward | None = None,
    scales: tuple[identify.Scale, ...] = (),
    fit_fans: tuple[int, int] | None = None,
) -> ParamReport:
    """Measure one parameter against `exp` and identify its values.

    With `default` (`exp` is torch's default for the module, tried first in identification) the
    values are the constructors' own and the status follows docs/contract/statuses.md: ok, custom,
    uninitialized, or judge's verdict — unless `trained` (a weights file compared with
    `--against default`), where `off` keeps saying "no longer that init".
    """
    dtype = str(param.dtype).removeprefix("torch.")
    if building.is_uninitialized(param):
        return ParamReport(
            name,
            module,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            exp.init,
            requires_grad,
            dtype,
            stats.Status.UNKNOWN.value,
        )
    sharded = distributed.is_dtensor(param)
    # A DTensor's statistics are a collective: every rank measures the same tensors.
    measured = distributed.global_stats(param) if sharded else stats.tensor_stats(param.detach())
    fan = schemes.fans(param)
    status = stats.judge(measured, param.dim(), exp.mean, exp.var, exp.kurtosis)
    found = identify.identify(
        measured,
        ndim=param.dim(),
        fans=fit_fans or fan,
        dtype=param.dtype,
        # A shard holds part of the rows: the orthogonality check needs the whole matrix.
        values=None if sharded else param,
        default=exp if default and exp.var is not None else None,
        depth=depth,
        scales=scales,
    )
    if default and not trained:
        status = default_status(
            status, found, ndim=param.dim(), module=module, expected_var=exp.var
        )
        table = None if sharded or found.fit.family not in ("none", "sparse") else (
            tables.name_table(param)
        )  # fmt: skip
        if table is not None:
            # A table the constructor computes (sinusoidal positions, Mamba's A_log): no init.
            fit = identify.Fit("fixed", measured.std, None, (table,))
            found = identify.Identification(fit, table)
            status = stats.Status.CUSTOM
    looks_like = found.looks_like
    if found.uninitialized is not None:
        looks_like = f"uninitialized: {found.uninitialized}"
    elif default and looks_like is not None:
        looks_like += _too_few(param.numel(), status, exp, found.fit, measured.var)
    return ParamReport(
        name=name,
        module=module,
        shape=tuple(param.shape),
        numel=param.numel(),
        fan_in=fan[0] if fan else None,
        fan_out=fan[1] if fan else None,
        mean=measured.mean,
        var=measured.var,
        std=measured.std,
        min=measured.min,
        max=measured.max,
        expected_mean=exp.mean,
        expected_var=exp.var,
        init=exp.init,
        requires_grad=requires_grad,
        dtype=dtype,
        status=status.value,
        looks_like=looks_like,
        fit=found.fit,
        forward_fan_in=None if forward is None else forward.fan_in,
        forward_fan_out=None if forward is None else forward.fan_out,
    )


def _too_few(
    numel: int,
    status: stats.Status,
    exp: schemes.Expectation,
    fit: identify.Fit,
    var: float | None,
) -> str:
    """` (N values: too few to tell)` where a random init is named on a tensor so small that
    judge's variance band reaches 0 (a constant would pass as well): torch's default claimed
    `ok`, or the family a `custom` row's values were named by."""
    if status is stats.Status.OK and exp.var is not None and exp.var > 0:
        var, kurtosis = exp.var, exp.kurtosis or schemes.KURTOSIS_NORMAL
    elif status is stats.Status.CUSTOM and fit.family in _RANDOM_FAMILIES and var:
        kurtosis = _RANDOM_FAMILIES[fit.family]
    else:
        return ""
    band = stats.tolerance(numel, var, kurtosis)[1]
    return f" ({numel} values: too few to tell)" if numel and band >= var else ""


# The kurtosis each named random family has (a normal cut at ±2σ: about 2.4, taken as normal's 3,
# the wider band).
_RANDOM_FAMILIES = {
    "normal": schemes.KURTOSIS_NORMAL,
    "trunc_normal": schemes.KURTOSIS_NORMAL,
    "uniform": schemes.KURTOSIS_UNIFORM,
}


def measure_item(
    item: Item,
    default: bool = False,
    depth: int | None = None,
    scales: tuple[identify.Scale, ...] = (),
) -> ParamReport:
    """A streamed or in-memory parameter, measured; without values, its shape and fans only."""
    kind = type(item.module).__name__
    param, exp = item.param, item.expectation
    forward = fans.forward_fans(item.module, item.name.rpartition(".")[2], param)
    # Experts' stacked weights: formulas at one slice's fans, those a per-slice init reads.
    stack = stacking.stack_of(item.module, item.name.rpartition(".")[2], param)
    fit_fans = None if stack is None else schemes.fans(stack.views(param)[0])
    if item.tensor is not None or building.is_uninitialized(param):
        tensor = param if item.tensor is None else item.tensor
        return measure(
            item.name,
            kind,
            tensor,
            exp,
            param.requires_grad,
            default=default,
            depth=depth,
            forward=forward,
            scales=scales,
            fit_fans=fit_fans,
        )
    fan = schemes.fans(param)
    return ParamReport(
        name=item.name,
        module=kind,
        shape=tuple(param.shape),
        numel=int(param.numel()),
        fan_in=fan[0] if fan else None,
        fan_out=fan[1] if fan else None,
        mean=None,
        var=None,
        std=None,
        min=None,
        max=None,
        expected_mean=None,
        expected_var=None,
        init=exp.init,
        requires_grad=param.requires_grad,
        dtype=str(param.dtype).removeprefix("torch."),
        status=stats.Status.UNKNOWN.value,
        forward_fan_in=None if forward is None else forward.fan_in,
        forward_fan_out=None if forward is None else forward.fan_out,
    )


def run_items(
    model: nn.Module,
    items: Iterator[Item],
    progress: Progress | None,
    overlap: bool = True,
    *,
    default: bool = False,
    kept: frozenset[str] = frozenset(),
) -> tuple[ParamReport, ...]:
    """Measure every item, in named_parameters() order, with one intra-op thread.

    One thread, because the statistics make thousands of small parallel calls, and when another
    process holds a core each call's thread barrier waits for a scheduler slice: on a loaded
    2-core machine a 405M model took 17-21 s that way and 4-6 s with one thread. With `overlap`
    the items are drawn in this thread while a worker measures the previous one, so the two use
    two cores; torch's CPU random fills are serial kernels whatever the thread count, so every
    value is the same as a serial run's. Without it (orthogonal: its QR factorization depends on
    the thread count) items are drawn with torch's thread setting untouched and only measuring
    drops to one thread. `default`: the values are the constructors' own (see `measure`); `kept`:
    the parameters whose values are, under another init (a policy's unmatched ones, the biases
    with --bias-init default), judged exactly as under `default`.
    """
    depth, scales = naming.depth_hint(model), naming.config_scales(model)
    names = [name for name, _ in model.named_parameters()]
    found: dict[str, ParamReport] = {}
    if progress is not None:
        measured = [p for p in model.parameters() if not building.is_uninitialized(p)]
        progress.start(len(measured), sum(p.numel() for p in measured))

    def measure_one(item: Item) -> None:
        try:
            found[item.name] = measure_item(item, default or item.name in kept, depth, scales)
        finally:
            if item.release is not None:
                item.release()
        if progress is not None and not building.is_uninitialized(item.param):
            progress.advance(item.name, item.param.numel())

    threads = torch.get_num_threads()
    try:
        if overlap:
            torch.set_num_threads(1)
            pipeline(items, measure_one)
        else:
            for item in items:
                torch.set_num_threads(1)
                try:
                    measure_one(item)
                finally:
                    torch.set_num_threads(threads)
    finally:
        torch.set_num_threads(threads)
        if progress is not None:
            progress.finish()
    return settled(model, tuple(found[name] for name in names))


def settled(model: nn.Module, rows: tuple[ParamReport, ...]) -> tuple[ParamReport, ...]:
    """The rows with looks_like settled over the model (measure.naming): ties between formulas,
    and weight norm's g named where its values are the norm of v."""
    names = naming.settle(
        [((r.module, r.name.rpartition(".")[2]), r.fit) for r in rows],
        [block_pattern(r.name) for r in rows],
    )
    held = {name: module for name, module in schemes.owners(model).values()}
    out = []
    for row, settled_name in zip(rows, names, strict=True):
        module, leaf = held.get(row.name), row.name.rpartition(".")[2]
        param = None if module is None else getattr(module, leaf, None)
        g = None
        if module is not None and isinstance(param, torch.Tensor):
            g = naming.weight_norm_g(module, leaf, param)
        looks = g or settled_name
        out.append(row if looks is None else replace(row, looks_like=looks))
    return tuple(out)


# Items smaller than this are measured where they are drawn: handing one to the worker costs more
# (~0.3 ms of thread hand-off) than measuring it, which made 10⁵ tiny parameters take half a minute.
INLINE_ELEMENTS = 65_536


def pipeline(items: Iterator[Item], consume: Callable[[Item], None]) -> None:
    """Run `consume` on each item in a worker thread while the next item is being produced
    (small items at once, in this thread)."""
    todo: queue.Queue[Item | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []

    def worker() -> None:
        while (item := todo.get()) is not None:
            if failed:
                if item.release is not None:
                    item.release()
                continue  # drain, so the producer never blocks on a dead worker
            try:
                consume(item)
            except BaseException as exc:
                failed.append(exc)

    thread = threading.Thread(target=worker, name="initcli-measure", daemon=True)
    thread.start()
    try:
        for item in items:
            if building.is_uninitialized(item.param) or item.param.numel() < INLINE_ELEMENTS:
                consume(item)
            else:
                todo.put(item)
            if failed:
                break
    finally:
        todo.put(None)
        thread.join()
    if failed:
        raise failed[0]
