"""initcli.threads: torch imported with a passive OpenMP wait policy, the environment untouched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ROOT

# A model whose constructor reports the environment it sees and what the OpenMP runtime was told.
MODEL = textwrap.dedent(
    """
    import os
    from torch import nn

    class Seen(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            print("SEEN", os.environ.get("OMP_WAIT_POLICY"), flush=True)
    """
)


@pytest.mark.parametrize(("given", "seen"), [(None, "None"), ("ACTIVE", "ACTIVE")])
def test_user_code_sees_the_environment_it_was_given(
    given: str | None, seen: str, tmp_path: Path
) -> None:
    # The `initcli` command sets OMP_WAIT_POLICY=PASSIVE only until torch is imported (libgomp
    # reads it then); the user's code sees the environment as it was, and a policy the user
    # chose is theirs.
    (tmp_path / "seen.py").write_text(MODEL, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env |= {"PYTHONPATH": str(ROOT)} | ({} if given is None else {"OMP_WAIT_POLICY": given})
    done = subprocess.run(
        [sys.executable, "-m", "initcli", "count", "seen.py:Seen", "-f", "json"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"SEEN {seen}" in done.stdout + done.stderr


def test_the_policy_is_set_before_torch_and_removed_after() -> None:
    probe = (
        "import os, sys\n"
        "from initcli import threads\n"
        "threads.wait_passively()\n"
        "before = os.environ.get('OMP_WAIT_POLICY')\n"
        "import initcli.report\n"
        "print(before, 'torch' in sys.modules, os.environ.get('OMP_WAIT_POLICY'))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.split() == ["PASSIVE", "True", "None"]
