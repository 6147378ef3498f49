"""A Llama-2-7B-shaped decoder in plain PyTorch: 6,738,415,616 parameters (27 GB in float32).

Per block: attention q, k, v, o 4·4096² = 67,108,864; SwiGLU MLP gate, up, down 3·4096·11008 =
135,266,304; two RMSNorm weights 2·4096 = 8,192; 32 blocks = 6,476,267,520. Embedding and the untied
output head 32000·4096 = 131,072,000 each, final RMSNorm 4,096. The shapes are Llama-2-7B's; rotary
position embeddings are computed on the fly, so the model has no buffers.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional


def _rotate(x: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding over the last dimension of (N, heads, T, head_dim)."""
    half = x.shape[-1] // 2
    freqs = 10000.0 ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = torch.arange(x.shape[-2], device=x.device, dtype=torch.float32)[:, None] * freqs
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = (
            p(x).view(n, t, self.heads, d // self.heads).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        out = functional.scaled_dot_product_attention(_rotate(q), _rotate(k), v, is_causal=True)
        projected: torch.Tensor = self.o_proj(out.transpose(1, 2).reshape(n, t, d))
        return projected


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.down_proj(functional.silu(self.gate_proj(x)) * self.up_proj(x))
        return out


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.input_norm = nn.RMSNorm(dim, eps=1e-5)
        self.attn = Attention(dim, heads)
        self.post_attn_norm = nn.RMSNorm(dim, eps=1e-5)
        self.mlp = SwiGLU(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.input_norm(x))
        out: torch.Tensor = x + self.mlp(self.post_attn_norm(x))
        return out


class Llama(nn.Module):
    """Token ids (N, T) → logits (N, T, vocab). Defaults: Llama-2-7B's shapes."""

    def __init__(
        self,
        vocab: int = 32000,
        dim: int = 4096,
        layers: int = 32,
        heads: int = 32,
        hidden: int = 11008,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, hidden) for _ in range(layers))
        self.norm = nn.RMSNorm(dim, eps=1e-5)
        self.head = nn.Linear(dim, vocab, bias=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for block in self.blocks:
            x = block(x)
        logits: torch.Tensor = self.head(self.norm(x))
        return logits


def llama_params(vocab: int, dim: int, layers: int, hidden: int) -> int:
    """The parameter count by hand (no biases; heads do not change it)."""
    block = 4 * dim * dim + 3 * dim * hidden + 2 * dim
    return 2 * vocab * dim + layers * block + dim
