"""`initcli defaults`: PyTorch's own init per module type, against the activation after it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from initcli.errors import ProbeError
from initcli.experiments.verdict import DEFAULTS_MISMATCH, fraction
from initcli.init import auto, schemes, torch_defaults
from initcli.model import building
from initcli.report._shared import check_spec_fits, followers_of, guarded, resolve_target


@dataclass(frozen=True)
class DefaultType:
    """A module type present in the model and what its reset_parameters does."""

    type: str
    modules: tuple[str, ...]
    rules: tuple[torch_defaults.DefaultRule, ...]


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


@guarded("run")
def defaults(
    target: str,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> DefaultsReport:
    """`initcli defaults`: what PyTorch's own init does per module type, and where it mismatches."""
    source = resolve_target(target, args)
    check_spec_fits(source, copies=1, hint="make the spec smaller")
    torch.manual_seed(0)
    model = source.build()
    notes: list[str] = []
    try:
        followers = followers_of(source, model, input_shape, 0)
    except ProbeError as exc:
        followers = {}
        notes.append(f"the activation after each layer is unknown, so nothing is checked: {exc}")
    by_type: dict[str, tuple[list[str], tuple[torch_defaults.DefaultRule, ...]]] = {}
    for name, module in model.named_modules():
        rules = torch_defaults.default_rules(module)
        if rules:
            entry = by_type.setdefault(type(module).__name__, ([], rules))
            entry[0].append(name or "(model)")
    types = tuple(DefaultType(t, tuple(mods), rules) for t, (mods, rules) in by_type.items())
    if any(isinstance(m, nn.Transformer) for m in model.modules()):
        notes.append("nn.Transformer re-initializes every matrix below it with xavier_uniform_")

    expected = torch_defaults.default_expectations(model)
    choices = auto.auto_choices(model, followers) if followers else {}
    held = schemes.owners(model)
    module_names = {id(m): n for n, m in model.named_modules()}
    checks: list[DefaultCheck] = []
    # Weights with the same mismatch (module type, activation, ratio, advice) share one warning.
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, param in model.named_parameters():
        if param.dim() < 2 or building.is_uninitialized(param):
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
                (
                    r
                    for r in torch_defaults.default_rules(module)
                    if r.param == name.rsplit(".", 1)[-1]
                ),
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
