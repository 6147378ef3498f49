"""Write a .safetensors file tensor by tensor: the header first, then each tensor's bytes."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from initcli.errors import OutputError
from initcli.files import atomic_writer

__all__ = ["DTYPES", "Slot", "header_bytes", "write_safetensors", "write_state_dict"]

# torch dtype -> the safetensors dtype name (the names safetensors.torch reads back).
DTYPES: dict[torch.dtype, str] = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint64: "U64", torch.uint32: "U32", torch.uint16: "U16", torch.uint8: "U8",
    torch.bool: "BOOL", torch.complex64: "C64",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fnuz: "F8_E4M3FNUZ", torch.float8_e5m2fnuz: "F8_E5M2FNUZ",
}  # fmt: skip
# The format pads the header with spaces so the data starts 8-byte aligned.
_ALIGN = 8


@dataclass(frozen=True)
class Slot:
    """One tensor as the header announces it, before its values exist."""

    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        numel = 1
        for size in self.shape:
            numel *= size
        return numel * torch.empty((), dtype=self.dtype).element_size()


def header_bytes(slots: Sequence[Slot], metadata: Mapping[str, str] | None = None) -> bytes:
    """The length prefix and JSON header for `slots`, stored in this order, back to back."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    for slot in slots:
        kind = DTYPES.get(slot.dtype)
        if kind is None:
            raise OutputError(
                f"cannot save {slot.name}: safetensors has no {slot.dtype} type that torch reads "
                "back; convert it (e.g. to float32) first"
            )
        if slot.name in header or slot.name == "__metadata__":
            raise OutputError(f"cannot save {slot.name}: the name is used twice")
        end = offset + slot.nbytes
        header[slot.name] = {
            "dtype": kind,
            "shape": list(slot.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % _ALIGN)
    return struct.pack("<Q", len(text)) + text


def write_safetensors(
    path: str | os.PathLike[str],
    slots: Sequence[Slot],
    tensors: Iterable[torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """Write `tensors` (one per slot, in slot order, e.g. a generator) to `path` atomically.

    Only one tensor is held at a time: peak memory is what the caller holds plus the largest
    tensor (a non-contiguous one is copied once). Each tensor must match its slot's dtype and
    shape. The file is what `safetensors.torch.save_file` writes up to tensor order and header
    spacing, and reads back with `safetensors.safe_open`.
    """
    head = header_bytes(slots, metadata)
    with atomic_writer(path, force) as handle:
        handle.write(head)
        count = 0
        for slot, tensor in zip(slots, tensors, strict=False):
            count += 1
            if tensor.dtype != slot.dtype or tuple(tensor.shape) != slot.shape:
                raise OutputError(
                    f"cannot save {slot.name}: announced as {slot.dtype} {list(slot.shape)}, "
                    f"got {tensor.dtype} {list(tensor.shape)}"
                )
            if tensor.numel():
                flat = tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
                handle.write(flat.numpy().data)  # a view of the bytes, not a copy
        if count != len(slots):
            raise OutputError(f"cannot save: {len(slots)} tensors announced, {count} given")
    return Path(path)


def write_state_dict(
    path: str | os.PathLike[str],
    state: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    force: bool = False,
) -> Path:
    """`write_safetensors` for tensors already in memory: nothing is serialized to a second copy
    (what `safetensors.torch.save` does), so the peak is what `state` holds."""
    slots = [Slot(name, t.dtype, tuple(t.shape)) for name, t in state.items()]
    return write_safetensors(path, slots, iter(state.values()), metadata, force)
