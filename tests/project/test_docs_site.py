"""The documentation site: the CLI reference comes from the app, CI builds it strictly."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer.main
import yaml

from initcli.cli import app

ROOT = Path(__file__).resolve().parents[2]
GENERATED = {"reference/cli.md"}  # pages a hook makes at build time


def _hook() -> ModuleType:
    path = ROOT / "docs/hooks/cli_reference.py"
    spec = importlib.util.spec_from_file_location("cli_reference_hook", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cli_reference_is_every_commands_help() -> None:
    page = _hook().render()
    commands = list(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert len(commands) >= 10
    for name in commands:
        assert f"\n## initcli {name}\n" in page, name
        assert f"Usage: initcli {name} [OPTIONS]" in page, name
    assert "Usage: initcli [OPTIONS] COMMAND [ARGS]..." in page
    assert "root" not in page and "\x1b[" not in page  # the script's name; no colour codes
    assert max(len(line) for line in page.splitlines()) <= 100


def _nav_pages(nav: object) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_pages(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    raise AssertionError(f"unexpected nav entry {nav!r}")


def test_every_nav_page_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    for page in _nav_pages(config["nav"]):
        assert page in GENERATED or (ROOT / "docs" / page).is_file(), page
    assert config["theme"]["font"] is False  # no web fonts fetched by the built pages
    assert config["strict"] is True


def test_ci_builds_the_site_strictly_with_the_pinned_docs_extra() -> None:
    lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert 'pip install -q -c constraints.txt -e ".[docs]"' in lines
    (build,) = [line for line in lines if "mkdocs build" in line]
    assert "--strict" in build and '-d "$tmp/site"' in build


def test_the_docs_extra_is_pinned_in_constraints() -> None:
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]["docs"]
    constraints = (ROOT / "constraints.txt").read_text(encoding="utf-8")
    section = constraints.split("# The docs extra", 1)[1]
    pinned = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in section.splitlines()
        if "==" in line
    }
    for requirement in extra:
        name = re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0]
        assert re.sub(r"[-_.]+", "-", name).lower() in pinned, name


@pytest.mark.slow
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """What .ci/run does; here only where the docs extra is installed."""
    # mkdocs is in the docs extra, not the test one: .ci/run installs it and builds the site itself.
    pytest.importorskip(
        "mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')"
    )
    pytest.importorskip(
        "material", reason="the docs extra is not installed (pip install -e '.[docs]')"
    )
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "site/reference/cli/index.html").is_file()
    api = (tmp_path / "site/reference/api/index.html").read_text(encoding="utf-8")
    for name in ("count", "inspect", "inspect_checkpoint", "probe_report", "scheme_rows"):
        assert f'id="initcli.report.{name}"' in api, name
