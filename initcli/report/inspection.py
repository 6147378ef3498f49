"""`initcli inspect` on a model: plan how to build and measure, then initialize and measure."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn

from initcli import limits, memory
from initcli.errors import MemoryLimitError, TargetError
from initcli.init import assign, auto, norms, policy, schemes
from initcli.init.schemes import Choices
from initcli.measure import fans, identify
from initcli.memory import out_of_memory_is_an_error
from initcli.model import building, resolve
from initcli.report._shared import (
    CountReport,
    auto_choices_for,
    check_spec_depth,
    counts_of,
    guarded,
    has_lazy,
    is_weights,
    materialize_lazy,
    resolve_policy,
    resolve_target,
    spec_followers,
    try_meta,
)
from initcli.report.grouping import RowGroup, group_params
from initcli.report.measuring import (
    ParamReport,
    Progress,
    fixed_rows,
    looks_like_summary,
    run_items,
)
from initcli.text import first_and_more
from initcli.values import draws, streaming
from initcli.values.items import Item, StreamError
from initcli.weights import checkpoint


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
    # What the values look like, grouped (report.measuring.looks_like_summary).
    looks_like: tuple[str, ...] = ()

    @functools.cached_property
    def groups(self) -> tuple[RowGroup, ...]:
        """The parameters of repeated blocks, one group per pattern (report.grouping)."""
        return group_params(self.params)


class Method(StrEnum):
    """How inspect builds and measures a model."""

    STREAM = "stream"  # built on meta; each parameter drawn by the named scheme in turn
    # Built on meta; each module's reset_parameters replayed, or, where code beyond them sets
    # values (transformers' post_init, self.apply), the meta build's recorded writes (replay).
    STREAM_DEFAULT = "stream-default"
    REAL = "real"  # the whole model built in memory, then initialized


@dataclass(frozen=True)
class InspectPlan:
    """How `inspect` will build and measure a model, and why: decided before any value is drawn.

    `remarks` are the sentences that say why (a real build instead of a meta one, a streamed
    default init): the CLI prints them as `Note:` lines.
    """

    method: Method
    remarks: tuple[str, ...] = ()


def plan_inspect(
    source: resolve.ModelSource,
    chosen: policy.Policy,
    meta: nn.Module | None,
    meta_failure: str | None,
    dev: torch.device,
    *,
    input_shape: tuple[int, ...] | None = None,
    save: bool = False,
    stream: bool | None = None,
    assignment: policy.Assignment | None = None,
) -> InspectPlan:
    """Decide how to inspect: stream from `meta` (the meta-built model, None when that build
    failed for `meta_failure` or was not tried) or build for real. Raises where neither can work.
    `assignment` is a rules policy matched on `meta`: it streams when every parameter gets a
    named scheme; one that keeps some constructor values needs a real build, as fn:/method: do.
    """
    weight, bias = chosen.weight, chosen.bias
    remarks = [] if meta_failure is None else [building.fallback_note(source.target, meta_failure)]
    if chosen.code is not None:
        remarks.append(
            f"{chosen.describe()} runs the model's own init code, so {source.target} was built "
            "whole (not streamed) and that code run on it after the seed"
        )
        return InspectPlan(Method.REAL, tuple(remarks))
    if chosen.rules:
        named = assignment is not None and not assignment.defaults
    else:
        named = not weight.is_default and not bias.is_default
    if meta is None:
        return InspectPlan(Method.REAL, tuple(remarks))
    if named and any(p.is_complex() for p in meta.parameters()):
        # Complex parameters are left as built (see assign.initialize_iter): that needs a build.
        return InspectPlan(Method.REAL, tuple(remarks))
    if weight.name == schemes.AUTO and source.spec is None:
        return InspectPlan(Method.REAL)  # auto traces a forward pass to see each activation
    if input_shape is not None and has_lazy(meta):
        return InspectPlan(Method.REAL)  # lazy layers take their shapes from a forward pass
    nbytes = building.tensor_bytes(meta)
    if save:
        # The state dict is written whole, so the model is built whole (if it fits).
        if not memory.fits(nbytes, dev):
            raise MemoryLimitError(
                f"--save writes the whole state dict of {source.target}, which needs "
                f"{memory.human_bytes(nbytes)}, more than half the free memory on {dev}; "
                "inspect it without --save (streamed) instead"
            )
        return InspectPlan(Method.REAL)
    if named:
        _check_streamable(source.target, meta, dev)
        return InspectPlan(Method.STREAM)
    if chosen.rules:
        if stream is not True and memory.fits(nbytes, dev):
            return InspectPlan(Method.REAL)
        raise MemoryLimitError(
            f"the policy leaves parameters of {source.target} at their constructors' values, "
            f"which needs a real build ({memory.human_bytes(nbytes)}, more than half the free "
            f"memory on {dev}); add rules that set them too, so the policy can be streamed"
        )
    use_stream = stream if stream is not None else not memory.fits(nbytes, dev)
    if not use_stream:
        return InspectPlan(Method.REAL)
    if not weight.is_default:
        raise MemoryLimitError(
            f"--bias-init default needs a real build of {source.target} "
            f"({memory.human_bytes(nbytes)}), more than half the free memory on "
            f"{dev}; choose a named --bias-init (e.g. zeros) so it can be streamed"
        )
    _check_streamable(source.target, meta, dev)
    reason = (
        None if stream else f"needs {memory.human_bytes(nbytes)}, more than half the free memory"
    )
    remark = _default_stream_remark(source.target, reason, streaming.plan_default(meta))
    return InspectPlan(Method.STREAM_DEFAULT, (remark,))


@guarded("initialized or run")
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
    """`initcli inspect`: initialize TARGET under the seeding contract and measure.

    The seeding contract is in docs/contract/schemes.md.

    With a named scheme the model is built on the meta device and each parameter materialized,
    initialized and measured in turn (streaming: memory ≈ the largest parameter), with values
    identical to a real build. With `default`, the model is built for real (seeded first) when it
    fits in half the free memory, else streamed through each module's reset_parameters (or, for
    a model-level init such as transformers' `_init_weights`, the meta build's recorded writes
    replayed in order: initcli.values.replay).
    `stream` forces (True) or forbids (False) streaming; None decides as just said.
    `input_shape` (one sample) gives lazy layers their shapes through a forward pass before the
    init, and lets `auto` trace which activation follows which weight when TARGET is not a YAML
    spec (both need a real build: no streaming then).
    With `save`, the initialized weights (the state dict just measured) are also written there as
    safetensors, which needs the whole model in memory; an existing file is replaced only with
    `force`.

    The steps: resolve → plan → build → values → measure (→ save) → report.
    """
    source, chosen, dev = _resolve(target, args, init, bias_init, seed, device, save, force)
    job = _plan(source, chosen, dev, seed, input_shape, save=save is not None, stream=stream)
    with out_of_memory_is_an_error(f"building and initializing {source.target}"):
        model = _build(job)
        values = _values(job, model)
    kept = _kept(job, model, values)
    rows = _measure(job, model, values, progress, kept)
    meta = job.meta
    if meta is not None and (job.chosen.is_default or kept):
        own = [r for r in rows if job.chosen.is_default or r.name in kept]
        fixed = fixed_rows(tuple(own), lambda: draws.undrawn(meta))
        changed = {r.name: r for r in fixed}
        rows = tuple(changed.get(r.name, r) for r in rows)
    if save is not None:
        _save(job, model, save, force)
    return _report(job, model, values, rows)


@dataclass(frozen=True)
class _Job:
    """What the steps after the plan share: the target, the policy, the meta build, the plan."""

    source: resolve.ModelSource
    chosen: policy.Policy
    dev: torch.device
    seed: int
    input_shape: tuple[int, ...] | None
    meta: nn.Module | None
    assignment: policy.Assignment | None
    plan: InspectPlan


@dataclass(frozen=True)
class _Values:
    """The items to measure, auto's or the policy's per-parameter choices, the policy's remarks."""

    items: Iterator[Item]
    choices: Choices | None
    remarks: tuple[str, ...]


def _resolve(
    target: str,
    args: Mapping[str, object] | None,
    init: str | None,
    bias_init: str | None,
    seed: int,
    device: str,
    save: str | os.PathLike[str] | None,
    force: bool,
) -> tuple[resolve.ModelSource, policy.Policy, torch.device]:
    """What TARGET, --init and --device name, after the checks that need nothing built."""
    limits.check_seed(seed)
    identify.prefetch()  # scipy loads while the target is resolved and built
    if is_weights(target):
        raise TargetError(
            f"{target} is a weights file, not a model: use inspect_checkpoint() "
            "(initcli inspect FILE --against SCHEME on the command line)"
        )
    if save is not None:
        checkpoint.check_save_path(save, force)
    dev = building.resolve_device(device)
    source = resolve_target(target, args)
    check_spec_depth(source)
    chosen = resolve_policy(init, bias_init, source.spec.init if source.spec else None)
    return source, chosen, dev


def _plan(
    source: resolve.ModelSource,
    chosen: policy.Policy,
    dev: torch.device,
    seed: int,
    input_shape: tuple[int, ...] | None,
    *,
    save: bool,
    stream: bool | None,
) -> _Job:
    """How to build and measure (plan_inspect), decided on the meta build before any draw."""
    meta: nn.Module | None = None
    failure: str | None = None
    if not source.prebuilt and stream is not False:
        # With `default` (or the user's init code) a real build usually follows; its warnings
        # are the ones to show.
        meta, failure = try_meta(source, quiet=chosen.is_default or chosen.code is not None)
    assignment = policy.assign(chosen, meta, source.target) if chosen.rules and meta else None
    plan = plan_inspect(
        source, chosen, meta, failure, dev,
        input_shape=input_shape, save=save, stream=stream, assignment=assignment,
    )  # fmt: skip
    return _Job(source, chosen, dev, seed, input_shape, meta, assignment, plan)


def _build(job: _Job) -> nn.Module:
    """The model the plan measures: the meta build when streamed, else a real build."""
    if job.plan.method is not Method.REAL and job.meta is not None:
        return job.meta
    # The constructors are the init of what the scheme or policy leaves alone (all of it for
    # `default`, the biases with --bias-init default), so the seed goes before the build too
    # (docs/contract/schemes.md).
    torch.manual_seed(job.seed)
    model = _build_real(job.source, job.dev)
    materialize_lazy(job.source, model, job.input_shape)
    return model


def _values(job: _Job, model: nn.Module) -> _Values:
    """Each parameter's values, one at a time (values.streaming.values_of), with their choices."""
    choices, remarks = _choices(job, model)
    items, code_remarks = streaming.values_of(
        model, job.chosen, job.seed, job.dev,
        streamed=model is job.meta, choices=choices, target=job.source.target,
    )  # fmt: skip
    return _Values(items, choices, (*remarks, *code_remarks))


def _choices(job: _Job, model: nn.Module) -> tuple[Choices | None, tuple[str, ...]]:
    """Auto's or the policy's scheme for each parameter of `model`, and the policy's remarks."""
    chosen, source = job.chosen, job.source
    is_auto = chosen.weight.name == schemes.AUTO
    if model is job.meta:
        if job.plan.method is Method.STREAM_DEFAULT:
            return None, ()
        matched = job.assignment
        remarks = matched.remarks if matched is not None else ()
        if is_auto and source.spec is not None:
            return auto.auto_choices(model, spec_followers(source.spec)), remarks
        return (matched.choices if matched is not None else None), remarks
    if chosen.is_default or chosen.code is not None:
        return None, ()
    if chosen.rules:
        matched = policy.assign(chosen, model, source.target)
        return matched.choices, matched.remarks
    # The trace runs before the seed is set, so it cannot shift the values drawn.
    return (auto_choices_for(source, model, job.input_shape, job.seed) if is_auto else None), ()


def _kept(job: _Job, model: nn.Module, values: _Values) -> frozenset[str]:
    """What a named scheme or policy leaves to the constructors (a policy's unmatched
    parameters, the biases with --bias-init default): judged as `default` judges it."""
    chosen = job.chosen
    if chosen.is_default or chosen.code is not None or job.plan.method is not Method.REAL:
        return frozenset()
    return assign.kept_names(model, chosen.weight, chosen.bias, values.choices)


def _measure(
    job: _Job,
    model: nn.Module,
    values: _Values,
    progress: Progress | None,
    kept: frozenset[str] = frozenset(),
) -> tuple[ParamReport, ...]:
    """Each parameter measured as its values are drawn (report.measuring.run_items)."""
    chosen = job.chosen
    # QR (orthogonal) is the one init whose values depend on torch's thread count.
    used = chosen.scheme_names() | {c.name for c, _ in (values.choices or {}).values()}
    try:
        with out_of_memory_is_an_error(f"initializing and measuring {job.source.target}"):
            return run_items(
                model,
                values.items,
                progress,
                overlap="orthogonal" not in used,
                default=chosen.is_default,
                kept=kept,
            )
    except StreamError as exc:
        raise TargetError(
            f"the default init of {job.source.target} cannot be streamed ({exc}) and a real "
            f"build needs {memory.human_bytes(building.tensor_bytes(model))}, more than half the "
            "free memory; choose a named --init"
        ) from None


def _save(job: _Job, model: nn.Module, save: str | os.PathLike[str], force: bool) -> None:
    """--save: the state dict just measured, written as safetensors."""
    metadata = {
        "initcli.target": job.source.target,
        "initcli.scheme": job.chosen.describe(),
        "initcli.seed": str(job.seed),
    }
    with out_of_memory_is_an_error(f"saving {save}"):
        checkpoint.save_safetensors(model, save, force, metadata)


def _report(
    job: _Job, model: nn.Module, values: _Values, rows: tuple[ParamReport, ...]
) -> InspectReport:
    """The report: the rows, the counts, every remark and what the values look like."""
    source = job.source
    streamed = job.plan.method is not Method.REAL
    count_method = "spec" if source.spec is not None else ("meta" if streamed else "real")
    counts = counts_of(source, model, job.input_shape)
    fan_remarks = _fan_remarks(model, job.chosen, values.choices, rows)
    if job.chosen.is_plain and not job.chosen.weight.is_default:
        norm_remark = norms.kept_remark(model, source.target)
        fan_remarks = fan_remarks if norm_remark is None else (norm_remark, *fan_remarks)
    return InspectReport(
        source.target,
        job.chosen.describe(),
        job.seed,
        rows,
        CountReport(source.target, counts, count_method),
        "stream" if streamed else "real",
        (*job.plan.remarks, *values.remarks, *fan_remarks),
        str(job.dev),
        looks_like_summary(rows),
    )


def _fan_remarks(
    model: nn.Module,
    chosen: policy.Policy,
    choices: Choices | None,
    rows: tuple[ParamReport, ...],
) -> tuple[str, ...]:
    """Where a fan-based init divided by one of torch's fans that the forward pass does not have
    (HF Conv1D, ConvTranspose, groups, stacked gates): the factor its variance is off by."""
    if chosen.code is not None:
        return ()  # what the user's code called is not known per parameter
    status = {row.name: row.status for row in rows}
    held = schemes.owners(model)
    uses, slices = [], []
    for name, param in model.named_parameters():
        scheme: schemes.Scheme | None
        if choices is not None and name in choices:
            scheme = choices[name][0]
        elif chosen.is_default or chosen.rules:
            # The constructors' values: torch's default, only where they are that (not custom).
            if status.get(name) != "ok":
                continue
            scheme = None
        else:
            scheme = chosen.weight
        module, pname = held[id(param)][1], name.rpartition(".")[2]
        use = fans.fan_use(name, module, pname, param, scheme)
        if use is not None:
            uses.append(use)
        per_slice = fans.slice_use(name, module, pname, param, scheme)
        if per_slice is not None:
            slices.append(per_slice)
    return (*fans.slice_remarks(slices), *fans.off_remarks(uses))


def _check_streamable(target: str, model: nn.Module, dev: torch.device) -> None:
    """Refuse, before anything is allocated, a model whose largest tensor alone cannot fit."""
    sizes = [
        (p.numel() * p.element_size(), name)
        for name, p in model.named_parameters()
        if not building.is_uninitialized(p)
    ]
    nbytes, name = max(sizes, default=(0, ""))
    free = memory.available_bytes(dev)
    if free is not None and nbytes > memory.REFUSE_SHARE * free:
        total = sum(p.numel() for _, p in building.unique_parameters(model))
        raise MemoryLimitError(
            f"{target} has {total:,} parameters and its largest tensor, {name}, alone needs "
            f"{nbytes / 2**30:,.1f} GiB, more than the {free / 2**30:,.1f} GiB free on {dev}; "
            "'initcli count' counts it without building anything"
        )


def _build_real(source: resolve.ModelSource, dev: torch.device) -> nn.Module:
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
    )
    if plan.model_init:
        text += (
            ": its meta build's recorded writes and draws replayed in order after the seed, "
            f"including {plan.model_init}, each parameter on a real tensor only while it is "
            "being set — the same numbers as a real build"
        )
        if plan.not_replayed:
            shown = first_and_more(plan.not_replayed, 3, show=lambda item: f"{item[0]} ({item[1]})")
            text += (
                f"; {len(plan.not_replayed)} parameter(s) not replayed, reported without values: "
                f"{shown}"
            )
        return text
    text += (
        ": each module's reset_parameters, children before parents, after the seed — the same "
        "numbers as a real build wherever the constructors draw their init that way, as torch's "
        "own layers do (not where constructor code changes the values after that)"
    )
    if plan.without_reset:
        text += (
            f"; {first_and_more(plan.without_reset, 5)} hold parameters but have no "
            "reset_parameters, so those values are not reproduced, nor, if their constructors "
            "drew random numbers, any after them"
        )
    return text
