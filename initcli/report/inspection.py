"""`initcli inspect` on a model: plan how to build and measure, then initialize and measure."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import nn

from initcli import limits, memory
from initcli.errors import MemoryLimitError, TargetError
from initcli.init import assign, auto, policy, schemes, torch_defaults, usercode
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
from initcli.report.measuring import ParamReport, Progress, looks_like_summary, run_items
from initcli.text import first_and_more
from initcli.values import streaming
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
    """
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
    meta: nn.Module | None = None
    failure: str | None = None
    if not source.prebuilt and stream is not False:
        # With `default` (or the user's init code) a real build usually follows; its warnings
        # are the ones to show.
        meta, failure = try_meta(source, quiet=chosen.is_default or chosen.code is not None)
    assignment = policy.assign(chosen, meta, source.target) if chosen.rules and meta else None
    plan = plan_inspect(
        source, chosen, meta, failure, dev,
        input_shape=input_shape, save=save is not None, stream=stream, assignment=assignment,
    )  # fmt: skip
    with out_of_memory_is_an_error(f"building and initializing {source.target}"):
        model, items, choices, remarks = _execute(
            plan, source, meta, chosen, assignment, seed, dev, input_shape
        )
    # QR (orthogonal) is the one init whose values depend on torch's thread count.
    used = chosen.scheme_names() | {c.name for c, _ in (choices or {}).values()}
    try:
        with out_of_memory_is_an_error(f"initializing and measuring {source.target}"):
            rows = run_items(
                model, items, progress, overlap="orthogonal" not in used, default=chosen.is_default
            )
    except StreamError as exc:
        raise TargetError(
            f"the default init of {source.target} cannot be streamed ({exc}) and a real build "
            f"needs {memory.human_bytes(building.tensor_bytes(model))}, more than half the "
            "free memory; choose a named --init"
        ) from None
    if save is not None:
        metadata = {
            "initcli.target": source.target,
            "initcli.scheme": chosen.describe(),
            "initcli.seed": str(seed),
        }
        with out_of_memory_is_an_error(f"saving {save}"):
            checkpoint.save_safetensors(model, save, force, metadata)
    streamed = plan.method is not Method.REAL
    count_method = "spec" if source.spec is not None else ("meta" if streamed else "real")
    return InspectReport(
        source.target,
        chosen.describe(),
        seed,
        rows,
        CountReport(source.target, counts_of(source, model, input_shape), count_method),
        "stream" if streamed else "real",
        (*plan.remarks, *remarks, *_fan_remarks(model, chosen, choices, rows)),
        str(dev),
        looks_like_summary(rows),
    )


def _execute(
    plan: InspectPlan,
    source: resolve.ModelSource,
    meta: nn.Module | None,
    chosen: policy.Policy,
    assignment: policy.Assignment | None,
    seed: int,
    dev: torch.device,
    input_shape: tuple[int, ...] | None,
) -> tuple[nn.Module, Iterator[Item], Choices | None, tuple[str, ...]]:
    """The model the plan measures, its parameters as items to measure, auto's or the policy's
    per-parameter choices, and the remarks the policy made."""
    weight, bias = chosen.weight, chosen.bias
    is_auto = weight.name == schemes.AUTO
    choices: Choices | None
    if plan.method is Method.STREAM and meta is not None:
        choices = assignment.choices if assignment is not None else None
        if is_auto and source.spec is not None:
            choices = auto.auto_choices(meta, spec_followers(source.spec))
        remarks = assignment.remarks if assignment is not None else ()
        return meta, streaming.named(meta, weight, bias, seed, dev, choices), choices, remarks
    if plan.method is Method.STREAM_DEFAULT and meta is not None:
        return meta, streaming.default(meta, seed, dev), None, ()
    # The constructors are the init of what the scheme or policy leaves alone (all of it for
    # `default`, the biases with --bias-init default), so the seed goes before the build too
    # (docs/contract/schemes.md).
    torch.manual_seed(seed)
    model = _build_real(source, dev)
    materialize_lazy(source, model, input_shape)
    if chosen.is_default:
        expected = torch_defaults.default_expectations(model)
        return model, streaming.in_memory(model, expected.items()), None, ()
    if chosen.code is not None:
        done = usercode.run(chosen.code, model, seed, source.target)
        return model, streaming.in_memory(model, done.expectations.items()), None, done.remarks
    remarks = ()
    if chosen.rules:
        matched = policy.assign(chosen, model, source.target)
        choices = matched.choices
        remarks = matched.remarks
    else:
        # The trace runs before the seed is set, so it cannot shift the values drawn.
        choices = auto_choices_for(source, model, input_shape, seed) if is_auto else None
    items = streaming.in_memory(model, assign.initialize_iter(model, weight, bias, seed, choices))
    return model, items, choices, remarks


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
    uses = []
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
        use = fans.fan_use(name, held[id(param)][1], name.rpartition(".")[2], param, scheme)
        if use is not None:
            uses.append(use)
    return fans.off_remarks(uses)


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
