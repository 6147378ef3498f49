"""Weights files: read tensors, never running code (safetensors, weights_only torch.load); write."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from initcli.errors import CheckpointError, first_line
from initcli.files import check_writable

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "Checkpoint",
    "check_save_path",
    "is_buffer",
    "is_checkpoint",
    "load",
    "module_groups",
    "save_safetensors",
    "stand_in",
    "tied_names",
    "type_label",
]

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")

# A state dict does not say which tensors are parameters. These leaf names are buffers in every
# torch module that uses them (BatchNorm statistics, torch.nn.utils.prune masks).
BUFFER_LEAVES = frozenset({"running_mean", "running_var", "num_batches_tracked"})
BUFFER_SUFFIXES = ("_mask",)

# Where training scripts and frameworks (Lightning, many repos) keep the model's state dict inside
# a larger checkpoint that also holds optimizer state, epochs and the like.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "network")

_SAFE_LOAD = (
    "initcli loads weights only and never runs code from a file: save a plain state dict "
    "(torch.save(model.state_dict(), path)) or convert it to safetensors"
)


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a weights file, by dotted name, in file order, plus what was skipped."""

    path: str
    format: str  # "safetensors" or "torch"
    tensors: Mapping[str, torch.Tensor]
    notes: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


def is_checkpoint(target: str) -> bool:
    """Whether TARGET names a weights file (by suffix) rather than a model."""
    return target.strip().lower().endswith(CHECKPOINT_SUFFIXES)


def _natural(name: str) -> list[str | int]:
    # layers.2 before layers.10; split() puts digit runs at odd indices, so types line up.
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read every tensor of a .safetensors file or a torch state dict, never unpickling code."""
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f"no such file: {file}; check the path")
    if file.is_dir():
        raise CheckpointError(f"{file} is a directory; name a weights file in it")
    if file.suffix.lower() == ".safetensors":
        return _load_safetensors(file)
    return _load_torch(file)


def _load_safetensors(file: Path) -> Checkpoint:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            names = sorted(handle.keys(), key=_natural)
            tensors = {name: handle.get_tensor(name) for name in names}
            metadata = dict(handle.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{file} is not a readable safetensors file ({first_line(exc)})"
        ) from None
    return Checkpoint(str(file), "safetensors", tensors, metadata=metadata)


def _load_torch(file: Path) -> Checkpoint:
    import pickle

    try:
        with warnings.catch_warnings():
            # torch warns about pickle protocols it has not tested; the refusal below says enough.
            warnings.simplefilter("ignore")
            obj = torch.load(file, map_location="cpu", weights_only=True)
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


def _from_object(file: Path, obj: object) -> Checkpoint:
    notes: list[str] = []
    if isinstance(obj, torch.Tensor):
        return Checkpoint(str(file), "torch", {"tensor": obj})
    if isinstance(obj, Mapping) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in STATE_DICT_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and _has_tensor(inner):
                others = ", ".join(str(k) for k in obj if k != key)
                notes.append(
                    f"weights read from the checkpoint's '{key}' entry"
                    + (f"; also in the file, not shown: {others}" if others else "")
                    + "."
                )
                obj = inner
                break
    tensors: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    _flatten(obj, "", tensors, skipped)
    if not tensors:
        raise CheckpointError(
            f"{file} holds no tensors (a {type(obj).__name__}); "
            "name a state dict or a safetensors file"
        )
    if skipped:
        shown = ", ".join(skipped[:5]) + (
            f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        )
        notes.append(f"entries that are not tensors were skipped: {shown}.")
    return Checkpoint(str(file), "torch", tensors, tuple(notes))


def _has_tensor(obj: object) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    if isinstance(obj, Mapping):
        return any(_has_tensor(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return any(_has_tensor(v) for v in obj)
    return False


def _flatten(obj: object, prefix: str, out: dict[str, torch.Tensor], skipped: list[str]) -> None:
    items: Iterator[tuple[object, object]]
    if isinstance(obj, Mapping):
        items = iter(obj.items())
    elif isinstance(obj, list | tuple):
        items = iter(enumerate(obj))
    elif isinstance(obj, torch.Tensor):
        out[prefix or "tensor"] = obj
        return
    else:
        skipped.append(prefix or type(obj).__name__)
        return
    for key, value in items:
        _flatten(value, f"{prefix}.{key}" if prefix else str(key), out, skipped)


def is_buffer(name: str, tensor: torch.Tensor) -> bool:
    """Whether a state-dict entry is (taken to be) a buffer rather than a parameter."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf in BUFFER_LEAVES or leaf.endswith(BUFFER_SUFFIXES):
        return True
    # Parameters are floating point (or complex); integer and bool tensors are counters, indices
    # and masks, which only buffers can hold.
    return not (tensor.is_floating_point() or tensor.is_complex())


def _storage_key(t: torch.Tensor) -> tuple[int, int, tuple[int, ...], tuple[int, ...], str]:
    return (
        t.untyped_storage().data_ptr(),
        int(t.storage_offset()),
        tuple(t.shape),
        t.stride(),
        str(t.dtype),
    )


def tied_names(tensors: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """First name -> the other names of the same tensor (torch.save keeps tied weights shared)."""
    first: dict[tuple[int, int, tuple[int, ...], tuple[int, ...], str], str] = {}
    tied: dict[str, list[str]] = {}
    for name, t in tensors.items():
        if t.numel() == 0:
            continue
        key = _storage_key(t)
        if key in first:
            tied.setdefault(first[key], []).append(name)
        else:
            first[key] = name
    return tied


# --- which module a group of tensors came from ------------------------------------------------


def _rnn(leaves: Mapping[str, torch.Tensor]) -> Iterator[Callable[[], nn.Module]]:
    w_ih, w_hh = leaves.get("weight_ih_l0"), leaves.get("weight_hh_l0")
    if w_ih is None or w_hh is None or w_ih.dim() != 2 or w_hh.dim() != 2:
        return
    hidden = w_hh.shape[1]
    layers = len({m.group(1) for k in leaves if (m := re.match(r"weight_ih_l(\d+)$", k))})
    options = {
        "input_size": w_ih.shape[1],
        "hidden_size": hidden,
        "num_layers": layers,
        "bias": "bias_ih_l0" in leaves,
        "bidirectional": "weight_ih_l0_reverse" in leaves,
    }
    gates = w_ih.shape[0] // max(hidden, 1)
    kind = {4: nn.LSTM, 3: nn.GRU, 1: nn.RNN}.get(gates)
    if kind is not None:
        yield lambda: kind(**options)


def _candidates(
    prefix: str, leaves: Mapping[str, torch.Tensor]
) -> Iterator[Callable[[], nn.Module]]:
    """Module constructors that could have produced these tensors, the likeliest first."""
    if "in_proj_weight" in leaves:
        packed = leaves["in_proj_weight"]
        yield lambda: nn.MultiheadAttention(
            packed.shape[1], 1, bias="in_proj_bias" in leaves, add_bias_kv="bias_k" in leaves
        )
        return
    if "weight_ih_l0" in leaves:
        yield from _rnn(leaves)
        return
    w, b = leaves.get("weight"), leaves.get("bias")
    if w is None:
        return
    has_bias = b is not None
    if w.dim() == 2:
        embedding = lambda: nn.Embedding(w.shape[0], w.shape[1])  # noqa: E731
        linear = lambda: nn.Linear(w.shape[1], w.shape[0], bias=has_bias)  # noqa: E731
        # Both are a 2-D `weight`; only the name tells an embedding table from a bias-free Linear.
        looks_embedded = re.search(r"emb|wte|wpe|tok", prefix.rsplit(".", 1)[-1], re.IGNORECASE)
        yield from (embedding, linear) if looks_embedded else (linear, embedding)
    elif w.dim() in (3, 4, 5):
        conv: Any = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[w.dim()]
        # A grouped conv stores in_channels/groups in dim 1; the fans (all that matters) agree.
        yield lambda: conv(w.shape[1], w.shape[0], tuple(w.shape[2:]), bias=has_bias)
    elif w.dim() == 1:
        if "running_mean" in leaves:
            yield lambda: nn.BatchNorm1d(w.shape[0])
        yield lambda: nn.LayerNorm(w.shape[0], bias=has_bias)


def type_label(module: nn.Module) -> str:
    """An inferred module type, marked with `?` (BatchNorm's 1d/2d/3d cannot be told apart)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return "BatchNorm?"
    return f"{type(module).__name__}?"


def _param_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in module.named_parameters(recurse=False)}


def stand_in(prefix: str, leaves: Mapping[str, torch.Tensor]) -> nn.Module | None:
    """A module (on the meta device: no memory, no init work) with exactly these parameters.

    A checkpoint stores tensors, not module types. A type is inferred only when a module of that
    type, built with sizes read off the shapes, has exactly the same parameter names and shapes;
    its default init then says what to expect from `--against default`.
    """
    wanted = {
        name: tuple(t.shape) for name, t in leaves.items() if not is_buffer(f"{prefix}.{name}", t)
    }
    for make in _candidates(prefix, leaves):
        try:
            with torch.device("meta"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = make()
        except Exception:  # a shape no constructor accepts: try the next candidate
            continue
        if _param_shapes(module) == wanted:
            return module
    return None


def module_groups(names: list[str]) -> dict[str, list[str]]:
    """Module prefix -> the leaf names under it, in order (root-level tensors under '')."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, leaf = name.rpartition(".")
        groups.setdefault(prefix, []).append(leaf)
    return groups


# --- writing ------------------------------------------------------------------------------------


def check_save_path(path: str | os.PathLike[str], force: bool) -> None:
    """Fail before the work, not after it: a --save name that cannot be used is said at once.

    (write_atomic checks again when it writes; this only saves building a model for nothing.)
    """
    file = Path(path)
    if file.suffix.lower() != ".safetensors":
        raise CheckpointError(
            f"--save writes safetensors; name the file *.safetensors (got {file.name})"
        )
    check_writable(file, force)


def save_safetensors(
    model: nn.Module, path: str | os.PathLike[str], force: bool, metadata: Mapping[str, str]
) -> Path:
    """Write the model's state dict as safetensors, atomically (see files.write_atomic).

    safetensors stores each tensor once: of tied names the first is kept and the others are listed
    in the metadata; `safetensors.torch.load_model(model, path)` restores them.
    """
    from initcli.safetensors_writer import write_state_dict

    check_save_path(path, force)
    lazy = [
        name
        for name, t in [*model.named_parameters(), *model.named_buffers()]
        if isinstance(t, UninitializedParameter | UninitializedBuffer)
    ]
    if lazy:
        raise CheckpointError(
            f"cannot save {', '.join(lazy)}: uninitialized lazy parameters have no values until "
            "a forward pass"
        )
    state = model.state_dict()
    tied = tied_names(state)
    dropped = {name for aliases in tied.values() for name in aliases}
    # Streamed into the file one tensor at a time: the peak is the model plus its largest tensor,
    # not the two serialized copies safetensors.torch.save would hold (3× the model in all).
    tensors = {name: value.detach() for name, value in state.items() if name not in dropped}
    meta = dict(metadata)
    if tied:
        meta["initcli.tied"] = json.dumps(tied, sort_keys=True)
    return write_state_dict(path, tensors, meta, force)
