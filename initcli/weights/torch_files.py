"""torch.save files: weights_only unpickling (memory-mapped for the zip format), flattened."""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch

from initcli.errors import CheckpointError, first_line
from initcli.files import require_regular
from initcli.text import first_and_more

__all__ = ["MAX_DEPTH", "STATE_DICT_KEYS", "load_torch"]

# Where training scripts and frameworks (Lightning, many repos) keep the model's state dict inside
# a larger checkpoint that also holds optimizer state, epochs and the like.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")

# Deeper than any real checkpoint; past it, the dotted names alone would take quadratic time.
MAX_DEPTH = 1000

_SAFE_LOAD = (
    "initcli loads weights only and never runs code from a file: save a plain state dict "
    "(torch.save(model.state_dict(), path)) or convert it to safetensors"
)


def load_torch(file: Path) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """A torch.save file's tensors by dotted name, and notes on what was skipped.

    Never runs code: `torch.load(weights_only=True)`. A zip-format file (torch.save's default) is
    memory-mapped, so its tensors are read from disk only when measured.
    """
    require_regular(file)  # is_zipfile and torch.load open it themselves
    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it has not tested; the refusal below says enough.
            warnings.simplefilter("ignore")
            obj = torch.load(
                file, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(file)
            )
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler stopped: at a global it does not allow (a function or
        # class: what pickle exploits call), or at an opcode it does not read.
        text = str(exc)
        found = re.search(r"GLOBAL (\S+)", text)
        if found:
            what = f"it names {found.group(1)}, which only a full unpickle would load"
        else:
            reason = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
            said = f" ({reason.group(1).strip().rstrip('.')})" if reason else ""
            what = f"it is not a plain pickle of tensors{said}"
        raise CheckpointError(
            f"refused to load {file}: {what}, and a full unpickle can run code; {_SAFE_LOAD}"
        ) from None
    except Exception as exc:
        raise CheckpointError(
            f"{file} is not a readable PyTorch checkpoint ({first_line(exc)}); initcli reads "
            "state dicts saved with torch.save and .safetensors files"
        ) from None
    return _from_object(file, obj)


def _from_object(file: Path, obj: object) -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    notes: list[str] = []
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _flatten(inner)[0]:
                others = ", ".join(str(k) for k in obj if k != key)
                notes.append(
                    f"weights read from the checkpoint's '{key}' entry"
                    + (f"; also in the file, not shown: {others}" if others else "")
                    + "."
                )
                obj = inner
                break
    tensors, skipped = _flatten(obj)
    if not tensors:
        raise CheckpointError(
            f"{file} holds no tensors (a {type(obj).__name__}); "
            "name a state dict or a safetensors file"
        )
    if skipped:
        notes.append(f"entries that are not tensors were skipped: {first_and_more(skipped, 5)}.")
    return tensors, tuple(notes)


def _flatten(obj: object) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Nested dicts, lists and tuples to dotted names, depth first, without recursion (a file can
    nest a million levels deep; the weights-only unpickler itself does not recurse)."""
    out: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    stack: list[tuple[str, object, int]] = [("", obj, 0)]
    while stack:
        prefix, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise CheckpointError(
                f"the checkpoint nests dicts or lists more than {MAX_DEPTH:,} levels deep; "
                "a state dict is a flat (or shallow) mapping of names to tensors"
            )
        if isinstance(item, torch.Tensor):
            out[prefix or "tensor"] = item
            continue
        children: list[tuple[object, object]]
        if isinstance(item, Mapping):
            children = list(item.items())
        elif isinstance(item, list | tuple):
            children = list(enumerate(item))
        else:
            skipped.append(prefix or type(item).__name__)
            continue
        # Reversed onto the stack so that they come off it in file order.
        for key, value in reversed(children):
            stack.append((f"{prefix}.{key}" if prefix else str(key), value, depth + 1))
    return out, skipped
