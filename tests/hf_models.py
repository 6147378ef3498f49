"""Small transformers models built from configs (nothing downloaded) for test_real_models.py."""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    T5Config,
    T5ForConditionalGeneration,
)

N_LAYER = 3  # GPT-2's c_proj std is then 0.02/√6 ≈ 0.0082: no round constant is near it


def gpt2() -> nn.Module:
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=N_LAYER, n_embd=64, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0
        )
    )


def bert() -> nn.Module:
    return BertModel(
        BertConfig(
            hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, vocab_size=100,
        )
    )  # fmt: skip


def t5() -> nn.Module:
    return T5ForConditionalGeneration(
        T5Config(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, vocab_size=100)
    )


def llama() -> nn.Module:
    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
        )
    )  # fmt: skip


class GatedGPT2(GPT2LMHeadModel):
    """GPT-2 with one extra parameter its init never touches: left as torch.empty memory."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.gate = nn.Parameter(torch.empty(64, 64))
        with torch.no_grad():
            # What torch.empty can hold: the bytes of whatever was there, here random bits.
            bits = torch.randint(-(2**31), 2**31 - 1, (64, 64), dtype=torch.int32)
            self.gate.copy_(bits.view(torch.float32))


def gated_gpt2() -> nn.Module:
    return GatedGPT2(
        GPT2Config(
            n_layer=N_LAYER, n_embd=64, n_head=2, vocab_size=100, bos_token_id=0, eos_token_id=0
        )
    )


def wide_llama() -> nn.Module:
    """Tensors above report.measuring.INLINE_ELEMENTS: measured in a worker thread while the
    next ones are drawn."""
    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=320, intermediate_size=640, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, vocab_size=256,
        )
    )  # fmt: skip


def vit() -> nn.Module:
    """ViT: its _init_weights draws trunc_normal_ into cls_token and position_embeddings."""
    from transformers import ViTConfig, ViTModel

    return ViTModel(
        ViTConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            image_size=32, patch_size=8,
        )
    )  # fmt: skip


def clip() -> nn.Module:
    """CLIP: two nested PreTrainedModels, and logit_scale made by torch.tensor(2.6592)."""
    from transformers import CLIPConfig, CLIPModel

    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 100,
        "bos_token_id": 0,
        "eos_token_id": 1,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 8,
    }
    return CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
