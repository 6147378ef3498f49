"""A model with a frozen backbone and a trainable head, for trainable/frozen counts."""

import torch
from torch import nn


class PartlyFrozen(nn.Module):
    """(N, 8) → (N, 2): 90 parameters, 18 trainable (head 8·2+2) and 72 frozen (backbone 8·8+8)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(8, 8)
        self.backbone.requires_grad_(False)
        self.act = nn.ReLU()
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.head(self.act(self.backbone(x)))
        return logits
