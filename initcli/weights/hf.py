"""A HF model folder's own model, built on the meta device from its config.json (transformers)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import torch
from torch import nn

from initcli.errors import first_line
from initcli.files import require_regular
from initcli.init import recorded, schemes
from initcli.init.recorded import FillLog
from initcli.model import building, record

__all__ = ["INSTALL_NOTE", "HFModel", "meta_model"]

INSTALL_NOTE = (
    "this folder has a config.json: with transformers installed (pip install 'initcli[hf]') "
    "initcli builds its model on the meta device, so module types, tied weights and torchinfo's "
    "count are the model's own, not inferred."
)


@dataclass(frozen=True)
class HFModel:
    """The folder's model on meta, and how the stored tensor names map onto its own."""

    model: nn.Module
    architecture: str
    names: Mapping[str, str]  # stored name -> the model's state-dict name
    tied: tuple[str, ...]  # model tensors not in the file because they are tied to one that is
    missing: tuple[str, ...]  # model tensors not in the file at all
    unexpected: tuple[str, ...]  # stored tensors the model has no place for
    seconds: float  # what the config read and meta build cost
    fills: FillLog  # the init the constructor and post_init gave each tensor (recorded on meta)

    @cached_property
    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state_dict(keep_vars=True))

    def init_of(self, stored: str, tensor: torch.Tensor) -> schemes.Expectation:
        """What the model's own init (its constructors, then `_init_weights` through post_init)
        implies for the stored tensor `stored`; schemes.UNKNOWN where that is not known."""
        mapped = self.names.get(stored)
        if mapped is None:
            return schemes.UNKNOWN
        own = self._tensors.get(mapped)
        if own is None:
            return schemes.UNKNOWN
        exp = recorded.implied_expectation(self.fills.of(own), tensor)
        return replace(exp, init=f"{exp.init} · model's init") if exp.var is not None else exp


def meta_model(folder: Path, stored: Iterable[str]) -> tuple[HFModel | None, str | None]:
    """The model of `folder/config.json`, built on meta (nothing downloaded, no remote code),
    with the stored names mapped onto it; or None and a note saying why not."""
    if not (folder / "config.json").exists():
        return None, None
    require_regular(folder / "config.json")  # transformers opens it itself
    start = time.perf_counter()
    try:
        import transformers
    except ImportError:
        return None, INSTALL_NOTE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = transformers.AutoConfig.from_pretrained(
                str(folder), local_files_only=True, trust_remote_code=False
            )
            arch = next(iter(config.architectures or []), None)
            cls = getattr(transformers, arch, None) if arch else None
            trace = record.Trace()
            with building.on_meta(trace):
                if cls is not None:
                    model = cls(config)
                else:
                    model = transformers.AutoModel.from_config(config)  # type: ignore[no-untyped-call]
            replay = getattr(model, "initialize_weights", None)
            if callable(replay):
                with building.recording(trace):
                    replay()
    except Exception as exc:  # any config transformers cannot build: the file-only path
        return None, f"config.json was not used ({first_line(exc)}); module types are inferred."
    own = set(model.state_dict(keep_vars=True))
    prefix = str(getattr(model, "base_model_prefix", "") or "")
    names: dict[str, str] = {}
    unexpected: list[str] = []
    for name in stored:
        for candidate in (name, f"{prefix}.{name}", name.removeprefix(f"{prefix}.")):
            if candidate in own:
                names[name] = candidate
                break
        else:
            unexpected.append(name)
    absent = own - set(names.values())
    shared = _aliases(model)
    tied = sorted(n for n in absent if shared.get(n, set()) & set(names.values()))
    missing = sorted(absent - set(tied))
    seconds = time.perf_counter() - start
    kind = type(model).__name__
    return HFModel(
        model,
        kind,
        names,
        tuple(tied),
        tuple(missing),
        tuple(unexpected),
        seconds,
        FillLog.of_trace(trace),
    ), None


def _aliases(model: nn.Module) -> dict[str, set[str]]:
    """State-dict name -> the other names of the same tensor (tied weights)."""
    by_id: dict[int, set[str]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        by_id.setdefault(id(t), set()).add(name)
    return {n: group - {n} for group in by_id.values() for n in group}
