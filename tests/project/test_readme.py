"""The README's Python API example runs and prints exactly what the README shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _api_example() -> tuple[str, str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    code, shown = re.findall(r"```(?:python)?\n(.*?)```", section, re.DOTALL)[:2]
    return code, shown


def test_python_api_example_prints_what_the_readme_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, shown = _api_example()
    assert "import initcli" in code
    monkeypatch.chdir(ROOT)  # the example runs from the repository root
    code = code.replace("/tmp/lenet.safetensors", str(tmp_path / "lenet.safetensors"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == shown


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
