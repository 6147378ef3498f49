"""Deep transformers models with tiny widths (nothing downloaded): tests of grouped tables."""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

ODD_BLOCK = 7  # gpt2_odd's block whose MLP input weight is at 3x the others' scale


def gpt2_24() -> nn.Module:
    """GPT-2 with 24 blocks (GPT-2 medium's depth) at width 32."""
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=24, n_embd=32, n_head=2, vocab_size=64, n_positions=32,
            bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip


def gpt2_odd() -> nn.Module:
    """gpt2_24 with one block's mlp.c_fc.weight scaled by 3 after its init."""
    model = gpt2_24()
    with torch.no_grad():
        model.transformer.h[ODD_BLOCK].mlp.c_fc.weight.mul_(3)
    return model


def llama_80() -> nn.Module:
    """Llama-70B's depth (80 blocks, grouped-query attention) at width 16."""
    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=80,
            num_attention_heads=2, num_key_value_heads=1, vocab_size=64,
            max_position_embeddings=64,
        )
    )  # fmt: skip


def t5_6() -> nn.Module:
    """T5 with 6 encoder and 6 decoder blocks: nested stacks (block.N.layer.M)."""
    return T5ForConditionalGeneration(
        T5Config(d_model=16, d_kv=8, d_ff=32, num_layers=6, num_heads=2, vocab_size=64)
    )


def llama_70b() -> nn.Module:
    """Llama-2-70B's real shape (8192 wide, 64 heads, 8 key-value heads, 28672 MLP, 80 blocks):
    for `count`, which builds it on the meta device (nothing allocated)."""
    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
            num_attention_heads=64, num_key_value_heads=8, vocab_size=32000,
        )
    )  # fmt: skip
