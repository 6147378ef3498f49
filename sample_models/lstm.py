"""A token classifier: embedding, 2-layer LSTM, linear head on the last time step."""

import torch
from torch import nn


class LSTMClassifier(nn.Module):
    """Token ids (N, T) → (N, 5) logits: 74693 parameters.

    embed 500·32 = 16000; LSTM layer l has 4H·in + 4H·H + 8H: layer 0 8192+16384+512 = 25088,
    layer 1 16384+16384+512 = 33280; fc 64·5+5 = 325.
    """

    def __init__(
        self, vocab_size: int = 500, dim: int = 32, hidden: int = 64, num_classes: int = 5
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.lstm = nn.LSTM(dim, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, num_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(self.embed(ids))  # (N, T, hidden)
        logits: torch.Tensor = self.fc(out[:, -1, :])
        return logits
