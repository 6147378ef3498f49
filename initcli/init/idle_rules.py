"""Why a policy rule sets no parameter: it matches none, earlier rules won, or tied aliases."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from torch import nn

from initcli.init import schemes
from initcli.init.schemes import Scheme
from initcli.text import first_and_more


def mro_names(module: nn.Module) -> frozenset[str]:
    """The class names in a module's MRO: what a `Class` selector matches."""
    return frozenset(cls.__name__ for cls in type(module).__mro__)


def why_idle(
    selector: str,
    kind: tuple[str | None, str | None],
    model: nn.Module,
    choices: Mapping[str, tuple[Scheme, str]],
) -> str:
    """Why a rule that sets nothing set nothing: it matches nothing; or only tied aliases of
    parameters named first elsewhere (GPT-2's lm_head.weight is transformer.wte.weight), which
    take that name's rule; or earlier rules set what it matches first."""
    held = schemes.owners(model)
    slots = _slots(selector, kind, model)
    if not slots:
        return ""
    aliases = [(slot, held[id(p)][0]) for slot, p in slots if held[id(p)][0] != slot]
    if len(aliases) < len(slots):
        return " (earlier rules set them first)"

    def fate(owner: str) -> str:
        picked = choices.get(owner)
        return f"set by rule '{picked[1]}'" if picked else "no rule sets it: kept as built"

    if len(aliases) == 1:
        slot, owner = aliases[0]
        return (
            f": its only match, {slot}, is tied to {owner}, and a tied tensor takes the rule of "
            f"its first name ({fate(owner)})"
        )
    shown = first_and_more(aliases, 3, "; ", show=lambda a: f"{a[0]} → {a[1]}: {fate(a[1])}")
    return (
        f": each of its {len(aliases)} matches is tied to a parameter named first elsewhere, "
        f"whose rule it takes ({shown})"
    )


def _slots(
    selector: str, kind: tuple[str | None, str | None], model: nn.Module
) -> list[tuple[str, nn.Parameter]]:
    """Every (name, parameter) place the rule's selector matches, tied aliases included."""
    cls, pname = kind
    if cls is None:
        return [
            (n, p)
            for n, p in model.named_parameters(remove_duplicate=False)
            if fnmatch.fnmatchcase(n, selector)
        ]
    return [
        (f"{prefix}.{key}" if prefix else key, p)
        for prefix, m in model.named_modules(remove_duplicate=False)
        if cls in mro_names(m)
        for key, p in m.named_parameters(recurse=False)
        if pname is None or key == pname
    ]
