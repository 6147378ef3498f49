"""Exact parameter counts by tensor identity, torchinfo's count beside them, and why they differ."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from initcli.errors import first_line
from initcli.limits import MAX_FORMULA_TERMS
from initcli.model.building import is_uninitialized, pruning_mask

if TYPE_CHECKING:
    from initcli.model.spec import MLPSpec


@dataclass(frozen=True, slots=True)  # slots: a weights file may hold 10⁶ modules
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
    # The shape of the batch torchinfo ran its forward pass on (--input-shape), or None: it
    # counted the parameters it found walking the modules, with no input.
    torchinfo_input: tuple[int, ...] | None = None


def _numel(tensor: torch.Tensor) -> int | None:
    return None if is_uninitialized(tensor) else int(tensor.numel())


def _dims(shape: Sequence[int]) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "1"


def shapes_formula(shapes: Sequence[Sequence[int]]) -> str:
    """A hand count of tensors of these shapes: `4×5 + 5` (past limits.MAX_FORMULA_TERMS
    tensors, the first ten and how many more)."""
    if len(shapes) <= MAX_FORMULA_TERMS:
        return " + ".join(_dims(s) for s in shapes)
    shown = " + ".join(_dims(s) for s in shapes[:10])
    return f"{shown} + … {len(shapes) - 10:,} more tensors"


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
    return shapes_formula([p.shape for p in params.values()])


def _pruned(model: nn.Module) -> list[tuple[str, int, int, bool]]:
    """(parameter, elements, unmasked elements, whether the mask is a Parameter) for each
    pruning reparametrization."""
    found = []
    for prefix, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            mask = pruning_mask(module, pname)
            if mask is None or is_uninitialized(param):
                continue
            full = f"{prefix}.{pname}" if prefix else pname
            kept = int(torch.count_nonzero(mask))
            found.append((full, int(param.numel()), kept, isinstance(mask, nn.Parameter)))
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


def _shared(model: nn.Module) -> list[tuple[list[str], int, int, bool]]:
    """Modules registered under more than one parent that hold parameters, in themselves or their
    submodules: (every path that reaches them, their elements, the number of parents, whether
    all of them are the module's own); torchinfo counts the whole module once per parent."""
    paths: dict[int, list[str]] = {}
    parents: dict[int, set[int]] = {}
    modules: dict[int, nn.Module] = {}
    for prefix, module in model.named_modules(remove_duplicate=False):
        if prefix:
            paths.setdefault(id(module), []).append(prefix)
            # Twice under one parent (Sequential(layer, act, layer)) torchinfo counts once.
            parent = model.get_submodule(prefix.rpartition(".")[0])
            parents.setdefault(id(module), set()).add(id(parent))
            modules[id(module)] = module
    found = []
    for key, held in parents.items():
        if len(held) < 2:
            continue
        # A shared container's children sit under that one container: only it is reported.
        total = sum(_numel(p) or 0 for p in modules[key].parameters())
        own = sum(_numel(p) or 0 for p in modules[key].parameters(recurse=False))
        if total:
            found.append((paths[key], total, len(held), own == total))
    return found


def _torchinfo(model: nn.Module, inputs: torch.Tensor | None = None) -> TorchinfoCount | str:
    import torchinfo

    try:
        # torchinfo prints and warns on its own; the totals are all we want from it.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            stats = torchinfo.summary(model, input_data=inputs, verbose=0)
    except Exception as exc:  # torchinfo's failures are reported, never fatal
        # A failed forward pass comes wrapped ("Failed to run torchinfo. See above stack
        # traces"), with the model's own error as its cause: that one says what went wrong.
        cause = exc.__cause__
        return first_line(cause if isinstance(cause, Exception) else exc)
    return TorchinfoCount(int(stats.total_params), int(stats.trainable_params))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def count_model(model: nn.Module, inputs: torch.Tensor | None = None) -> Counts:
    """Count parameters by identity, compare with torchinfo, and explain every difference.

    Works on a meta-built model too (only shapes are read), except for pruning masks, whose
    kept-element count is data: `initcli.model.building.needs_values` tells when a real build
    is needed.
    With `inputs` (a batch on the model's device) torchinfo runs its forward pass on it, as
    `torchinfo.summary(model, input_data=inputs)` does; without, it only walks the modules.
    """
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
    for names, size, parents, only_own in _shared(model):
        extra = size * (parents - 1)
        predicted += extra
        joined = " and ".join(names) if len(names) == 2 else ", ".join(names)
        held = "of its own" if only_own else "in it and its submodules"
        notes.append(
            f"shared module: {joined} are one module with {_plural(size, 'parameter')} {held}, "
            f"registered under {parents} parents; initcli counts it once, torchinfo once per "
            f"parent (+{extra:,})."
        )
    for name, size, kept, parameter in _pruned(model):
        predicted -= size - kept
        base = name[: -len("_orig")]
        mask = "a parameter, counted in full by both" if parameter else "a buffer"
        notes.append(
            f"pruning: {name} holds all {size:,} elements of {base}; torchinfo counts only the "
            f"{kept:,} that {base}_mask keeps (−{size - kept:,}); the mask is {mask}."
        )
    if uninitialized:
        notes.append(
            f"uninitialized lazy parameters: {', '.join(uninitialized)} have no shape until a "
            "forward pass, so neither initcli nor torchinfo counts them."
        )
    return _compare(
        total, trainable, buffers, modules, notes, predicted, tuple(uninitialized), model, inputs
    )


def _compare(
    total: int,
    trainable: int,
    buffers: int,
    modules: list[ModuleCount],
    notes: list[str],
    predicted: int,
    uninitialized: tuple[str, ...],
    model: nn.Module,
    inputs: torch.Tensor | None = None,
) -> Counts:
    """Put torchinfo's count beside initcli's; `predicted` is what the notes say it should be
    (torchinfo's count without an input)."""
    used: tuple[int, ...] | None = None
    if inputs is not None:
        used = tuple(inputs.shape)
        info = _torchinfo(model, inputs)
        if isinstance(info, str):
            notes.append(
                f"torchinfo.summary failed on the {_dims(inputs.shape)} input ({info}), so "
                "its count here is without an input."
            )
            used = None
    if used is None:
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
            uninitialized,
        )
    if info.total != predicted:
        notes.append(_unexplained(info.total - total, model, used, predicted))
    return Counts(
        total,
        trainable,
        total - trainable,
        buffers,
        info,
        info.total == total,
        tuple(notes),
        tuple(modules),
        uninitialized,
        used,
    )


def _unexplained(diff: int, model: nn.Module, used: tuple[int, ...] | None, predicted: int) -> str:
    """Why torchinfo's total is not the one the notes predict, as far as initcli can tell."""
    if diff == 0:  # torchinfo agrees with initcli, but not with what the notes predict
        more = "the same total as initcli"
    else:
        word = "parameter" if abs(diff) == 1 else "parameters"
        more = f"{abs(diff):,} {'more' if diff > 0 else 'fewer'} {word} than initcli"
    if used is None:
        return f"torchinfo reports {more} for a reason initcli does not recognize."
    without = _torchinfo(model)
    if isinstance(without, str):
        walked = f"without an input it fails ({without})"
    elif without.total == predicted:
        walked = (
            f"without an input it reports a total of {without.total:,}, as the notes above explain"
        )
    else:
        walked = f"without an input it reports a total of {without.total:,}"
    return (
        f"given the {_dims(torch.Size(used))} input, torchinfo reports {more}: it then counts "
        "the modules its forward pass calls, which for a module called more than once, under "
        f"several parents, or not at all can differ from their parameters; {walked}."
    )


# Per normalization a spec layer can ask for: (type name, parameters per unit, buffer elements per
# unit, extra buffer elements) as torch builds them: BatchNorm1d has weight and bias plus
# running_mean, running_var and the scalar num_batches_tracked; LayerNorm has weight and bias.
_SPEC_NORMS = {"batchnorm": ("BatchNorm1d", 2, 2, 1), "layernorm": ("LayerNorm", 2, 0, 0)}


def count_spec(spec: MLPSpec, model: nn.Module, inputs: torch.Tensor | None = None) -> Counts:
    """Count a YAML MLP spec by arithmetic, with no tensor built: instant at any width.

    `model` is the spec built on the meta device (no memory either), for torchinfo only; the
    test-suite checks that the arithmetic equals count_model on the same spec built for real.
    """
    from initcli.model.spec import expand_layers

    modules: list[ModuleCount] = []
    total = buffers = 0
    for layer in expand_layers(spec):
        i, n_in, n_out = layer.index, layer.in_features, layer.out_features
        weight = n_in * n_out
        n = weight + (n_out if layer.bias else 0)
        text = f"{n_in}×{n_out} + {n_out}" if layer.bias else f"{n_in}×{n_out}"
        modules.append(ModuleCount(f"fc{i}", "Linear", n, text))
        total += n
        if layer.norm is not None:
            kind, per_unit, buffer_per_unit, buffer_extra = _SPEC_NORMS[layer.norm]
            modules.append(
                ModuleCount(f"norm{i}", kind, per_unit * n_out, " + ".join([str(n_out)] * 2))
            )
            total += per_unit * n_out
            buffers += buffer_per_unit * n_out + buffer_extra
    # Every spec parameter is trainable and none is shared, pruned or lazy.
    return _compare(total, total, buffers, modules, [], total, (), model, inputs)
