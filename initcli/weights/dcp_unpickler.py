"""The restricted unpickler a DCP `.metadata` goes through: inert records, no code, bounded."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

import torch

from initcli import memory
from initcli.errors import CheckpointError, MemoryLimitError, first_line
from initcli.files import open_regular

if TYPE_CHECKING:
    pass

__all__ = [
    "BYTES",
    "CHUNK",
    "EXPANSION",
    "INDEX",
    "MAX_CHUNKS",
    "MAX_DIMS",
    "MAX_METADATA_BYTES",
    "MAX_NUMEL",
    "MAX_OFFSET",
    "METADATA",
    "NOT_CODE",
    "PROPERTIES",
    "SAVE_AGAIN",
    "STORAGE_INFO",
    "STORAGE_META",
    "TENSOR",
    "MetadataUnpickler",
    "Record",
    "foreign",
    "invalid",
    "read_pickle",
    "shown_name",
]

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
MAX_OFFSET = 2**62

NOT_CODE = "initcli does not run code from checkpoints"
SAVE_AGAIN = "save it again with torch.distributed.checkpoint.save"


class _ForeignError(Exception):
    """The pickle names a class or uses an opcode that DCP metadata never holds."""


class _InvalidError(Exception):
    """A value of the right kind that is out of range or inconsistent."""


# What `torch.distributed.checkpoint.save` pickles into `.metadata` (torch 2.x), each read as a
# record (its state, not yet trusted) and checked field by field afterwards. The torch classes
# themselves are never instantiated by the unpickler: no `__setstate__` or `__reduce__` of theirs
# runs, and a subclass (another module or name) is not in the table.
class Record:
    """An object of an allowed DCP class as the pickle described it: its state, unchecked."""

    __slots__ = ("state",)
    kind: ClassVar[str] = ""
    state: object

    def __new__(cls, *args: object, **kwargs: object) -> Record:
        if args or kwargs:
            raise _ForeignError(f"{cls.kind} built with arguments")
        self = object.__new__(cls)
        self.state = None
        return self

    def __setstate__(self, state: object) -> None:
        self.state = state


def _record(kind: str) -> type[Record]:
    return type(f"_{kind}", (Record,), {"__slots__": (), "kind": kind})


_META = "torch.distributed.checkpoint.metadata"
METADATA = _record("Metadata")
TENSOR = _record("TensorStorageMetadata")
BYTES = _record("BytesStorageMetadata")
CHUNK = _record("ChunkStorageMetadata")
PROPERTIES = _record("TensorProperties")
INDEX = _record("MetadataIndex")
STORAGE_META = _record("StorageMeta")
STORAGE_INFO = _record("_StorageInfo")


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
            if type(d) is not int or not 0 <= d <= MAX_OFFSET:
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
_CLASSES: dict[tuple[str, str], type[Record]] = {
    (_META, "Metadata"): METADATA,
    (_META, "TensorStorageMetadata"): TENSOR,
    (_META, "BytesStorageMetadata"): BYTES,
    (_META, "ChunkStorageMetadata"): CHUNK,
    (_META, "TensorProperties"): PROPERTIES,
    (_META, "MetadataIndex"): INDEX,
    (_META, "StorageMeta"): STORAGE_META,
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"): STORAGE_INFO,
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

_Dispatch = dict[int, Callable[["MetadataUnpickler"], None]]
_KEY_TYPES = (str, int)


def _refuse(what: str) -> Callable[[MetadataUnpickler], None]:
    def load(self: MetadataUnpickler) -> NoReturn:
        raise _ForeignError(what)

    return load


class MetadataUnpickler(pickle._Unpickler):
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
        if not (isinstance(cls, type) and issubclass(cls, Record)) or args != ():
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
        if not isinstance(inst, Record):
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
            if type(key) not in _KEY_TYPES and not isinstance(key, Record):
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
    ops: dict[bytes, Callable[[MetadataUnpickler], None]] = {
        pickle.NEWOBJ: MetadataUnpickler.load_newobj,
        pickle.REDUCE: MetadataUnpickler.load_reduce,
        pickle.BUILD: MetadataUnpickler.load_build,
        pickle.APPEND: MetadataUnpickler.load_append,
        pickle.APPENDS: MetadataUnpickler.load_appends,
        pickle.SETITEM: MetadataUnpickler.load_setitem,
        pickle.SETITEMS: MetadataUnpickler.load_setitems,
        pickle.DICT: MetadataUnpickler.load_dict,
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
        MetadataUnpickler.dispatch[op[0]] = load


_dispatch()


def read_pickle(file: Path) -> object:
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
        return MetadataUnpickler(io.BytesIO(data)).load()
    except _ForeignError as exc:
        raise foreign(file, str(exc)) from None
    except _InvalidError as exc:
        raise invalid(file, str(exc)) from None
    except Exception as exc:  # truncated, garbage, a wrong type where an opcode expects one
        raise CheckpointError(
            f"{file} is not a readable DCP metadata file ({first_line(exc)[:200]})"
        ) from None


def foreign(file: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"{file} holds Python objects that are not checkpoint metadata ({what}); {NOT_CODE}"
    )


def invalid(file: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{file} is not valid DCP metadata: {why}; {SAVE_AGAIN}")


def shown_name(text: str) -> str:
    return repr(text if len(text) <= 120 else text[:120] + "…")
