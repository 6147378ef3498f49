"""Twenty-five transformers architectures from small configs (nothing downloaded), by name."""

from __future__ import annotations

from collections.abc import Callable

import transformers as tf
from torch import nn

# Shared sizes: tiny but every code path of each model's init runs.
_TEXT = {
    "vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64,
}  # fmt: skip
_DECODER = {**_TEXT, "num_key_value_heads": 1, "bos_token_id": 0, "eos_token_id": 0}
_VISION = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
    "image_size": 32, "patch_size": 8,
}  # fmt: skip


def gpt2() -> nn.Module:
    return tf.GPT2LMHeadModel(
        tf.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=96, bos_token_id=0, eos_token_id=0)
    )


def bert() -> nn.Module:
    return tf.BertForSequenceClassification(tf.BertConfig(**_TEXT, num_labels=3))


def roberta() -> nn.Module:
    return tf.RobertaForMaskedLM(tf.RobertaConfig(**_TEXT))


def distilbert() -> nn.Module:
    return tf.DistilBertModel(
        tf.DistilBertConfig(vocab_size=96, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    )


def albert() -> nn.Module:
    return tf.AlbertModel(tf.AlbertConfig(**_TEXT, embedding_size=16))


def electra() -> nn.Module:
    return tf.ElectraForPreTraining(tf.ElectraConfig(**_TEXT, embedding_size=16))


def t5() -> nn.Module:
    return tf.T5ForConditionalGeneration(
        tf.T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, vocab_size=96)
    )


def bart() -> nn.Module:
    return tf.BartForConditionalGeneration(
        tf.BartConfig(
            vocab_size=96, d_model=32, encoder_layers=2, decoder_layers=2,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
            decoder_ffn_dim=64, max_position_embeddings=64,
        )
    )  # fmt: skip


def llama() -> nn.Module:
    return tf.LlamaForCausalLM(tf.LlamaConfig(**_DECODER))


def mistral() -> nn.Module:
    return tf.MistralForCausalLM(tf.MistralConfig(**_DECODER))


def mixtral() -> nn.Module:
    return tf.MixtralForCausalLM(tf.MixtralConfig(**_DECODER, num_local_experts=4))


def gemma() -> nn.Module:
    return tf.GemmaForCausalLM(tf.GemmaConfig(**_DECODER, head_dim=16))


def qwen2() -> nn.Module:
    return tf.Qwen2ForCausalLM(tf.Qwen2Config(**_DECODER))


def phi() -> nn.Module:
    return tf.PhiForCausalLM(tf.PhiConfig(**_DECODER))


def opt() -> nn.Module:
    return tf.OPTForCausalLM(
        tf.OPTConfig(
            vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            ffn_dim=64, max_position_embeddings=64, word_embed_proj_dim=32,
        )
    )  # fmt: skip


def gpt_neo() -> nn.Module:
    return tf.GPTNeoForCausalLM(
        tf.GPTNeoConfig(
            vocab_size=96, hidden_size=32, num_layers=2, num_heads=2,
            attention_types=[[["global", "local"], 1]], max_position_embeddings=64,
            bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip


def falcon() -> nn.Module:
    return tf.FalconForCausalLM(
        tf.FalconConfig(vocab_size=96, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    )


def vit() -> nn.Module:
    return tf.ViTForImageClassification(tf.ViTConfig(**_VISION, num_labels=3))


def swin() -> nn.Module:
    return tf.SwinModel(
        tf.SwinConfig(
            image_size=32, patch_size=4, embed_dim=16, depths=[1, 1], num_heads=[2, 2],
            window_size=4,
        )
    )  # fmt: skip


def convnext() -> nn.Module:
    return tf.ConvNextForImageClassification(
        tf.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=3)
    )


def resnet() -> nn.Module:
    return tf.ResNetModel(tf.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1]))


def whisper() -> nn.Module:
    return tf.WhisperForConditionalGeneration(
        tf.WhisperConfig(
            vocab_size=96, d_model=32, encoder_layers=1, decoder_layers=1,
            encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=64,
            decoder_ffn_dim=64, num_mel_bins=8, max_source_positions=16,
            max_target_positions=16, decoder_start_token_id=0, pad_token_id=0,
            bos_token_id=0, eos_token_id=0,
        )
    )  # fmt: skip


def wav2vec2() -> nn.Module:
    return tf.Wav2Vec2Model(
        tf.Wav2Vec2Config(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16, 16), conv_stride=(5, 2), conv_kernel=(10, 3),
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2,
        )
    )  # fmt: skip


def mamba() -> nn.Module:
    return tf.MambaForCausalLM(
        tf.MambaConfig(vocab_size=96, hidden_size=32, state_size=8, num_hidden_layers=2)
    )


def clip() -> nn.Module:
    text = {**_TEXT, "bos_token_id": 0, "eos_token_id": 1}
    return tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=_VISION, projection_dim=16))


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    f.__name__: f
    for f in (
        gpt2, bert, roberta, distilbert, albert, electra, t5, bart, llama, mistral, mixtral,
        gemma, qwen2, phi, opt, gpt_neo, falcon, vit, swin, convnext, resnet, whisper,
        wav2vec2, mamba, clip,
    )
}  # fmt: skip
