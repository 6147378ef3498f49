"""LeNet-5 with BatchNorm and its own init: an `initialize_weights` method, `init_weights(m)`."""

import torch
from torch import nn


class LeNet5Init(nn.Module):
    """LeNet-5 on (N, 3, 32, 32) → (N, 10), a BatchNorm2d after each convolution: 62050 parameters.

    `initialize_weights()` is the per-type loop of the classic tutorials: Conv2d xavier_normal_,
    BatchNorm2d weight 1 and bias 0, Linear N(0, 0.01²), every bias 0. The constructor leaves
    torch's defaults: call it (or `initcli inspect ... --init method:initialize_weights`).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.bn1 = nn.BatchNorm2d(6)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.bn1(self.conv1(x))))  # (N, 6, 14, 14)
        x = self.pool(self.relu(self.bn2(self.conv2(x))))  # (N, 16, 5, 5)
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits

    def initialize_weights(self) -> None:
        for m in self.modules():
            init_weights(m)


def init_weights(m: nn.Module) -> None:
    """One module's init, for `model.apply(init_weights)` (`--init fn:...:init_weights`)."""
    if isinstance(m, nn.Conv2d):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)


def init_weights_no_linear(m: nn.Module) -> None:
    """The same loop with the Linear branch forgotten: fc1-fc3 keep torch's default."""
    if isinstance(m, nn.Conv2d):
        nn.init.xavier_normal_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
