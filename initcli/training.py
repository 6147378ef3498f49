"""Training comparisons: a seeded data set, a fresh copy per scheme, loss after every step."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from initcli.probe import input_seed


@dataclass(frozen=True)
class TrainResult:
    """Full-batch training on two moons: the loss after each of 0..N updates, final accuracy."""

    losses: tuple[float, ...]
    accuracy: float


def two_moons(points: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """sklearn's make_moons, in torch: two interleaved half circles plus N(0, noise²), shuffled."""
    gen = torch.Generator().manual_seed(input_seed(seed))
    outer = points // 2
    inner = points - outer
    t_out = torch.linspace(0, math.pi, outer, dtype=torch.float64)
    t_in = torch.linspace(0, math.pi, inner, dtype=torch.float64)
    x = torch.cat([torch.cos(t_out), 1 - torch.cos(t_in)])
    y = torch.cat([torch.sin(t_out), 1 - torch.sin(t_in) - 0.5])
    data = torch.stack([x, y], dim=1)
    labels = torch.cat([torch.zeros(outer), torch.ones(inner)]).long()
    data = data + noise * torch.randn(data.shape, generator=gen, dtype=torch.float64)
    order = torch.randperm(points, generator=gen)
    return data[order].float(), labels[order]


def train_moons(
    model: nn.Module, steps: int, lr: float, seed: int, points: int, noise: float
) -> TrainResult:
    """Adam, full batch, cross-entropy; seeded, so the same figures come back every run."""
    x, y = two_moons(points, noise, seed)
    with _one_thread():
        return _train(model, x, y, steps, lr, seed)


@contextmanager
def _one_thread() -> Iterator[None]:
    """Two features, a few hundred points: threads cost more than they save (measured ~10× on a
    busy 2-core machine), and one thread gives the same bits on any machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int
) -> TrainResult:
    torch.manual_seed(seed)  # dropout, if the model has any
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    losses: list[float] = []
    for _ in range(steps):
        loss = criterion(model(x), y)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
    with torch.no_grad():
        losses.append(float(criterion(model(x), y)))
        model.eval()
        accuracy = float((model(x).argmax(dim=1) == y).double().mean())
    model.train()
    return TrainResult(tuple(losses), accuracy)
