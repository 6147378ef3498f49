"""TARGET resolution: module paths, file paths, specs, factories, instances and --arg."""

from __future__ import annotations

from pathlib import Path

import pytest
from torch import nn

from initcli.errors import ArgError, SpecError, TargetError
from initcli.model.resolve import parse_args, resolve

ODD = "tests/models_for_tests.py"


@pytest.mark.parametrize(
    "target",
    [
        "sample_models.mlp:MLP",
        "sample_models/mlp.py:MLP",
        "sample_models/mlp.yaml",
        "sample_models/mlp.yml",
    ],
)
def test_every_target_form_builds_the_tutorial_mlp(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if target.endswith(".yml"):
        (tmp_path / "sample_models").mkdir()
        (tmp_path / target).write_text(Path("sample_models/mlp.yaml").read_text())
        monkeypatch.chdir(tmp_path)
    model = resolve(target).build()
    assert sum(p.numel() for p in model.parameters()) == 51


def test_factory_with_args() -> None:
    source = resolve("sample_models.mlp:mlp", {"depth": 3, "width": 8})
    assert sum(p.numel() for p in source.build().parameters()) == 202
    assert source.args == {"depth": 3, "width": 8}


def test_instance_target_is_prebuilt() -> None:
    source = resolve(f"{ODD}:INSTANCE")
    assert source.prebuilt
    assert isinstance(source.build(), nn.Linear)


def test_module_target_is_found_from_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(
        "from torch import nn\nclass Net(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(3, 2)\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert sum(p.numel() for p in resolve("mypkg.models:Net").build().parameters()) == 8


def test_file_target_can_import_its_neighbours(tmp_path: Path) -> None:
    (tmp_path / "layers_helper_xyz.py").write_text("WIDTH = 6\n")
    (tmp_path / "net.py").write_text(
        "from torch import nn\nfrom layers_helper_xyz import WIDTH\n"
        "def make():\n    return nn.Linear(WIDTH, 1)\n"
    )
    assert sum(p.numel() for p in resolve(f"{tmp_path}/net.py:make").build().parameters()) == 7


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [(["depth=5"], {"depth": 5}), (["act=tanh"], {"act": "tanh"}),
     (["dims=[3,4]"], {"dims": [3, 4]}), (["p=0.5", "flag=true"], {"p": 0.5, "flag": True}),
     (["name="], {"name": ""}), (["s='a=b'"], {"s": "a=b"})],
)  # fmt: skip
def test_parse_args_reads_yaml_scalars(pairs: list[str], expected: dict[str, object]) -> None:
    assert parse_args(pairs) == expected


@pytest.mark.parametrize(
    ("pairs", "message"),
    [(["depth"], "is not key=value"), (["=5"], "is not key=value"),
     (["a b=1"], "is not key=value"), (["d=1", "d=2"], "given twice"),
     (["x=[1,"], "is not a YAML value")],
)  # fmt: skip
def test_bad_args(pairs: list[str], message: str) -> None:
    with pytest.raises(ArgError, match=message):
        parse_args(pairs)


@pytest.mark.parametrize(
    ("target", "args", "error", "message"),
    [
        (
            "nonexistent_pkg_xyz.models:Net",
            {},
            TargetError,
            "cannot import 'nonexistent_pkg_xyz.models': no module named 'nonexistent_pkg_xyz'",
        ),
        ("sample_models.nothere:Net", {}, TargetError, "no module named 'sample_models.nothere'"),
        ("missing/file.py:Net", {}, TargetError, "no such file: missing/file.py"),
        ("sample_models/:Net", {}, TargetError, "is a directory"),
        ("sample_models/mlp.yaml:MLP", {}, TargetError, "is not a .py file"),
        ("sample_models/mlp.py:MLPP", {}, TargetError, "did you mean 'MLP'?"),
        (
            "sample_models/mlp.py",
            {},
            TargetError,
            "names no model; add ':Name', e.g. sample_models/mlp.py:MLP",
        ),
        (f"{ODD}:NUMBER", {}, TargetError, "is a int, not an nn.Module class"),
        (
            f"{ODD}:NeedsArgs",
            {},
            TargetError,
            "needs constructor arguments: width, depth; pass them with --arg width=...",
        ),
        (
            f"{ODD}:NeedsArgs",
            {"width": 3, "depht": 2},
            ArgError,
            "does not accept --arg depht; did you mean 'depth'?",
        ),
        (f"{ODD}:INSTANCE", {"a": 1}, ArgError, "already built"),
        ("sample_models/mlp.yaml", {"a": 1}, ArgError, "does not apply to a YAML spec"),
        ("missing.yaml", {}, SpecError, "no such file"),
        (":Net", {}, TargetError, "names no module or file"),
        (
            "sample_models/mlp.py:",
            {},
            TargetError,
            "names no model; add ':Name', e.g. sample_models/mlp.py:MLP",
        ),
    ],
)
def test_bad_targets(
    target: str, args: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        resolve(target, args)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "Raises",
            "building tests/models_for_tests.py:Raises failed: RuntimeError: CUDA is required",
        ),
        ("not_a_module", "returned a int, not an nn.Module"),
    ],
)
def test_build_failures(name: str, message: str) -> None:
    source = resolve(f"{ODD}:{name}")
    with pytest.raises(TargetError) as err:
        source.build()
    assert message in str(err.value)
    assert "second line" not in str(err.value)


def test_a_module_that_fails_to_import_shows_the_first_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import torch\nraise ImportError('needs flash_attn')\n")
    with pytest.raises(TargetError, match=r"running .*broken\.py failed: ImportError: needs flash"):
        resolve(f"{tmp_path}/broken.py:Net")
    (tmp_path / "syntax.py").write_text("def f(:\n")
    with pytest.raises(TargetError, match="SyntaxError"):
        resolve(f"{tmp_path}/syntax.py:Net")
