"""Exact parameter counts by tensor identity, torchinfo's count beside them, and why they differ."""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

import torch
from torch import nn

from initcli.schemes import is_uninitialized


@dataclass(frozen=True)
class ModuleCount:
    """A module that owns parameters directly, with its hand count written out."""

    name: str
    type: str
    params: int
    formula: str


@dataclass(frozen=True)
class TorchinfoCount:
    total: int
    trainable: int


@dataclass(frozen=True)
class Counts:
    """Totals by identity (tied tensors once); buffers are reported but never added to `total`."""

    total: int
    trainable: int
    frozen: int
    buffers: int
    torchinfo: TorchinfoCount | None
    agree: bool
    notes: tuple[str, ...]
    modules: tuple[ModuleCount, ...]
    uninitialized: tuple[str, ...] = ()


def _numel(tensor: torch.Tensor) -> int | None:
    return None if is_uninitialized(tensor) else int(tensor.numel())


def _dims(shape: torch.Size) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "1"


def formula(module: nn.Module) -> str:
    """The count as one writes it by hand: Linear(4, 5) is `4×5 + 5`, other tensors by shape."""
    params = dict(module.named_parameters(recurse=False))
    if any(is_uninitialized(p) for p in params.values()):
        return "? (uninitialized lazy parameters)"
    weight, bias = params.get("weight"), params.get("bias")
    if isinstance(module, nn.Linear) and weight is not None and set(params) <= {"weight", "bias"}:
        # Written in_features×out_features, the way the layer is usually described.
        text = f"{weight.shape[1]}×{weight.shape[0]}"
        return f"{text} + {bias.shape[0]}" if bias is not None else text
    return " + ".join(_dims(p.shape) for p in params.values())


def _pruned(model: nn.Module) -> list[tuple[str, int, int]]:
    """(parameter, elements, unmasked elements) for each torch.nn.utils.prune reparametrization."""
    found = []
    for prefix, module in model.named_modules():
        buffers = dict(module.named_buffers(recurse=False))
        for pname, param in module.named_parameters(recurse=False):
            if not pname.endswith("_orig") or is_uninitialized(param):
                continue
            mask = buffers.get(pname[: -len("_orig")] + "_mask")
            if mask is None:
                continue
            full = f"{prefix}.{pname}" if prefix else pname
            found.append((full, int(param.numel()), int(torch.count_nonzero(mask))))
    return found


def _tied(model: nn.Module) -> list[tuple[list[str], int]]:
    """Tensors held directly by more than one module: (the names they go by, elements)."""
    holders: dict[int, list[str]] = {}
    sizes: dict[int, int] = {}
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            n = _numel(param)
            if n is None:
                continue
            holders.setdefault(id(param), []).append(f"{prefix}.{pname}" if prefix else pname)
            sizes[id(param)] = n
    return [(names, sizes[key]) for key, names in holders.items() if len(names) > 1]


def _torchinfo(model: nn.Module) -> TorchinfoCount | str:
    import torchinfo

    try:
        # torchinfo prints and warns on its own; the totals are all we want from it.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            stats = torchinfo.summary(model, verbose=0)
    except Exception as exc:  # torchinfo's failures are reported, never fatal
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return TorchinfoCount(int(stats.total_params), int(stats.trainable_params))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def count_model(model: nn.Module) -> Counts:
    """Count parameters by identity, compare with torchinfo, and explain every difference."""
    unique: dict[int, nn.Parameter] = {}
    uninitialized: list[str] = []
    for name, param in model.named_parameters():
        if is_uninitialized(param):
            uninitialized.append(name)
        else:
            unique[id(param)] = param
    total = sum(p.numel() for p in unique.values())
    trainable = sum(p.numel() for p in unique.values() if p.requires_grad)
    buffers = sum(int(b.numel()) for b in model.buffers() if not is_uninitialized(b))

    modules = []
    for prefix, module in model.named_modules():
        own = list(module.parameters(recurse=False))
        if own:
            n = sum(_numel(p) or 0 for p in own)
            modules.append(
                ModuleCount(prefix or "(root)", type(module).__name__, n, formula(module))
            )

    notes: list[str] = []
    predicted = total
    for names, size in _tied(model):
        extra = size * (len(names) - 1)
        predicted += extra
        joined = " and ".join(names) if len(names) == 2 else ", ".join(names)
        notes.append(
            f"tied weights: {joined} are one tensor of {_plural(size, 'element')}; initcli counts "
            f"it once, torchinfo once per module that holds it (+{extra:,})."
        )
    for name, size, kept in _pruned(model):
        predicted -= size - kept
        base = name[: -len("_orig")]
        notes.append(
            f"pruning: {name} holds all {size:,} elements of {base}; torchinfo counts only the "
            f"{kept:,} that {base}_mask keeps (−{size - kept:,}); the mask is a buffer."
        )
    if uninitialized:
        notes.append(
            f"uninitialized lazy parameters: {', '.join(uninitialized)} have no shape until a "
            "forward pass, so neither initcli nor torchinfo counts them."
        )

    info = _torchinfo(model)
    if isinstance(info, str):
        notes.append(f"torchinfo.summary failed ({info}), so there is nothing to compare with.")
        return Counts(
            total,
            trainable,
            total - trainable,
            buffers,
            None,
            False,
            tuple(notes),
            tuple(modules),
            tuple(uninitialized),
        )
    if info.total != predicted:
        diff = info.total - total
        notes.append(
            f"torchinfo reports {abs(diff):,} {'more' if diff > 0 else 'fewer'} parameters than "
            "initcli for a reason initcli does not recognize."
        )
    return Counts(
        total,
        trainable,
        total - trainable,
        buffers,
        info,
        info.total == total,
        tuple(notes),
        tuple(modules),
        tuple(uninitialized),
    )
