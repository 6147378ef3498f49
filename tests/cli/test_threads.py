"""initcli.threads: torch imported with a passive OpenMP wait policy, the environment untouched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import ROOT

PROBE = (
    "import os, sys\n"
    "from initcli.threads import import_torch_passively\n"
    "import_torch_passively()\n"
    "print('torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))\n"
)


def _probe(**extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env |= {"PYTHONPATH": str(ROOT), **extra}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout.strip()


@pytest.mark.parametrize(("given", "seen"), [(None, "None"), ("ACTIVE", "ACTIVE")])
def test_torch_is_imported_and_the_environment_is_as_given(given: str | None, seen: str) -> None:
    # The policy is set only for the import (libgomp reads it when torch loads it); the user's
    # code sees the environment it was given, and a policy the user chose is theirs.
    extra = {} if given is None else {"OMP_WAIT_POLICY": given}
    assert _probe(**extra) == f"True {seen}"
