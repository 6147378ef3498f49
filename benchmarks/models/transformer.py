"""A GPT-2-medium-shaped stack of nn.TransformerEncoderLayer: 405,285,969 parameters (1.6 GB).

d_model 1024, 16 heads, feed-forward 4096, 24 layers, each built on its own (as GPT-style code
does, rather than nn.TransformerEncoder's deep copies of one layer). Per layer: in_proj 3·1024² +
3·1024 = 3,148,800, out_proj 1024² + 1024 = 1,049,600, linear1 1024·4096 + 4096 = 4,198,400,
linear2 4096·1024 + 1024 = 4,195,328, two LayerNorms 4·1024 = 4,096: 12,596,224; 24 layers =
302,309,376. Token embedding 50257·1024 = 51,463,168; untied output head 1024·50257 + 50257 =
51,513,425.
"""

from __future__ import annotations

import torch
from torch import nn


class Encoder405M(nn.Module):
    """Token ids (N, T) → logits (N, T, vocab)."""

    def __init__(
        self, vocab: int = 50257, dim: int = 1024, heads: int = 16, layers: int = 24, ff: int = 4096
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, heads, dim_feedforward=ff, batch_first=True)
            for _ in range(layers)
        )
        self.head = nn.Linear(dim, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        logits: torch.Tensor = self.head(x)
        return logits


def encoder_params(vocab: int, dim: int, layers: int, ff: int) -> int:
    """The parameter count by hand."""
    layer = (3 * dim * dim + 3 * dim) + (dim * dim + dim) + (dim * ff + ff) + (ff * dim + dim)
    return vocab * dim + layers * (layer + 4 * dim) + (dim * vocab + vocab)
