"""Small transformers models (built from configs) for the naming and per-slice fan tests."""

from __future__ import annotations

from torch import nn
from transformers import (
    CLIPConfig,
    CLIPModel,
    MixtralConfig,
    MixtralForCausalLM,
    ResNetConfig,
    ResNetModel,
    T5Config,
    T5ForConditionalGeneration,
    Wav2Vec2Config,
    Wav2Vec2Model,
)


def resnet() -> nn.Module:
    # 16 convs, all kaiming_normal(fan_out, relu); the stem's fans (147, 784) put xavier_normal
    # 9% below it in std, 1×1 convs with fan_out = 2·fan_in tie it with kaiming(fan_in, linear).
    return ResNetModel(
        ResNetConfig(
            embedding_size=16, hidden_sizes=[16, 32, 64, 128], depths=[1, 1, 1, 1],
            layer_type="bottleneck",
        )
    )  # fmt: skip


def _t5(factor: float) -> nn.Module:
    # Sizes chosen so that no two of T5's formulas (or a round std) share a value.
    config = T5Config(
        d_model=80, d_kv=12, d_ff=200, num_layers=3, num_heads=3, vocab_size=100,
        initializer_factor=factor,
    )  # fmt: skip
    return T5ForConditionalGeneration(config)


def t5() -> nn.Module:
    return _t5(1.0)


def t5_factor() -> nn.Module:
    return _t5(0.5)


def clip() -> nn.Module:
    # Sizes chosen so that no two of CLIP's formulas (or a round std) share a value; CLIP's
    # modules read initializer_factor from their own sub-config.
    sub = {"hidden_size": 40, "intermediate_size": 72, "num_hidden_layers": 3,
           "num_attention_heads": 5, "initializer_factor": 0.6, "projection_dim": 28}  # fmt: skip
    return CLIPModel(
        CLIPConfig(
            text_config={**sub, "vocab_size": 100, "bos_token_id": 0, "eos_token_id": 1},
            vision_config={**sub, "image_size": 32, "patch_size": 8},
            projection_dim=28,
            initializer_factor=0.6,
        )
    )


def wav2vec2() -> nn.Module:
    return Wav2Vec2Model(
        Wav2Vec2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
        )
    )  # fmt: skip


def mixtral() -> nn.Module:
    # The issue's sizes: experts' torch fan_in 65,536 (gate_up) and 32,768 (down).
    return MixtralForCausalLM(
        MixtralConfig(
            hidden_size=128, intermediate_size=256, num_hidden_layers=1, num_attention_heads=4,
            num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2, vocab_size=100,
        )
    )  # fmt: skip
