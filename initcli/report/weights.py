"""`initcli inspect FILE`: each tensor of a weights file, against a scheme if one is named."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from initcli import checkpoint, schemes, torch_defaults
from initcli.counting import Counts, ModuleCount, formula
from initcli.errors import SchemeError
from initcli.report._shared import resolve_schemes
from initcli.report.counts import CountReport
from initcli.report.measuring import ParamReport, measure


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


def count_file(path: str | os.PathLike[str]) -> CountReport:
    """`initcli count FILE`: a weights file's totals, per inferred module."""
    ckpt = checkpoint.load(path)
    return CountReport(str(path), _checkpoint_counts(ckpt, _layout(ckpt)))


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
            default = False
            if chosen is not None:
                scheme = schemes.choose(*chosen, group.module, leaf, t)
                default = scheme.is_default
                exp = (
                    defaults.get(group.full(leaf), schemes.UNKNOWN)
                    if scheme.is_default
                    else schemes.expectation(scheme, t)
                )
            row = measure(
                group.full(leaf), group.type_name, t, exp, True, default=default, trained=True
            )
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
            for name, exp in torch_defaults.default_expectations(group.module).items():
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
