"""Factories whose init runs outside torch's layer defaults, for the build-value tests."""

from __future__ import annotations

from torch import nn
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

TINY_BERT = {
    "hidden_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 512,
    "vocab_size": 100,
}


def eager_bert() -> nn.Module:
    return BertModel(BertConfig(**TINY_BERT))


def gpt2() -> nn.Module:
    """An HF model whose init runs in post_init (GPT-2 also rescales every c_proj)."""
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, vocab_size=100))


class Applied(nn.Module):
    """A plain module that draws its own init with self.apply in __init__."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.body = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))
        self.norm = nn.LayerNorm(4)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.01)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.trunc_normal_(module.weight, std=0.02)
