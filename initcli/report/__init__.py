"""The reports behind each command, as frozen dataclasses: one module per command family."""

# `from initcli.report import ...` is the public API (`initcli.count`, `initcli.inspect`, ... are
# these functions); the modules below build the reports, `initcli.render` writes them.

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
from initcli.report.pytorch_defaults import DefaultCheck, DefaultsReport, DefaultType, defaults
from initcli.report.weights import (
    CheckpointParam,
    CheckpointReport,
    inspect_checkpoint,
    inspect_loaded,
)
from initcli.threads import restore_environment

# torch is imported now, under the wait policy the `initcli` command asked for: the environment
# goes back to the user's before their code runs (initcli.threads).
restore_environment()

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
