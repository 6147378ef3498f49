"""Odd models for the meta-build and streaming tests (targeted by file path)."""

import torch
from torch import nn


class NeedsData(nn.Module):
    """A constructor that reads a tensor's value: it cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        width = int(torch.tensor([3, 4]).sum().item())
        self.fc = nn.Linear(width, 2)


class WithScale(nn.Module):
    """A parameter set by the constructor itself, with no reset_parameters to redo it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = nn.Parameter(torch.ones(4))
        self.out = nn.Linear(4, 2)


def full_transformer() -> nn.Module:
    """nn.Transformer: cloned layers, then its own _reset_parameters over everything."""
    return nn.Transformer(
        d_model=16,
        nhead=2,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=32,
        batch_first=True,
    )


def zoo() -> nn.Module:
    """Layer types whose default init differs: padding rows, running stats, RNN, bias_k/v."""
    return nn.Sequential(
        nn.Embedding(10, 4, padding_idx=0),
        nn.BatchNorm1d(4),
        nn.GRU(4, 4),
        nn.Conv1d(4, 4, 3),
        nn.LayerNorm(4),
        nn.MultiheadAttention(4, 2, add_bias_kv=True, kdim=3, vdim=5),
        nn.PReLU(),
    )


def transposed() -> nn.Module:
    """A parameter stored transposed (non-contiguous): streamed with its own layout."""
    model = nn.Linear(6, 3)
    model.weight = nn.Parameter(torch.empty(6, 3).t())
    return model
