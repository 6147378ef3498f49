"""Small models for the --data tests: 3 features in, 1 output (regression) or 2 logits."""

from torch import nn


def regressor() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))


def classifier() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
