"""The house layout as tests: imports flow one way (DESIGN §5), no module past 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "initcli"
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every module `path` imports (absolute names; `from initcli import x` counts as initcli.x)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _layer(name: str) -> str:
    if name in ("initcli", "initcli.__main__"):
        return "entry"  # the public API (loaded lazily from report) and `python -m initcli`
    for layer in ("initcli.cli", "initcli.report", "initcli.render"):
        if name == layer or name.startswith(layer + "."):
            return layer
    return "core"


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


CASES = [(_name(p), p) for p in _modules()]


@pytest.mark.parametrize(("name", "path"), CASES, ids=[name for name, _ in CASES])
def test_imports_flow_one_way(name: str, path: Path) -> None:
    imports = _imports(path)
    layer = _layer(name)
    upper = {
        "core": ("initcli.cli", "initcli.report", "initcli.render"),
        "initcli.report": ("initcli.cli", "initcli.render"),
        "initcli.render": ("initcli.cli",),
        "initcli.cli": (),
        "entry": (),
    }[layer]
    assert not {i for i in imports if _within(i, upper)}, f"{name} imports a layer above it"
    if layer not in ("initcli.cli", "entry"):
        assert not {i for i in imports if _within(i, ("typer", "click"))}, "only cli imports typer"
    if layer != "initcli.render":
        assert not {i for i in imports if _within(i, ("rich",))}, "only render imports rich"
    if layer == "initcli.render":
        top = _imports(path, top_level_only=True)
        assert not {i for i in top if _within(i, ("torch",))}, "render imports torch lazily only"
    if name != "initcli.measure.counting":
        assert not {i for i in imports if _within(i, ("torchinfo",))}, "only counting: torchinfo"


@pytest.mark.parametrize(("name", "path"), CASES, ids=[name for name, _ in CASES])
def test_no_module_is_over_600_lines(name: str, path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines: split it by job"


@pytest.mark.parametrize(("name", "path"), CASES, ids=[name for name, _ in CASES])
def test_every_module_opens_with_a_one_line_docstring(name: str, path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc, f"{name} has no docstring"
    assert len(doc.splitlines()) == 1, f"{name}'s docstring is {len(doc.splitlines())} lines"
