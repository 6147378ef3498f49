"""The status of a parameter kept at its constructor's values, from the judge and its values."""

from __future__ import annotations

from initcli.measure.identify import Identification
from initcli.measure.stats import Status

__all__ = ["default_status"]


def default_status(
    judged: Status,
    ident: Identification,
    *,
    ndim: int,
    module: str,
    expected_var: float | None = None,
) -> Status:
    """The status of a parameter under `default` (docs/contract/statuses.md), from stats.judge's
    verdict and the variance of torch's default for it (`expected_var`, None where unknown).

    uninitialized values win; `ok` and `symmetric` stay only where the identification agrees: a
    random default whose values are a constant, another family or out of its bound is `custom`,
    and so is a ≥2-D constant where no random init was expected (Swin's zeroed bias table); a
    layer named like a norm torch does not know holding ones or zeros is `ok`, as torch's norms
    are; any other cleanly identified distribution is `custom`.
    """
    if ident.uninitialized is not None:
        return Status.UNINITIALIZED
    fit = ident.fit
    drawn = expected_var is not None and expected_var > 0
    # Sparse values may be torch's own draw with a zeroed row (a small Embedding's padding_idx).
    clean = fit.family not in ("none", "uninitialized", "sparse")
    if judged is Status.OK and drawn and clean:
        # `ok` claims torch's random default: not where the identification rules it out, i.e.
        # where it is not among the best fits (consistent, on a tiny tensor, is not enough).
        ruled_out = not any(m.endswith("torch default") for m in fit.ties or fit.matches)
        return Status.CUSTOM if ruled_out else judged
    if judged is Status.SYMMETRIC and not drawn:
        return Status.CUSTOM  # no init that breaks symmetry was expected: the model's constant
    if judged in (Status.OK, Status.SYMMETRIC):
        return judged
    if (
        judged is Status.UNKNOWN
        and fit.family == "constant"
        and ndim == 1
        and "norm" in module.lower()
        and fit.matches
        and fit.matches[-1] in ("ones", "zeros")
    ):
        return Status.OK
    if fit.family not in ("none", "uninitialized"):
        return Status.CUSTOM
    return judged
