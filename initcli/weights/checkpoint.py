"""Weights files: read tensors, never running code (safetensors, weights_only torch.load); write."""

from __future__ import annotations

import itertools
import json
import math
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

from initcli.errors import CheckpointError
from initcli.files import check_writable
from initcli.limits import MAX_GUESSED_LAYOUTS
from initcli.measure.counting import ModuleCount, formula, shapes_formula
from initcli.model import building
from initcli.text import first_and_more
from initcli.weights import dcp, safetensors_files, torch_files

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "Checkpoint",
    "HeaderLayout",
    "check_save_path",
    "from_shards",
    "header_layout",
    "is_buffer",
    "is_checkpoint",
    "module_groups",
    "open_weights",
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
    try:
        if not folder.is_dir():
            return False
    except OSError:  # a name the OS cannot take (too long): no folder; the loaders say why
        return False
    marks = (".metadata", "config.json")
    return any((folder / m).exists() for m in marks) or any(folder.glob("*.safetensors*"))


_DIGITS = re.compile(r"(\d+)")


def _natural(name: str) -> list[str | int]:
    # layers.2 before layers.10; split() puts digit runs at odd indices, so types line up.
    parts: list[str | int] = list(_DIGITS.split(name))
    try:
        parts[1::2] = map(int, parts[1::2])
    except ValueError:  # int() refuses more than sys.get_int_max_str_digits() digits
        raise CheckpointError(
            f"tensor name {name[:60]!r}... holds a number of more than 4,300 digits; rename it"
        ) from None
    return parts


def open_weights(path: str | os.PathLike[str]) -> Checkpoint:
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
            shown = first_and_more(found.skipped, 5)
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
    return from_shards(str(folder), shards)


def from_shards(path: str, shards: safetensors_files.Folder, readable: bool = True) -> Checkpoint:
    """The checkpoint of a folder's shards (`path` names it); `readable=False` where only their
    headers are here (a Hub repo read over HTTP): then only shapes and dtypes are known."""
    names = _ordered(shards.where)
    tensors = {}
    by_path = {s.path: s for s in shards.shards}
    for name in names:
        tensors[name] = by_path[shards.where[name]].tensors[name]
    metadata = dict(shards.shards[0].metadata) if len(shards.shards) == 1 else {}
    return Checkpoint(
        path,
        "safetensors",
        tensors,
        shards.notes,
        metadata,
        reader=partial(safetensors_files.read_tensors if readable else _headers_only, shards.where),
        files=len(shards.shards),
    )


def _headers_only(
    where: Mapping[str, Path], names: Sequence[str]
) -> Iterator[tuple[str, torch.Tensor]]:
    raise CheckpointError(
        "only the headers of these weights were read, not their values; download them first"
    )


def is_buffer(name: str, tensor: torch.Tensor) -> bool:
    """Whether a state-dict entry is (taken to be) a buffer rather than a parameter."""
    return _is_buffer(name, tensor.dtype)


def _is_buffer(name: str, dtype: torch.dtype) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    if leaf in BUFFER_LEAVES or leaf.endswith(BUFFER_SUFFIXES):
        return True
    # Parameters are floating point (or complex); integer and bool tensors are counters, indices
    # and masks, which only buffers can hold.
    return not (dtype.is_floating_point or dtype.is_complex)


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


# `_candidates` proposes nothing for a group without one of these leaves.
_ANCHORS = frozenset({"in_proj_weight", "weight_ih_l0", "weight"})


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


_EMBEDDED = re.compile(r"emb|wte|wpe|tok", re.IGNORECASE)


def _looks_embedded(prefix: str) -> bool:
    return bool(_EMBEDDED.search(prefix.rsplit(".", 1)[-1]))


def signature(prefix: str, leaves: Mapping[str, torch.Tensor]) -> Hashable:
    """All that `stand_in` reads of a group: groups with equal signatures get equal stand-ins
    (a checkpoint of N identical layers builds one, not N)."""
    return _signature(
        prefix, tuple((leaf, tuple(t.shape), is_buffer(leaf, t)) for leaf, t in leaves.items())
    )


def _signature(prefix: str, marks: tuple[tuple[str, tuple[int, ...], bool], ...]) -> Hashable:
    # marks: (leaf, shape, is a buffer) of each tensor, in order.
    return (_looks_embedded(prefix), marks)


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


def depth_from_names(names: Iterable[str]) -> int | None:
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
    from initcli.weights.safetensors_writer import write_state_dict

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


# --- counting from a safetensors header alone ---------------------------------------------------

# (leaf name, dtype, shape) of one tensor of a module's group.
_Member = tuple[str, torch.dtype, tuple[int, ...]]


@dataclass(frozen=True)
class HeaderLayout:
    """A safetensors file's modules and totals from its header alone: what `load`, grouping and
    `stand_in` give, without a tensor object per entry."""

    modules: tuple[ModuleCount, ...]  # modules holding parameters, in `load`'s order
    params: int
    buffers: int
    inferred: bool  # some module's type is a guess (marked ?)
    unguessed: int  # modules with parameters whose type was not guessed: past the layout limit
    metadata: Mapping[str, str]


def header_layout(path: str | os.PathLike[str]) -> HeaderLayout:
    """Group a safetensors file's tensors into modules and count them, reading only its header.

    The modules, order, types, formulas and totals of `load` and the per-group stand-ins, without
    a meta tensor per entry (10⁶ of them take a minute and gigabytes): a few µs and ~0.3 kB per
    tensor. A module type is guessed once per distinct layout, for at most
    limits.MAX_GUESSED_LAYOUTS layouts. Raises CheckpointError for any irregular header
    (including a name given twice, and names equal in natural order): `load` reads those.
    """
    scan = safetensors_files.HeaderScan(Path(path))
    # A group of one tensor (the common case among 10⁶ tiny ones) is held without a list.
    groups: dict[str, _Member | list[_Member]] = {}
    # One string per leaf name and one tuple per shape: 10⁶ entries share a handful of each.
    leaves: dict[str, str] = {}
    shapes: dict[tuple[int, ...], tuple[int, ...]] = {}
    for name, dtype, shape in scan:
        prefix, _, leaf = name.rpartition(".")
        member = (leaves.setdefault(leaf, leaf), dtype, shapes.setdefault(shape, shape))
        group = groups.get(prefix)
        if group is None:
            groups[prefix] = member
        elif isinstance(group, list):
            group.append(member)
        else:
            groups[prefix] = [group, member]
    modules: list[ModuleCount] = []
    params = buffers = unguessed = 0
    inferred = False
    guessed: dict[Hashable, tuple[str, bool, str]] = {}
    buffer_memo: dict[tuple[str, torch.dtype], bool] = {}
    for prefix in _module_order(groups):
        group = groups.pop(prefix)
        members = group if isinstance(group, list) else [group]
        marks = []
        own = held = 0
        has_params = False
        for leaf, dtype, shape in members:
            buffer = buffer_memo.get((leaf, dtype))
            if buffer is None:
                buffer = buffer_memo[leaf, dtype] = _is_buffer(leaf, dtype)
            marks.append((leaf, shape, buffer))
            if buffer:
                held += math.prod(shape)
            else:
                own += math.prod(shape)
                has_params = True
        params += own
        buffers += held
        key = _signature(prefix, tuple(marks))
        guess = guessed.get(key)
        if guess is None and len(guessed) < MAX_GUESSED_LAYOUTS:
            guess = guessed[key] = _guess(prefix, members)
        if guess is None:
            unguessed += has_params
            guess = ("-", False, shapes_formula([s for _, s, buffer in marks if not buffer]))
        type_name, known, hand = guess
        inferred = inferred or known
        if has_params:
            modules.append(ModuleCount(prefix or "(root)", type_name, own, hand))
    return HeaderLayout(tuple(modules), params, buffers, inferred, unguessed, scan.metadata)


def _module_order(groups: dict[str, _Member | list[_Member]]) -> list[str]:
    """Prefixes in the order `module_groups(_ordered(names))` gives, each group's leaves sorted.

    Within a group, the natural order of full names is that of the leaves (the prefix and its dot
    are common to all; ties stay in file order); a group comes where its first name does.
    """
    keyed = []
    for prefix, group in groups.items():
        if isinstance(group, list):
            group.sort(key=lambda m: _flat_key(m[0]))
            if len({m[0] for m in group}) < len(group):
                raise CheckpointError(f"{prefix!r} holds a tensor name twice")
        leaf = group[0][0] if isinstance(group, list) else group[0]
        keyed.append((_flat_key(f"{prefix}.{leaf}" if prefix else leaf), prefix))
    keyed.sort()
    for (key, _), (after, _) in itertools.pairwise(keyed):
        if key == after:
            # Equal keys (layers.01.w, layers.1.w) keep file order in `load`; rare enough to
            # leave to it.
            raise CheckpointError("two module names are equal in natural order")
    return [prefix for _, prefix in keyed]


def _flat_key(name: str) -> str:
    """A string that sorts as `_natural(name)` does, for ASCII names without NUL.

    Each digit run becomes NUL, one character for its length without leading zeros, and those
    digits: NUL sorts before any text (as a shorter text part does), the length before the value.
    One short string compares much faster than a list of parts (10⁶ names: seconds).
    """
    if not name.isascii() or "\0" in name:
        # \d also matches other scripts' digits, which int() reads by value: left to `load`.
        raise CheckpointError(f"name {name!r} is not plain ASCII")
    return _DIGITS.sub(_flat_number, name)


def _flat_number(found: re.Match[str]) -> str:
    digits = found.group().lstrip("0")
    return f"\0{chr(len(digits) + 1)}{digits}"


def _guess(prefix: str, members: list[_Member]) -> tuple[str, bool, str]:
    """(type label, whether guessed, hand count) of a group, as `stand_in` and `formula` say."""
    if not any(leaf in _ANCHORS for leaf, _, _ in members):
        # No candidate without one of these (see `_candidates`): no meta tensors for a group of
        # 10⁶ root-level tensors.
        return "-", False, shapes_formula(_param_shapes_of(members))
    tensors = {
        leaf: torch.empty(shape, dtype=dtype, device="meta") for leaf, dtype, shape in members
    }
    module = stand_in(prefix, tensors)
    if module is not None:
        return type_label(module), True, formula(module)
    return "-", False, shapes_formula(_param_shapes_of(members))


def _param_shapes_of(members: list[_Member]) -> list[tuple[int, ...]]:
    return [shape for leaf, dtype, shape in members if not _is_buffer(leaf, dtype)]
