"""A DCP `.metadata` file read as data: a restricted unpickler, then every field checked."""

from __future__ import annotations

import io
import math
import os
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import torch

from initcli import memory
from initcli.errors import CheckpointError, MemoryLimitError, first_line
from initcli.files import open_regular

if TYPE_CHECKING:
    from torch.distributed.checkpoint.metadata import (
        ChunkStorageMetadata,
        Metadata,
        MetadataIndex,
        TensorProperties,
        TensorStorageMetadata,
    )

__all__ = [
    "EXPANSION",
    "MAX_CHUNKS",
    "MAX_DIMS",
    "MAX_METADATA_BYTES",
    "MAX_NUMEL",
    "invalid",
    "safe_metadata",
    "shown_name",
]

# `.metadata` is read whole and unpickled in Python (~2 bytes an opcode): a model of 2,000
# tensors saved by 64 ranks writes ~20 MB; past this, the file is refused before it is read.
MAX_METADATA_BYTES = 256 * 2**20
# Peak memory per byte of `.metadata` while it is unpickled and checked: ~24× for what torch
# writes, up to ~80× for a pickle built to expand (a million empty lists or memo entries per MB).
# A file whose worst case exceeds the memory free is refused before it is read.
EXPANSION = 80
# Chunks over all tensors (one per tensor and rank that holds a part of it): each is checked
# and its storage looked up, so this bounds the work after the unpickle.
MAX_CHUNKS = 10_000_000
# Dimensions of one tensor, and elements (so numel × 16 bytes stays below 2**63).
MAX_DIMS = 64
MAX_NUMEL = 2**58
# A byte offset or length inside a storage file.
_MAX_OFFSET = 2**62

_NOT_CODE = "initcli does not run code from checkpoints"
_SAVE_AGAIN = "save it again with torch.distributed.checkpoint.save"


class _ForeignError(Exception):
    """The pickle names a class or uses an opcode that DCP metadata never holds."""


class _InvalidError(Exception):
    """A value of the right kind that is out of range or inconsistent."""


# What `torch.distributed.checkpoint.save` pickles into `.metadata` (torch 2.x), each read as a
# record (its state, not yet trusted) and checked field by field afterwards. The torch classes
# themselves are never instantiated by the unpickler: no `__setstate__` or `__reduce__` of theirs
# runs, and a subclass (another module or name) is not in the table.
class _Record:
    """An object of an allowed DCP class as the pickle described it: its state, unchecked."""

    __slots__ = ("state",)
    kind: ClassVar[str] = ""
    state: object

    def __new__(cls, *args: object, **kwargs: object) -> _Record:
        if args or kwargs:
            raise _ForeignError(f"{cls.kind} built with arguments")
        self = object.__new__(cls)
        self.state = None
        return self

    def __setstate__(self, state: object) -> None:
        self.state = state


def _record(kind: str) -> type[_Record]:
    return type(f"_{kind}", (_Record,), {"__slots__": (), "kind": kind})


_META = "torch.distributed.checkpoint.metadata"
_METADATA = _record("Metadata")
_TENSOR = _record("TensorStorageMetadata")
_BYTES = _record("BytesStorageMetadata")
_CHUNK = _record("ChunkStorageMetadata")
_PROPERTIES = _record("TensorProperties")
_INDEX = _record("MetadataIndex")
_STORAGE_META = _record("StorageMeta")
_STORAGE_INFO = _record("_StorageInfo")


class _Call:
    """A stand-in for a torch or pathlib callable the pickle calls (REDUCE): it checks its
    arguments and builds the value itself. No slots and no `__dict__`: BUILD cannot alter it."""

    __slots__ = ()

    def __call__(self, *args: object) -> object:
        raise NotImplementedError


class _SizeCall(_Call):
    """torch.Size(dims): a tuple of at most MAX_DIMS non-negative ints."""

    __slots__ = ()

    def __call__(self, *args: object) -> object:
        (dims,) = _args(args, 1, "torch.Size")
        if type(dims) not in (tuple, list) or len(dims) > MAX_DIMS:  # type: ignore[arg-type]
            raise _InvalidError(f"a torch.Size of more than {MAX_DIMS} dimensions, or not a tuple")
        for d in dims:  # type: ignore[attr-defined]
            if type(d) is not int or not 0 <= d <= _MAX_OFFSET:
                raise _InvalidError("a torch.Size with a negative, huge or non-integer dimension")
        return torch.Size(dims)  # type: ignore[arg-type]


class _LayoutCall(_Call):
    """torch.serialization._get_layout(name): only dense tensors are saved by DCP."""

    __slots__ = ()

    def __call__(self, *args: object) -> object:
        (name,) = _args(args, 1, "a layout")
        if name != "torch.strided":
            raise _InvalidError(f"the layout {str(name)[:40]!r}; initcli reads strided tensors")
        return torch.strided


class _MemoryFormatCall(_Call):
    """_MEM_FORMAT_ENCODING(code): 0, 1 or 2, as TensorProperties.__getstate__ writes it."""

    __slots__ = ()
    FORMATS: ClassVar[tuple[torch.memory_format, ...]] = (
        torch.contiguous_format,
        torch.channels_last,
        torch.preserve_format,
    )

    def __call__(self, *args: object) -> object:
        (code,) = _args(args, 1, "a memory format")
        if type(code) is not int or not 0 <= code < len(self.FORMATS):
            raise _InvalidError("an unknown memory format code")
        return self.FORMATS[code]


class _PathCall(_Call):
    """pathlib.PosixPath(*parts) (StorageMeta.checkpoint_id): the path as text, never touched."""

    __slots__ = ()
    PURE: ClassVar[type[PurePosixPath] | type[PureWindowsPath]] = PurePosixPath

    def __call__(self, *args: object) -> object:
        if len(args) > 4096 or any(type(a) is not str for a in args):
            raise _InvalidError("a checkpoint_id path whose parts are not text")
        return str(self.PURE(*args))  # type: ignore[arg-type]


class _WindowsPathCall(_PathCall):
    __slots__ = ()
    PURE = PureWindowsPath


def _args(args: tuple[object, ...], n: int, what: str) -> tuple[object, ...]:
    if len(args) != n:
        raise _InvalidError(f"{what} with {len(args)} arguments")
    return args


_DTYPES = {name: v for name, v in vars(torch).items() if isinstance(v, torch.dtype)}
_CLASSES: dict[tuple[str, str], type[_Record]] = {
    (_META, "Metadata"): _METADATA,
    (_META, "TensorStorageMetadata"): _TENSOR,
    (_META, "BytesStorageMetadata"): _BYTES,
    (_META, "ChunkStorageMetadata"): _CHUNK,
    (_META, "TensorProperties"): _PROPERTIES,
    (_META, "MetadataIndex"): _INDEX,
    (_META, "StorageMeta"): _STORAGE_META,
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"): _STORAGE_INFO,
}
_CALLS: dict[tuple[str, str], Callable[[], _Call]] = {
    ("torch", "Size"): _SizeCall,
    ("torch.serialization", "_get_layout"): _LayoutCall,
    (_META, "_MEM_FORMAT_ENCODING"): _MemoryFormatCall,
    ("pathlib", "PosixPath"): _PathCall,
    ("pathlib", "PurePosixPath"): _PathCall,
    ("pathlib", "WindowsPath"): _WindowsPathCall,
    ("pathlib", "PureWindowsPath"): _WindowsPathCall,
}

_Dispatch = dict[int, Callable[["_MetadataUnpickler"], None]]
_KEY_TYPES = (str, int)


def _refuse(what: str) -> Callable[[_MetadataUnpickler], None]:
    def load(self: _MetadataUnpickler) -> NoReturn:
        raise _ForeignError(what)

    return load


class _MetadataUnpickler(pickle._Unpickler):
    """Reads `.metadata` as data: globals only from the table above, no other callable.

    The pure-Python unpickler (as torch's weights-only one is), so that every opcode that calls,
    hashes or mutates something can be checked: the C one hashes a dict key built of tuples
    nested a million deep by recursion and crashes the process. Its loop is iterative, so deep
    nesting cannot raise RecursionError either.
    """

    dispatch: ClassVar[_Dispatch] = dict(pickle._Unpickler.dispatch)  # type: ignore[arg-type,assignment]
    # The pure-Python unpickler's working state (untyped in typeshed).
    stack: list[Any]
    append: Callable[[Any], None]
    pop_mark: Callable[[], list[Any]]

    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _CLASSES:
            return _CLASSES[module, name]
        if (module, name) in _CALLS:
            return _CALLS[module, name]()
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]  # a torch.dtype: not callable, no __dict__, no __setstate__
        raise _ForeignError(f"{module[:80]}.{name[:80]}")

    def persistent_load(self, pid: object) -> NoReturn:
        raise _ForeignError("a persistent id")

    def load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        if not (isinstance(cls, type) and issubclass(cls, _Record)) or args != ():
            raise _ForeignError("an object built from something other than a DCP metadata class")
        self.append(cls())

    def load_reduce(self) -> None:
        args = self.stack.pop()
        func = self.stack[-1]
        if not isinstance(func, _Call) or type(args) is not tuple:
            raise _ForeignError("a call of something other than torch.Size or a layout")
        self.stack[-1] = func(*args)

    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, _Record):
            raise _ForeignError("state set on something other than DCP metadata")
        inst.__setstate__(state)

    def load_append(self) -> None:
        value = self.stack.pop()
        target = self.stack[-1]
        if type(target) is not list:
            raise _ForeignError("an append to something other than a list")
        target.append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        target = self.stack[-1]
        if type(target) is not list:
            raise _ForeignError("an append to something other than a list")
        target.extend(items)

    def _set(self, target: object, items: Sequence[object]) -> None:
        if type(target) is not dict:
            raise _ForeignError("an item set on something other than a dict")
        if len(items) % 2:
            raise _InvalidError("a dict with a key and no value")
        for i in range(0, len(items), 2):
            key = items[i]
            # Only names, ints and records (hashed by identity) are hashed: never a tuple, whose
            # hash recurses in C as deep as the pickle nests it.
            if type(key) not in _KEY_TYPES and not isinstance(key, _Record):
                raise _ForeignError("a dict key that is not a name")
            target[key] = items[i + 1]

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._set(self.stack[-1], (key, value))

    def load_setitems(self) -> None:
        items = self.pop_mark()
        self._set(self.stack[-1], items)

    def load_dict(self) -> None:
        items = self.pop_mark()
        target: dict[object, object] = {}
        self._set(target, items)
        self.append(target)


def _dispatch() -> None:
    ops: dict[bytes, Callable[[_MetadataUnpickler], None]] = {
        pickle.NEWOBJ: _MetadataUnpickler.load_newobj,
        pickle.REDUCE: _MetadataUnpickler.load_reduce,
        pickle.BUILD: _MetadataUnpickler.load_build,
        pickle.APPEND: _MetadataUnpickler.load_append,
        pickle.APPENDS: _MetadataUnpickler.load_appends,
        pickle.SETITEM: _MetadataUnpickler.load_setitem,
        pickle.SETITEMS: _MetadataUnpickler.load_setitems,
        pickle.DICT: _MetadataUnpickler.load_dict,
    }
    # Opcodes DCP metadata never uses, each of which builds, calls or allocates what the checks
    # above do not cover: old-style instances, extension registry lookups, sets (their items are
    # hashed), out-of-band buffers and a bytearray sized by the file's own word.
    for op, what in (
        (pickle.INST, "an old-style instance"),
        (pickle.OBJ, "an old-style instance"),
        (pickle.NEWOBJ_EX, "an object built with keyword arguments"),
        (pickle.EXT1, "a copyreg extension"),
        (pickle.EXT2, "a copyreg extension"),
        (pickle.EXT4, "a copyreg extension"),
        (pickle.EMPTY_SET, "a set"),
        (pickle.ADDITEMS, "a set"),
        (pickle.FROZENSET, "a frozenset"),
        (pickle.BYTEARRAY8, "a bytearray"),
        (pickle.NEXT_BUFFER, "an out-of-band buffer"),
        (pickle.READONLY_BUFFER, "an out-of-band buffer"),
    ):
        ops[op] = _refuse(what)
    for op, load in ops.items():
        _MetadataUnpickler.dispatch[op[0]] = load


_dispatch()


def _read_pickle(file: Path) -> object:
    try:
        with open_regular(file) as f:
            size = os.fstat(f.fileno()).st_size
            if size > MAX_METADATA_BYTES:
                raise CheckpointError(
                    f"{file} is {size:,} bytes, more than the {MAX_METADATA_BYTES // 2**20} MiB "
                    "initcli reads as DCP metadata; it is not a checkpoint's .metadata"
                )
            free = memory.available_cpu_bytes()
            if free is not None and size * EXPANSION > free:
                raise MemoryLimitError(
                    f"reading {file} ({size / 2**20:.0f} MiB) may take up to "
                    f"{size * EXPANSION / 2**30:.1f} GiB, and {free / 2**30:.1f} GiB is free; "
                    "free memory or raise the limit (ulimit -v, the container's memory limit)"
                )
            data = f.read(MAX_METADATA_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"{file} cannot be read ({first_line(exc)})") from None
    if len(data) > MAX_METADATA_BYTES:
        raise CheckpointError(f"{file} grew past {MAX_METADATA_BYTES // 2**20} MiB while read")
    try:
        return _MetadataUnpickler(io.BytesIO(data)).load()
    except _ForeignError as exc:
        raise _foreign(file, str(exc)) from None
    except _InvalidError as exc:
        raise invalid(file, str(exc)) from None
    except Exception as exc:  # truncated, garbage, a wrong type where an opcode expects one
        raise CheckpointError(
            f"{file} is not a readable DCP metadata file ({first_line(exc)[:200]})"
        ) from None


def _foreign(file: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{file} holds Python objects that are not checkpoint metadata ({what}); {_NOT_CODE}"
    )


def invalid(file: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{file} is not valid DCP metadata: {why}; {_SAVE_AGAIN}")


def shown_name(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:120] + "…")


@dataclass
class _Checker:
    """Turns the unpickled records into torch's metadata objects, checking every field."""

    file: Path
    chunks: int = 0

    def foreign(self, what: str) -> NoReturn:
        raise _foreign(self.file, what)

    def invalid(self, why: str) -> NoReturn:
        raise invalid(self.file, why)

    def fields(
        self, record: object, kind: type[_Record], required: set[str], optional: set[str]
    ) -> dict[str, Any]:
        if type(record) is not kind:
            self.foreign(f"{_what(record)} where a {kind.kind} belongs")
        state = record.state
        if state is None and not required:
            return {}
        if type(state) is not dict:
            self.invalid(f"a {kind.kind} whose fields are not a dict")
        keys = set(state)
        if not keys <= required | optional or not required <= keys:
            self.invalid(f"a {kind.kind} with fields {sorted(map(str, keys))[:8]}")
        return state

    def metadata(self, root: object) -> Metadata:
        from torch.distributed.checkpoint.metadata import (
            BytesStorageMetadata,
            Metadata,
            StorageMeta,
        )

        f = self.fields(
            root,
            _METADATA,
            {"state_dict_metadata"},
            {"planner_data", "storage_data", "storage_meta", "version"},
        )
        items = f["state_dict_metadata"]
        if type(items) is not dict:
            self.invalid("state_dict_metadata is not a dict")
        if sum(len(_chunks_of(v)) for v in items.values()) > MAX_CHUNKS:
            self.invalid(f"more than {MAX_CHUNKS:,} chunks")
        entries: dict[str, TensorStorageMetadata | BytesStorageMetadata] = {}
        for fqn, item in items.items():
            if type(fqn) is not str:
                self.invalid("an entry whose name is not text")
            if type(item) is _BYTES:
                self.fields(item, _BYTES, set(), set())
                entries[fqn] = BytesStorageMetadata()
            else:
                entries[fqn] = self.tensor(fqn, item)
        self.plain(f.get("planner_data"), "planner_data")
        if f.get("storage_meta") is not None:
            self.storage_meta(f["storage_meta"])
        version = f.get("version")
        if version is not None and (type(version) is not str or len(version) > 100):
            self.invalid("a version that is not short text")
        storage = self.storage(f.get("storage_data"), entries)
        # planner_data (the nesting of the saved state dict) is left out: initcli loads flat names.
        return Metadata(entries, None, storage, StorageMeta(), version)

    def tensor(self, fqn: str, item: object) -> TensorStorageMetadata:
        from torch.distributed.checkpoint.metadata import (
            ChunkStorageMetadata,
            TensorStorageMetadata,
        )

        f = self.fields(item, _TENSOR, {"properties", "size", "chunks"}, set())
        size = self.size(f["size"], fqn)
        numel = math.prod(size)
        if numel > MAX_NUMEL:
            self.invalid(
                f"{shown_name(fqn)} has {numel:.3g} elements, more than any tensor can hold"
            )
        chunks = f["chunks"]
        if type(chunks) is not list:
            self.invalid(f"the chunks of {shown_name(fqn)} are not a list")
        checked: list[ChunkStorageMetadata] = []
        covered = 0
        for chunk in chunks:
            c = self.fields(chunk, _CHUNK, {"offsets", "sizes"}, set())
            offsets, sizes = self.size(c["offsets"], fqn), self.size(c["sizes"], fqn)
            if not len(offsets) == len(sizes) == len(size) or any(
                o + s > d for o, s, d in zip(offsets, sizes, size, strict=True)
            ):
                self.invalid(f"a chunk of {shown_name(fqn)} lies outside its size {list(size)}")
            covered += math.prod(sizes)
            checked.append(ChunkStorageMetadata(offsets, sizes))
        if covered != numel:
            self.invalid(
                f"the chunks of {shown_name(fqn)} hold {covered:,} of its {numel:,} elements"
            )
        return TensorStorageMetadata(self.properties(f["properties"], fqn), size, checked)

    def size(self, value: object, fqn: str) -> torch.Size:
        if type(value) is not torch.Size:
            self.invalid(f"a size of {shown_name(fqn)} that is not a torch.Size")
        return value

    def properties(self, record: object, fqn: str) -> TensorProperties:
        from torch.distributed.checkpoint.metadata import TensorProperties

        if type(record) is not _PROPERTIES:
            self.foreign(f"{_what(record)} where a TensorProperties belongs")
        state = record.state
        if type(state) is not tuple or len(state) != 5:
            self.invalid(f"the properties of {shown_name(fqn)} are not the 5 fields torch writes")
        dtype, layout, grad, memory_format, pinned = state
        if (
            type(dtype) is not torch.dtype
            or layout is not torch.strided
            or type(grad) is not bool
            or type(memory_format) is not torch.memory_format
            or type(pinned) is not bool
        ):
            self.invalid(f"the properties of {shown_name(fqn)} are not a dtype, layout and flags")
        return TensorProperties(dtype, layout, grad, memory_format, pinned)

    def storage(self, value: object, entries: Mapping[str, object]) -> dict[MetadataIndex, object]:
        from torch.distributed.checkpoint.filesystem import _StorageInfo
        from torch.distributed.checkpoint.metadata import MetadataIndex, TensorStorageMetadata

        if value is None:
            value = {}
        if type(value) is not dict:
            self.invalid("storage_data is not a dict")
        out: dict[MetadataIndex, object] = {}
        for key, info in value.items():
            k = self.fields(key, _INDEX, {"fqn"}, {"offset", "index"})
            fqn, offset, index = k["fqn"], k.get("offset"), k.get("index")
            if type(fqn) is not str or fqn not in entries:
                self.invalid("stored data for an entry the metadata does not list")
            if offset is not None:
                offset = self.size(offset, fqn)
            if index is not None and type(index) is not int:
                self.invalid(f"a storage index of {shown_name(fqn)} that is not an int")
            s = self.fields(
                info,
                _STORAGE_INFO,
                {"relative_path", "offset", "length"},
                {"transform_descriptors"},
            )
            rel, at, length = s["relative_path"], s["offset"], s["length"]
            descriptors = s.get("transform_descriptors")
            if type(rel) is not str:
                self.invalid(f"the storage file of {shown_name(fqn)} is not a name")
            for n in (at, length):
                if type(n) is not int or not 0 <= n <= _MAX_OFFSET:
                    self.invalid(
                        f"the byte range of {shown_name(fqn)} is not two non-negative ints"
                    )
            if descriptors is not None and (
                type(descriptors) not in (list, tuple)
                or len(descriptors) > 16
                or any(type(d) is not str or len(d) > 200 for d in descriptors)
            ):
                self.invalid(f"the storage transforms of {shown_name(fqn)} are not short names")
            index_key = MetadataIndex(fqn, offset, index)
            if index_key in out:
                self.invalid(f"two storage entries for the same part of {shown_name(fqn)}")
            out[index_key] = _StorageInfo(
                rel,
                at,
                length,
                None if descriptors is None else list(descriptors),
            )
        for fqn, item in entries.items():
            if isinstance(item, TensorStorageMetadata):
                for chunk in item.chunks:
                    if MetadataIndex(fqn, chunk.offsets) not in out:
                        self.invalid(f"no stored data for a chunk of {shown_name(fqn)}")
        return out

    def storage_meta(self, record: object) -> None:
        f = self.fields(
            record, _STORAGE_META, set(), {"checkpoint_id", "save_id", "load_id", "modules"}
        )
        for name in ("checkpoint_id", "save_id", "load_id"):
            if f.get(name) is not None and type(f[name]) is not str:
                self.invalid(f"storage_meta.{name} is not text")
        modules = f.get("modules", [])
        if type(modules) is not list or any(type(m) is not str for m in modules):
            self.invalid("storage_meta.modules is not a list of names")

    def plain(self, value: object, where: str) -> None:
        """Only text, numbers, None and containers of them (each container visited once: the
        pickle may share one container many times, or hold itself)."""
        seen: set[int] = set()
        todo: list[Any] = [value]
        while todo:
            v = todo.pop()
            if type(v) in (str, int, float, bool, bytes, type(None)):
                continue
            if type(v) in (list, tuple, dict):
                if id(v) in seen:
                    continue
                seen.add(id(v))
                todo.extend(v.items() if type(v) is dict else v)
                continue
            self.foreign(f"{_what(v)} in {where}")


def _chunks_of(item: object) -> Sequence[object]:
    state = item.state if type(item) is _TENSOR else None
    chunks = state.get("chunks") if type(state) is dict else None
    return chunks if type(chunks) is list else []


def _what(value: object) -> str:
    if isinstance(value, _Record):
        return f"a {value.kind}"
    return f"a {type(value).__name__}"


def safe_metadata(folder: Path) -> Metadata:
    """`.metadata` unpickled as data only and checked field by field; see `_MetadataUnpickler`."""
    file = folder / ".metadata"
    return _Checker(file).metadata(_read_pickle(file))
