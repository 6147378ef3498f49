"""Which parameters a build sets without any random draw, read from its meta build's record."""

from __future__ import annotations

import torch
from torch import nn

from initcli.model import building, record
from initcli.values import replay


def undrawn(model: nn.Module) -> frozenset[str]:
    """The parameters of `model` (a meta build, with its record) whose final values no random
    draw decided: the last write that set the whole tensor, and every write after it, draws
    nothing. A `copy_` takes its source's answer where the source is a tensor the record saw
    written; from any other source it counts as a draw when a random factory ran since the
    previous write (Mamba's dt_proj.bias is copied from exp(rand·…)). Empty without a record.
    """
    trace = record.trace_of(model)
    if trace is None:
        return frozenset()
    writes = replay.plan(model, trace).writes
    params = {
        record.storage(p): (name, p)
        for name, p in model.named_parameters()
        if not building.is_uninitialized(p)
    }
    drawn_storage: dict[int, bool] = {}
    drawn: dict[str, bool] = {}
    random_since_write = False
    for w in writes:
        if w.target is None:
            random_since_write = random_since_write or w.draws
            continue
        key = record.storage(w.target)
        draws = w.draws or (
            w.name == "copy_" and _copies_a_draw(w, drawn_storage, random_since_write)
        )
        drawn_storage[key] = draws or (drawn_storage.get(key, False) and not w.creates)
        found = params.get(key)
        if found is not None:
            name, p = found
            if replay.overwrites(w, p):
                drawn[name] = draws
            elif draws:
                drawn[name] = True
        random_since_write = False
    return frozenset(name for name, was in drawn.items() if not was)


def _copies_a_draw(w: record.Write, drawn: dict[int, bool], random_since_write: bool) -> bool:
    source = w.args[1] if len(w.args) > 1 else w.kwargs.get("src")
    if isinstance(source, torch.Tensor) and source.is_meta:
        seen = drawn.get(record.storage(source))
        if seen is not None:
            return seen
    return random_since_write
