"""A tiny 2-layer Transformer encoder over byte-sized token ids, with a linear head."""

import torch
from torch import nn


class TinyTransformer(nn.Module):
    """Token ids (N, T) → logits (N, T, 256): 33792 parameters.

    embed 256·32 = 8192; per encoder layer 8544 = self_attn (in_proj 3·32·32+3·32 = 3168,
    out_proj 32·32+32 = 1056) + linear1 32·64+64 = 2112 + linear2 64·32+32 = 2080
    + norm1, norm2 2·32 each = 128; 2 layers = 17088; norm 64; head 32·256+256 = 8448.
    """

    def __init__(
        self, vocab_size: int = 256, d_model: int = 32, nhead: int = 4, num_layers: int = 2
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model=d_model, nhead=nhead, dim_feedforward=2 * d_model, batch_first=True
        )
        # enable_nested_tensor=False: the nested-tensor fast path is irrelevant here and
        # only emits a warning.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=num_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.norm(self.encoder(self.embed(ids))))
        return logits
