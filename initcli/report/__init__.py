"""The reports behind each command, as frozen dataclasses: one module per command family."""

# `from initcli.report import ...` is the public API (`initcli.count`, `initcli.inspect`, ... are
# these functions); the modules below build the reports, `initcli.render` writes them. Each name
# is loaded from its module on first use (module __getattr__), so a command imports the one
# report module it runs, not all of them: `count` skipped ~12% of its import time that way.

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

import torch  # noqa: F401  every report needs it; imported first so the next line may run

from initcli.threads import restore_environment

# torch is imported now, under the wait policy the `initcli` command asked for: the environment
# goes back to the user's before their code runs (initcli.threads).
restore_environment()

if TYPE_CHECKING:
    from initcli.report._shared import (
        TRACE_BATCH,
        CountReport,
        is_weights,
        resolve_schemes,
        spec_followers,
    )
    from initcli.report.counts import count
    from initcli.report.formulas import GainRow, SchemeRow, gains, scheme_rows
    from initcli.report.inspection import InspectPlan, InspectReport, inspect, plan_inspect
    from initcli.report.measuring import ParamReport, Progress
    from initcli.report.probing import (
        ProbeReport,
        SchemeProbe,
        SeedSummary,
        TrainOutcome,
        TrainSetup,
        probe_report,
    )
    from initcli.report.pytorch_defaults import (
        DefaultCheck,
        DefaultsReport,
        DefaultType,
        defaults,
    )
    from initcli.report.weights import (
        CheckpointParam,
        CheckpointReport,
        inspect_checkpoint,
        inspect_loaded,
    )

# Where each public name lives.
_HOME = {
    "_shared": ("TRACE_BATCH", "CountReport", "is_weights", "resolve_schemes", "spec_followers"),
    "counts": ("count",),
    "formulas": ("GainRow", "SchemeRow", "gains", "scheme_rows"),
    "inspection": ("InspectPlan", "InspectReport", "inspect", "plan_inspect"),
    "measuring": ("ParamReport", "Progress"),
    "probing": (
        "ProbeReport", "SchemeProbe", "SeedSummary", "TrainOutcome", "TrainSetup", "probe_report",
    ),
    "pytorch_defaults": ("DefaultCheck", "DefaultsReport", "DefaultType", "defaults"),
    "weights": ("CheckpointParam", "CheckpointReport", "inspect_checkpoint", "inspect_loaded"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = [
    "TRACE_BATCH",
    "CheckpointParam",
    "CheckpointReport",
    "CountReport",
    "DefaultCheck",
    "DefaultType",
    "DefaultsReport",
    "GainRow",
    "InspectPlan",
    "InspectReport",
    "ParamReport",
    "ProbeReport",
    "Progress",
    "SchemeProbe",
    "SchemeRow",
    "SeedSummary",
    "TrainOutcome",
    "TrainSetup",
    "count",
    "defaults",
    "gains",
    "inspect",
    "inspect_checkpoint",
    "inspect_loaded",
    "is_weights",
    "plan_inspect",
    "probe_report",
    "resolve_schemes",
    "scheme_rows",
    "spec_followers",
]


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'initcli.report' has no attribute {name!r}")
    value = getattr(import_module(f"initcli.report.{module}"), name)
    globals()[name] = value  # once found, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
