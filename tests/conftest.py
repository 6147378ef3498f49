"""Shared test helpers: the one CliRunner `run()`, the golden-file switch, and import hygiene."""

from __future__ import annotations

import struct
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initcli.cli import app

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr), named `initcli` as the script is."""
    result = CliRunner().invoke(app, list(args), prog_name="initcli")
    return result.exit_code, result.stdout, result.stderr


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite tests/golden/ from the current output instead of comparing with it.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


def _user_module(name: str) -> bool:
    # Modules loaded from the tests' own files, sample models and temp dirs; never a library's
    # (dropping torch's or transformers' submodules mid-run would leave them half-imported).
    module = sys.modules.get(name)
    where = getattr(module, "__file__", None) or ""
    return bool(where) and "site-packages" not in where and not where.startswith(sys.base_prefix)


@pytest.fixture(autouse=True)
def _restore_import_state() -> Iterator[None]:
    """Loading a TARGET adds to sys.path and sys.modules: undo it after each test."""
    path = list(sys.path)
    modules = set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        if _user_module(name) and not name.startswith("initcli"):
            del sys.modules[name]


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's (width, height) from its IHDR chunk (the files --plot writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture
def library_says_again() -> Iterator[None]:
    """transformers logs many messages once per process (`logger.warning_once` is an lru_cache),
    and some test modules set its verbosity to error at import: forget what it has said and give
    it its default verbosity (warning) for this test, so a test that expects a message sees it
    whatever ran before."""
    import logging

    cached = getattr(logging.Logger, "warning_once", None)
    if cached is not None and hasattr(cached, "cache_clear"):
        cached.cache_clear()
    hf_logging = sys.modules.get("transformers.utils.logging")
    if hf_logging is None:
        yield
        return
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
