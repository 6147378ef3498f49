"""Models with computed tables and tiny heads, for tests/report/test_architectures.py."""

from __future__ import annotations

import torch
import transformers as tf
from torch import nn


def sinusoidal_distilbert() -> nn.Module:
    return tf.DistilBertModel(
        tf.DistilBertConfig(
            vocab_size=96, dim=32, n_layers=1, n_heads=2, hidden_dim=64,
            max_position_embeddings=64, sinusoidal_pos_embds=True,
        )
    )  # fmt: skip


class Ramp(nn.Module):
    """A table computed by the constructor (a ramp, which passes as uniform), and a drawn one."""

    def __init__(self) -> None:
        super().__init__()
        self.ramp = nn.Parameter(torch.empty(16, 64))
        self.drawn = nn.Parameter(torch.empty(16, 64))
        with torch.no_grad():
            self.ramp.copy_(torch.linspace(-1, 1, 16 * 64).reshape(16, 64))
            self.drawn.uniform_(-1, 1)


class TinyHead(nn.Module):
    """A 3-class head on a wider body: torch's defaults throughout."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(64, 64)
        self.head = nn.Linear(64, 3)


class Copies(nn.Module):
    """Values set by copy_: from a drawn parameter, from a fresh draw, and from a computed table."""

    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Parameter(torch.empty(8, 8))
        self.second = nn.Parameter(torch.empty(8, 8))
        self.noisy = nn.Parameter(torch.empty(8, 8))
        self.table = nn.Parameter(torch.empty(8, 8))
        with torch.no_grad():
            self.first.normal_()
            self.second.copy_(self.first)
            self.noisy.copy_(torch.rand(8, 8).exp())
            self.table.copy_(torch.arange(64.0).reshape(8, 8).sqrt())


class PaddedEmbedding(nn.Module):
    """torch's own N(0, 1) with a zeroed padding row: 10% exact zeros (identified as sparse)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 8, padding_idx=0)
