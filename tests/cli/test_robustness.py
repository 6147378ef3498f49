"""Bad input never crashes (one `Error:` line, exit 2) and odd models never break anything."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from initcli import report
from initcli.cli import app
from initcli.errors import SchemeError
from initcli.init import schemes

ODD = "tests/models_for_tests.py"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_clean_error(args: list[str], *fragments: str) -> str:
    code, out, err = run(*args)
    assert code == 2, (code, out, err)
    assert out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


SPECS = {
    "empty": ("", ["is empty"]),
    "comments-only": ("# nothing here\n", ["is empty"]),
    "list": ("- 1\n- 2\n", ["mapping"]),
    "syntax": ("input: 4\nlayers: [\n", ["line"]),
    "unknown-key": ("input: 4\nlayer:\n  - {units: 2}\n",
                    ["line 2", "'layer'", "did you mean 'layers'"]),
    "wrong-type": ("input: 4\nlayers:\n  - {units: '5'}\n", ["line 3", "units"]),
    "units-zero": ("input: 4\nlayers:\n  - {units: 0}\n", ["line 3", "units"]),
    "repeat-zero": ("input: 4\nlayers:\n  - {units: 2, repeat: 0}\n", ["line 3", "repeat"]),
    "dropout-one": ("input: 4\nlayers:\n  - {units: 2, dropout: 1.0}\n", ["line 3", "dropout"]),
    "activation": ("input: 4\nlayers:\n  - {units: 2, activation: swish}\n",
                   ["line 3", "activation", "relu", "tanh"]),
    "alias": ("input: &a 4\nlayers:\n  - {units: *a}\n", ["aliases"]),
    "init": ("input: 4\ninit: kaimin\nlayers:\n  - {units: 2}\n",
             ["line 2", "did you mean 'kaiming'"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SPECS))
@pytest.mark.parametrize("command", ["count", "inspect"])
def test_bad_specs(case: str, command: str, tmp_path: Path) -> None:
    text, fragments = SPECS[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    assert_clean_error([command, str(path)], *fragments)


def test_non_utf8_spec(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\ninput: 4\nlayers: [{units: 2}]\n".encode("latin-1"))
    assert_clean_error(["count", str(path)], "UTF-8")


def test_alias_bomb_is_refused_fast(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ninput: 4\nlayers: [{units: 2}]\n")
    start = time.perf_counter()
    assert_clean_error(["count", str(path)], "aliases")
    assert time.perf_counter() - start < 5  # generous: refused before anything is expanded


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(f'input: !!python/object/apply:os.system ["touch {marker}"]\nlayers: []\n')
    assert_clean_error(["count", str(path)], "tag")
    assert not marker.exists()


def test_spec_too_large_for_memory_points_to_count(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("input: 100000\nlayers:\n  - {units: 100000, repeat: 100}\n")
    start = time.perf_counter()
    assert_clean_error(
        ["inspect", str(path)], "1,000,010,000,000 parameters", "GiB", "'initcli count'"
    )
    assert time.perf_counter() - start < 5  # refused by arithmetic, nothing was built


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_scheme_parser_never_raises_anything_else(text: str) -> None:
    try:
        parsed = schemes.parse_scheme(text)
    except SchemeError as exc:
        assert "\n" not in str(exc)
    else:
        assert parsed.name in schemes.SCHEMES


@given(
    st.sampled_from(sorted([*schemes.SCHEMES, *schemes.ALIASES])),
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "std", "mean", "gain", "mode", "val", "nonlinearity", "x"]),
            st.one_of(
                st.floats(allow_nan=True),
                st.sampled_from(["fan_in", "fan_out", "relu", "tanh", "", "abc", "1e999"]),
            ),
        ),
        max_size=4,
    ),
)
@settings(max_examples=300, deadline=None)
def test_structured_scheme_strings(name: str, params: list[tuple[str, object]]) -> None:
    text = name + (":" + ",".join(f"{k}={v}" for k, v in params) if params else "")
    try:
        parsed = schemes.parse_scheme(text)
    except SchemeError:
        return
    # A scheme that parses can be applied to a weight and described (auto and default depend on
    # the model around the weight, so they are not applied to a bare tensor).
    if parsed.is_default or parsed.name == schemes.AUTO:
        return
    tensor = torch.empty(6, 4)
    schemes.apply(parsed, tensor)
    assert parsed.describe().startswith(parsed.name)


ALL_SCHEMES = [name for name in schemes.SCHEMES if name != "default"]


@pytest.mark.parametrize("scheme", ["default", *ALL_SCHEMES])
def test_odd_model_never_breaks(scheme: str) -> None:
    result = report.inspect(f"{ODD}:Odd", init=scheme)
    rows = {p.name: p for p in result.params}
    assert rows["scalar"].shape == () and rows["scalar"].fan_in is None
    assert rows["empty"].numel == 0 and rows["empty"].status == "unknown"
    assert rows["empty"].mean is None
    assert rows["cplx"].numel == 16 and rows["cplx"].status == "unknown"
    assert {rows[n].dtype for n in ("half.weight", "bf.weight", "dbl.weight")} == {
        "float16",
        "bfloat16",
        "float64",
    }
    if scheme == "default":
        # NaN is no init's draw: under default that is `uninitialized`, not `off`
        # (docs/contract/statuses.md).
        assert rows["nanw.weight"].status == "uninitialized"
        assert (
            rows["nanw.weight"].mean is not None
            and rows["nanw.weight"].mean != rows["nanw.weight"].mean
        )  # NaN
    for name in ("half.weight", "bf.weight", "dbl.weight"):
        assert rows[name].status in ("ok", "symmetric"), (name, rows[name])
    counts = result.counts.counts
    assert counts.total == 153 and counts.buffers == 3 and counts.agree


def test_odd_model_json_has_no_nan_tokens() -> None:
    code, out, _ = run("inspect", f"{ODD}:Odd", "-f", "json")
    assert code == 0
    data = json.loads(out)  # strict JSON: NaN would not parse back as a number
    nanw = next(p for p in data["params"] if p["name"] == "nanw.weight")
    assert (nanw["mean"], nanw["status"]) == (None, "uninitialized")
    assert nanw["looks_like"].startswith("uninitialized: torch.empty leftovers?")


@pytest.mark.parametrize("scheme", ["default", "kaiming_normal", "orthogonal"])
def test_lazy_pruned_shared_and_empty_models(scheme: str) -> None:
    lazy = report.inspect(f"{ODD}:lazy", init=scheme)
    first = lazy.params[0]
    assert (first.name, first.shape, first.numel, first.status) == (
        "0.weight",
        None,
        None,
        "unknown",
    )
    assert first.init == "uninitialized (lazy)"
    pruned = report.inspect(f"{ODD}:pruned", init=scheme)
    assert [p.name for p in pruned.params] == ["0.bias", "0.weight_orig"]
    shared = report.inspect(f"{ODD}:shared", init=scheme)
    assert [p.name for p in shared.params] == ["0.weight", "0.bias"]
    empty = report.inspect(f"{ODD}:empty", init=scheme)
    assert empty.params == () and empty.counts.counts.total == 0


def test_model_without_parameters_is_exit_0() -> None:
    code, out, _ = run("count", f"{ODD}:empty", "-f", "json")
    assert code == 0 and json.loads(out)["total"] == 0
    code, out, _ = run("inspect", f"{ODD}:empty")
    assert code == 0 and "total" in out


def test_input_shape_materializes_lazy_layers() -> None:
    counts = report.count(f"{ODD}:lazy", input_shape=(5,)).counts
    # LazyLinear(8) on 5 features: 5×8 + 8, then Linear(8, 2): 18.
    assert (counts.total, counts.uninitialized, counts.agree) == (66, (), True)
    inspected = report.inspect(f"{ODD}:lazy", init="kaiming_normal", input_shape=(5,))
    first = inspected.params[0]
    assert (first.name, first.shape, first.fan_in, first.status) == ("0.weight", (8, 5), 5, "ok")
    assert first.expected_var == pytest.approx(2 / 5)
    default = report.inspect(f"{ODD}:lazy", input_shape=(5,))
    assert default.params[0].init.startswith("kaiming_uniform")
    assert default.params[0].status == "ok"


def test_input_shape_that_does_not_fit_is_a_clean_error() -> None:
    assert_clean_error(
        ["inspect", f"{ODD}:lazy_conv", "--input-shape", "7"],
        "lazy layers their shapes failed with --input-shape 7",
        "check --input-shape",
    )


def test_a_base_exception_from_the_model_is_one_error_line(tmp_path: Path) -> None:
    source = tmp_path / "boom.py"
    source.write_text(
        "import torch.nn as nn\n"
        "class Boom(BaseException):\n    pass\n"
        "class M(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n        raise Boom('no')\n"
    )
    err = assert_clean_error(["count", f"{source}:M"], "raised Boom: no (a BaseException")
    assert "being built" in err and "raise an Exception subclass instead" in err


@pytest.mark.parametrize("suffix", [".py:M", ".safetensors", ".yaml"])
def test_a_name_too_long_for_the_file_system_is_named(tmp_path: Path, suffix: str) -> None:
    # Linux allows 255 bytes per name: stat() fails with ENAMETOOLONG before any reader runs.
    target = f"{tmp_path}/{'a' * 300}{suffix}"
    assert_clean_error(["count", target], "File name too long", "check the path")


def test_an_output_name_too_long_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / ("b" * 300 + ".json")
    assert_clean_error(
        ["inspect", "sample_models/mlp.yaml", "-o", str(out)], "File name too long; check the path"
    )
    assert list(tmp_path.iterdir()) == []
