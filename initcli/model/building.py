"""Build models without memory (meta device, no draws); pick the device; size a real build."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer, UninitializedParameter
from torch.overrides import TorchFunctionMode

from initcli.errors import DeviceError
from initcli.model import record
from initcli.model.resolve import ModelSource

# The in-place fills an init draws with. On the meta device they compute nothing, but the first
# normal_ there pays a one-time import of torch's decompositions (measured with torch 2.13: ~1.5 s
# idle, more than the whole meta build of a 7B model), so `_MetaFills` answers them itself.
_RANDOM_FILLS = frozenset(
    getattr(torch.Tensor, name)
    for name in (
        "normal_", "uniform_", "random_", "bernoulli_", "exponential_", "cauchy_",
        "log_normal_", "geometric_", "erfinv_",
    )
)  # fmt: skip


class _MetaFills(TorchFunctionMode):
    """Answers in-place random fills of meta tensors with the tensor itself, while active.

    A function mode is thread-local and lives only inside the `with`: nothing global is replaced,
    so a library imported during the build keeps torch's real init functions (replacing
    `torch.nn.init.*` leaked no-ops into every later build of transformers models). Whatever an
    init computes on meta is empty anyway; real tensors pass through untouched. With a `trace`,
    every write and draw is recorded there, in order (record.Trace: what initcli.values.replay
    replays
    and initcli.init.recorded reads a tensor's last init from).
    """

    def __init__(self, trace: record.Trace | None = None) -> None:
        super().__init__()
        self.trace = trace

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Iterable[type],
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        fill = func in _RANDOM_FILLS or (
            # torch.nn.init's fills hand themselves to the mode before touching the tensor.
            getattr(func, "__module__", None) == "torch.nn.init"
            and getattr(func, "__name__", "").endswith("_")
        )
        kwargs = kwargs or {}
        if self.trace is not None:
            self.trace.see(func, args, kwargs)
        # nn.init passes its tensor by keyword, Tensor methods positionally.
        tensor = args[0] if args else kwargs.get("tensor")
        if fill and isinstance(tensor, torch.Tensor) and tensor.is_meta:
            return tensor
        result = func(*args, **kwargs)
        if self.trace is not None:
            self.trace.made(func, args, kwargs, result)
        return result


@contextlib.contextmanager
def on_meta(trace: record.Trace | None = None) -> Iterator[None]:
    """Construct on the meta device with random fills answered empty (see `_MetaFills`); with a
    `trace`, record every write and draw in order."""
    with torch.device("meta"), _MetaFills(trace):
        yield


@contextlib.contextmanager
def recording(trace: record.Trace) -> Iterator[None]:
    """Run init code on an already meta-built model: fills answered empty and recorded in `trace`
    (transformers' post_init skips `_init_weights` while the meta device is the default, so a
    folder's model is built with on_meta and its model-level init run again under this)."""
    with _MetaFills(trace):
        yield


def build_meta(source: ModelSource, quiet: bool = False) -> nn.Module:
    """Run the constructor on the meta device: shapes, no data, nothing patched.

    Raises whatever the constructor raises there (e.g. `.item()` on a meta tensor). `quiet`
    silences the constructor's warnings, for when a real build that repeats them may follow.
    """
    trace = record.Trace()
    with on_meta(trace=trace), warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        model = source.build()
    # What streaming a default init replays (initcli.values.replay): kept beside the model.
    record.remember(model, trace)
    return model


def fallback_note(target: str, reason: str) -> str:
    return f"{target} was built for real, in memory, not on the meta device: {reason}"


def needs_values(model: nn.Module) -> str | None:
    """Why counting this meta model needs real values, or None: pruning masks are data."""
    for prefix, module in model.named_modules():
        for pname, _param in module.named_parameters(recurse=False):
            mask = pruning_mask(module, pname)
            if mask is not None and mask.device.type == "meta":
                full = f"{prefix}.{pname}" if prefix else pname
                return f"the pruning mask of {full} depends on the weights' values"
    return None


def pruning_mask(module: nn.Module, pname: str) -> torch.Tensor | None:
    """The mask torchinfo applies to `pname` (`weight_orig` → `weight_mask`), or None.

    torch.nn.utils.prune registers it as a buffer; torchinfo takes any attribute of that name,
    so a mask registered as a Parameter (as its own test-suite does) counts as well.
    """
    if not pname.endswith("_orig"):
        return None
    mask = getattr(module, pname.removesuffix("_orig") + "_mask", None)
    return mask if isinstance(mask, torch.Tensor) else None


def unique_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) with a shape, each tensor once (as named_parameters() dedupes)."""
    return [(n, p) for n, p in model.named_parameters() if not is_uninitialized(p)]


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, each tensor once (what a real build allocates)."""
    seen: dict[int, torch.Tensor] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if not is_uninitialized(tensor):
            seen.setdefault(id(tensor), tensor)
    return sum(t.numel() * t.element_size() for t in seen.values())


def is_uninitialized(tensor: torch.Tensor) -> bool:
    """A lazy module's parameter or buffer before its first forward pass: no shape or values yet."""
    return isinstance(tensor, UninitializedParameter | UninitializedBuffer)


def resolve_device(text: str) -> torch.device:
    """`--device` as a torch.device that exists here, or a DeviceError saying what to use."""
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise DeviceError(f"--device {text!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch is a CPU-only build"
                if torch.version.cuda is None
                else "no CUDA GPU is visible"
            )
            raise DeviceError(f"--device {text}: CUDA is not available ({why}); use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"--device {text}: there are {count} CUDA device(s), numbered from 0; "
                "use e.g. --device cuda:0"
            )
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError(f"--device {text}: MPS is not available here; use --device cpu")
        return device
    raise DeviceError(f"--device {text}: initcli measures on cpu, cuda or mps only")
