"""Hostile `--data` factories for tests/init/test_usercode.py: each is refused before training."""

import sys
import warnings

import numpy as np
import torch


def _x(n: int = 20) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(0))


def _y(n: int = 20) -> torch.Tensor:
    return (torch.arange(n) % 2).long()


def nan_features() -> tuple[torch.Tensor, torch.Tensor]:
    x = _x()
    x[7, 1] = float("nan")
    return x, _y()


def inf_features() -> tuple[torch.Tensor, torch.Tensor]:
    x = _x()
    x[3, 0] = float("-inf")
    return x, _y()


def complex_features() -> tuple[torch.Tensor, torch.Tensor]:
    return _x().to(torch.complex64) * 1j, _y()


def nan_val_features() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    xv = _x(10)
    xv[4, 0] = float("nan")
    return {"train": (_x(), _y()), "validation": (xv, _y(10))}


def nan_labels() -> tuple[torch.Tensor, torch.Tensor]:
    y = _y().double()
    y[5] = float("nan")
    return _x(), y


def inf_regression() -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.zeros(20)
    y[9] = float("inf")
    return _x(), y


def negative_labels() -> tuple[torch.Tensor, torch.Tensor]:
    y = _y()
    y[2] = -1
    return _x(), y


def huge_label() -> tuple[torch.Tensor, torch.Tensor]:
    y = _y()
    y[0] = 10**12
    return _x(), y


def bool_labels() -> tuple[torch.Tensor, torch.Tensor]:
    return _x(), _y().bool()


def length_mismatch() -> tuple[torch.Tensor, torch.Tensor]:
    return _x(20), _y(19)


def val_length_mismatch() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"train": (_x(), _y()), "validation": (_x(10), _y(9))}


def sparse_features() -> tuple[torch.Tensor, torch.Tensor]:
    return _x().to_sparse(), _y()


def sparse_labels() -> tuple[torch.Tensor, torch.Tensor]:
    return _x(), _y().to_sparse()


def numpy_nan() -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(20, 2))
    x[11, 1] = np.nan
    return x, np.arange(20) % 2


def numpy_ok() -> tuple[np.ndarray, np.ndarray]:
    return np.random.default_rng(0).normal(size=(20, 2)), np.arange(20) % 2


def object_array() -> tuple[np.ndarray, np.ndarray]:
    x = np.empty((20, 2), dtype=object)
    x[:] = "a"
    return x, np.arange(20) % 2


def string_features() -> tuple[list[str], list[int]]:
    return ["a"] * 20, [0] * 20


def zero_rows() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty(0, 2), torch.empty(0, dtype=torch.long)


def scalar_features() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(1.0), torch.tensor(0)


def zero_width() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty(20, 0), _y()


def huge_lazy() -> tuple[torch.Tensor, torch.Tensor]:
    # 10⁹ × 1,000 float32 (4 TB) through expand: a view, nothing allocated until copied.
    return torch.zeros(1, 1000).expand(10**9, 1000), torch.zeros(1, dtype=torch.long).expand(10**9)


def meta_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.empty(20, 2, device="meta"), torch.empty(20, dtype=torch.long, device="meta")


def raises_system_exit() -> None:
    sys.exit(3)


def raises_keyboard_interrupt() -> None:
    raise KeyboardInterrupt


def raises_base_exception() -> None:
    raise BaseException("weird")


def returns_none() -> None:
    return None


def triple() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _x(), _y(), _y()


def quantized() -> tuple[torch.Tensor, torch.Tensor]:
    with warnings.catch_warnings():  # torch deprecates its quantized tensors
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(_x(), 0.1, 0, torch.qint8), _y()


def nested_tensor() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)], layout=torch.jagged), _y(2)


class _Huge(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A map-style Dataset that claims 10⁹ items (each made on demand)."""

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(2), torch.tensor(i % 2)


class _BigItems(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """1,000 items of 10⁹ values each, as views of one zero: nothing is allocated per item."""

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.zeros(1).expand(10**9), torch.tensor(i % 2)


def huge_dataset() -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    return _Huge()


def big_items() -> torch.utils.data.Dataset:  # type: ignore[type-arg]
    return _BigItems()


def float64_overflow() -> tuple[np.ndarray, np.ndarray]:
    x = np.zeros((20, 2))
    x[6, 1] = 1e300
    return x, np.arange(20) % 2


def complex_real_only() -> tuple[torch.Tensor, torch.Tensor]:
    x = _x().to(torch.complex64)
    x[2, 1] += 0.5j
    return x, _y()


def empty_validation() -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {"train": (_x(), _y()), "validation": (torch.empty(0, 2), torch.empty(0).long())}


def wide_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """200,000 samples of 2 features: small (1.6 MB), but a full-batch pass through a model with
    10⁵-unit layers needs 80 GB of activations."""
    return torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0)), _y(200_000)
