"""Normalization layers of any class, recognized by what their forward pass does to an input."""

from __future__ import annotations

import contextlib
import copy
import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import nn

from initcli.model.building import is_uninitialized

_TORCH_NORMS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm,
)  # fmt: skip

# The probe's input: a batch of 2 sequences of 3 vectors (the normalized dimension is last).
_PROBE_ROWS = (2, 3)
# How close the output must be to a normalized input scaled by the gain: float32 arithmetic and
# an eps of up to ~1e-3 against unit-scale inputs stay well inside this.
_RTOL = 2e-3


@dataclass(frozen=True)
class Norm:
    """A normalization layer: which of its parameters is the gain, and the gain's identity value
    (1 where the layer scales by `w`; 0 where it scales by `1 + w`, as Gemma's RMSNorm does)."""

    gain: str
    identity: float
    torch_class: bool

    def start(self, pname: str) -> float:
        """The value a parameter of this layer starts at: the gain's identity, else 0 (a bias)."""
        return self.identity if pname == self.gain else 0.0


def norm_of(module: nn.Module) -> Norm | None:
    """The module as a normalization layer, or None.

    torch's own classes (BatchNorm, LayerNorm, GroupNorm, RMSNorm) are known by class. Any other
    module qualifies by its behaviour, checked on a small real input on a copy of it (so a meta
    module works too, and the global random stream is not touched): its only parameters are one or
    two 1-D tensors of the last dimension's size d (a gain, and maybe a bias), it holds no
    submodule with parameters, and with gain g and bias 0 its output is the input normalized over
    the last dimension (x/rms(x), or (x − mean)/std) times g or times 1 + g.
    """
    if isinstance(module, _TORCH_NORMS):
        return Norm("weight", 1.0, torch_class=True)
    try:
        return _SEEN[module]
    except (KeyError, TypeError):  # not probed yet, or a class that made itself unhashable
        pass
    found = _behaves_as_norm(module)
    lazy = any(is_uninitialized(p) for p in module.parameters(recurse=False))
    with contextlib.suppress(TypeError):
        if not lazy:  # a lazy layer may become a norm once its shape is known
            _SEEN[module] = found
    return found


# Each module probed once per run: choose() asks per parameter, default_expectations per module.
_SEEN: weakref.WeakKeyDictionary[nn.Module, Norm | None] = weakref.WeakKeyDictionary()


def _behaves_as_norm(module: nn.Module) -> Norm | None:
    params = dict(module.named_parameters(recurse=False))
    if any(is_uninitialized(p) for p in params.values()):
        return None  # a lazy layer's shape is not known yet
    if not 1 <= len(params) <= 2 or any(p.dim() != 1 for p in params.values()):
        return None
    sizes = {p.shape[0] for p in params.values()}
    if len(sizes) != 1 or any(True for c in module.children() for _ in c.parameters()):
        return None
    size = sizes.pop()
    if size < 2 or any(p.is_complex() or not p.is_floating_point() for p in params.values()):
        return None
    for gain in params:
        identity = _probe(module, gain, size)
        if identity is not None:
            return Norm(gain, identity, torch_class=False)
    return None


def _probe(module: nn.Module, gain: str, size: int) -> float | None:
    """Run a shallow copy of `module` with parameters of its own, `gain` set to g and any other
    to 0 (buffers zeros): the identity value (1 or 0) when its output is a normalized input
    times g or 1 + g, else None. Nothing else of the module is copied, and the module is left
    as it was; its forward runs without its hooks."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*_PROBE_ROWS, size, generator=gen)
    g = torch.rand(size, generator=gen) + 0.5
    try:
        probe = copy.copy(module)
        probe._parameters = {
            k: nn.Parameter(g.clone() if k == gain else torch.zeros(size))
            for k, p in module._parameters.items()
            if p is not None
        }
        buffers = [(k, b) for k, b in module._buffers.items() if b is not None]
        probe._buffers = {k: torch.zeros(b.shape, dtype=b.dtype) for k, b in buffers}
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = probe.forward(x)  # no hooks: the probe must not look like a call
    except Exception:
        return None  # a forward that needs other inputs is no plain normalization layer
    if not isinstance(out, torch.Tensor) or out.shape != x.shape or not out.is_floating_point():
        return None
    out = out.detach().float()
    rms = x / x.pow(2).mean(-1, keepdim=True).sqrt()
    centred = x - x.mean(-1, keepdim=True)
    standard = centred / centred.pow(2).mean(-1, keepdim=True).sqrt()
    for normalized in (rms, standard):
        for identity, scale in ((1.0, g), (0.0, 1 + g)):
            if torch.allclose(out, normalized * scale, rtol=_RTOL, atol=_RTOL):
                return identity
    return None


def kept_remark(model: nn.Module, target: str) -> str | None:
    """The Note a named scheme gets where `model` holds normalization layers of classes torch does
    not know: they were recognized by their forward pass and left at their starting values."""
    kinds: dict[str, tuple[int, Norm]] = {}
    for module in model.modules():
        norm = norm_of(module)
        if norm is not None and not norm.torch_class:
            name = type(module).__name__
            count = kinds.get(name, (0, norm))[0]
            kinds[name] = (count + 1, norm)
    if not kinds:
        return None
    shown = ", ".join(
        f"{count} {name} layer{'s' if count != 1 else ''} (gain {norm.identity:g}"
        + (", applied as 1 + w)" if norm.identity == 0.0 else ")")
        for name, (count, norm) in kinds.items()
    )
    return (
        f"{shown} in {target} normalize their input over the last dimension (checked on a small "
        "input), so the scheme left them as their constructors set them, at the identity, as it "
        "leaves torch's norm layers; a policy rule naming them sets them"
    )
