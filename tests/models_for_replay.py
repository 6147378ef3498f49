"""Models whose values come from more than their layers' reset methods (streamed replay tests)."""

from __future__ import annotations

import torch
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel


class ApplyInit(nn.Module):
    """The tutorials' pattern: `self.apply(self._init)` at the end of the constructor."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=0)
        self.fc1 = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.fc2 = nn.Linear(32, 4)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_normal_(m.weight)
            m.bias.data.zero_()
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.01)


class RandnParam(nn.Module):
    """A parameter made out of place from a draw: its values cannot be replayed, but the draw
    is, so the layer after it is still exact."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.randn(8, 8) * 0.5)
        self.fc = nn.Linear(8, 8)


class CopiesWeights(nn.Module):
    """A constructor that copies one layer's weights into another: a read of other values."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8)
        self.b = nn.Linear(8, 8)
        with torch.no_grad():
            self.b.weight.copy_(self.a.weight)


class ReadingGPT2(GPT2LMHeadModel):
    """An `_init_weights` that reads values (`.item()`): it cannot run on the meta device. (It
    runs on the head only: the inner GPT2Model's post_init applies GPT2Model's own.)"""

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, nn.Linear):
            peak = module.weight.abs().max().item()
            with torch.no_grad():
                module.weight.div_(peak)


def reading_gpt2() -> nn.Module:
    return ReadingGPT2(
        GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=50, bos_token_id=0, eos_token_id=0)
    )


class ShortcutInits(nn.Module):
    """Inits that torch.nn.init ends at once on meta (trunc_normal_, orthogonal_, sparse_), then
    a layer whose draw comes after theirs."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(16, 16)
        self.b = nn.Linear(16, 16)
        self.c = nn.Linear(16, 16)
        nn.init.trunc_normal_(self.a.weight, std=0.02)
        nn.init.orthogonal_(self.b.weight)
        nn.init.sparse_(self.c.weight, sparsity=0.5)
        self.d = nn.Linear(16, 4)
