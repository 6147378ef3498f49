"""User data functions for `compare --data tests/data_fns.py:NAME` (tests/experiments/)."""

import torch
from torch.utils.data import TensorDataset


def _features(n: int) -> torch.Tensor:
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(7))


def regression() -> tuple[torch.Tensor, torch.Tensor]:
    """y = a linear function of 3 features plus a little noise: float y, so MSE."""
    x = _features(200)
    return x, x @ torch.tensor([1.0, -2.0, 0.5]) + 0.01 * x[:, 0] ** 2


def classification() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Two given splits; the label is the sign of the first feature (integer y)."""
    x = _features(200)
    y = (x[:, 0] > 0).long()
    return {"train": (x[:150], y[:150]), "validation": (x[150:], y[150:])}


def dataset() -> TensorDataset:
    x = _features(100)
    return TensorDataset(x, (x[:, 1] > 0).long())
