"""torch.distributed.checkpoint folders: sizes from `.metadata`, values loaded in bounded groups."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from initcli.errors import CheckpointError, first_line
from initcli.files import require_regular

__all__ = ["GROUP_BYTES", "DcpFolder", "is_dcp", "read_metadata", "read_tensors"]

# Tensors are loaded a group at a time (one dcp.load per group): fewer passes over the metadata
# than one by one, and never more than about this many bytes held at once (a bigger tensor alone).
GROUP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class DcpFolder:
    """A DCP checkpoint's global tensors (meta: shape and dtype) and what is not a tensor."""

    path: Path
    tensors: Mapping[str, torch.Tensor]
    skipped: tuple[str, ...]  # non-tensor entries (bytes: pickled Python objects, never loaded)


def is_dcp(folder: Path) -> bool:
    """Whether a folder is a torch.distributed.checkpoint (it has a `.metadata` file)."""
    meta = folder / ".metadata"
    return meta.exists() and not meta.is_dir()  # a FIFO too: read_metadata then names it


def read_metadata(folder: Path) -> DcpFolder:
    """The global size and dtype of every tensor, from `.metadata` alone; each data file the
    metadata points into must exist and be long enough (a truncated shard fails here)."""
    from torch.distributed.checkpoint.filesystem import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    require_regular(folder / ".metadata")  # FileSystemReader opens it itself
    try:
        meta = FileSystemReader(str(folder)).read_metadata()
    except Exception as exc:  # a pickle torch's reader refuses, a truncated file: all unreadable
        raise CheckpointError(
            f"{folder / '.metadata'} is not a readable DCP metadata file ({first_line(exc)})"
        ) from None
    tensors: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for fqn, item in meta.state_dict_metadata.items():
        if isinstance(item, TensorStorageMetadata):
            tensors[fqn] = torch.empty(item.size, dtype=item.properties.dtype, device="meta")
        else:
            skipped.append(fqn)
    ends: dict[str, int] = {}
    for info in (meta.storage_data or {}).values():
        end = int(info.offset) + int(info.length)
        ends[info.relative_path] = max(ends.get(info.relative_path, 0), end)
    for rel, end in ends.items():
        file = folder / rel
        require_regular(file)
        if not file.is_file():
            raise CheckpointError(f"{folder / '.metadata'} points into {rel}, which is missing")
        if file.stat().st_size < end:
            raise CheckpointError(
                f"{file} is truncated: the metadata reads up to byte {end:,} of it, and it has "
                f"{file.stat().st_size:,}"
            )
    return DcpFolder(folder, tensors, tuple(skipped))


def read_tensors(
    folder: DcpFolder, names: Sequence[str], group_bytes: int = GROUP_BYTES
) -> Iterator[tuple[str, torch.Tensor]]:
    """The named global tensors' values, loaded in groups of about `group_bytes`, without a
    process group (`dcp.load(..., no_dist=True)`)."""
    group: list[str] = []
    size = 0
    for name in names:
        t = folder.tensors[name]
        group.append(name)
        size += t.numel() * t.element_size()
        if size >= group_bytes:
            yield from _load(folder, group)
            group, size = [], 0
    if group:
        yield from _load(folder, group)


def _load(folder: DcpFolder, names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    from torch.distributed.checkpoint.filesystem import FileSystemReader
    from torch.distributed.checkpoint.state_dict_loader import load

    state = {n: torch.empty_like(folder.tensors[n], device="cpu") for n in names}
    try:
        with warnings.catch_warnings():
            # "assuming the intent is to load in a single process": that is the intent.
            warnings.simplefilter("ignore")
            load(state, storage_reader=FileSystemReader(str(folder.path)), no_dist=True)
    except Exception as exc:
        raise CheckpointError(
            f"{folder.path} could not be read ({first_line(exc)}); a shard may be corrupt"
        ) from None
    for name in names:
        yield name, state.pop(name)
