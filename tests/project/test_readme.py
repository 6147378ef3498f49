"""The README is a front page with the two quick-start commands; the public API is what it says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_is_a_front_page() -> None:
    """The README is what a visitor reads first: short, and every link in it leads somewhere."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 350
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme):
        if target.startswith(("http://", "https://")):
            continue
        assert (ROOT / target).exists(), target


def test_the_readme_keeps_the_two_quick_start_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```bash\n(.*?)```", quick, re.DOTALL)
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    assert commands == [
        "python3 -m venv .venv && . .venv/bin/activate && pip install -c constraints.txt -e . && "
        "initcli inspect sample_models/mlp.yaml --init kaiming_normal",
        "python3 -m venv .venv && . .venv/bin/activate && pip install -q -c constraints.txt -e "
        '".[test]" && python -m pytest',
    ]


def test_the_public_api_returns_the_dataclasses_the_cli_renders() -> None:
    import dataclasses
    import typing

    import initcli
    from initcli import report

    expected = {
        "count": report.CountReport,
        "inspect": report.InspectReport,
        "inspect_checkpoint": report.CheckpointReport,
        "probe_report": report.ProbeReport,
    }
    for name, result in expected.items():
        function = getattr(initcli, name)
        assert typing.get_type_hints(function)["return"] is result, name
        assert dataclasses.is_dataclass(result) and result.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert set(initcli.__all__) == {"__version__", "scheme_rows", *expected}
    for name in (*expected, "scheme_rows"):
        assert getattr(initcli, name) is getattr(report, name), "one name per API function"


def test_the_0_1_api_names_warn_and_still_work() -> None:
    import initcli
    from initcli import report

    for old, new in initcli.DEPRECATED.items():
        with pytest.warns(DeprecationWarning, match=f"initcli.{old} is deprecated.*initcli.{new}"):
            assert getattr(initcli, old) is getattr(report, new)
