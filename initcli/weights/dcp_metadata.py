"""A DCP `.metadata` file read as data: the restricted unpickler's records, every field checked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import torch

if TYPE_CHECKING:
    from torch.distributed.checkpoint.metadata import (
        ChunkStorageMetadata,
        Metadata,
        MetadataIndex,
        TensorProperties,
        TensorStorageMetadata,
    )

from initcli.weights.dcp_unpickler import (
    BYTES,
    CHUNK,
    INDEX,
    MAX_CHUNKS,
    MAX_NUMEL,
    MAX_OFFSET,
    METADATA,
    PROPERTIES,
    STORAGE_INFO,
    STORAGE_META,
    TENSOR,
    Record,
    foreign,
    invalid,
    read_pickle,
    shown_name,
)

__all__ = ["safe_metadata"]


@dataclass
class _Checker:
    """Turns the unpickled records into torch's metadata objects, checking every field."""

    file: Path
    chunks: int = 0

    def foreign(self, what: str) -> NoReturn:
        raise foreign(self.file, what)

    def invalid(self, why: str) -> NoReturn:
        raise invalid(self.file, why)

    def fields(
        self, record: object, kind: type[Record], required: set[str], optional: set[str]
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
            METADATA,
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
            if type(item) is BYTES:
                self.fields(item, BYTES, set(), set())
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

        f = self.fields(item, TENSOR, {"properties", "size", "chunks"}, set())
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
            c = self.fields(chunk, CHUNK, {"offsets", "sizes"}, set())
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

        if type(record) is not PROPERTIES:
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
            k = self.fields(key, INDEX, {"fqn"}, {"offset", "index"})
            fqn, offset, index = k["fqn"], k.get("offset"), k.get("index")
            if type(fqn) is not str or fqn not in entries:
                self.invalid("stored data for an entry the metadata does not list")
            if offset is not None:
                offset = self.size(offset, fqn)
            if index is not None and type(index) is not int:
                self.invalid(f"a storage index of {shown_name(fqn)} that is not an int")
            s = self.fields(
                info,
                STORAGE_INFO,
                {"relative_path", "offset", "length"},
                {"transform_descriptors"},
            )
            rel, at, length = s["relative_path"], s["offset"], s["length"]
            descriptors = s.get("transform_descriptors")
            if type(rel) is not str:
                self.invalid(f"the storage file of {shown_name(fqn)} is not a name")
            for n in (at, length):
                if type(n) is not int or not 0 <= n <= MAX_OFFSET:
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
            record, STORAGE_META, set(), {"checkpoint_id", "save_id", "load_id", "modules"}
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
    state = item.state if type(item) is TENSOR else None
    chunks = state.get("chunks") if type(state) is dict else None
    return chunks if type(chunks) is list else []


def _what(value: object) -> str:
    if isinstance(value, Record):
        return f"a {value.kind}"
    return f"a {type(value).__name__}"


def safe_metadata(folder: Path) -> Metadata:
    """`.metadata` unpickled as data only and checked field by field; see `MetadataUnpickler`."""
    file = folder / ".metadata"
    return _Checker(file).metadata(read_pickle(file))
