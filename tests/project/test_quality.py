"""The house rules as tests: ruff and mypy --strict are clean, so CI enforces them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, text=True, capture_output=True, check=False
    )


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy", "--strict", "initcli")
    assert result.returncode == 0, result.stdout + result.stderr


# Import names of the test extra's packages (pyproject.toml [project.optional-dependencies] test):
# a test that needs one imports it, so a broken install fails loudly instead of skipping a module.
_TEST_EXTRA_IMPORTS = {
    "matplotlib": "matplotlib",
    "transformers": "transformers",
    "huggingface_hub": "huggingface_hub",
    "scikit-learn": "sklearn",
    "pytest": "pytest",
    "hypothesis": "hypothesis",
    "scipy": "scipy",
    "ruff": "ruff",
    "mypy": "mypy",
    "types-PyYAML": "yaml",
}


def test_the_test_extra_is_listed_here_in_full() -> None:
    import re
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"][
        "optional-dependencies"
    ]["test"]
    assert sorted(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0] for req in extra) == sorted(
        _TEST_EXTRA_IMPORTS
    )


def test_no_test_skips_a_package_the_test_extra_installs() -> None:
    import ast

    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "importorskip"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and str(node.args[0].value).split(".")[0] in _TEST_EXTRA_IMPORTS.values()
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.args[0].value}")
    assert found == []
