"""Training data for `compare --train`: two moons, scikit-learn's digits, or the user's own."""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from initcli import memory
from initcli.errors import ArgError, MemoryLimitError, TargetError, first_line
from initcli.experiments.batches import input_seed
from initcli.model import resolve

# The share of the samples held out for validation when the data set comes unsplit.
VAL_FRACTION = 0.2
# --train-batch when none is given: full batch, except where that is slow and overfits. Digits'
# 1,438 training images full batch cost 2.5× the time of 300 minibatch steps of 64 and, over 300
# steps, overfit (He init's validation loss rises again): minibatches of 64 are the tutorials'.
DEFAULT_BATCH = {"digits": 64, "markov": 64}
DIGITS_EXTRA = "--data digits needs scikit-learn: pip install 'initcli[data]'"
# A user Dataset (other than a TensorDataset, whose tensors are read whole) is read item by item
# in Python: ~1-10 µs and a few hundred bytes of tensor objects per item, so 10⁶ items take
# seconds and hundreds of MB; past this, the tensors are to be given as (X, y).
MAX_DATASET_ITEMS = 1_000_000
# On the way in, --data's features and labels are copied about twice (to float32 / int64, then
# the train/validation gather) next to the user's own tensors; those copies may take at most
# memory.REFUSE_SHARE of the free memory.
DATA_COPIES = 2


@dataclass(frozen=True)
class Data:
    """Train and (optional) validation tensors; `classes` is None for regression."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    classes: int | None
    # Next-token prediction: x holds token sequences and the targets are x shifted by one.
    sequence: bool = False
    # The least loss any model can reach on it, where known (a Markov chain's entropy rate).
    floor: float | None = None

    @property
    def task(self) -> str:
        return "regression" if self.classes is None else "classification"


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


def load_data(name: str, seed: int, points: int, noise: float, val_fraction: float | None) -> Data:
    """`--data NAME`: moons (no split unless asked), digits, or pkg.mod:name / file.py:name.

    An unsplit set is split by a permutation seeded by `seed` (the base --seed, fixed across
    --seeds, so every seed sees the same validation samples).
    """
    if val_fraction is not None and not 0 <= val_fraction < 1:
        raise ArgError(f"--val-fraction must be in [0, 1), got {val_fraction:g}")
    if name == "moons":
        x, y = two_moons(points, noise, seed)
        return _split("moons", x, y, seed, val_fraction or 0.0)
    if name == "digits":
        if importlib.util.find_spec("sklearn") is None:
            raise ArgError(DIGITS_EXTRA)
        from sklearn.datasets import load_digits  # type: ignore[import-untyped]

        bunch = load_digits()
        # Pixels are 0..16: scaled to [0, 1], as the tutorials do.
        x = torch.as_tensor(bunch.data, dtype=torch.float32) / 16.0
        y = torch.as_tensor(bunch.target, dtype=torch.long)
        frac = VAL_FRACTION if val_fraction is None else val_fraction
        return _split("digits", x, y, seed, frac)
    if name == "markov":
        return markov(seed, VAL_FRACTION if val_fraction is None else val_fraction)
    return _user(name, seed, VAL_FRACTION if val_fraction is None else val_fraction)


# --data markov: a synthetic language that ships with the code. A fixed random chain over
# MARKOV_VOCAB tokens (its transition rows softmax(MARKOV_SHARPNESS · N(0, 1)) drawn once from
# MARKOV_CHAIN_SEED: the same language on every run), MARKOV_SEQUENCES sequences of MARKOV_LENGTH
# tokens drawn from it with --seed, each starting from the stationary distribution.
MARKOV_VOCAB = 16
MARKOV_LENGTH = 32
MARKOV_SEQUENCES = 640
MARKOV_CHAIN_SEED = 24
MARKOV_SHARPNESS = 2.0


def markov_chain() -> tuple[torch.Tensor, torch.Tensor]:
    """The chain's transition matrix P (rows sum to 1) and its stationary distribution π."""
    gen = torch.Generator().manual_seed(MARKOV_CHAIN_SEED)
    logits = MARKOV_SHARPNESS * torch.randn(
        MARKOV_VOCAB, MARKOV_VOCAB, generator=gen, dtype=torch.float64
    )
    p = torch.softmax(logits, dim=1)
    # π P = π: the left eigenvector of eigenvalue 1 (every entry of P is positive, so it is unique).
    values, vectors = torch.linalg.eig(p.T)
    pi = vectors[:, int(torch.argmin((values - 1).abs()))].real
    return p, pi / pi.sum()


def entropy_rate(p: torch.Tensor, pi: torch.Tensor) -> float:
    """H = −Σᵢ πᵢ Σⱼ Pᵢⱼ ln Pᵢⱼ nats per token: the expected cross-entropy of the best next-token
    prediction (the chain itself), so the floor under any model's loss on the chain."""
    return float(-(pi[:, None] * p * p.log()).sum())


def markov(seed: int, val_fraction: float) -> Data:
    """Sequences of the fixed chain, split into training and validation sequences by `seed`."""
    p, pi = markov_chain()
    gen = torch.Generator().manual_seed(input_seed(seed))
    token = torch.multinomial(pi, MARKOV_SEQUENCES, replacement=True, generator=gen)
    tokens = [token]
    for _ in range(MARKOV_LENGTH - 1):
        token = torch.multinomial(p[token], 1, generator=gen).squeeze(1)
        tokens.append(token)
    x = torch.stack(tokens, dim=1)
    n_val = round(MARKOV_SEQUENCES * val_fraction)
    order = torch.randperm(MARKOV_SEQUENCES, generator=torch.Generator().manual_seed(seed))
    train, val = x[order[n_val:]], x[order[:n_val]]
    has_val = n_val > 0
    return Data(
        "markov",
        train,
        train,
        val if has_val else None,
        val if has_val else None,
        MARKOV_VOCAB,
        sequence=True,
        floor=entropy_rate(p, pi),
    )


def _user(name: str, seed: int, val_fraction: float) -> Data:
    location, attr = resolve._split(name.strip())
    if attr is None:
        raise ArgError(
            f"--data {name}: give moons, digits, pkg.mod:name or file.py:name "
            "(a function returning (X, y), a dict of splits or a Dataset)"
        )
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module = resolve._load_file(location) if is_file else resolve._import_module(location)
    if not hasattr(module, attr):
        raise TargetError(f"'{location}' has no attribute '{attr}' (--data {name})")
    obj = getattr(module, attr)
    if callable(obj) and not isinstance(obj, torch.utils.data.Dataset):
        try:
            with resolve.user_code(name, "run"):
                obj = obj()
        except TargetError:
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise  # a real Ctrl-C or signal (resolve.user_code let it through)
        except BaseException as exc:  # user code may raise any class it made up
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
            x, y = _checked(name, "", x, y)
            return _split(name, x, y, seed, val_fraction)
        xv, yv = _pair(name, val)
        x, y = _checked(name, "training ", x, y, at_least=1)
        xv, yv = _checked(name, "validation ", xv, yv, at_least=1)
        return _make(name, x, y, xv, yv)
    x, y = _pair(name, obj)
    x, y = _checked(name, "", x, y)
    return _split(name, x, y, seed, val_fraction)


def _pair(name: str, obj: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(obj, torch.utils.data.TensorDataset) and len(obj.tensors) >= 2:
        # Its items are rows of these tensors: read them whole, not row by row.
        return _tensor(name, "X", obj.tensors[0]), _tensor(name, "y", obj.tensors[1])
    if isinstance(obj, torch.utils.data.Dataset):
        return _dataset(name, obj)
    if isinstance(obj, tuple | list) and len(obj) == 2:
        return _tensor(name, "X", obj[0]), _tensor(name, "y", obj[1])
    raise TargetError(
        f"--data {name} gave a {type(obj).__name__}; return (X, y) tensors, a dict "
        "{'train': (X, y), 'validation': (X, y)} or a torch.utils.data.Dataset"
    )


def _dataset(name: str, obj: torch.utils.data.Dataset[Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """A map-style Dataset of (x, y) items, stacked; its size is checked on the first item."""
    try:
        n = len(obj)  # type: ignore[arg-type]
        if n > MAX_DATASET_ITEMS:
            raise TargetError(
                f"--data {name}: the Dataset has {n:,} items, more than the {MAX_DATASET_ITEMS:,} "
                "initcli reads one by one; return the tensors as (X, y) instead"
            )
        if n < 1:
            return _tensor(name, "X", torch.empty(0)), _tensor(name, "y", torch.empty(0))
        first = obj[0]
        x0, y0 = _tensor(name, "X", first[0]), _tensor(name, "y", first[1])
        _check_size(name, n, x0.numel(), y0.numel())
        items = [first, *(obj[i] for i in range(1, n))]
        x = torch.stack([torch.as_tensor(item[0]) for item in items])
        y = torch.stack([torch.as_tensor(item[1]) for item in items])
    except (TargetError, MemoryLimitError):
        raise
    except Exception as exc:
        raise TargetError(
            f"--data {name}: reading the Dataset as (x, y) items failed: {first_line(exc)}"
        ) from None
    return _tensor(name, "X", x), _tensor(name, "y", y)


def _tensor(name: str, what: str, value: Any) -> torch.Tensor:
    """`value` as a dense CPU tensor of numbers, without copying it where it already is one."""
    if hasattr(value, "toarray") and not isinstance(value, torch.Tensor):  # scipy.sparse
        raise TargetError(
            f"--data {name}: {what} is a sparse {type(value).__name__}; return a dense array "
            f"({what.lower()}.toarray())"
        )
    kind = getattr(getattr(value, "dtype", None), "kind", None)  # numpy's dtype.kind
    if kind is not None and kind not in "biufc":
        raise TargetError(
            f"--data {name}: {what} is an array of dtype {value.dtype}; give numbers "
            "(a float or integer array or tensor)"
        )
    if isinstance(value, torch.Tensor):
        if value.is_nested:
            raise TargetError(
                f"--data {name}: {what} is a nested tensor; return a dense tensor "
                f"({what.lower()}.to_padded_tensor(0.0))"
            )
        if value.layout != torch.strided:
            layout = str(value.layout).removeprefix("torch.")
            raise TargetError(
                f"--data {name}: {what} is a {layout} tensor; return a dense tensor "
                f"({what.lower()}.to_dense())"
            )
        if value.is_quantized:
            raise TargetError(
                f"--data {name}: {what} is a quantized tensor; return a float tensor "
                f"({what.lower()}.dequantize())"
            )
        if value.device.type != "cpu":
            raise TargetError(
                f"--data {name}: {what} is on device {value.device}; compare trains on the CPU, so "
                f"return CPU tensors ({what.lower()}.cpu())"
            )
        return value.detach()
    try:
        tensor = torch.as_tensor(value)
    except Exception as exc:
        raise TargetError(f"--data {name}: X, y are not tensors: {first_line(exc)}") from None
    return tensor.detach()


def _check_size(name: str, rows: int, x_per_row: int, y_per_row: int) -> None:
    """Refuse, before copying anything, data whose float32/int64 copies cannot fit."""

    # float32 features and int64 labels (or float32 targets), each copied DATA_COPIES times,
    # plus the int64 permutation that splits them.
    nbytes = rows * ((x_per_row * 4 + y_per_row * 8) * DATA_COPIES + 8)
    free = memory.available_bytes(torch.device("cpu"))
    if free is not None and nbytes > memory.REFUSE_SHARE * free:
        raise MemoryLimitError(
            f"--data {name}: {rows:,} samples of {x_per_row:,} values need about "
            f"{memory.human_bytes(nbytes)} once copied for training, more than the "
            f"{memory.human_bytes(free)} free; give a smaller data set"
        )


def _first(mask: torch.Tensor) -> tuple[int, ...] | None:
    """The index of the first True in `mask`, or None (argmax returns the first maximum)."""
    if not bool(mask.any()):
        return None
    flat = int(mask.reshape(-1).to(torch.uint8).argmax())
    return tuple(int(i) for i in torch.unravel_index(torch.tensor(flat), tuple(mask.shape)))


def _at(what: str, index: tuple[int, ...]) -> str:
    return f"{what}[{', '.join(map(str, index))}]"


def _finite(name: str, what: str, given: torch.Tensor, converted: torch.Tensor) -> None:
    """Refuse NaN or ±Inf (also a float64 beyond float32's range) before any training."""
    at = _first(~torch.isfinite(converted))
    if at is None:
        return
    value = float(given[at])
    shown = f"{value:g}, beyond float32's range" if math.isfinite(value) else f"{value}"
    raise TargetError(
        f"--data {name}: {_at(what, at)} is {shown}; the values must be finite "
        "(NaN or Inf trains to nan): fix or drop that sample"
    )


def _checked(
    name: str, split: str, x: torch.Tensor, y: torch.Tensor, at_least: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """X as float32 and y as float32 (regression) or int64 (classes), refused before training
    where they would train to nan or silently lose values."""
    xs, ys = f"{split}X".strip(), f"{split}y".strip()
    for what, t in ((xs, x), (ys, y)):
        if t.dim() == 0:
            raise TargetError(
                f"--data {name}: {what} is a scalar; give one row per sample, X of shape "
                "(N, features) and y of shape (N,)"
            )
    if len(x) != len(y):
        raise TargetError(
            f"--data {name}: {xs} has {len(x)} samples and {ys} {len(y)}; give as many"
        )
    if len(x) < at_least:
        raise TargetError(f"--data {name}: the {split.strip()} split has no samples; give some")
    _check_size(name, len(x), x[0].numel() if len(x) else 0, y[0].numel() if len(y) else 0)
    for what, t in ((xs, x), (ys, y)):
        if t.is_complex():
            at = _first(t.imag != 0)
            where = "" if at is None else f", first nonzero at {_at(what, at)}"
            raise TargetError(
                f"--data {name}: {what} is complex ({str(t.dtype).removeprefix('torch.')}) and "
                f"training would drop its imaginary part{where}; give real values, e.g. "
                "torch.view_as_real(x).flatten(1)"
            )
    x32 = x.float()
    _finite(name, xs, x, x32)
    if y.is_floating_point():
        y32 = y.float()
        _finite(name, ys, y, y32)
        return x32, y32
    labels = y.long()
    at = _first(labels < 0)
    if at is not None:
        raise TargetError(
            f"--data {name}: {_at(ys, at)} is {int(labels[at])}; class labels must be ≥ 0"
        )
    return x32, labels


def _split(name: str, x: torch.Tensor, y: torch.Tensor, seed: int, frac: float) -> Data:
    if len(x) != len(y):
        raise TargetError(f"--data {name}: X has {len(x)} samples and y {len(y)}; give as many")
    if len(x) < 2:
        raise TargetError(f"--data {name}: {len(x)} sample(s); give at least 2")
    n_val = round(len(x) * frac)
    if n_val == 0:
        return _make(name, x, y, None, None)
    if n_val >= len(x):
        raise ArgError(f"--val-fraction {frac:g} leaves no training samples")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return _make(name, x[train], y[train], x[val], y[val])


def _make(
    name: str,
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
        return Data(name, x, y.float(), xv, None if yv is None else yv.float(), None)
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
    return Data(name, x, y, xv, yv, top + 1)
