"""The reports behind each command: load, build, initialize, measure and count — as dataclasses."""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from initcli import building, checkpoint, loading, probe, schemes, stats, streaming
from initcli.counting import Counts, ModuleCount, count_model, count_spec, formula
from initcli.errors import (
    ArgError,
    MemoryLimitError,
    ProbeError,
    SchemeError,
    TargetError,
    first_line,
)
from initcli.verdict import DEFAULTS_MISMATCH, fraction

if TYPE_CHECKING:
    # At run time spec (and pydantic with it) loads only where a YAML spec is used.
    from initcli.spec import MLPSpec


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


@dataclass(frozen=True)
class CountReport:
    target: str
    counts: Counts
    # How the numbers were obtained: "spec" (arithmetic), "meta" (built on the meta device) or
    # "real" (built in memory); `remarks` are sentences for stderr about that, not results.
    method: str = "real"
    remarks: tuple[str, ...] = ()


@dataclass(frozen=True)
class InspectReport:
    target: str
    scheme: str
    seed: int
    params: tuple[ParamReport, ...]
    counts: CountReport
    # "stream" (one tensor at a time on a meta-built model) or "real" (the whole model in memory).
    method: str = "real"
    remarks: tuple[str, ...] = ()
    device: str = "cpu"


class Progress(Protocol):
    """Where inspect reports how far it is (a rich bar in the CLI; anything in the API)."""

    def start(self, params: int, elements: int) -> None:
        """Called once with the totals, before the first parameter is drawn."""

    def advance(self, name: str, elements: int) -> None:
        """Called after each parameter is initialized and measured."""

    def finish(self) -> None:
        """Called once at the end, also when inspect fails."""


@dataclass(frozen=True)
class CheckpointParam(ParamReport):
    """A tensor of a weights file: ParamReport plus how far it is from `--against`'s prediction."""

    var_ratio: float | None  # observed var / expected var: 1 at init, drifts as training moves it
    mean_shift: float | None  # observed mean - expected mean


@dataclass(frozen=True)
class CheckpointReport:
    """`initcli inspect model.safetensors|model.pt`: the tensors of a weights file."""

    target: str
    format: str  # "safetensors" or "torch"
    against: str | None  # the scheme compared with, described; None without --against
    params: tuple[CheckpointParam, ...]
    counts: CountReport


@dataclass(frozen=True)
class SchemeRow:
    name: str
    aliases: tuple[str, ...]
    params: tuple[str, ...]  # "key=default"
    values: str
    expected_var: str


def _measure(
    name: str, module: str, param: torch.Tensor, exp: schemes.Expectation, requires_grad: bool
) -> ParamReport:
    dtype = str(param.dtype).removeprefix("torch.")
    if schemes.is_uninitialized(param):
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
    measured = stats.tensor_stats(param.detach())
    fan = schemes.fans(param)
    status = stats.judge(measured, param.dim(), exp.mean, exp.var, exp.kurtosis)
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
    )


def _measure_item(item: streaming.Item) -> ParamReport:
    """A streamed or in-memory parameter, measured; without values, its shape and fans only."""
    kind = type(item.module).__name__
    param, exp = item.param, item.expectation
    if item.tensor is not None or schemes.is_uninitialized(param):
        tensor = param if item.tensor is None else item.tensor
        return _measure(item.name, kind, tensor, exp, param.requires_grad)
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
    )


def _counts(source: loading.ModelSource, model: nn.Module) -> Counts:
    # A spec is counted by arithmetic; the model (meta or real) is only torchinfo's to read.
    return count_spec(source.spec, model) if source.spec is not None else count_model(model)


# Every module of a spec is listed (and built on meta for torchinfo): 10,000 layers take ~7 s.
MAX_SPEC_LAYERS = 10_000


def _check_spec_depth(source: loading.ModelSource) -> None:
    """Refuse, by arithmetic, a spec whose `repeat:` expands to more layers than can be listed."""
    if source.spec is None:
        return
    layers = sum(layer.repeat for layer in source.spec.layers)
    if layers > MAX_SPEC_LAYERS:
        raise TargetError(
            f"{source.target} expands to {layers:,} layers; initcli lists every module and "
            f"handles at most {MAX_SPEC_LAYERS:,}: lower repeat:"
        )


def _try_meta(
    source: loading.ModelSource, quiet: bool = False
) -> tuple[nn.Module | None, str | None]:
    """(meta-built model, None), or (None, why a real build is needed)."""
    try:
        model = building.build_meta(source, quiet)
    except Exception as exc:
        return None, f"its constructor failed there ({first_line(exc)})"
    why = building.needs_values(model)
    return (None, why) if why else (model, None)


def _check_spec_fits(source: loading.ModelSource, copies: int, hint: str) -> None:
    """Refuse to build a spec that cannot fit in memory, before building a single layer."""
    if source.spec is None:
        return
    from initcli.spec import parameter_count

    params = parameter_count(source.spec)
    needed = params * 4 * copies  # float32
    available = building.available_bytes(torch.device("cpu"))
    if available is not None and needed > available * 0.8:
        raise TargetError(
            f"{source.target} has {params:,} parameters: building it needs about "
            f"{needed / 2**30:,.1f} GiB, more than the {available / 2**30:,.1f} GiB free; {hint}"
        )


def _has_lazy(model: nn.Module) -> bool:
    return any(schemes.is_uninitialized(p) for p in model.parameters())


def _materialize_lazy(
    source: loading.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None
) -> None:
    """One no-grad forward pass on a dummy batch, so lazy layers get their shapes and own init."""
    if input_shape is None or not _has_lazy(model):
        return
    device = next((b.device for b in model.buffers()), torch.device("cpu"))
    batch = probe.make_batch(probe.InputSpec(input_shape, None, "--input-shape"), 2, 0)
    try:
        with torch.no_grad():
            model(batch.to(device))
    except Exception as exc:
        shape = ",".join(map(str, input_shape))
        raise ProbeError(
            f"the forward pass that gives {source.target}'s lazy layers their shapes failed "
            f"with --input-shape {shape}: {first_line(exc)}; check --input-shape"
        ) from None


def count(
    target: str,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> CountReport:
    """`initcli count`: count TARGET's parameters (or a weights file's) without allocating them.

    A spec is counted by arithmetic; anything else is built on the meta device (shapes, no data,
    init skipped), and only built for real when its constructor cannot run there.
    """
    if checkpoint.is_checkpoint(target):
        if args:
            raise ArgError(f"--arg does not apply to a weights file ({target})")
        ckpt = checkpoint.load(target)
        return CountReport(target, _checkpoint_counts(ckpt, _layout(ckpt)))
    source = loading.resolve(target, args)
    _check_spec_depth(source)
    if source.prebuilt:
        built = source.build()
        _materialize_lazy(source, built, input_shape)
        return CountReport(source.target, count_model(built), "real")
    meta, why = _try_meta(source)
    if meta is not None and input_shape is not None and _has_lazy(meta):
        # Lazy layers take their shapes from a forward pass: that needs real tensors.
        meta, why = None, "--input-shape materializes its lazy layers"
    if meta is not None:
        method = "spec" if source.spec is not None else "meta"
        return CountReport(source.target, _counts(source, meta), method)
    built = source.build()
    _materialize_lazy(source, built, input_shape)
    remark = building.fallback_note(source.target, why or "")
    return CountReport(source.target, _counts(source, built), "real", (remark,))


def resolve_schemes(
    init: str | None, bias_init: str | None, spec_init: str | None
) -> tuple[schemes.Scheme, schemes.Scheme]:
    """The weight and bias schemes: --init, else the spec's init:, else default."""
    weight = schemes.parse_scheme(init or spec_init or "default")
    if weight.is_default:
        if bias_init is not None and not schemes.parse_scheme(bias_init).is_default:
            raise SchemeError(
                "--bias-init needs a named --init: with default, the modules' own "
                "constructors set the biases (add e.g. --init kaiming_normal)"
            )
        return weight, weight
    bias = schemes.parse_scheme(bias_init or "zeros")
    if bias.info.min_dims > 1:
        raise SchemeError(
            f"--bias-init {bias.name} needs ≥2-D tensors and biases are 1-D; use "
            "zeros, ones, constant, uniform, normal, trunc_normal or default"
        )
    return weight, bias


def inspect(
    target: str,
    init: str | None = None,
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
    *,
    save: str | os.PathLike[str] | None = None,
    force: bool = False,
    device: str = "cpu",
    progress: Progress | None = None,
    stream: bool | None = None,
) -> InspectReport:
    """`initcli inspect`: initialize TARGET under the seeding contract (DESIGN §4) and measure.

    With a named scheme the model is built on the meta device and each parameter materialized,
    initialized and measured in turn (streaming: memory ≈ the largest parameter), with values
    identical to a real build. With `default`, the model is built for real (seeded first) when it
    fits in half the free memory, else streamed through each module's reset_parameters.
    `stream` forces (True) or forbids (False) streaming; None decides as just said.
    `input_shape` (one sample) gives lazy layers their shapes through a forward pass before the
    init, and lets `auto` trace which activation follows which weight when TARGET is not a YAML
    spec (both need a real build: no streaming then).
    With `save`, the initialized weights (the state dict just measured) are also written there as
    safetensors, which needs the whole model in memory; an existing file is replaced only with
    `force`.
    """
    if seed < 0:
        raise SchemeError(f"--seed must be ≥ 0, got {seed}")
    if checkpoint.is_checkpoint(target):
        raise TargetError(
            f"{target} is a weights file, not a model: use inspect_checkpoint() "
            "(initcli inspect FILE --against SCHEME on the command line)"
        )
    if save is not None:
        checkpoint.check_save_path(save, force)
    dev = building.resolve_device(device)
    source = loading.resolve(target, args)
    _check_spec_depth(source)
    weight, bias = resolve_schemes(init, bias_init, source.spec.init if source.spec else None)
    remarks: list[str] = []
    meta: nn.Module | None = None
    if not source.prebuilt and stream is not False:
        # With `default` a real build usually follows; its warnings are the ones to show.
        meta, why = _try_meta(source, quiet=weight.is_default)
        if meta is None and why is not None:
            remarks.append(building.fallback_note(source.target, why))

    named = not weight.is_default and not bias.is_default
    if named and meta is not None and any(p.is_complex() for p in meta.parameters()):
        # Complex parameters are left as built (see schemes.initialize_iter): that needs a build.
        meta = None
    auto = weight.name == schemes.AUTO
    if auto and source.spec is None:
        meta = None  # auto traces a forward pass to see each weight's activation
    if meta is not None and input_shape is not None and _has_lazy(meta):
        meta = None  # lazy layers take their shapes from a forward pass on real tensors
    if save is not None and meta is not None:
        # The state dict is written whole, so the model is built whole (if it fits).
        nbytes = building.tensor_bytes(meta)
        if not building.fits(nbytes, dev):
            raise MemoryLimitError(
                f"--save writes the whole state dict of {source.target}, which needs "
                f"{building.human_bytes(nbytes)}, more than half the free memory on {dev}; "
                "inspect it without --save (streamed) instead"
            )
        meta = None
    choices: dict[str, tuple[schemes.Scheme, str]] | None = None
    items: Iterator[streaming.Item] | None = None
    model: nn.Module
    if meta is not None:
        model = meta
        if named:
            _check_streamable(source.target, meta, dev)
            if auto and source.spec is not None:
                choices = schemes.auto_choices(meta, spec_followers(source.spec))
            items = streaming.named(meta, weight, bias, seed, dev, choices)
        else:
            nbytes = building.tensor_bytes(meta)
            use_stream = stream if stream is not None else not building.fits(nbytes, dev)
            if use_stream and not weight.is_default:
                raise MemoryLimitError(
                    f"--bias-init default needs a real build of {source.target} "
                    f"({building.human_bytes(nbytes)}), more than half the free memory on "
                    f"{dev}; choose a named --bias-init (e.g. zeros) so it can be streamed"
                )
            if use_stream:
                _check_streamable(source.target, meta, dev)
                plan = streaming.plan_default(meta)
                reason = (
                    None
                    if stream
                    else f"needs {building.human_bytes(nbytes)}, more than half the free memory"
                )
                remarks.append(_default_stream_remark(source.target, reason, plan))
                items = streaming.default(meta, seed, dev)
    if items is None:
        if weight.is_default:
            # The constructors are the init, so the seed goes before the build (DESIGN §4).
            torch.manual_seed(seed)
        model = _build_real(source, dev)
        _materialize_lazy(source, model, input_shape)
        if weight.is_default:
            expected = schemes.default_expectations(model)
            items = streaming.in_memory(model, expected.items())
        else:
            if auto:
                # The trace runs before the seed is set, so it cannot shift the values drawn.
                choices = _auto_choices(source, model, input_shape, seed)
            items = streaming.in_memory(
                model, schemes.initialize_iter(model, weight, bias, seed, choices)
            )
    streamed = model is meta
    # QR (orthogonal) is the one init whose values depend on torch's thread count.
    used = {weight.name, bias.name, *(c.name for c, _ in (choices or {}).values())}
    overlap = "orthogonal" not in used
    try:
        rows = _run(model, items, progress, overlap)
    except streaming.StreamError as exc:
        raise TargetError(
            f"the default init of {source.target} cannot be streamed ({exc}) and a real build "
            f"needs {building.human_bytes(building.tensor_bytes(model))}, more than half the "
            "free memory; choose a named --init"
        ) from None
    if save is not None:
        metadata = {
            "initcli.target": source.target,
            "initcli.scheme": weight.describe(),
            "initcli.seed": str(seed),
        }
        checkpoint.save_safetensors(model, save, force, metadata)
    count_method = "spec" if source.spec is not None else ("meta" if streamed else "real")
    return InspectReport(
        source.target,
        weight.describe(),
        seed,
        rows,
        CountReport(source.target, _counts(source, model), count_method),
        "stream" if streamed else "real",
        tuple(remarks),
        str(dev),
    )


def _check_streamable(target: str, model: nn.Module, dev: torch.device) -> None:
    """Refuse, before anything is allocated, a model whose largest tensor alone cannot fit."""
    sizes = [
        (p.numel() * p.element_size(), name)
        for name, p in model.named_parameters()
        if not schemes.is_uninitialized(p)
    ]
    nbytes, name = max(sizes, default=(0, ""))
    free = building.available_bytes(dev)
    if free is not None and nbytes > building.REFUSE_SHARE * free:
        total = sum(p.numel() for _, p in building.unique_parameters(model))
        raise MemoryLimitError(
            f"{target} has {total:,} parameters and its largest tensor, {name}, alone needs "
            f"{nbytes / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB free on {dev}; "
            "'initcli count' counts it without building anything"
        )


def _build_real(source: loading.ModelSource, dev: torch.device) -> nn.Module:
    if source.prebuilt:
        return source.build().to(dev)
    if dev.type == "cpu":
        return source.build()
    with torch.device(dev):
        return source.build()


def _default_stream_remark(target: str, reason: str | None, plan: streaming.DefaultPlan) -> str:
    text = (
        f"{target} {reason}, so its default init was streamed"
        if reason
        else f"the default init of {target} was streamed"
    ) + (
        ": each module's reset_parameters, children before parents, after the seed — the same "
        "numbers as a real build wherever the constructors draw their init that way, as torch's "
        "own layers do (not where constructor code changes the values after that)"
    )
    if plan.without_reset:
        shown = ", ".join(plan.without_reset[:5])
        more = f" and {len(plan.without_reset) - 5} more" if len(plan.without_reset) > 5 else ""
        text += (
            f"; {shown}{more} hold parameters but have no reset_parameters, so those values "
            "are not reproduced, nor, if their constructors drew random numbers, any after them"
        )
    return text


def _run(
    model: nn.Module,
    items: Iterator[streaming.Item],
    progress: Progress | None,
    overlap: bool = True,
) -> tuple[ParamReport, ...]:
    """Measure every item, in named_parameters() order, with one intra-op thread.

    One thread, because the statistics make thousands of small parallel calls, and when another
    process holds a core each call's thread barrier waits for a scheduler slice: on a loaded
    2-core machine a 405M model took 17-21 s that way and 4-6 s with one thread. With `overlap`
    the items are drawn in this thread while a worker measures the previous one, so the two use
    two cores; torch's CPU random fills are serial kernels whatever the thread count, so every
    value is the same as a serial run's. Without it (orthogonal: its QR factorization depends on
    the thread count) items are drawn with torch's thread setting untouched and only measuring
    drops to one thread.
    """
    names = [name for name, _ in model.named_parameters()]
    found: dict[str, ParamReport] = {}
    if progress is not None:
        measured = [p for p in model.parameters() if not schemes.is_uninitialized(p)]
        progress.start(len(measured), sum(p.numel() for p in measured))

    def measure(item: streaming.Item) -> None:
        try:
            found[item.name] = _measure_item(item)
        finally:
            if item.release is not None:
                item.release()
        if progress is not None and not schemes.is_uninitialized(item.param):
            progress.advance(item.name, item.param.numel())

    threads = torch.get_num_threads()
    try:
        if overlap:
            torch.set_num_threads(1)
            _pipeline(items, measure)
        else:
            for item in items:
                torch.set_num_threads(1)
                try:
                    measure(item)
                finally:
                    torch.set_num_threads(threads)
    finally:
        torch.set_num_threads(threads)
        if progress is not None:
            progress.finish()
    return tuple(found[name] for name in names)


def _pipeline(items: Iterator[streaming.Item], measure: Callable[[streaming.Item], None]) -> None:
    """Run `measure` on each item in a worker thread while the next item is being produced."""
    todo: queue.Queue[streaming.Item | None] = queue.Queue(maxsize=1)
    failed: list[BaseException] = []

    def worker() -> None:
        while (item := todo.get()) is not None:
            if failed:
                if item.release is not None:
                    item.release()
                continue  # drain, so the producer never blocks on a dead worker
            try:
                measure(item)
            except BaseException as exc:
                failed.append(exc)

    thread = threading.Thread(target=worker, name="initcli-measure", daemon=True)
    thread.start()
    try:
        for item in items:
            todo.put(item)
            if failed:
                break
    finally:
        todo.put(None)
        thread.join()
    if failed:
        raise failed[0]


# --- weights files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Group:
    """The tensors one module held, and the module they fit (on meta), if any type fits."""

    prefix: str
    module: nn.Module
    inferred: bool
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]

    @property
    def type_name(self) -> str:
        return checkpoint.type_label(self.module) if self.inferred else "-"

    def full(self, leaf: str) -> str:
        return f"{self.prefix}.{leaf}" if self.prefix else leaf


def _layout(ckpt: checkpoint.Checkpoint) -> list[_Group]:
    aliases = {n for names in checkpoint.tied_names(ckpt.tensors).values() for n in names}
    groups = checkpoint.module_groups([n for n in ckpt.tensors if n not in aliases])
    layout = []
    for prefix, leaves in groups.items():
        tensors = {leaf: ckpt.tensors[f"{prefix}.{leaf}" if prefix else leaf] for leaf in leaves}
        params = {
            leaf: t
            for leaf, t in tensors.items()
            if not checkpoint.is_buffer(f"{prefix}.{leaf}", t)
        }
        buffers = {leaf: t for leaf, t in tensors.items() if leaf not in params}
        module = checkpoint.stand_in(prefix, tensors)
        inferred = module is not None
        if module is None:
            # A bare module holding meta tensors of the same shapes, so counting.formula applies.
            module = nn.Module()
            for leaf, t in params.items():
                module.register_parameter(leaf, nn.Parameter(torch.empty(t.shape, device="meta")))
        layout.append(_Group(prefix, module, inferred, params, buffers))
    return layout


def _checkpoint_counts(ckpt: checkpoint.Checkpoint, layout: list[_Group]) -> Counts:
    total = sum(t.numel() for g in layout for t in g.params.values())
    buffers = sum(t.numel() for g in layout for t in g.buffers.values())
    modules = tuple(
        ModuleCount(
            g.prefix or "(root)",
            g.type_name,
            sum(t.numel() for t in g.params.values()),
            formula(g.module),
        )
        for g in layout
        if g.params
    )
    notes = list(ckpt.notes)
    made = {key: ckpt.metadata.get(f"initcli.{key}") for key in ("target", "scheme", "seed")}
    if made["target"]:
        notes.append(
            f"written by initcli inspect --save: {made['target']}, {made['scheme']}, "
            f"seed {made['seed']}."
        )
    for first, others in checkpoint.tied_names(ckpt.tensors).items():
        names = " and ".join([first, *others])
        size = ckpt.tensors[first].numel()
        notes.append(f"tied weights: {names} are one tensor of {size:,} elements; counted once.")
    notes.append(
        "a weights file holds tensors, not a model: torchinfo is not run; requires_grad is not "
        "stored, so every parameter counts as trainable; buffers are told from parameters by "
        "name and dtype (running_mean, running_var, num_batches_tracked, *_mask, integer tensors)."
    )
    if any(g.inferred for g in layout):
        notes.append("module types marked ? are inferred from parameter names and shapes.")
    return Counts(total, total, 0, buffers, None, False, tuple(notes), modules)


def inspect_checkpoint(
    path: str | os.PathLike[str], against: str | None = None, bias_against: str | None = None
) -> CheckpointReport:
    """`initcli inspect FILE`: statistics of each tensor in a .safetensors file or a state dict.

    Nothing in the file is executed: torch files are read with `torch.load(weights_only=True)`.
    With `against`, each tensor is compared with what that scheme would have drawn for its shape
    (`bias_against` for 1-D tensors, default zeros): `var_ratio` and `mean_shift` say how far
    training moved it, `status` whether it still looks like that init.
    """
    if against is None and bias_against is not None:
        raise SchemeError("--bias-init needs --against SCHEME to compare a weights file with")
    chosen = resolve_schemes(against, bias_against, None) if against else None
    if chosen and chosen[0].name == schemes.AUTO:
        raise SchemeError(
            "--against auto: auto picks each weight's scheme from the activation after it, which "
            "a weights file does not record; name a scheme, e.g. --against kaiming_normal"
        )
    ckpt = checkpoint.load(path)
    layout = _layout(ckpt)
    defaults = (
        _defaults(layout) if chosen and (chosen[0].is_default or chosen[1].is_default) else {}
    )
    rows = []
    for group in layout:
        for leaf, t in group.params.items():
            exp = schemes.Expectation("-")
            if chosen is not None:
                scheme = schemes.choose(*chosen, group.module, leaf, t)
                exp = (
                    defaults.get(group.full(leaf), schemes.UNKNOWN)
                    if scheme.is_default
                    else schemes.expectation(scheme, t)
                )
            row = _measure(group.full(leaf), group.type_name, t, exp, True)
            rows.append(_moved(row))
    counts = CountReport(str(path), _checkpoint_counts(ckpt, layout))
    described = chosen[0].describe() if chosen else None
    return CheckpointReport(str(path), ckpt.format, described, tuple(rows), counts)


def _defaults(layout: list[_Group]) -> dict[str, schemes.Expectation]:
    """What PyTorch's own init implies for each tensor whose module type could be inferred.

    A module's defaults also cover its children's tensors where it re-initializes them (as
    MultiheadAttention zeroes out_proj.bias), so outer modules are applied last and win.
    """
    found: dict[str, schemes.Expectation] = {}
    for group in sorted(layout, key=lambda g: -(g.prefix.count(".") + 1) if g.prefix else 0):
        if group.inferred:
            for name, exp in schemes.default_expectations(group.module).items():
                found[group.full(name)] = exp
    return found


def _moved(row: ParamReport) -> CheckpointParam:
    ratio = shift = None
    if row.var is not None and row.expected_var:
        ratio = row.var / row.expected_var
    if row.mean is not None and row.expected_mean is not None:
        shift = row.mean - row.expected_mean
    values: dict[str, Any] = {f.name: getattr(row, f.name) for f in fields(ParamReport)}
    return CheckpointParam(**values, var_ratio=ratio, mean_shift=shift)


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


# --- probe / compare -----------------------------------------------------------------------------

# The batch that traces a forward pass for `auto` and `defaults`: only the order of calls matters.
TRACE_BATCH = 4


def spec_followers(spec: MLPSpec) -> dict[str, schemes.Follower]:
    """What follows each fc{i} of a spec's MLP, read from the spec (no forward pass needed)."""
    from initcli.spec import expand_layers

    found: dict[str, schemes.Follower] = {}
    for layer in expand_layers(spec):
        act = layer.activation
        if act is None or act == "identity":
            found[f"fc{layer.index}"] = schemes.Follower(None, where="no activation in the spec")
        else:
            # build_mlp uses nn.LeakyReLU(), whose slope is 0.01.
            slope = 0.01 if act == "leaky_relu" else 0.0
            found[f"fc{layer.index}"] = schemes.Follower(
                act, slope, f"act{layer.index} {act} (spec)"
            )
    return found


def _followers(
    source: loading.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None, seed: int
) -> dict[str, schemes.Follower]:
    """What follows each weighted module: from the spec, else from a traced forward pass."""
    if source.spec is not None:
        return spec_followers(source.spec)
    spec = probe.input_spec(model, None, input_shape)
    return probe.trace_followers(model, probe.make_batch(spec, TRACE_BATCH, seed))


def _auto_choices(
    source: loading.ModelSource, model: nn.Module, input_shape: tuple[int, ...] | None, seed: int
) -> dict[str, tuple[schemes.Scheme, str]]:
    try:
        followers = _followers(source, model, input_shape, seed)
    except ProbeError:
        if input_shape is not None:
            raise  # the user's own shape did not work: say so
        # No forward pass could be traced (no inferable input, or the inferred one failed): every
        # weight still gets a scheme, and its reason says that nothing was seen and what to do.
        return schemes.auto_choices(
            model, {}, missing="activation unknown: no forward could be traced; give --input-shape"
        )
    return schemes.auto_choices(model, followers)


def _initialized(
    source: loading.ModelSource,
    weight: schemes.Scheme,
    bias: schemes.Scheme,
    seed: int,
    input_shape: tuple[int, ...] | None,
) -> tuple[nn.Module, dict[str, schemes.Expectation]]:
    """A freshly built model with the schemes applied under the seeding contract (DESIGN §4)."""
    if weight.is_default:
        # The constructors are the init, so the seed goes before the build (DESIGN §4).
        torch.manual_seed(seed)
        model = source.build()
        return model, schemes.default_expectations(model)
    model = source.build()
    choices = None
    if weight.name == schemes.AUTO:
        # The trace runs before the seed is set, so it cannot shift the values drawn.
        choices = _auto_choices(source, model, input_shape, seed)
    return model, schemes.initialize(model, weight, bias, seed, choices)


@dataclass(frozen=True)
class TrainSetup:
    steps: int
    lr: float
    points: int
    noise: float


@dataclass(frozen=True)
class SchemeProbe:
    """One scheme's probe and, for `compare --train`, its training run."""

    scheme: str
    result: probe.ProbeResult
    training: probe.TrainResult | None = None


@dataclass(frozen=True)
class ProbeReport:
    target: str
    seed: int
    input_shape: tuple[int, ...]  # the whole batch, batch dimension first
    input_kind: str  # "float32 N(0, 1)" or "token ids in [0, n)"
    input_source: str
    schemes: tuple[SchemeProbe, ...]
    train: TrainSetup | None = None


def probe_report(
    target: str,
    inits: Sequence[str],
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = probe.DEFAULT_BATCH,
    train: TrainSetup | None = None,
) -> ProbeReport:
    """`initcli probe` and `compare`: per scheme, a fresh model, one seeded batch, the verdict."""
    if not inits:
        raise SchemeError("give at least one --init SCHEME (e.g. --init kaiming_normal)")
    if seed < 0:
        raise SchemeError(f"--seed must be ≥ 0, got {seed}")
    if batch_size < 1:
        raise ArgError(f"--batch-size must be ≥ 1, got {batch_size}")
    if train is not None:
        _check_train(train)
    source = loading.resolve(target, args)
    # The probed model, its gradients and (with --train) a second copy with Adam's two moments.
    _check_spec_fits(source, copies=5 if train else 2, hint="probe a smaller spec")
    # Every scheme is parsed before anything is built, so a typo fails fast.
    parsed = [resolve_schemes(init, bias_init, None) for init in inits]
    names = [w.describe() for w, _ in parsed]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise SchemeError(f"--init {twice} is given twice; give each scheme once")
    results: list[SchemeProbe] = []
    spec: probe.InputSpec | None = None
    batch: torch.Tensor | None = None
    for weight, bias in parsed:
        model, _ = _initialized(source, weight, bias, seed, input_shape)
        if spec is None or batch is None:
            spec = probe.input_spec(model, source.spec.input if source.spec else None, input_shape)
            batch = probe.make_batch(spec, batch_size, seed)
            if train is not None:
                if spec.shape != (2,) or spec.token_ids is not None:
                    shape = "×".join(map(str, spec.shape))
                    raise ProbeError(
                        "--train fits two moons: the model must take 2 features and give 2 "
                        f"logits, and {source.target} takes {shape} per sample "
                        f"({spec.source})"
                    )
                probe.check_moons_model(model)
        # Training starts from the init, not from the probe's backward pass, so it gets its own
        # fresh copy; both are built and initialized identically.
        result = probe.probe(model, batch)
        training = None
        if train is not None:
            fresh, _ = _initialized(source, weight, bias, seed, input_shape)
            training = probe.train_moons(
                fresh, train.steps, train.lr, seed, train.points, train.noise
            )
        results.append(SchemeProbe(weight.describe(), result, training))
    assert spec is not None and batch is not None
    kind = (
        f"token ids in [0, {spec.token_ids})" if spec.token_ids is not None else "float32 N(0, 1)"
    )
    return ProbeReport(
        source.target, seed, tuple(batch.shape), kind, spec.source, tuple(results), train
    )


def _check_train(train: TrainSetup) -> None:
    if train.steps < 1:
        raise ArgError(f"--train must be ≥ 1 step, got {train.steps}")
    if not (math.isfinite(train.lr) and train.lr > 0):
        raise ArgError(f"--lr must be a positive number, got {train.lr:g}")
    if train.points < 2:
        raise ArgError(f"--points must be ≥ 2, got {train.points}")
    if not (math.isfinite(train.noise) and train.noise >= 0):
        raise ArgError(f"--noise must be ≥ 0, got {train.noise:g}")


# --- defaults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefaultType:
    """A module type present in the model and what its reset_parameters does."""

    type: str
    modules: tuple[str, ...]
    rules: tuple[schemes.DefaultRule, ...]


@dataclass(frozen=True)
class DefaultCheck:
    """One weight under its default init, against what auto would pick for what follows it."""

    name: str
    module: str
    type: str
    fan_in: int | None
    fan_out: int | None
    init: str
    expected_var: float | None
    followed_by: str | None
    recommended: str | None  # `<scheme> ← <why>`, as auto would label it
    recommended_var: float | None
    ratio: float | None  # expected_var / recommended_var
    warning: str | None  # set where an activation follows and the ratio is off by > 2× either way


@dataclass(frozen=True)
class DefaultsReport:
    target: str
    types: tuple[DefaultType, ...]
    checks: tuple[DefaultCheck, ...]
    warnings: tuple[str, ...]  # one sentence per group of weights with the same mismatch
    notes: tuple[str, ...]


def _scheme_arg(scheme: schemes.Scheme) -> str:
    """How to ask for a scheme on the command line: kaiming_normal:nonlinearity=relu."""
    info = schemes.SCHEMES[scheme.name]
    changed = [
        f"{key}={schemes.format_value(value)}"
        for (key, value), param in zip(scheme.params, info.params, strict=True)
        if value != param.default
    ]
    return f"{scheme.name}:{','.join(changed)}" if changed else scheme.name


def _names(names: Sequence[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} … {names[-1]} ({len(names)})"


def defaults(
    target: str,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> DefaultsReport:
    """`initcli defaults`: what PyTorch's own init does per module type, and where it mismatches."""
    source = loading.resolve(target, args)
    _check_spec_fits(source, copies=1, hint="make the spec smaller")
    torch.manual_seed(0)
    model = source.build()
    notes: list[str] = []
    try:
        followers = _followers(source, model, input_shape, 0)
    except ProbeError as exc:
        followers = {}
        notes.append(f"the activation after each layer is unknown, so nothing is checked: {exc}")
    by_type: dict[str, tuple[list[str], tuple[schemes.DefaultRule, ...]]] = {}
    for name, module in model.named_modules():
        rules = schemes.default_rules(module)
        if rules:
            entry = by_type.setdefault(type(module).__name__, ([], rules))
            entry[0].append(name or "(model)")
    types = tuple(DefaultType(t, tuple(mods), rules) for t, (mods, rules) in by_type.items())
    if any(isinstance(m, nn.Transformer) for m in model.modules()):
        notes.append("nn.Transformer re-initializes every matrix below it with xavier_uniform_")

    expected = schemes.default_expectations(model)
    choices = schemes.auto_choices(model, followers) if followers else {}
    held = schemes.owners(model)
    module_names = {id(m): n for n, m in model.named_modules()}
    checks: list[DefaultCheck] = []
    # Weights with the same mismatch (module type, activation, ratio, advice) share one warning.
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, param in model.named_parameters():
        if param.dim() < 2 or schemes.is_uninitialized(param):
            continue
        module = held[id(param)][1]
        module_name = module_names[id(module)]
        exp = expected[name]
        fan = schemes.fans(param)
        follower = followers.get(module_name)
        followed_by = None if follower is None or follower.kind is None else follower.where
        rec_label = rec_var = ratio = warning = None
        if name in choices:
            chosen, why = choices[name]
            rec_label = f"{schemes.short_label(chosen)} ← {why}"
            rec_var = schemes.expectation(chosen, param).var
            if exp.var is not None and rec_var:
                ratio = exp.var / rec_var
        off = ratio is not None and not 1 / DEFAULTS_MISMATCH <= ratio <= DEFAULTS_MISMATCH
        if follower is not None and follower.kind is not None and off and ratio is not None:
            chosen = choices[name][0]
            label = schemes.short_label(chosen)
            warning = (
                f"the default variance is {fraction(ratio)} of {label}'s: the signal's std "
                f"changes ×{math.sqrt(ratio):.2f} per such layer"
            )
            rule = next(
                (r for r in schemes.default_rules(module) if r.param == name.rsplit(".", 1)[-1]),
                None,
            )
            key = (
                type(module).__name__,
                follower.kind,
                f"{follower.slope:g}",
                fraction(ratio),
                label,
                f"{math.sqrt(ratio):.2f}",
                _scheme_arg(chosen),
                rule.variance if rule else exp.init,
                schemes.variance_formula(chosen),
            )
            groups.setdefault(key, []).append(module_name)
        checks.append(
            DefaultCheck(
                name,
                module_name,
                type(module).__name__,
                fan[0] if fan else None,
                fan[1] if fan else None,
                exp.init,
                exp.var,
                followed_by,
                rec_label,
                rec_var,
                ratio,
                warning,
            )
        )
    warnings = tuple(
        f"{kind_type} {_names(mods)} → {act}: default variance {default_formula} is {frac} of "
        f"{label}'s {rec_formula}, so the signal's std changes ×{factor} per such layer; use "
        f"--init auto or --init {arg}"
        for (kind_type, act, _slope, frac, label, factor, arg, default_formula, rec_formula), mods
        in groups.items()
    )  # fmt: skip
    return DefaultsReport(source.target, types, tuple(checks), warnings, tuple(notes))


# --- gain ----------------------------------------------------------------------------------------


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
