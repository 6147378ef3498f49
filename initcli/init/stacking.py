"""Weights that stack one linear map per expert (MoE experts): their slices and their fans."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Stack", "stack_of"]


@dataclass(frozen=True)
class Stack:
    """A 3-D weight [slices, a, b] whose forward pass applies one slice at a time as a linear map.

    `transposed`: a slice is stored in×out (x @ w, GPT-OSS) rather than out×in (F.linear, Mixtral);
    `parts`: matrices fused along a slice's output (gate and up in one gate_up_proj: 2).
    """

    slices: int
    transposed: bool
    parts: int

    def views(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Each slice as an out×in view of `tensor`, the layout torch.nn.init reads fans from."""
        return [tensor[i].T if self.transposed else tensor[i] for i in range(self.slices)]

    def forward_fans(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """(fan_in, fan_out) of one slice in the forward pass: its inputs, one matrix's outputs."""
        rows, cols = shape[1], shape[2]
        out, inputs = (cols, rows) if self.transposed else (rows, cols)
        return inputs, out // self.parts

    def layout(self, kind: str) -> str:
        """Why torch's fans of the whole tensor mislead, for fans' remarks."""
        order = "in×out" if self.transposed else "out×in"
        fused = "; each slice fuses gate and up (2 matrices)" if self.parts == 2 else ""
        return f"{kind} stacks {self.slices} experts' {order} matrices in one weight{fused}"


def stack_of(module: nn.Module, pname: str, param: torch.Tensor) -> Stack | None:
    """The stacking of `module`'s parameter `pname`, or None where it is no stack of experts.

    Known by transformers' experts modules' attributes (read, never imported): `num_experts`
    slices along dim 0 of a 3-D parameter, `is_transposed` (default False), `has_gate` with a
    fused gate_up weight. A 3-D weight of another grouped GEMM is not recognized.
    """
    experts = getattr(module, "num_experts", None)
    if not isinstance(experts, int) or isinstance(experts, bool) or experts < 1:
        return None
    if param.dim() != 3 or param.shape[0] != experts or isinstance(module, nn.modules.conv._ConvNd):
        return None
    transposed = getattr(module, "is_transposed", False) is True
    fused = "gate_up" in pname and getattr(module, "has_gate", True) is not False
    return Stack(experts, transposed, 2 if fused else 1)
