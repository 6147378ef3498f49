"""A small CNN with BatchNorm (bias-free convolutions) for 3×32×32 images."""

import torch
from torch import nn


class SmallCNN(nn.Module):
    """(N, 3, 32, 32) → (N, 10) logits: 5466 parameters and 98 buffer elements.

    conv1 16·3·3·3 = 432, bn1 2·16 = 32, conv2 32·16·3·3 = 4608, bn2 2·32 = 64, fc 32·10+10 = 330.
    Buffers: bn1 16+16+1 = 33 and bn2 32+32+1 = 65 (running_mean, running_var, num_batches_tracked).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(self.pool(x), 1)
        logits: torch.Tensor = self.fc(x)
        return logits
