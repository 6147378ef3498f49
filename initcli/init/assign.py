"""Give each parameter of a model its scheme (the contract's rules, a policy's, auto's), seeded."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace

import torch
from torch import nn

from initcli.errors import SchemeError, first_line
from initcli.init.norms import norm_of
from initcli.init.schemes import (
    AUTO,
    DEFAULT,
    NOT_SEEN,
    RULES,
    UNKNOWN,
    Choices,
    Expectation,
    Scheme,
    apply,
    expectation,
    owners,
    parse_scheme,
    short_label,
)
from initcli.init.stacking import Stack, stack_of
from initcli.init.torch_defaults import default_expectations
from initcli.model.building import is_uninitialized


def choose(
    weight: Scheme,
    bias: Scheme,
    module: nn.Module,
    name: str,
    param: torch.Tensor,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
) -> Scheme:
    """The scheme that docs/contract/schemes.md gives one parameter of `module` (a policy's:
    from `choices`)."""
    if weight.name == RULES:
        return weight if choices is not None and name in choices else DEFAULT
    norm = norm_of(module)
    if norm is not None and not weight.is_default:
        # Normalization layers, of any class, start as the identity map whatever the scheme, as
        # their constructors set them: gain 1, bias 0 (gain 0 where the layer scales by 1 + w).
        start = norm.start(name.rsplit(".", 1)[-1])
        return parse_scheme("ones" if start == 1.0 else "zeros")
    return weight if param.dim() >= 2 else bias


def kept_names(
    model: nn.Module,
    weight: Scheme,
    bias: Scheme,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
) -> frozenset[str]:
    """The parameters that `initialize` leaves as their constructors set them (a policy's
    unmatched ones, the biases with --bias-init default): judged as under `default`."""
    if weight.is_default:
        return frozenset(name for name, _ in model.named_parameters())
    held = owners(model)
    return frozenset(
        name
        for name, param in model.named_parameters()
        if not is_uninitialized(param)
        and choose(weight, bias, held[id(param)][1], name, param, choices).is_default
    )


def initialize(
    model: nn.Module,
    weight: Scheme,
    bias: Scheme,
    seed: int,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
) -> dict[str, Expectation]:
    """Apply schemes per docs/contract/schemes.md and return each parameter's expectation, by name.

    Seeding contract: torch.manual_seed(seed) after the build, then one torch.nn.init call per
    parameter in named_parameters() order (per expert's slice for a stacked 3-D weight: see
    apply_to) — exactly what a training script would do. With
    `auto`, `choices` (from auto_choices) gives each ≥2-D parameter its scheme and the reason.
    """
    return dict(initialize_iter(model, weight, bias, seed, choices))


def initialize_iter(
    model: nn.Module,
    weight: Scheme,
    bias: Scheme,
    seed: int,
    choices: Mapping[str, tuple[Scheme, str]] | None = None,
) -> Iterator[tuple[str, Expectation]]:
    """`initialize` one parameter at a time: each is set when its (name, expectation) is yielded."""
    if weight.name == AUTO and choices is None:
        raise SchemeError(
            "auto needs the activation after each weight: from a YAML spec or a traced forward"
        )
    keeps = weight.name in ("default", RULES) or bias.is_default
    defaults = default_expectations(model) if keeps else {}
    held = owners(model)
    torch.manual_seed(seed)
    for name, param in model.named_parameters():
        if is_uninitialized(param):
            yield name, Expectation("uninitialized (lazy)")
            continue
        chosen = choose(weight, bias, held[id(param)][1], name, param, choices)
        if chosen.is_default:
            yield name, defaults.get(name, UNKNOWN)
            continue
        if param.is_complex():
            # torch.nn.init has no complex semantics for most schemes (orthogonal and
            # trunc_normal raise); such tensors are left as built and draw no random numbers.
            yield name, Expectation("left as built (complex)")
            continue
        stack = stack_of(held[id(param)][1], name.rpartition(".")[2], param)
        yield name, apply_chosen(chosen, name, param, choices, stack)


def apply_chosen(
    chosen: Scheme,
    name: str,
    tensor: torch.Tensor,
    choices: Choices | None = None,
    stack: Stack | None = None,
) -> Expectation:
    """Apply `chosen` (auto's or a policy's per-parameter choice) to `tensor`; what it implies.
    `stack`: the tensor stacks experts' matrices (init.stacking), see `apply_to`."""
    label, fallback = None, (parse_scheme("xavier_normal"), NOT_SEEN)
    if chosen.name in (AUTO, RULES):
        assert choices is not None
        is_auto = chosen.name == AUTO
        chosen, label = choices.get(name, fallback) if is_auto else choices[name]
        label = f"{short_label(chosen)} ← {label}" if is_auto else label
    per_slice = stack is not None and chosen.info.min_dims >= 2
    apply_to(chosen, name, tensor, stack if per_slice else None)
    exp = expectation(chosen, stack.views(tensor)[0] if stack is not None and per_slice else tensor)
    return exp if label is None else replace(exp, init=label)


def apply_to(scheme: Scheme, name: str, tensor: torch.Tensor, stack: Stack | None = None) -> None:
    """`apply`, with torch's refusals (a dtype or shape an init cannot take) as SchemeError.

    With `stack`, once per expert's slice in order (its out×in view): torch's fans of the 3-D
    tensor (out·in, experts·in) are no layer's, a slice's are the forward pass's.
    """
    try:
        for part in [tensor] if stack is None else stack.views(tensor):
            apply(scheme, part)
    except (RuntimeError, NotImplementedError, ValueError) as exc:
        dtype = str(tensor.dtype).removeprefix("torch.")
        raise SchemeError(
            f"torch.nn.init cannot apply {scheme.name} to {name} "
            f"({dtype}, shape {tuple(tensor.shape)}): {first_line(exc)}; choose another scheme"
        ) from None
