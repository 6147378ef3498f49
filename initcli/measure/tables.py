"""Tables a constructor computes without a random draw, named by their values: sinusoids, logs."""

from __future__ import annotations

import torch

SINUSOIDAL = "sinusoidal"
DETERMINISTIC = "deterministic (no random draw)"
# Float32 sin/cos of positions up to a few thousand are good to ~1e-4 after the product; a
# table of values from any random init misses these identities by far more.
_TOL = 1e-3


def name_table(values: torch.Tensor) -> str | None:
    """`sinusoidal` or `log(arange(1, N+1))` (N given) where the values are that table, else None.

    Sinusoidal: a [positions, d] table whose columns pair up (first half with second half, as
    Whisper's, or even with odd, as the original Transformer's) into sin(ω·p) and cos(ω·p): row 0
    is 0 in one and 1 in the other, and each pair's squares sum to 1 on every row.
    log(arange(1, N+1)): every row along the last dimension is log 1, log 2, …, log N (Mamba's
    A_log).
    """
    if values.dim() < 2 or values.is_complex() or not values.is_floating_point():
        return None
    if values.numel() == 0 or values.shape[-1] < 2:
        return None
    t = values.detach().reshape(-1, values.shape[-1]).double()
    if _is_log_arange(t):
        return f"log(arange(1, N+1)), N={t.shape[1]}"
    if values.dim() == 2 and _is_sinusoidal(t):
        return SINUSOIDAL
    return None


def _is_log_arange(t: torch.Tensor) -> bool:
    n = t.shape[1]
    want = torch.log(torch.arange(1, n + 1, dtype=torch.float64))
    return bool((t - want).abs().max() <= _TOL * max(1.0, float(want[-1])))


def _is_sinusoidal(t: torch.Tensor) -> bool:
    rows, d = t.shape
    if rows < 2 or d % 2:
        return False
    half = d // 2
    for first, second in ((t[:, :half], t[:, half:]), (t[:, 0::2], t[:, 1::2])):
        starts = (first[0].abs().max() <= _TOL) and ((second[0] - 1).abs().max() <= _TOL)
        if starts and bool(((first**2 + second**2) - 1).abs().max() <= _TOL):
            return True
    return False
