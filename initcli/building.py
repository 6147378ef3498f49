"""Build models without memory (meta device, init skipped); pick the device; size a real build."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import nn

from initcli import memory
from initcli.errors import DeviceError
from initcli.loading import ModelSource

# Every torch.nn.init function a constructor may call (the deprecated spellings too: they hold
# their own reference to the original function). On the meta device they would compute nothing,
# but the first random fill on meta costs ~1.5 s of one-time decomposition imports, more than the
# whole build of a 7B model; skipping them keeps `count` at the cost of importing torch.
_INIT_FUNCTIONS = (
    "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_", "dirac_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
    "sparse_", "uniform", "normal", "constant", "eye", "dirac", "xavier_uniform", "xavier_normal",
    "kaiming_uniform", "kaiming_normal", "orthogonal", "sparse",
)  # fmt: skip

# A real build is only attempted when the model takes at most this share of the memory that is
# free right now: the rest is for torch itself, the statistics and whatever else runs.
MEMORY_SHARE = 0.5
# A single tensor larger than this share of the free memory is refused up front.
REFUSE_SHARE = 0.8


def _keep(tensor: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
    return tensor


@contextlib.contextmanager
def skip_init() -> Iterator[None]:
    """Make every torch.nn.init function a no-op that returns its tensor (as transformers'
    `no_init_weights` does), restoring them on exit."""
    saved = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS if hasattr(nn.init, name)}
    try:
        for name in saved:
            setattr(nn.init, name, _keep)
        yield
    finally:
        for name, function in saved.items():
            setattr(nn.init, name, function)


def build_meta(source: ModelSource, quiet: bool = False) -> nn.Module:
    """Run the constructor on the meta device with init calls skipped: shapes, no data.

    Raises whatever the constructor raises there (e.g. `.item()` on a meta tensor). `quiet`
    silences the constructor's warnings, for when a real build that repeats them may follow.
    """
    with torch.device("meta"), skip_init(), warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        return source.build()


def fallback_note(target: str, reason: str) -> str:
    return f"{target} was built for real, in memory, not on the meta device: {reason}"


def needs_values(model: nn.Module) -> str | None:
    """Why counting this meta model needs real values, or None: pruning masks are data."""
    for prefix, module in model.named_modules():
        buffers = dict(module.named_buffers(recurse=False))
        for pname, _param in module.named_parameters(recurse=False):
            mask = buffers.get(pname.removesuffix("_orig") + "_mask")
            if pname.endswith("_orig") and mask is not None and mask.device.type == "meta":
                full = f"{prefix}.{pname}" if prefix else pname
                return f"the pruning mask of {full} depends on the weights' values"
    return None


def unique_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) with a shape, each tensor once (as named_parameters() dedupes)."""
    from initcli.schemes import is_uninitialized

    return [(n, p) for n, p in model.named_parameters() if not is_uninitialized(p)]


def tensor_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer, each tensor once (what a real build allocates)."""
    from initcli.schemes import is_uninitialized

    seen: dict[int, torch.Tensor] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        if not is_uninitialized(tensor):
            seen.setdefault(id(tensor), tensor)
    return sum(t.numel() * t.element_size() for t in seen.values())


def available_bytes(device: torch.device) -> int | None:
    """Memory free for new tensors on `device` now (None where unknown)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    # Free RAM, the cgroup limit and RLIMIT_AS: whichever runs out first.
    return memory.available_cpu_bytes()


def fits(nbytes: int, device: torch.device) -> bool:
    free = available_bytes(device)
    return free is None or nbytes <= MEMORY_SHARE * free


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover - loop always returns


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
