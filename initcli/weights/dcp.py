"""torch.distributed.checkpoint folders: `.metadata` read as data only; values read in groups."""

from __future__ import annotations

import dataclasses
import os
import stat
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

import torch

from initcli.errors import CheckpointError, first_line
from initcli.files import require_regular
from initcli.weights.dcp_metadata import safe_metadata
from initcli.weights.dcp_unpickler import invalid, shown_name

if TYPE_CHECKING:
    from torch.distributed.checkpoint.metadata import (
        Metadata,
    )

__all__ = [
    "GROUP_BYTES",
    "DcpFolder",
    "is_dcp",
    "read_metadata",
    "read_tensors",
]

# Tensors are loaded a group at a time (one dcp.load per group): fewer passes over the metadata
# than one by one, and never more than about this many bytes held at once (a bigger tensor alone).
GROUP_BYTES = 256 * 2**20


@dataclass(frozen=True)
class DcpFolder:
    """A DCP checkpoint's global tensors (meta: shape and dtype) and what is not a tensor."""

    path: Path
    tensors: Mapping[str, torch.Tensor]
    skipped: tuple[str, ...]  # non-tensor entries (bytes: pickled Python objects, never loaded)
    # The checked metadata handed to dcp.load, so torch never unpickles `.metadata` itself.
    metadata: Metadata


def is_dcp(folder: Path) -> bool:
    """Whether a folder is a torch.distributed.checkpoint (it has a `.metadata` file)."""
    meta = folder / ".metadata"
    return meta.exists() and not meta.is_dir()  # a FIFO too: read_metadata then names it


def _storage_file(folder: Path, rel: str) -> Path:
    """The file a storage entry names, which must lie inside the folder: checked on the names and
    on where they resolve (symlinks followed) before anything about the file is looked at."""
    meta = folder / ".metadata"
    shown = shown_name(rel)
    pure = PurePosixPath(rel)
    if (
        not rel
        or "\x00" in rel
        or "\\" in rel
        or pure.is_absolute()
        or PureWindowsPath(rel).drive
        or ".." in pure.parts
    ):
        raise CheckpointError(
            f"{meta} names storage file {shown}, which is not a plain name inside {folder}; "
            "initcli reads only files inside the checkpoint folder"
        )
    root = folder.resolve()
    file = (folder / rel).resolve()
    if file == root or not file.is_relative_to(root):
        raise CheckpointError(
            f"{meta} names storage file {shown}, which resolves outside {folder}; "
            "initcli reads only files inside the checkpoint folder"
        )
    return folder / rel


def read_metadata(folder: Path) -> DcpFolder:
    """The global size and dtype of every tensor, from `.metadata` alone; each data file the
    metadata points into must be inside the folder, exist and be long enough (a truncated shard
    fails here). `.metadata` never runs code: see `_MetadataUnpickler`."""
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    meta = safe_metadata(folder)
    tensors: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for fqn, item in meta.state_dict_metadata.items():
        if isinstance(item, TensorStorageMetadata):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # quantized and complex32 are "experimental"
                    tensors[fqn] = torch.empty(
                        item.size, dtype=item.properties.dtype, device="meta"
                    )
            except Exception as exc:
                raise invalid(
                    folder / ".metadata", f"{shown_name(fqn)}: {first_line(exc)}"
                ) from None
        else:
            skipped.append(fqn)
    # The largest end read in each file, whatever order the entries come in.
    ends: dict[str, int] = {}
    for info in meta.storage_data.values():
        end = info.offset + info.length
        ends[info.relative_path] = max(ends.get(info.relative_path, 0), end)
    for rel in ends:
        _storage_file(folder, rel)  # every name checked before any file is looked at
    for rel, end in ends.items():
        file = folder / rel
        try:
            st = os.stat(file)
        except FileNotFoundError:
            raise CheckpointError(
                f"{folder / '.metadata'} points into {rel}, which is missing"
            ) from None
        except OSError as exc:
            raise CheckpointError(f"{file} cannot be read ({first_line(exc)})") from None
        require_regular(file)  # a FIFO, socket or device: named as such
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(f"{file} is not a regular file; a DCP shard is one")
        if st.st_size < end:
            raise CheckpointError(
                f"{file} is truncated: the metadata reads up to byte {end:,} of it, and it has "
                f"{st.st_size:,}"
            )
    return DcpFolder(folder, tensors, tuple(skipped), meta)


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


class _ShardError(Exception):
    """A storage file torch could not read, by name."""

    def __init__(self, file: str, cause: BaseException) -> None:
        super().__init__(file, cause)
        self.file = file
        self.cause = cause


def _reader(path: Path, metadata: Metadata) -> Any:
    """A FileSystemReader that hands torch the checked metadata (never unpickling `.metadata`)
    and reads one storage file at a time, so a failure names its file."""
    from torch.distributed.checkpoint.filesystem import FileSystemReader
    from torch.distributed.checkpoint.metadata import StorageMeta

    class Reader(FileSystemReader):
        def read_metadata(self, *args: Any, **kwargs: Any) -> Metadata:
            return dataclasses.replace(metadata, storage_meta=StorageMeta(load_id=self.load_id))

        def read_data(self, plan: Any, planner: Any) -> Any:
            by_file: dict[str, list[Any]] = {}
            for item in plan.items:
                by_file.setdefault(self.storage_data[item.storage_index].relative_path, []).append(
                    item
                )
            future = None
            for rel, items in by_file.items():
                try:
                    future = super().read_data(dataclasses.replace(plan, items=items), planner)
                except Exception as exc:
                    raise _ShardError(rel, exc) from exc
            return future if future is not None else super().read_data(plan, planner)

    return Reader(str(path))


def _planner() -> Any:
    """torch's default planner, except that a bytes entry is never deserialized: initcli asks for
    tensors only, and torch would `torch.load(weights_only=False)` one."""
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner

    class TensorsOnly(DefaultLoadPlanner):
        def load_bytes(self, read_item: Any, value: Any) -> None:
            raise CheckpointError("a non-tensor entry was about to be unpickled; refused")

    return TensorsOnly()


def _load(folder: DcpFolder, names: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.state_dict_loader import load

    state = {n: torch.empty_like(folder.tensors[n], device="cpu") for n in names}
    try:
        with warnings.catch_warnings():
            # "assuming the intent is to load in a single process": that is the intent.
            warnings.simplefilter("ignore")
            load(
                state,
                storage_reader=_reader(folder.path, folder.metadata),
                planner=_planner(),
                no_dist=True,
            )
    except CheckpointException as exc:
        # torch wraps every failure, Ctrl-C included, in a BaseException: unwrap it.
        causes = [failure[0] for failure in exc.failures.values()]
        for cause in causes:
            if isinstance(cause, (KeyboardInterrupt, SystemExit)):
                raise cause from None
        raise _unreadable(folder.path, causes[0] if causes else exc) from None
    except Exception as exc:
        raise _unreadable(folder.path, exc) from None
    for name in names:
        yield name, state.pop(name)


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    if isinstance(exc, CheckpointError):
        return exc
    if isinstance(exc, _ShardError):
        return CheckpointError(
            f"{path / exc.file} could not be read ({first_line(exc.cause)[:200]}); the shard "
            "is corrupt or was not written by torch.distributed.checkpoint"
        )
    return CheckpointError(
        f"{path} could not be read ({first_line(exc)[:200]}); a shard may be corrupt"
    )
