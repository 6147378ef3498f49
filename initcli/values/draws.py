"""Which parameters a build sets without any random draw, read from its meta build's record."""

from __future__ import annotations

from torch import nn

from initcli.model import building, record
from initcli.values import replay


def undrawn(model: nn.Module) -> frozenset[str]:
    """The parameters of `model` (a meta build, with its record) whose final values no random
    draw decided: the last write that set the whole tensor, and every write after it, draws
    nothing. A `copy_` counts as a draw when a random factory ran since the previous write (its
    source may be made from it: Mamba's dt_proj.bias is exp(rand·…)). Empty without a record.
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
    drawn: dict[str, bool] = {}
    random_since_write = False
    for w in writes:
        if w.target is None:
            random_since_write = random_since_write or w.draws
            continue
        found = params.get(record.storage(w.target))
        if found is not None:
            name, p = found
            draws = w.draws or (w.name == "copy_" and random_since_write)
            if replay.overwrites(w, p):
                drawn[name] = draws
            elif draws:
                drawn[name] = True
        random_since_write = False
    return frozenset(name for name, was in drawn.items() if not was)
