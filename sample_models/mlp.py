"""The tutorial's 4-5-3-2 MLP, plus an `mlp()` factory for trying `--arg` (depth, width, act)."""

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """4-5-3-2 MLP with ReLU: 51 parameters (fc1 4×5+5=25, fc2 5×3+3=18, fc3 3×2+2=8)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 3)
        self.fc3 = nn.Linear(3, 2)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        out: torch.Tensor = self.fc3(x)
        return out


def mlp(depth: int = 2, width: int = 5, act: str = "relu") -> nn.Sequential:
    """Return `depth` Linear+act layers of `width` units on 4 input features, then Linear(width, 2).

    Parameters: (4·w + w) + (depth - 1)·(w·w + w) + (2·w + 2): 67 with the defaults,
    202 for depth=3, width=8.
    """
    if depth < 1:
        raise ValueError(f"depth must be an int >= 1, got {depth!r}")
    if width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    if act not in _ACTIVATIONS:
        raise ValueError(f"act must be one of {', '.join(_ACTIVATIONS)}, got {act!r}")
    layers: list[nn.Module] = []
    in_features = 4
    for _ in range(depth):
        layers += [nn.Linear(in_features, width), _ACTIVATIONS[act]()]
        in_features = width
    layers.append(nn.Linear(width, 2))
    return nn.Sequential(*layers)
