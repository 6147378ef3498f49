"""initcli: inspect a PyTorch model's starting weights (API: count_params, inspect_model, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "count_params",
    "inspect_checkpoint",
    "inspect_model",
    "list_schemes",
    "probe_model",
]

if TYPE_CHECKING:
    from initcli.report import count as count_params
    from initcli.report import inspect as inspect_model
    from initcli.report import inspect_checkpoint
    from initcli.report import probe_report as probe_model
    from initcli.report import scheme_rows as list_schemes

# The API lives in initcli.report, which imports torch; it is loaded on first use so that
# `initcli --help` and argument errors never pay for importing torch.
_LAZY = {
    "count_params": "count",
    "inspect_model": "inspect",
    "inspect_checkpoint": "inspect_checkpoint",
    "list_schemes": "scheme_rows",
    "probe_model": "probe_report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from initcli import report

        return getattr(report, _LAZY[name])
    raise AttributeError(f"module 'initcli' has no attribute {name!r}")
