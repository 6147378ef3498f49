"""safetensors files and shard folders: headers parsed and checked first, values read one by one."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from initcli.errors import CheckpointError, first_line
from initcli.files import open_regular, read_regular, require_regular
from initcli.text import printable

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_INDEX_BYTES",
    "HeaderScan",
    "Shard",
    "header_length",
    "in_folder",
    "indexed_shards",
    "is_plain_name",
    "parse_header",
    "read_header",
    "read_json",
    "read_tensors",
    "shards_of_folder",
    "unindexed_shards",
]

# safetensors' own reader refuses headers over 100 MB; a header is read whole (it is JSON), so a
# length past this cap is refused before a byte of it is read: a hostile length cannot make
# initcli allocate it.
MAX_HEADER_BYTES = 100_000_000
# A shard index is JSON read whole: ~100 bytes per tensor (name and shard file). DeepSeek-V3's
# ~91,000 tensors make ~9 MB; 64 MiB leaves room for ~600,000 tensors and keeps json.loads of a
# hostile index to a few hundred MB of Python objects.
MAX_INDEX_BYTES = 64 * 2**20

# Shape dimensions, and the product of the nonzero ones, must fit torch's int64 sizes and strides
# (a zero-sized tensor with huge dimensions still overflows torch's stride calculation);
# data_offsets must fit safetensors' u64. Past these a header is malformed, and no bigger
# product is ever computed (a shape of thousands of 4,000-digit dimensions would take hours).
_MAX_DIM = 2**63 - 1
_MAX_OFFSET = 2**64 - 1
# A shape longer than this is shown cut short in an error message.
_SHOWN_DIMS = 8

# safetensors dtype codes -> (torch dtype, bits per stored element). F4 packs two values a byte and
# torch holds it as float4_e2m1fn_x2, whose last dimension is half the stored one.
_DTYPES: dict[str, tuple[str, int]] = {
    "F64": ("float64", 64),
    "F32": ("float32", 32),
    "F16": ("float16", 16),
    "BF16": ("bfloat16", 16),
    "I64": ("int64", 64),
    "I32": ("int32", 32),
    "I16": ("int16", 16),
    "I8": ("int8", 8),
    "U64": ("uint64", 64),
    "U32": ("uint32", 32),
    "U16": ("uint16", 16),
    "U8": ("uint8", 8),
    "BOOL": ("bool", 8),
    "C64": ("complex64", 64),
    "F8_E4M3": ("float8_e4m3fn", 8),
    "F8_E5M2": ("float8_e5m2", 8),
    "F8_E4M3FNUZ": ("float8_e4m3fnuz", 8),
    "F8_E5M2FNUZ": ("float8_e5m2fnuz", 8),
    "F8_E8M0": ("float8_e8m0fnu", 8),
    "F4": ("float4_e2m1fn_x2", 4),
}

# The torch dtypes this torch has (float4 and the newer float8 kinds came in later releases).
_TORCH_DTYPES: dict[str, torch.dtype] = {
    name: dtype for name, _ in _DTYPES.values() if (dtype := getattr(torch, name, None)) is not None
}


@dataclass(frozen=True)
class Shard:
    """One safetensors file's header: every tensor's shape and dtype (meta tensors), checked."""

    path: Path
    tensors: Mapping[str, torch.Tensor]  # meta tensors: shape and dtype, no data
    metadata: Mapping[str, str]


def _fail(file: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{file} is not a readable safetensors file: {why}")


def _unparsable(file: Path, exc: ValueError | RecursionError) -> CheckpointError:
    """The error for header text json cannot parse: not JSON, a huge number, deep nesting."""
    if isinstance(exc, RecursionError):
        # json's C parser recurses once per level, within Python's recursion limit (less the
        # frames below it); measuring depth first would take a pass over the text about as long
        # as the parse itself (10⁶ entries: seconds). Any depth it parses is harmless: checked
        # entries are 3 deep, other values are only turned into text.
        return _fail(
            file,
            "its header nests arrays or objects deeper than Python's JSON parser goes (about "
            f"{sys.getrecursionlimit():,} levels); a safetensors header is 3 levels deep",
        )
    if isinstance(exc, json.JSONDecodeError):
        return _fail(file, f"its header is not JSON ({first_line(exc)})")
    # The other ValueError json raises: int() refuses more than sys.get_int_max_str_digits()
    # digits, a cap against quadratic-time conversion (CVE-2020-10735).
    return _fail(
        file,
        f"its header holds a number with more than {sys.get_int_max_str_digits():,} digits; "
        "not a safetensors header",
    )


def _raw_header(file: Path) -> tuple[bytes, int]:
    """The header's bytes and the size of the data after it; lengths checked before reading."""
    try:
        size = file.stat().st_size
        with open_regular(file) as handle:
            length = header_length(file, handle.read(8), size)
            return handle.read(length), size - 8 - length
    except OSError as exc:
        raise CheckpointError(f"cannot read {file} ({first_line(exc)})") from None


def header_length(file: Path, head: bytes, size: int) -> int:
    """The header length the first 8 bytes (`head`) of a file of `size` bytes give, checked
    against the file's size and MAX_HEADER_BYTES before any of the header is read."""
    if len(head) < 8:
        raise _fail(file, f"{size} bytes, shorter than the 8-byte header length")
    length = int.from_bytes(head[:8], "little")
    if length > size - 8:
        raise _fail(
            file,
            f"its header length ({length:,} bytes) runs past the end of the file "
            f"({size:,} bytes); the file is truncated or not safetensors",
        )
    if length > MAX_HEADER_BYTES:
        raise _fail(file, f"its header is {length:,} bytes, over the {MAX_HEADER_BYTES:,} cap")
    return length


def read_header(file: Path) -> Shard:
    """Parse and check a safetensors header without reading any tensor data.

    Memory is bounded by the header's size, which is checked against the file's size and
    MAX_HEADER_BYTES before it is read; every tensor's byte range must lie inside the file (a
    truncated file fails here, before anything is measured).
    """
    return parse_header(file, *_raw_header(file))


def parse_header(file: Path, raw: bytes, available: int) -> Shard:
    """`read_header` of a header already read (`raw`: the bytes after the 8-byte length), for a
    file whose data after the header is `available` bytes; `file` names it in errors."""
    try:
        header = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise _fail(file, f"its header is not JSON ({first_line(exc)})") from None
    except (ValueError, RecursionError) as exc:
        raise _unparsable(file, exc) from None
    if not isinstance(header, dict):
        raise _fail(file, "its header is not a JSON object")
    meta = _metadata(file, header.pop("__metadata__", None))
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        dtype, shape = _checked(file, name, info, available)
        tensors[name] = torch.empty(shape, dtype=dtype, device="meta")
    return Shard(file, tensors, meta)


def _metadata(file: Path, meta: object) -> dict[str, str]:
    meta = meta or {}
    if not isinstance(meta, dict):
        raise _fail(file, "its __metadata__ is not an object")
    return {str(k): str(v) for k, v in meta.items()}


class HeaderScan:
    """A safetensors header read entry by entry, each entry checked as `read_header` checks it.

    For headers too big to hold parsed whole (`json.loads` of 10⁶ entries makes ~0.6 GB of
    Python objects), this holds the header's text and one entry at a time. Iterating yields
    `(name, dtype, shape)` in file order, dtype and shape as `read_header`'s meta tensors have
    them, and fills `metadata`. Anything irregular (text that is not UTF-8 JSON, an entry that
    fails a check) raises CheckpointError; repeated names are yielded again (json.loads keeps the
    last), for the caller to refuse. `read_header` says what is wrong in its own words: it reports
    the first problem of the whole text, this one the first it meets.
    """

    def __init__(self, file: Path) -> None:
        self.file = file
        self.metadata: dict[str, str] = {}

    def __iter__(self) -> Iterator[tuple[str, torch.dtype, tuple[int, ...]]]:
        raw, available = _raw_header(self.file)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(self.file, "its header is not UTF-8") from None
        del raw
        try:
            yield from self._entries(text, available)
        except (json.JSONDecodeError, _NotAnObjectError, IndexError):
            # An index past the end is text cut short.
            raise _fail(self.file, "its header is not one JSON object") from None
        except (ValueError, RecursionError) as exc:
            raise _unparsable(self.file, exc) from None

    def _entries(
        self, text: str, available: int
    ) -> Iterator[tuple[str, torch.dtype, tuple[int, ...]]]:
        # The json module's own scanners (C code) walk the top-level object one entry at a
        # time: the grammar of json.loads (strict strings; NaN and Infinity accepted).
        scan, strings = json.JSONDecoder().scan_once, json.decoder.scanstring  # type: ignore[attr-defined]
        # Whitespace is looked for only where the text has some (safetensors writes none).
        spaced = any(c in text for c in _WHITESPACE)

        def skip(at: int) -> int:
            return _SPACE.match(text, at).end() if spaced else at  # type: ignore[union-attr]

        at = skip(0)
        if text[at] != "{":
            raise _NotAnObjectError  # not an object
        at = skip(at + 1)
        end = text[at] == "}"
        if end:
            at = skip(at + 1)
        while not end:
            if text[at] != '"':
                raise _NotAnObjectError  # a name was expected
            name, at = strings(text, at + 1)
            if spaced:
                at = skip(at)
            if text[at] != ":":
                raise _NotAnObjectError  # ':' was expected
            try:
                info, at = scan(text, skip(at + 1) if spaced else at + 1)
            except StopIteration:
                # scan_once's way of saying no value starts there; left to escape, it would end
                # this generator as a RuntimeError (PEP 479).
                raise _NotAnObjectError from None  # a value was expected
            if spaced:
                at = skip(at)
            if text[at] not in ",}":
                raise _NotAnObjectError  # ',' or '}' was expected
            end = text[at] == "}"
            at = skip(at + 1) if spaced else at + 1
            if name == "__metadata__":
                self.metadata = _metadata(self.file, info)
            else:
                dtype, shape = _checked(self.file, name, info, available)
                yield name, dtype, tuple(shape)
        if at != len(text):
            raise _NotAnObjectError  # extra data after the object


class _NotAnObjectError(Exception):
    """HeaderScan's text is not one JSON object (what json.loads would call a JSONDecodeError).

    It carries no text: the user is told only that the header is not one JSON object."""


# JSON's whitespace (json.decoder.WHITESPACE, which also takes flags the match does not need).
_SPACE = re.compile(r"[ \t\n\r]*")
_WHITESPACE = " \t\n\r"


def _checked(file: Path, name: str, info: object, available: int) -> tuple[torch.dtype, list[int]]:
    """An entry's torch dtype and shape, once its dtype, shape and byte range are checked."""
    if not isinstance(info, dict):
        raise _fail(file, f"the header entry of {name!r} is not an object")
    code, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    known = _DTYPES.get(code) if isinstance(code, str) else None
    if known is None:
        raise _fail(file, f"tensor {name!r} has an unknown dtype {code!r}")
    # Checked in plain loops, not all() over generators: a header may hold 10⁶ entries. `type is
    # int`, not isinstance: JSON's true and false are no sizes (and torch.empty refuses bools).
    ok = isinstance(shape, list) and isinstance(offsets, list) and len(offsets) == 2
    numel = span = 1  # span: the product of the nonzero dimensions, what torch's strides need
    if ok:
        assert isinstance(shape, list) and isinstance(offsets, list)
        for d in shape:
            if type(d) is not int or not 0 <= d <= _MAX_DIM:
                ok = False
                break
            numel *= d
            span *= d or 1
            if span > _MAX_DIM:
                raise _fail(
                    file,
                    f"tensor {name!r} has a shape whose dimensions multiply past 2**63 - 1 "
                    "(torch's largest size)",
                )
        start, stop = offsets
        ok = ok and type(start) is int and type(stop) is int and 0 <= start <= stop <= _MAX_OFFSET
    if not ok:
        raise _fail(file, f"tensor {name!r} has a malformed shape or data_offsets")
    assert isinstance(shape, list) and isinstance(offsets, list)
    dtype_name, bits = known
    if offsets[1] - offsets[0] != (numel * bits + 7) // 8:
        raise _fail(
            file,
            f"tensor {name!r} ({code}, shape {_shown(shape)}) takes "
            f"{offsets[1] - offsets[0]:,} bytes, not the {(numel * bits + 7) // 8:,} its shape "
            "needs",
        )
    if offsets[1] > available:
        raise _fail(
            file,
            f"tensor {name!r} ends at byte {offsets[1]:,} of the data, which has only "
            f"{available:,} bytes: the file is truncated",
        )
    dtype = _TORCH_DTYPES.get(dtype_name)
    if dtype is None:
        raise _fail(file, f"tensor {name!r} is {code}, which this torch cannot hold")
    if code == "F4":
        if not shape or shape[-1] % 2:
            raise _fail(file, f"F4 tensor {name!r} has an odd last dimension")
        shape = [*shape[:-1], shape[-1] // 2]
    return dtype, shape


def _shown(shape: list[int]) -> str:
    if len(shape) <= _SHOWN_DIMS:
        return str(shape)
    return f"[{', '.join(map(str, shape[:_SHOWN_DIMS]))}, ... ({len(shape):,} dimensions)]"


@dataclass(frozen=True)
class Folder:
    """The shards of a folder and which shard holds each tensor (from the index, or the headers)."""

    shards: tuple[Shard, ...]
    where: Mapping[str, Path]  # tensor name -> its shard
    notes: tuple[str, ...]


def in_folder(folder: Path, path: Path) -> bool:
    """Whether `path`, links followed, is inside `folder`, or is a blob of the HF hub cache whose
    snapshot `folder` is (`snapshots/<revision>/x` links to `../../blobs/<hash>` there)."""
    home, real = folder.resolve(), path.resolve()
    if real.is_relative_to(home):
        return True
    cache = next((p.parent for p in (home, *home.parents) if p.name == "snapshots"), None)
    return cache is not None and real.parent == cache / "blobs"


def _inside(folder: Path, path: Path) -> Path:
    """`path` when it lies inside `folder` (see in_folder); else an error that says nothing about
    the file the link reaches."""
    if not in_folder(folder, path):
        raise CheckpointError(
            f"{path} links to a file outside {folder}; initcli reads only the files inside a "
            "weights folder: copy the file into the folder instead of linking it"
        )
    return path


def read_json(file: Path, cap: int, what: str) -> object:
    """A JSON file read whole, after its size is checked against `cap` (bytes); `what` says what
    the file is in the errors (\"index\", \"model config\")."""
    require_regular(file)  # a FIFO or device would block or never end: named as such
    try:
        size = file.stat().st_size
        if size > cap:
            raise CheckpointError(
                f"{file} is {size:,} bytes, over the {cap:,}-byte cap on a {what}; "
                f"this is not a {what} initcli reads"
            )
        raw = read_regular(file, cap + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {file} ({first_line(exc)})") from None
    if len(raw) > cap:  # it grew after the size was checked
        raise CheckpointError(f"{file} is over the {cap:,}-byte cap on a {what}")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{file} is not a readable {what} ({first_line(exc)})") from None
    except RecursionError:
        raise CheckpointError(
            f"{file} is not a readable {what}: its JSON is nested too deeply to parse"
        ) from None
    except ValueError:  # Python's 4,300-digit limit on int(): no real file holds such a number
        raise CheckpointError(
            f"{file} is not a readable {what}: it holds a number of more than 4,300 digits"
        ) from None


def _index_file(folder: Path) -> Path | None:
    found = sorted(folder.glob("*.safetensors.index.json"))
    preferred = folder / "model.safetensors.index.json"
    if preferred in found:
        return preferred
    if len(found) > 1:
        names = ", ".join(f.name for f in found)
        raise CheckpointError(f"{folder} holds several safetensors indexes ({names}); name one")
    return _inside(folder, found[0]) if found else None


def shards_of_folder(folder: Path) -> Folder | None:
    """A folder's safetensors shards, every header checked; None when it holds no safetensors.

    With an index (`*.safetensors.index.json`), each tensor it lists must be in the shard it
    names, and its `total_size` must equal the shards' bytes.
    """
    index = _index_file(folder)
    if index is None:
        files = sorted(folder.glob("*.safetensors"))
        if not files:
            return None
        return unindexed_shards(tuple(read_header(_inside(folder, f)) for f in files))
    return indexed_shards(index, lambda file: _shard_in(folder, index, file))


def unindexed_shards(shards: Sequence[Shard]) -> Folder:
    """Shards without an index: each tensor must be in one of them only."""
    where: dict[str, Path] = {}
    for shard in shards:
        for name in shard.tensors:
            if name in where:
                raise CheckpointError(
                    f"tensor {name!r} is in both {where[name]} and {shard.path}; "
                    "a folder of shards must hold each tensor once"
                )
            where[name] = shard.path
    return Folder(tuple(shards), where, ())


def _shard_in(folder: Path, index: Path, file: str) -> Shard:
    path = folder / file
    # A plain file name: no folder part, no `..`, not absolute; links must stay inside.
    if not is_plain_name(file) or not path.exists():
        raise CheckpointError(f"{index} names shard {printable(file)}, which is not in {folder}")
    return read_header(_inside(folder, path))


def is_plain_name(file: str) -> bool:
    """Whether a shard name from an index is a file name alone (no folder, `..`, or root)."""
    return file not in ("", ".", "..") and Path(file).name == file


def indexed_shards(index: Path, read_shard: Callable[[str], Shard]) -> Folder:
    """The shards an index (`*.safetensors.index.json`) names, each read by `read_shard(name)`
    (a local file's header, or one read over HTTP); each tensor listed must be in the shard it
    names, and `total_size` must equal the tensors' bytes."""
    data = read_json(index, MAX_INDEX_BYTES, "safetensors index")
    if not isinstance(data, dict):
        raise CheckpointError(f"{index} is not a safetensors index: its JSON is not an object")
    weight_map = data.get("weight_map")
    if not isinstance(weight_map, dict) or not all(isinstance(v, str) for v in weight_map.values()):
        raise CheckpointError(f"{index} has no weight_map of tensor names to shard files")
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CheckpointError(
            f"{index} is not a safetensors index: its metadata is {_json_kind(metadata)}, "
            'not an object such as {"total_size": 123}; fix or remove the metadata key'
        )
    stated = metadata.get("total_size")
    whole = (isinstance(stated, int) and not isinstance(stated, bool)) or (
        isinstance(stated, float) and stated.is_integer()
    )
    if stated is not None and not whole:
        raise CheckpointError(
            f"{index} is not a safetensors index: its metadata.total_size is "
            f"{_json_kind(stated)}, not a whole number of bytes; fix or remove it"
        )
    shards = {file: read_shard(file) for file in dict.fromkeys(weight_map.values())}
    where: dict[str, Path] = {}
    for name, file in weight_map.items():
        if name not in shards[file].tensors:
            raise CheckpointError(
                f"{index} lists tensor {name!r} in {file}, which does not hold it"
            )
        where[name] = shards[file].path
    notes = []
    extra = [n for s in shards.values() for n in s.tensors if n not in weight_map]
    if extra:
        some = (
            "1 tensor in the shards is"
            if len(extra) == 1
            else f"{len(extra):,} tensors in the shards are"
        )
        notes.append(f"{some} not in {index.name}; not read.")
    held = sum(_nbytes(shards[f], n) for n, f in weight_map.items())
    if stated is not None and int(stated) != held:
        raise CheckpointError(
            f"{index} says total_size {int(stated):,} bytes but the tensors it lists take "
            f"{held:,}: the index and the shards disagree"
        )
    return Folder(tuple(shards.values()), where, tuple(notes))


def _json_kind(value: object) -> str:
    """What a JSON value is, in words, for an error that must not echo a huge value."""
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false"}
    if value is None:
        return "null"
    return kinds.get(type(value), "a number")


def _nbytes(shard: Shard, name: str) -> int:
    t = shard.tensors[name]
    return t.numel() * t.element_size()


def read_tensors(
    where: Mapping[str, Path], names: Sequence[str]
) -> Iterator[tuple[str, torch.Tensor]]:
    """The named tensors' values, one at a time (each shard memory-mapped, opened once in turn)."""
    from safetensors import SafetensorError, safe_open

    order: dict[Path, list[str]] = {}
    for name in names:
        order.setdefault(where[name], []).append(name)
    for path, wanted in order.items():
        try:
            require_regular(path)  # safe_open opens it itself: see require_regular's race note
            with safe_open(os.fspath(path), framework="pt", device="cpu") as handle:
                for name in wanted:
                    yield name, handle.get_tensor(name)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"{path} is not a readable safetensors file ({first_line(exc)})"
            ) from None
