"""4-layer MLPs for width sweeps: `initcli probe ...width_mlp.py:MLP --sweep width=64,128,...`."""

from torch import nn


class MLP(nn.Module):
    """in 16 → width → width → width → 8, ReLU: 9928 parameters at the default width 64."""

    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(16, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, width), nn.ReLU(),
            nn.Linear(width, 8),
        )  # fmt: skip

    def forward(self, x):  # type: ignore[no-untyped-def]
        return self.net(x)


class MisScaled(MLP):
    """The output layer's weights are N(0, 1) whatever the width: its variance is not scaled
    by 1/fan_in, so (under --init default, which keeps the constructor's init) its output std
    grows as √width while every other block stays put."""

    def __init__(self, width: int = 64) -> None:
        super().__init__(width)
        nn.init.normal_(self.net[6].weight, 0.0, 1.0)


class MuPReadout(MLP):
    """muP's readout (Tensor Programs V, table 3): output weights N(0, 1/width²) instead of
    ~1/width, bias 0. At init the logits then shrink as 1/√width, which muP intends (the output
    starts near 0 and its updates, not its init, set its size); hidden blocks are as in MLP."""

    def __init__(self, width: int = 64) -> None:
        super().__init__(width)
        nn.init.normal_(self.net[6].weight, 0.0, 1.0 / width)
        nn.init.zeros_(self.net[6].bias)
