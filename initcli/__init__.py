"""initcli: inspect a PyTorch model's starting weights (API: count, inspect, probe_report, ...)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = [
    "__version__",
    "count",
    "inspect",
    "inspect_checkpoint",
    "probe_report",
    "scheme_rows",
]

if TYPE_CHECKING:
    from initcli.report import count, inspect, inspect_checkpoint, probe_report, scheme_rows

# The API lives in initcli.report, which imports torch; it is loaded on first use so that
# `initcli --help` and argument errors never pay for importing torch. Each name is the one it
# has in initcli.report.
_API = frozenset(__all__) - {"__version__"}
# The names of 0.1's API, kept for one release: each warns and returns the function above.
DEPRECATED = {
    "count_params": "count",
    "inspect_model": "inspect",
    "probe_model": "probe_report",
    "list_schemes": "scheme_rows",
}


def __getattr__(name: str) -> Any:
    if name in _API or name in DEPRECATED:
        from initcli import report

        if name in DEPRECATED:
            warnings.warn(
                f"initcli.{name} is deprecated and goes in the next release; "
                f"use initcli.{DEPRECATED[name]}",
                DeprecationWarning,
                stacklevel=2,
            )
        return getattr(report, DEPRECATED.get(name, name))
    raise AttributeError(f"module 'initcli' has no attribute {name!r}")
