"""How initcli's process shares the cores: torch's OpenMP threads wait passively, not spinning."""

from __future__ import annotations

import os
import sys

__all__ = ["restore_environment", "wait_passively"]

# libgomp (the OpenMP runtime torch's CPU kernels use) reads its wait policy once, when
# `import torch` loads it. Its default lets a thread that finishes a parallel region spin for a
# while before it sleeps; on a machine whose cores other processes hold, those spinning threads
# take time slices from the threads still working (docs/speed.md). PASSIVE makes them sleep.
_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")
# The variables wait_passively set, for restore_environment to remove again.
_SET: list[str] = []


def wait_passively() -> None:
    """Set OMP_WAIT_POLICY=PASSIVE for the coming `import torch`, where torch is not imported
    yet and the user has not chosen a policy. Called first thing by the `initcli` command, whose
    --help and argument errors never import torch: setting a variable costs nothing there."""
    key, value = _POLICY
    if "torch" in sys.modules or key in os.environ:
        return
    os.environ[key] = value
    _SET.append(key)


def restore_environment() -> None:
    """Remove what wait_passively set, once torch is imported (the runtime has read it then):
    called by initcli.report's import, before any user code runs, so that code and any process
    it starts see the environment they were given."""
    while _SET:
        os.environ.pop(_SET.pop(), None)
