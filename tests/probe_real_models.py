"""Small transformers models for tests/experiments/test_probe_real.py (nothing downloaded)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    ResNetConfig,
    ResNetForImageClassification,
    T5Config,
    T5ForConditionalGeneration,
    T5Model,
    ViTConfig,
    ViTForImageClassification,
)

VOCAB = 64


def gpt2(n_layer: int = 3, n_embd: int = 32) -> nn.Module:
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=n_layer, n_embd=n_embd, n_head=2, vocab_size=VOCAB, n_positions=64,
            bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip


def bert() -> nn.Module:
    return BertForSequenceClassification(
        BertConfig(
            hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            vocab_size=VOCAB, max_position_embeddings=64, num_labels=3,
        )
    )  # fmt: skip


def t5() -> nn.Module:
    return T5ForConditionalGeneration(
        T5Config(
            d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
            vocab_size=VOCAB, decoder_start_token_id=0,
        )
    )  # fmt: skip


def t5_bare() -> nn.Module:
    """No LM head, so no labels: the decoder is given the input ids, the loss is mean(output²)."""
    return T5Model(
        T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=2, vocab_size=VOCAB)
    )


def llama() -> nn.Module:
    return LlamaForCausalLM(
        LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=64,
        )
    )  # fmt: skip


def vit() -> nn.Module:
    return ViTForImageClassification(
        ViTConfig(
            hidden_size=32, num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
            image_size=16, patch_size=4, num_channels=3, num_labels=5,
        )
    )  # fmt: skip


def resnet() -> nn.Module:
    return ResNetForImageClassification(
        ResNetConfig(
            num_channels=3, embedding_size=8, hidden_sizes=[8, 16, 16], depths=[1, 1, 1],
            layer_type="basic", num_labels=4,
        )
    )  # fmt: skip


def make_batch(batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """A batch factory for gpt2: ids of length 8 and an attention mask; labels are the ids."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (batch_size, 8), generator=gen)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def ids_only(batch_size: int) -> torch.Tensor:
    """A bare tensor, passed positionally."""
    return torch.zeros(batch_size, 8, dtype=torch.long)


def not_a_batch() -> str:
    return "tokens"


class Pairs(nn.Module):
    """A forward with two required tensors: no batch can be built for it."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.a(x) + y
        return out


class DictOut(nn.Module):
    """Returns a dict of non-tensors: nothing to take a loss of."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        return {"ids": self.a(x).argmax(-1), "note": "none"}


def tiny_gpt2() -> nn.Module:
    """For compare --train --data markov: the chain's 16 tokens, 32 per sequence."""
    return GPT2LMHeadModel(
        GPT2Config(
            n_layer=2, n_embd=32, n_head=2, vocab_size=16, n_positions=32,
            bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip


def digits_vit() -> nn.Module:
    """For compare --train --data digits: 1×8×8 images in 2×2 patches, 10 classes."""
    return ViTForImageClassification(
        ViTConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            image_size=8, patch_size=2, num_channels=1, num_labels=10,
        )
    )  # fmt: skip


def whisper() -> nn.Module:
    """Speech: input_features of num_mel_bins × 2·max_source_positions frames."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    return WhisperForConditionalGeneration(
        WhisperConfig(
            d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, num_mel_bins=16,
            max_source_positions=16, max_target_positions=16, vocab_size=64,
            decoder_start_token_id=0, pad_token_id=0, bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip
