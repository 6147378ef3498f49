"""Which model tensor from_pretrained loads each stored tensor into: transformers' own key rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Renamed:
    """Stored names against a model's state dict, as from_pretrained would load them."""

    names: dict[str, str]  # stored name -> the model tensor it loads into
    # Stored tensors a WeightConverter reshapes on load (MoE experts stacked into one tensor, a
    # fused qkv split): their shape is not their model tensor's, by design.
    converted: frozenset[str]
    filled: frozenset[str]  # model tensors some stored tensor fills (a split fills several)
    unexpected: tuple[str, ...]  # stored tensors the model has no place for


def loaded_names(model: nn.Module, stored: Iterable[str]) -> Renamed:
    """Map `stored` onto `model`'s state dict with the renaming and conversion rules
    from_pretrained applies (transformers' conversion_mapping: ViT's `attention.attention.key`
    → `attention.k_proj`, Mixtral's per-expert `w1`/`w3` → `experts.gate_up_proj`, a legacy
    `gamma` → `weight`, a base-model prefix added or dropped).

    Only names are computed: the rules are transformers' own code chosen by the model's class
    (built from a native class, never the folder's), and no tensor is read or converted."""
    own: dict[str, torch.Tensor] = dict(model.state_dict(keep_vars=True))
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    rules = _rules(model)
    if rules is None:
        return _prefix_only(own, prefix, stored)
    from transformers.core_model_loading import (
        WeightConverter,
        WeightRenaming,
        dot_natural_key,
        rename_source_key,
    )

    renamings = [r for r in rules if isinstance(r, WeightRenaming)]
    converters = [r for r in rules if isinstance(r, WeightConverter)]
    names: dict[str, str] = {}
    converted: set[str] = set()
    filled: set[str] = set()
    unexpected: list[str] = []
    # Some rules are stateful (GroupWeightRename waits for its guard key): the order is
    # from_pretrained's (convert_and_load_state_dict_in_model sorts by dot_natural_key).
    for key in sorted(stored, key=dot_natural_key):
        renamed, pattern = rename_source_key(key, renamings, converters, prefix or None, own)
        if renamed not in own and key in own:  # from_pretrained's own fallback: keep the name
            renamed, pattern = rename_source_key(key, [], [], prefix or None, own)
        if renamed not in own:
            unexpected.append(key)
            continue
        names[key] = renamed
        filled.add(renamed)
        if pattern is not None:
            converted.add(key)
            targets = next(c.target_patterns for c in converters if pattern in c.source_patterns)
            # A one-to-many converter (a fused qkv) fills every target beside the first.
            filled |= {renamed.replace(targets[0], t) for t in targets} & set(own)
    return Renamed(names, frozenset(converted), frozenset(filled), tuple(unexpected))


def _rules(model: nn.Module) -> list[object] | None:
    """transformers' weight transforms for `model` (None where this transformers has none)."""
    try:
        from transformers import PreTrainedModel
        from transformers.conversion_mapping import get_model_conversion_mapping
    except ImportError:  # transformers before 5: names are stored as the modules call them
        return None
    if not isinstance(model, PreTrainedModel):
        return None
    return list(get_model_conversion_mapping(model))


def _prefix_only(own: Mapping[str, torch.Tensor], prefix: str, stored: Iterable[str]) -> Renamed:
    """The base-model prefix added or dropped: all a model without conversion rules needs."""
    names: dict[str, str] = {}
    unexpected: list[str] = []
    for name in stored:
        for candidate in (name, f"{prefix}.{name}", name.removeprefix(f"{prefix}.")):
            if candidate in own:
                names[name] = candidate
                break
        else:
            unexpected.append(name)
    return Renamed(names, frozenset(), frozenset(names.values()), tuple(unexpected))
