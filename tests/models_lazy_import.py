"""The issue's lazybert.py: transformers first imported inside the factory, nowhere else."""

from __future__ import annotations

from torch import nn


def tiny() -> nn.Module:
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=512,
        vocab_size=100,
    )
    return BertModel(config)
