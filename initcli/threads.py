"""How initcli's process shares the cores: torch's OpenMP threads wait passively, not spinning."""

from __future__ import annotations

import os
import sys

__all__ = ["import_torch_passively"]

# libgomp (the OpenMP runtime torch's CPU kernels use) reads its wait policy once, when it is
# loaded by `import torch`. Its default lets a thread that finishes a parallel region spin for a
# while before it sleeps; on a machine whose cores other processes hold, those spinning threads
# take time slices from the threads still working, and a run of many short parallel kernels
# slowed 17x under a load of two (docs/speed.md). PASSIVE makes them sleep at once.
_POLICY = ("OMP_WAIT_POLICY", "PASSIVE")


def import_torch_passively() -> None:
    """Import torch with OMP_WAIT_POLICY=PASSIVE, then put os.environ back as it was.

    Only where torch is not imported yet and the user has not chosen a policy: the variable is
    set just for the import (the runtime has read it by then), so the user's code and any process
    it starts see the environment they were given.
    """
    key, value = _POLICY
    if "torch" in sys.modules or key in os.environ:
        return
    os.environ[key] = value
    try:
        import torch  # noqa: F401
    finally:
        del os.environ[key]
