"""A tiny language model whose output projection shares (ties) the input embedding's weight."""

import torch
from torch import nn


class TiedLM(nn.Module):
    """Token ids (N, T) → logits (N, T, 1000): 68160 unique parameters.

    embed 1000·64 = 64000 (also used as head.weight), hidden 64·64+64 = 4160. torchinfo 1.8.0
    counts the tied tensor once per module that holds it and reports 132160 (64000 extra).
    """

    def __init__(self, vocab_size: int = 1000, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.hidden = nn.Linear(dim, dim)
        self.act = nn.Tanh()
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.act(self.hidden(self.embed(ids))))
        return logits
