"""Training data for `compare --train`: two moons, scikit-learn's digits, or the user's own."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from initcli import loading
from initcli.errors import ArgError, TargetError, first_line

BUILTIN = ("moons", "digits")
# The share of the samples held out for validation when the data set comes unsplit.
VAL_FRACTION = 0.2
# --train-batch when none is given: full batch, except where that is slow and overfits. Digits'
# 1,438 training images full batch cost 2.5× the time of 300 minibatch steps of 64 and, over 300
# steps, overfit (He init's validation loss rises again): minibatches of 64 are the tutorials'.
DEFAULT_BATCH = {"digits": 64}
DIGITS_EXTRA = "--data digits needs scikit-learn: pip install 'initcli[data]'"


@dataclass(frozen=True)
class Data:
    """Train and (optional) validation tensors; `classes` is None for regression."""

    name: str
    description: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    classes: int | None

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"


def load(name: str, seed: int, points: int, noise: float, val_fraction: float | None) -> Data:
    """`--data NAME`: moons (no split unless asked), digits, or pkg.mod:name / file.py:name.

    An unsplit set is split by a permutation seeded by `seed` (the base --seed, fixed across
    --seeds, so every seed sees the same validation samples).
    """
    if val_fraction is not None and not 0 <= val_fraction < 1:
        raise ArgError(f"--val-fraction must be in [0, 1), got {val_fraction:g}")
    if name == "moons":
        from initcli.training import two_moons

        x, y = two_moons(points, noise, seed)
        desc = f"two moons ({points} points, noise {noise:g})"
        return _split("moons", desc, x, y, seed, val_fraction or 0.0)
    if name == "digits":
        if importlib.util.find_spec("sklearn") is None:
            raise ArgError(DIGITS_EXTRA)
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]

        bunch = load_digits()
        # Pixels are 0..16: scaled to [0, 1], as the tutorials do.
        x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        desc = "scikit-learn digits (1,797 8×8 images, 10 classes)"
        frac = VAL_FRACTION if val_fraction is None else val_fraction
        return _split("digits", desc, x, y, seed, frac)
    return _user(name, seed, VAL_FRACTION if val_fraction is None else val_fraction)


def _user(name: str, seed: int, val_fraction: float) -> Data:
    location, attr = loading._split(name.strip())
    if attr is None:
        raise ArgError(
            f"--data {name}: give moons, digits, pkg.mod:name or file.py:name "
            "(a function returning (X, y), a dict of splits or a Dataset)"
        )
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module = loading._load_file(location) if is_file else loading._import_module(location)
    if not hasattr(module, attr):
        raise TargetError(f"'{location}' has no attribute '{attr}' (--data {name})")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, torch.utils.data.Dataset):
        try:
            with loading.user_code(name, "run"):
                obj = obj()
        except TargetError:
            raise
        except Exception as exc:
            raise TargetError(f"calling --data {name} failed: {first_line(exc)}") from None
    if isinstance(obj, Mapping):
        train = next((obj[k] for k in ("train",) if k in obj), None)
        val = next((obj[k] for k in ("validation", "val", "valid") if k in obj), None)
        if train is None:
            raise TargetError(
                f"--data {name} returned a dict without a 'train' key (keys: "
                f"{', '.join(map(str, obj))}); give {{'train': (X, y), 'validation': (X, y)}}"
            )
        x, y = _pair(name, train)
        if val is None:
            return _split(name, name, x, y, seed, val_fraction)
        xv, yv = _pair(name, val)
        return _make(name, f"{name} (given train/validation splits)", x, y, xv, yv)
    x, y = _pair(name, obj)
    return _split(name, name, x, y, seed, val_fraction)


def _pair(name: str, obj: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(obj, torch.utils.data.Dataset):
        try:
            items = [obj[i] for i in range(len(obj))]  # type: ignore[arg-type]
            x = torch.stack([torch.as_tensor(item[0]) for item in items])
            y = torch.stack([torch.as_tensor(item[1]) for item in items])
        except Exception as exc:
            raise TargetError(
                f"--data {name}: reading the Dataset as (x, y) items failed: {first_line(exc)}"
            ) from None
        return x, y
    if isinstance(obj, tuple | list) and len(obj) == 2:
        try:
            return torch.as_tensor(obj[0]), torch.as_tensor(obj[1])
        except Exception as exc:
            raise TargetError(f"--data {name}: X, y are not tensors: {first_line(exc)}") from None
    raise TargetError(
        f"--data {name} gave a {type(obj).__name__}; return (X, y) tensors, a dict "
        "{'train': (X, y), 'validation': (X, y)} or a torch.utils.data.Dataset"
    )


def _split(name: str, desc: str, x: torch.Tensor, y: torch.Tensor, seed: int, frac: float) -> Data:
    if len(x) != len(y):
        raise TargetError(f"--data {name}: X has {len(x)} samples and y {len(y)}; give as many")
    if len(x) < 2:
        raise TargetError(f"--data {name}: {len(x)} sample(s); give at least 2")
    n_val = round(len(x) * frac)
    if n_val == 0:
        return _make(name, desc, x, y, None, None)
    if n_val >= len(x):
        raise ArgError(f"--val-fraction {frac:g} leaves no training samples")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    desc = f"{desc}, {len(train)} train / {n_val} validation (split seed {seed})"
    return _make(name, desc, x[train], y[train], x[val], y[val])


def _make(
    name: str,
    desc: str,
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor | None,
    yv: torch.Tensor | None,
) -> Data:
    for xs, ys in ((x, y), (xv, yv)):
        if xs is not None and ys is not None and len(xs) != len(ys):
            raise TargetError(
                f"--data {name}: X has {len(xs)} samples and y {len(ys)}; give as many"
            )
    floating = y.is_floating_point() or (yv is not None and yv.is_floating_point())
    x = x.float()
    xv = None if xv is None else xv.float()
    if floating:
        return Data(name, desc, x, y.float(), xv, None if yv is None else yv.float(), None)
    if y.dim() != 1:
        raise TargetError(
            f"--data {name}: integer labels must be one per sample, shape (N,); "
            f"got {tuple(y.shape)}"
        )
    y = y.long()
    yv = None if yv is None else yv.long()
    top = int(y.max()) if yv is None else max(int(y.max()), int(yv.max()))
    low = int(y.min()) if yv is None else min(int(y.min()), int(yv.min()))
    if low < 0:
        raise TargetError(f"--data {name}: class labels must be ≥ 0, got {low}")
    return Data(name, desc, x, y, xv, yv, top + 1)
