"""GPT-2 of any depth and width from a config (nothing downloaded): its residual-scaled init."""

# GPT-2 draws every weight from normal(0, 0.02), except the projections that write into the
# residual stream (`attn.c_proj`, `mlp.c_proj`): those get 0.02/√(2·n_layer), so that 2·n_layer
# additions leave the stream's variance where one addition of plain normal(0.02) would.
# `initcli probe sample_models/gpt2_residual.py:gpt2 --init default
# --init '*.c_proj.weight=normal:std=0.02'` shows what that scaling is for
# (docs/probe-real-models.md).

import torch
from transformers import GPT2Config, GPT2LMHeadModel


def gpt2(
    n_layer: int = 12, n_embd: int = 128, n_head: int = 4, vocab_size: int = 256
) -> GPT2LMHeadModel:
    """Dropout off, so a probe sees the init alone."""
    config = GPT2Config(
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        vocab_size=vocab_size,
        n_positions=128,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config)


def make_batch(batch_size: int, seed: int) -> dict[str, torch.Tensor]:
    """An `--input` factory: 32 token ids per sample, all attended to, and the ids as labels, so
    GPT-2 returns its own next-token loss."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 256, (batch_size, 32), generator=gen)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}
