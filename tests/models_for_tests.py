"""Small odd models that the tests target by file path (not samples: they exist to break things)."""

import torch
from torch import nn


class ScaledLinear(nn.Module):
    """A Linear whose constructor multiplies the default weights by 1.5 (variance × 2.25)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(256, 256)
        with torch.no_grad():
            self.fc.weight.mul_(1.5)


class NeedsArgs(nn.Module):
    """A class whose constructor needs arguments."""

    def __init__(self, width: int, depth: int, act: str = "relu") -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])


class Raises(nn.Module):
    """A constructor that fails."""

    def __init__(self) -> None:
        super().__init__()
        raise RuntimeError("CUDA is required for this model\nsecond line")


def not_a_module() -> int:
    """A factory returning something else."""
    return 3


def lazy() -> nn.Module:
    """A lazy model: its first layer has no shape until a forward pass."""
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 2))


def lazy_norm() -> nn.Module:
    """A lazy BatchNorm: its running_mean and running_var are buffers with no shape yet."""
    return nn.Sequential(nn.Linear(3, 4), nn.LazyBatchNorm1d())


def pruned() -> nn.Module:
    """A Linear with 40% of its weights pruned by magnitude."""
    from torch.nn.utils import prune

    model = nn.Sequential(nn.Linear(10, 5))
    prune.l1_unstructured(model[0], "weight", amount=0.4)
    return model


def empty() -> nn.Module:
    """No parameters at all."""
    return nn.Sequential(nn.ReLU())


def shared() -> nn.Module:
    """The same Linear used twice: one module under two names."""
    layer = nn.Linear(3, 3)
    return nn.Sequential(layer, nn.ReLU(), layer)


INSTANCE = nn.Linear(2, 2)
NUMBER = 42


class Odd(nn.Module):
    """Every odd parameter at once: 0-d, half/bfloat16/double, complex, zero-element, containers,
    an integer buffer and NaN/Inf weights."""

    def __init__(self) -> None:
        super().__init__()
        self.scalar = nn.Parameter(torch.tensor(0.5))
        self.half = nn.Linear(8, 4).half()
        self.bf = nn.Linear(8, 4).to(torch.bfloat16)
        self.dbl = nn.Linear(8, 4).double()
        self.cplx = nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))
        self.empty = nn.Parameter(torch.empty(0, 5))
        self.plist = nn.ParameterList(
            [nn.Parameter(torch.ones(3)), nn.Parameter(torch.randn(2, 2))]
        )
        self.pdict = nn.ParameterDict({"a": nn.Parameter(torch.randn(3, 3))})
        self.register_buffer("steps", torch.zeros(3, dtype=torch.int64))
        self.nanw = nn.Linear(3, 3)
        with torch.no_grad():
            self.nanw.weight[0, 0] = float("nan")
            self.nanw.weight[1, 1] = float("inf")


def lazy_conv() -> nn.Module:
    """A lazy convolution: needs a (C, H, W) sample, so --input-shape 7 cannot work."""
    return nn.Sequential(nn.LazyConv2d(4, 3), nn.ReLU())


def raising_init(m: nn.Module) -> None:
    """An init function that fails: `--init fn:` must say so in one line."""
    raise ValueError("boom")


class SharedModule(nn.Module):
    """One Linear (or, with `container`, a Sequential holding it) registered under `parents`
    parents: a, b, c, ... (issue 12, item 5)."""

    def __init__(self, parents: int = 2, container: bool = False) -> None:
        super().__init__()
        shared: nn.Module = nn.Linear(32, 32)
        if container:
            shared = nn.Sequential(shared, nn.Tanh())
        for i in range(parents):
            self.add_module("abcdefgh"[i], nn.Sequential(shared, nn.ReLU()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for parent in self.children():
            x = parent(x)
        return x


class MaskParameter(nn.Module):
    """A pruning mask registered as a Parameter (torchinfo's own test-suite does): torchinfo sums
    it, which a meta tensor cannot do."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.fc.weight_orig = nn.Parameter(torch.ones(4, 4))
        mask = torch.ones(4, 4)
        mask[0] = 0
        self.fc.weight_mask = nn.Parameter(mask)


class FanLayouts(nn.Module):
    """Weights whose layout misleads torch's fans (issue 12, item 7)."""

    def __init__(self) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(8, 8, 3, groups=8)
        self.grouped = nn.Conv2d(8, 16, 3, groups=4)
        self.up = nn.ConvTranspose2d(8, 4, 3, groups=2)
        self.lstm = nn.LSTM(12, 16)
        self.gru = nn.GRU(12, 16)
        self.rnn = nn.RNN(12, 16)
        self.fc = nn.Linear(16, 4)
