"""Names settled over a whole model: ties between formulas, its config's scales, weight norm's g."""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Sequence
from typing import Any

import torch
from torch import nn

from initcli.measure.identify import Fit, Scale, tie_text
from initcli.model.building import is_uninitialized

__all__ = ["config_scales", "depth_hint", "settle", "weight_norm_g"]

# Config keys that hold a width (a std of width^-0.5 is common: T5's d_model^-0.5) and counts that
# scale a width (T5's (num_heads·d_kv)^-0.5, CLIP's (2·hidden_size·num_hidden_layers)^-0.5).
WIDTH_KEYS = (
    "hidden_size", "d_model", "n_embd", "embed_dim", "d_kv", "head_dim", "d_ff",
    "intermediate_size", "n_inner", "projection_dim",
)  # fmt: skip
COUNT_KEYS = (
    "num_attention_heads", "num_heads", "n_head", "num_hidden_layers", "num_layers", "n_layer",
)  # fmt: skip
LAYER_KEYS = ("num_hidden_layers", "num_layers", "n_layer")
# T5's and CLIP's multiplier on every init std ("used for testing weights initialization").
FACTOR_KEY = "initializer_factor"


def _configs(model: nn.Module) -> list[Any]:
    """The model's config and its sub-configs (CLIP's text_config and vision_config)."""
    config = getattr(model, "config", None)
    if config is None:
        return []
    subs = [getattr(config, key, None) for key in getattr(config, "sub_configs", None) or {}]
    return [config, *(s for s in subs if s is not None and hasattr(s, "to_dict"))]


def _ints(config: Any, keys: tuple[str, ...]) -> list[tuple[str, int]]:
    # attribute_map aliases (T5's hidden_size → d_model) would name one value twice: the
    # config's own key only.
    aliases = getattr(type(config), "attribute_map", None) or {}
    out = []
    for key in keys:
        value = getattr(config, key, None) if key not in aliases else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out.append((key, value))
    return out


def config_scales(model: nn.Module) -> tuple[Scale, ...]:
    """The stds a model's config names, as transformers' inits write them: w^-0.5, (2·w)^-0.5,
    (w·o)^-0.5 and (2·w·layers)^-0.5 for its widths w, widths or head counts o and layer count;
    each also ·factor where initializer_factor is not 1, and then initializer_range·factor.
    Formulas of one value (T5-small's d_model = num_heads·d_kv) are one Scale named `A = B`
    (`A = B = C = …` past three)."""
    found: dict[float, list[str]] = {}
    for config in _configs(model):
        widths, counts = _ints(config, WIDTH_KEYS), _ints(config, COUNT_KEYS)
        layers = [(k, v) for k, v in counts if k in LAYER_KEYS]
        terms: list[tuple[str, int]] = []
        for key, value in widths:
            terms += [(key, value), (f"2·{key}", 2 * value)]
        for (a, va), (b, vb) in itertools.combinations([*widths, *counts], 2):
            if (a, va) in widths and (b, vb) not in layers:
                terms.append((f"({a}·{b})", va * vb))
        for (a, va), (b, vb) in itertools.product(widths, layers):
            terms.append((f"(2·{a}·{b})", 2 * va * vb))
        factor = getattr(config, FACTOR_KEY, None)
        scaled = isinstance(factor, (int, float)) and factor > 0 and factor != 1
        variants: list[tuple[str, float]] = []
        for text, value in terms:
            base = f"({text})^-0.5" if text.startswith("2·") else f"{text}^-0.5"
            variants.append((base, value**-0.5))
            if scaled:
                assert isinstance(factor, (int, float))
                variants.append((f"{base}·factor", float(factor) * value**-0.5))
        spread = getattr(config, "initializer_range", None)
        if scaled and isinstance(spread, float) and spread > 0:
            # CLIP's embeddings: initializer_range·factor (the range alone is a round 0.02).
            assert isinstance(factor, (int, float))
            variants.append(("initializer_range·factor", spread * float(factor)))
        for label, std in variants:
            same = next((k for k in found if abs(k / std - 1) <= 1e-9), std)
            names = found.setdefault(same, [])
            if label not in names:
                names.append(label)
    return tuple(
        Scale(" = ".join(names[:3]) + (" = …" if len(names) > 3 else ""), std)
        for std, names in found.items()
    )


def settle(
    tensors: Sequence[tuple[Hashable, Fit | None]], peers: Sequence[Hashable] | None = None
) -> list[str | None]:
    """Per tensor (its kind, e.g. (module type, parameter name), and its fit), the looks_like a
    tie gets from the model, else None (keep the tensor's own).

    `peers` (optional, one key per tensor, e.g. its name with block indices as `*`) first
    narrows each tie to what fits every peer, in one order for all of them: the same tensor of
    every block reads the same, whichever formula sampling noise put first or let in. Then two
    passes over a tensor's tied formulas. Kind: those that fit every tensor of its kind
    (two or more): one is named, several narrow the tie. Model: those that some other tensor is
    named by alone (by its own values, or by the kind pass): one is named, several narrow the
    tie. A tie nothing decides is left as it is. Every formula in a tie fits the tensor about
    equally well (identify's TIE_SE), so none chosen here fits clearly worse than another.
    """
    given = [fit.ties if fit is not None else () for _, fit in tensors]
    ties = given if peers is None else _narrowed(given, peers)
    kinds: dict[Hashable, list[int]] = {}
    for i, (kind, _) in enumerate(tensors):
        kinds.setdefault(kind, []).append(i)
    # What fits every tensor of a kind, once per kind: linear in the tensors (10⁵ tiny ones too).
    shared = {
        kind: set.intersection(*(set(ties[j]) for j in scope)) if len(scope) > 1 else set()
        for kind, scope in kinds.items()
    }
    # In one order per kind (its first tensor's): within a tie the order of fits is sampling
    # noise, and peers must read the same (grouped rows compare the text).
    order = {kind: [label for label in ties[scope[0]] if label in shared[kind]]
             for kind, scope in kinds.items()}  # fmt: skip
    narrowed = list(ties)
    for i, mine in enumerate(ties):
        common = [label for label in order[tensors[i][0]] if label in mine]
        if len(mine) > 1 and common:
            narrowed[i] = tuple(common)
    alone = {t[0] for t in narrowed if len(t) == 1}
    out: list[str | None] = [None] * len(tensors)
    for i, kept in enumerate(narrowed):
        left = (tuple(label for label in kept if label in alone) or kept) if len(kept) > 1 else kept
        if left != given[i]:
            out[i] = tie_text(left)
    return out


def _narrowed(ties: list[tuple[str, ...]], peers: Sequence[Hashable]) -> list[tuple[str, ...]]:
    """Each tie cut to the formulas every tied peer shares, in the first peer's order."""
    scopes: dict[Hashable, list[int]] = {}
    for i, key in enumerate(peers):
        if len(ties[i]) > 1:
            scopes.setdefault(key, []).append(i)
    out = list(ties)
    for scope in scopes.values():
        shared = set.intersection(*(set(ties[j]) for j in scope))
        if len(scope) > 1 and shared:
            common = tuple(label for label in ties[scope[0]] if label in shared)
            for j in scope:
                out[j] = common
    return out


def weight_norm_g(module: nn.Module, pname: str, values: torch.Tensor) -> str | None:
    """`values`' name where they are weight norm's g, the norm of v over each slice along its
    dim (torch.nn.utils weight_norm: weight_g/weight_v; the parametrization: original0/1),
    checked on the values; else None. A named scheme that redrew g makes it no norm of v."""
    if pname == "weight_g":
        v_name = "weight_v"
        hooks = getattr(module, "_forward_pre_hooks", {}).values()
        dims = [getattr(h, "dim", None) for h in hooks if type(h).__name__ == "WeightNorm"]
    elif pname == "original0" and isinstance(module, nn.ModuleList) and len(module) > 0:
        v_name = "original1"
        first = module[0]
        dims = [getattr(first, "dim", None)] if type(first).__name__ == "_WeightNorm" else []
    else:
        return None
    v = getattr(module, v_name, None)
    if not dims or not isinstance(dims[0], int) or not isinstance(v, torch.Tensor):
        return None
    if is_uninitialized(values) or v.is_meta or values.is_meta:
        return None
    if values.dim() != v.dim() or values.shape[dims[0]] != v.shape[dims[0]]:
        return None
    dim = dims[0] % v.dim()
    with torch.no_grad():
        norm = torch.norm_except_dim(v.detach().double(), 2, dim)
        got = values.detach().double().reshape(norm.shape)
        if not torch.allclose(got, norm, rtol=1e-4, atol=1e-7 * float(norm.abs().max())):
            return None
    others = ", ".join(str(d) for d in range(v.dim()) if d != dim)
    return f"‖{v_name}‖ over dims {others} per slice along dim {dim} (weight norm's g)"


_DEPTH_KEYS = ("n_layer", "num_hidden_layers", "num_layers", "n_layers")


def depth_hint(model: nn.Module) -> int | None:
    """The model's depth for the depth-scaled formulas: its config's layer count (HF's n_layer,
    num_hidden_layers, num_layers), else the length of its longest ModuleList of blocks."""
    config = getattr(model, "config", None)
    for key in _DEPTH_KEYS:
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    lengths = [len(m) for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 1]
    return max(lengths, default=None)
