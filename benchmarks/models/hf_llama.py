"""A Llama-shaped transformers model from its config (TinyLlama's shape: 1.1B parameters)."""

from __future__ import annotations

from torch import nn


def llama_1b() -> nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
            num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
        )
    )  # fmt: skip
