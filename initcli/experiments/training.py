"""Training comparisons: a seeded data set, a fresh copy per scheme, loss after every step."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from initcli import memory
from initcli.errors import ProbeError, first_line
from initcli.experiments.batches import main_input, read_output
from initcli.experiments.data import Data, two_moons
from initcli.experiments.probe import one_thread

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainResult:
    """The training loss before each of 0..N-1 updates and after the last (full training set),
    accuracy (validation set if there is one, else training set; None for regression) and the
    validation loss (None without a validation split)."""

    losses: tuple[float, ...]
    accuracy: float | None
    val_loss: float | None = None


@dataclass(frozen=True)
class Schedule:
    """How to train: update count, optimizer, learning rate, minibatch size (None: full batch)."""

    steps: int
    lr: float
    optimizer: str = "adam"
    batch: int | None = None


def train_moons(
    model: nn.Module, steps: int, lr: float, seed: int, points: int, noise: float
) -> TrainResult:
    """Adam, full batch, cross-entropy; seeded, so the same figures come back every run."""
    x, y = two_moons(points, noise, seed)
    with one_thread(), memory.out_of_memory_is_an_error(f"training on {points:,} two-moons points"):
        return _train(model, x, y, None, None, Schedule(steps, lr), seed, classify=True)


def fit(model: nn.Module, data: Data, how: Schedule, seed: int) -> TrainResult:
    """Train `model` on `data` (seeded minibatch order); one thread, so the same bits every run."""
    # A full batch of many samples holds every layer's activations for them at once.
    doing = f"training on --data {data.name} ({len(data.x_train):,} samples per pass)"
    with one_thread(), memory.out_of_memory_is_an_error(doing):
        return _train(
            model,
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            how,
            seed,
            classify=data.classes is not None,
            sequence=data.sequence,
        )


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's output tensor on x, fed as the model takes it: a transformers model gets x as
    its main input (flat square images such as digits' 64 pixels as 1×8×8 pixel values, repeated
    over its channels), and its logits (or first float tensor) are read out of what it returns."""
    key = main_input(model)
    if key == "pixel_values" and x.dim() == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1]:
            channels = int(getattr(getattr(model, "config", None), "num_channels", 1))
            x = x.view(len(x), 1, side, side).expand(len(x), channels, side, side)
    out = read_output(model(**{key: x}) if key is not None else model(x))
    if out.tensor is None:
        raise ProbeError(
            f"--train needs the model's output to hold float logits; it gave {out.which}"
        )
    logits: torch.Tensor = out.tensor
    return logits


def check_shapes(model: nn.Module, data: Data) -> None:
    """One forward pass on 2 training samples: the model must take X's per-sample shape and
    give one logit per class (classification) or y's per-sample shape (regression)."""
    x = data.x_train[:2]
    per_sample = "×".join(map(str, x.shape[1:])) or "a scalar"
    model.eval()
    try:
        with torch.no_grad():
            out = predict(model, x)
    except ProbeError:
        raise
    except Exception as exc:
        raise ProbeError(
            f"--data {data.name} gives inputs of shape {per_sample} per sample, and the model "
            f"cannot take them (on 2 samples, shape {tuple(x.shape)}: {first_line(exc)})"
        ) from None
    finally:
        model.train()
    if data.sequence and data.classes is not None:
        want: tuple[int, ...] = (*x.shape, data.classes)
        what = f"{data.classes} next-token logits per position"
    elif data.classes is not None:
        want = (2, data.classes)
        what = f"{data.classes} logits per sample (one per class)"
    else:
        want = (2, *(data.y_train.shape[1:] or (1,)))
        what = f"outputs of shape {'×'.join(map(str, want[1:]))} per sample (y's shape)"
    if tuple(out.shape) != want:
        raise ProbeError(
            f"--data {data.name} needs the model to give {what}, i.e. {want} on 2 samples; "
            f"it gave {tuple(out.shape)}"
        )


def _batches(n: int, size: int | None, steps: int, seed: int) -> Iterator[torch.Tensor | None]:
    """Indices of each step's minibatch: a fresh seeded permutation per epoch; None: all."""
    if size is None or size >= n:
        for _ in range(steps):
            yield None
        return
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen)
    at = 0
    for _ in range(steps):
        if at + size > n:  # the epoch's remainder is dropped: every batch has `size` samples
            order, at = torch.randperm(n, generator=gen), 0
        yield order[at : at + size]
        at += size


def _train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor | None,
    yv: torch.Tensor | None,
    how: Schedule,
    seed: int,
    classify: bool,
    sequence: bool = False,
) -> TrainResult:
    torch.manual_seed(seed)  # dropout, if the model has any
    model.train()
    optimizer: torch.optim.Optimizer = (
        torch.optim.Adam(model.parameters(), lr=how.lr)
        if how.optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=how.lr)
    )
    criterion: nn.Module = nn.CrossEntropyLoss() if classify else nn.MSELoss()
    if not classify and y.dim() == 1:
        y = y[:, None]
        yv = None if yv is None else yv[:, None]
    losses: list[float] = []
    for index in _batches(len(x), how.batch, how.steps, seed):
        xb, yb = (x, y) if index is None else (x[index], y[index])
        loss = _loss(criterion, predict(model, xb), yb, sequence)
        losses.append(float(loss.detach()))
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
    with torch.no_grad():
        losses.append(float(_loss(criterion, predict(model, x), y, sequence)))
        model.eval()
        ex, ey = (x, y) if xv is None or yv is None else (xv, yv)
        out = predict(model, ex)
        if sequence:  # next-token accuracy: position t predicts token t + 1
            out, ey = out[:, :-1].transpose(1, 2), ey[:, 1:]
        accuracy = float((out.argmax(dim=1) == ey).double().mean()) if classify else None
        val_loss = None if xv is None else float(_loss(criterion, out, ey, False))
    model.train()
    return TrainResult(tuple(losses), accuracy, val_loss)


def _loss(criterion: nn.Module, out: torch.Tensor, y: torch.Tensor, sequence: bool) -> torch.Tensor:
    """The criterion on (output, y); for sequences on each position's logits against the next
    token (cross-entropy takes the classes on dim 1)."""
    if sequence:
        out, y = out[:, :-1].transpose(1, 2), y[:, 1:]
    loss: torch.Tensor = criterion(out, y)
    return loss
