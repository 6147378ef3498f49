"""The house layout as tests: packages import one way, no cycles, no module past 600 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "initcli"
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


# --- The package graph (docs/development.md): which package may import which ---------------------
# Leaf utilities import only the leaves before them; each core package only the packages below it.
# heard: library messages as notes, used by model/ (after user code is imported) and cli/.
LEAVES = (
    "initcli.errors",
    "initcli.text",
    "initcli.heard",
    "initcli.memory",
    "initcli.files",
    "initcli.limits",
    "initcli.threads",
)
CORE = ("model", "init", "values", "measure", "weights", "experiments")
MAY_IMPORT: dict[str, set[str]] = {
    "model": set(),
    "init": {"model"},
    "values": {"model", "init"},
    "measure": {"model", "init"},
    "weights": {"model", "init", "measure"},
    "experiments": {"model", "init", "values", "measure"},
    "report": {*CORE, "report"},
    "render": {"report"},
    "cli": {"report", "render"},
}
# Torch-free parsers, thresholds and result types the outer layers use directly, each for a reason:
# the CLI parses options before anything imports torch; render formats what the reports carry.
ALSO_ALLOWED = {
    "cli": {
        "initcli.measure.expect",  # --expect / --tolerance parsing, before any work
        "initcli.model.resolve",  # --arg KEY=VALUE parsing
        "initcli.model.spec",  # `initcli schema`: the spec's JSON Schema
        "initcli.measure.distributed",  # is_primary: under torchrun only rank 0 writes
        "initcli.experiments.batches",  # --input-shape parsing
        "initcli.experiments.verdict",  # the verdict thresholds in `probe --help`
    },
    "render": {
        "initcli.experiments.verdict",
        "initcli.experiments.seeds",
        "initcli.experiments.sweep",
        "initcli.experiments.probe",
    },
}


def _package(name: str) -> str:
    if name in LEAVES:
        return "leaf"
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in MAY_IMPORT) else "entry"


def _internal(path: Path) -> set[str]:
    """The initcli modules `path` imports, at any depth: `from initcli.pkg import mod` counts as
    initcli.pkg.mod, `from initcli.pkg.mod import name` as initcli.pkg.mod."""
    known = {n for n, _ in CASES}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in known:
                    found.add(full)
                elif node.module in known and node.module != "initcli":
                    found.add(node.module)
    return found


def test_initcli_holds_only_leaves_and_packages() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    leaves = {name.rsplit(".", 1)[1] for name in LEAVES}
    assert top == {"__init__", "__main__", *leaves}


@pytest.mark.parametrize(("name", "path"), CASES, ids=[name for name, _ in CASES])
def test_each_package_imports_only_the_packages_below_it(name: str, path: Path) -> None:
    mine = _package(name)
    if mine == "entry":
        return  # initcli (the lazy API) and __main__
    wrong = set()
    for other in _internal(path):
        theirs = _package(other)
        if theirs == mine or other in ALSO_ALLOWED.get(mine, set()):
            continue
        if theirs == "leaf":
            if mine == "leaf" and LEAVES.index(other) >= LEAVES.index(name):
                wrong.add(other)
            continue
        if theirs not in MAY_IMPORT.get(mine, set()):
            wrong.add(other)
    assert not wrong, f"{name} ({mine}) imports {sorted(wrong)}"


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    graph = {name: _internal(path) - {name} for name, path in CASES}
    # Packages' __init__ modules re-export their submodules: an edge to them is an edge to those.
    graph = {
        n: {t for t in ts if not (t.startswith(n + ".") and n in graph)} for n, ts in graph.items()
    }
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> None:
        if node in stack:
            cycle = [*stack[stack.index(node) :], node]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if node in done:
            return
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            visit(target)
        stack.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)


def _public_definitions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, path in CASES:
        if _package(name) == "cli":
            continue  # a command function is named after its command, as its report function is
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                found.setdefault(node.name, []).append(name)
    return found


# One protocol, one name: every weights reader has `read_tensors` (the format differs, the call
# does not).
PROTOCOL_NAMES = {"read_tensors"}


def test_no_public_name_is_defined_in_two_modules() -> None:
    twice = {
        n: where
        for n, where in _public_definitions().items()
        if len(where) > 1 and n not in PROTOCOL_NAMES
    }
    assert not twice, twice


def test_cli_report_and_render_modules_share_family_names() -> None:
    families = {p.stem for p in (PACKAGE / "cli").glob("*.py") if not p.stem.startswith("_")}
    families -= {"__init__", "options"}
    for family in families:
        assert (PACKAGE / "report" / f"{family}.py").exists(), f"report/{family}.py"
        assert (PACKAGE / "render" / f"{family}.py").exists(), f"render/{family}.py"


def test_the_lazy_report_api_names_every_name_once() -> None:
    # initcli.report loads each public name from its module on first use (a command imports
    # only the report module it runs): every name in __all__ must resolve, and nothing else.
    from initcli import report

    assert set(report.__all__) == set(report._MODULE_OF)
    for name in report.__all__:
        assert getattr(report, name) is not None
    with pytest.raises(AttributeError):
        _ = report.no_such_name
