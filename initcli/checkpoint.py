"""Weights files: read tensors, never running code (safetensors, weights_only torch.load); write."""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter

from initcli import building
from initcli.errors import CheckpointError
from initcli.files import check_writable
from initcli.weights import dcp, safetensors_files, torch_files

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "Checkpoint",
    "check_save_path",
    "is_buffer",
    "is_checkpoint",
    "load",
    "module_groups",
    "save_safetensors",
    "signature",
    "stand_in",
    "tied_names",
    "type_label",
]

CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")

# A state dict does not say which tensors are parameters. These leaf names are buffers in every
# torch module that uses them (BatchNorm statistics, torch.nn.utils.prune masks).
BUFFER_LEAVES = frozenset({"running_mean", "running_var", "num_batches_tracked"})
BUFFER_SUFFIXES = ("_mask",)


@dataclass(frozen=True)
class Checkpoint:
    """The tensors of a weights file, by dotted name, in file order, plus what was skipped."""

    path: str
    format: str  # "safetensors", "torch" or "dcp"
    # Each tensor's shape and dtype: meta tensors where the values are still on disk (read them
    # with `values`), else the tensors themselves (memory-mapped for zip-format torch files).
    tensors: Mapping[str, torch.Tensor]
    notes: tuple[str, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)
    reader: Callable[[Sequence[str]], Iterator[tuple[str, torch.Tensor]]] | None = None
    files: int = 1  # how many files the tensors are in (shards of a folder)

    def values(self, names: Sequence[str]) -> Iterator[tuple[str, torch.Tensor]]:
        """The named tensors with their values, one at a time, in an order that reads each file
        once (not necessarily the order of `names`)."""
        if self.reader is None:
            return ((name, self.tensors[name]) for name in names)
        return self.reader(names)


def is_checkpoint(target: str) -> bool:
    """Whether TARGET names a weights file (by suffix) or a weights folder, rather than a model.

    A folder is one when it holds safetensors, an index, a DCP `.metadata` or a HF `config.json`
    (a folder of Python files is left to the model loader, which says what to name instead).
    """
    if target.strip().lower().endswith(CHECKPOINT_SUFFIXES):
        return True
    folder = Path(target)
    if not folder.is_dir():
        return False
    marks = (".metadata", "config.json")
    return any((folder / m).is_file() for m in marks) or any(folder.glob("*.safetensors*"))


def _natural(name: str) -> list[str | int]:
    # layers.2 before layers.10; split() puts digit runs at odd indices, so types line up.
    return [int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", name))]


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Open a weights file or folder: every tensor's shape and dtype, values read on demand.

    Nothing runs code from the file and nothing is read whole: safetensors headers are parsed
    and checked (every shard, before any value is read), a DCP folder's sizes come from its
    `.metadata`, and zip-format torch files are memory-mapped.
    """
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f"no such file: {file}; check the path")
    if file.is_dir():
        return _load_folder(file)
    if file.suffix.lower() == ".safetensors":
        shard = safetensors_files.read_header(file)
        where = dict.fromkeys(_ordered(shard.tensors), file)
        return Checkpoint(
            str(file),
            "safetensors",
            {name: shard.tensors[name] for name in where},
            metadata=shard.metadata,
            reader=partial(safetensors_files.read_tensors, where),
        )
    tensors, notes = torch_files.load_torch(file)
    return Checkpoint(str(file), "torch", tensors, notes)


def _ordered(names: Iterable[str]) -> list[str]:
    return sorted(names, key=_natural)


def _load_folder(folder: Path) -> Checkpoint:
    if dcp.is_dcp(folder):
        found = dcp.read_metadata(folder)
        notes = []
        if found.skipped:
            shown = ", ".join(found.skipped[:5]) + (
                f" and {len(found.skipped) - 5} more" if len(found.skipped) > 5 else ""
            )
            notes.append(f"entries that are not tensors were skipped: {shown}.")
        names = _ordered(found.tensors)
        return Checkpoint(
            str(folder),
            "dcp",
            {n: found.tensors[n] for n in names},
            tuple(notes),
            reader=partial(dcp.read_tensors, found),
        )
    shards = safetensors_files.shards_of_folder(folder)
    if shards is None:
        raise CheckpointError(
            f"{folder} holds no weights: no *.safetensors files, no *.safetensors.index.json "
            "and no DCP .metadata; name a weights file or a model folder"
        )
    names = _ordered(shards.where)
    tensors = {}
    by_path = {s.path: s for s in shards.shards}
    for name in names:
        tensors[name] = by_path[shards.where[name]].tensors[name]
    metadata = dict(shards.shards[0].metadata) if len(shards.shards) == 1 else {}
    return Checkpoint(
        str(folder),
        "safetensors",
        tensors,
        shards.notes,
        metadata,
        reader=partial(safetensors_files.read_tensors, shards.where),
        files=len(shards.shards),
    )


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
        # Meta tensors (headers read, values on disk) share no storage: safetensors and DCP
        # store each tensor once.
        if t.numel() == 0 or t.is_meta:
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
        looks_embedded = _looks_embedded(prefix)
        yield from (embedding, linear) if looks_embedded else (linear, embedding)
    elif w.dim() in (3, 4, 5):
        conv: Any = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[w.dim()]
        # A grouped conv stores in_channels/groups in dim 1; the fans (all that matters) agree.
        yield lambda: conv(w.shape[1], w.shape[0], tuple(w.shape[2:]), bias=has_bias)
    elif w.dim() == 1:
        if "running_mean" in leaves:
            yield lambda: nn.BatchNorm1d(w.shape[0])
        yield lambda: nn.LayerNorm(w.shape[0], bias=has_bias)


def _looks_embedded(prefix: str) -> bool:
    return bool(re.search(r"emb|wte|wpe|tok", prefix.rsplit(".", 1)[-1], re.IGNORECASE))


def signature(prefix: str, leaves: Mapping[str, torch.Tensor]) -> Hashable:
    """All that `stand_in` reads of a group: groups with equal signatures get equal stand-ins
    (a checkpoint of N identical layers builds one, not N)."""
    return (
        _looks_embedded(prefix),
        tuple((leaf, tuple(t.shape), is_buffer(leaf, t)) for leaf, t in leaves.items()),
    )


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
            # Init skipped: on meta it does nothing but import torch._dynamo (seconds).
            with building.on_meta(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                module = make()
        except Exception:  # a shape no constructor accepts: try the next candidate
            continue
        if _param_shapes(module) == wanted:
            return module
    return None


_BLOCK = re.compile(r"^(.*?)\.(\d+)\.")


def depth_hint(names: Iterable[str]) -> int | None:
    """The number of blocks in the longest numbered run of names (`h.0.` … `h.11.` → 12): the
    depth the depth-scaled init formulas (GPT-2's 0.02/√(2·n_layer)) need, read from names."""
    blocks: dict[str, set[str]] = {}
    for name in names:
        found = _BLOCK.match(name)
        if found:
            blocks.setdefault(found[1], set()).add(found[2])
    return max((len(b) for b in blocks.values() if len(b) > 1), default=None)


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
