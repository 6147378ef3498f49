"""Small models for the probe, auto and defaults tests (targets: tests/probe_models.py:Name)."""

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn


def activations() -> nn.Sequential:
    """One Linear in front of each activation family auto tells apart, and a linear output."""
    return nn.Sequential(
        nn.Linear(4, 8), nn.LeakyReLU(0.2),
        nn.Linear(8, 8), nn.SELU(),
        nn.Linear(8, 8), nn.Sigmoid(),
        nn.Linear(8, 8), nn.GELU(),
        nn.Linear(8, 8), nn.Dropout(0.0), nn.Tanh(),
        nn.Linear(8, 2),
    )  # fmt: skip


def conv_bn() -> nn.Sequential:
    """Conv → BatchNorm → ReLU: the activation is found past the norm layer."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2),
    )  # fmt: skip


def lstm_first() -> nn.Module:
    """An LSTM as the first layer: no input shape can be inferred."""
    return nn.LSTM(4, 8, batch_first=True)


def mismatched() -> nn.Sequential:
    """A forward that fails in the third layer: 5 features go into a Linear that wants 6."""
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(6, 2))


class Functional(nn.Module):
    """ReLU applied as a function: hooks cannot see it."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.fc2(F.relu(self.fc1(x)))
        return out


def wide_output() -> nn.Sequential:
    """Takes 2 features but gives 3 logits: not a two-moons model."""
    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))


def saturating_sigmoid() -> nn.Sequential:
    """Sigmoid layers, 64 wide: saturated under normal:std=1 (|2a−1| > 0.99)."""
    return nn.Sequential(*[m for _ in range(4) for m in (nn.Linear(64, 64), nn.Sigmoid())])
