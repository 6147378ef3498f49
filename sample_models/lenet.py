"""LeNet-5 for 3×32×32 images (CIFAR-sized), with ReLU and max-pooling."""

import torch
from torch import nn


class LeNet5(nn.Module):
    """LeNet-5 on (N, 3, 32, 32) → (N, 10) logits: 62006 parameters.

    conv1 6·3·5·5+6 = 456, conv2 16·6·5·5+16 = 2416, fc1 400·120+120 = 48120,
    fc2 120·84+84 = 10164, fc3 84·10+10 = 850.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.relu(self.conv1(x)))  # (N, 6, 14, 14)
        x = self.pool(self.relu(self.conv2(x)))  # (N, 16, 5, 5)
        x = torch.flatten(x, 1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        logits: torch.Tensor = self.fc3(x)
        return logits
