"""Policies, specs and baselines are data: hostile structure is one `Error:` line, exit 2."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import run

from initcli.errors import BaselineError, NotRegularFileError
from initcli.init import policy
from initcli.model.spec import load_spec
from initcli.report import baseline

ROOT = Path(__file__).resolve().parents[2]
SPEC = str(ROOT / "sample_models" / "mlp.yaml")  # Sequential of Linear and ReLU, 51 parameters


def _error(*args: str) -> str:
    """The CLI's one `Error:` line for `args` (exit 2, no traceback), without `Error: `."""
    code, out, err = run(*args)
    assert (code, out) == (2, ""), err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "unexpected" not in err and "Traceback" not in err, err
    return err.removeprefix("Error: ").rstrip("\n")


def _policy_error(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    path = tmp_path / "policy.yaml"
    path.write_bytes(content)
    return path, _error("inspect", SPEC, "--init", f"@{path}")


def _laughs(depth: int) -> bytes:
    """A rule whose value is an alias bomb: 9**depth items from ~40·depth bytes."""
    parts = [b"&a0 [x,x,x,x,x,x,x,x,x]"]
    parts += [b"&a%d [%s]" % (i, b",".join([b"*a%d" % (i - 1)] * 9)) for i in range(1, depth)]
    return b"Linear: [" + b", ".join(parts) + b"]\n"


# --- policy files: depth, duplicates, aliases, tags ----------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"Linear: " + b"[" * 5000 + b"]" * 5000, b"{a: " * 5000 + b"1" + b"}" * 5000],
    ids=["lists", "mappings"],
)
def test_a_policy_nested_5000_deep_names_the_bound(tmp_path: Path, content: bytes) -> None:
    path, message = _policy_error(tmp_path, content)
    assert message == (
        f"{path}, line 1: lists or mappings nest more than {policy.MAX_POLICY_DEPTH} levels "
        "deep; a policy file is one mapping SELECTOR: SCHEME"
    )
    assert policy.MAX_POLICY_DEPTH == 32


def test_duplicate_rules_in_a_policy_file_name_both_lines(tmp_path: Path) -> None:
    path, message = _policy_error(
        tmp_path, b"Linear: zeros\nReLU: ones\n'*.bias': zeros\n\"Linear\": ones\n"
    )
    assert message == f"rule 'Linear' is given twice, on lines 1 and 4 of {path}; keep one"


def test_duplicate_rules_in_a_policy_string_name_both_rules() -> None:
    message = _error("inspect", SPEC, "--init", "Linear=zeros; *.bias=ones; Linear=ones")
    assert message == (
        "rule 'Linear' is given twice, as rules 1 and 3 of the policy ('Linear=zeros' and "
        "'Linear=ones'); keep one"
    )


def test_duplicate_rules_in_a_spec_init_are_refused(tmp_path: Path) -> None:
    spec = tmp_path / "m.yaml"
    spec.write_text("input: 4\ninit: 'Linear=zeros; Linear=ones'\nlayers: [{units: 2}]\n")
    assert "rule 'Linear' is given twice, as rules 1 and 2" in _error("count", str(spec))
    spec.write_text("input: 4\ninit:\n  Linear: zeros\n  Linear: ones\nlayers: [{units: 2}]\n")
    assert _error("count", str(spec)) == (
        f"{spec}, line 4: duplicate key 'Linear' in init (first at line 3); keep only one"
    )


@pytest.mark.parametrize(
    "content",
    [_laughs(6), _laughs(9), b"x: &s zeros\nLinear: *s\n", b"Linear: *undefined\n"],
    ids=["bomb-6", "bomb-9", "anchor", "alias"],
)
def test_yaml_aliases_are_refused_at_the_first_anchor(tmp_path: Path, content: bytes) -> None:
    path, message = _policy_error(tmp_path, content)
    assert message == (
        f"{path}, line 1: YAML anchors and aliases (&x / *x) are not allowed in a policy file; "
        "write each scheme out, and quote selectors that start with '*' (e.g. '*.bias': zeros)"
    )


def test_an_unquoted_glob_selector_says_to_quote_it(tmp_path: Path) -> None:
    path, message = _policy_error(tmp_path, b"Linear: zeros\n*.bias: zeros\n")
    assert message == (
        f"{path}, line 2: invalid YAML (while scanning an alias: expected alphabetic or numeric "
        "character, but found '.'); quote selectors that start with '*', e.g. '*.bias': zeros"
    )


@pytest.mark.parametrize(
    ("content", "tag"),
    [
        (b"Linear: !!python/object/apply:os.system ['touch MARKER']\n", "!!python/object/apply"),
        (b"!!python/object/apply:os.system ['touch MARKER']\n", "!!python/object/apply"),
        (b"Linear: !!int abc\n", "!!int"),
        (b"!!set {Linear: null}\n", "!!set"),
        (b"Linear: !local zeros\n", "!local"),
    ],
)
def test_yaml_tags_are_refused(tmp_path: Path, content: bytes, tag: str) -> None:
    _, message = _policy_error(tmp_path, content)
    assert f"YAML tag '{tag}" in message and "is not allowed in a policy file" in message
    assert not (tmp_path / "MARKER").exists() and not Path("MARKER").exists()


# --- policy files: keys and values of the wrong kind ---------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"? [a, b]\n: zeros\n", "line 1: a selector is a list or mapping; write selectors as"),
        (b"? {a: b}\n: zeros\n", "line 1: a selector is a list or mapping; write selectors as"),
        (b"Linear: [zeros]\n", "rule 'Linear': the scheme must be a string such as "
         "xavier_normal, got a list"),
        (b"Linear: {a: b}\n", "got a mapping"),
        (b"Linear:\n", "got nothing (an empty value)"),
        (b"Linear: 3\n", "xavier_normal, got 3"),
        (b"Linear: " + b"9" * 5000 + b"\n", "got 999999999"),
        (b"Linear: 2001-13-45\n", "got 2001-13-45"),
        (b"? " + b"9" * 5000 + b"\n: zeros\n", "is 5,006 characters long; a rule is at most"),
        (b"2001-13-45: zeros\n", "'2001-13-45' is no module class"),
        (b"- Linear=zeros\n", "must hold a mapping of rules (SELECTOR: SCHEME, e.g. Conv2d: "
         "xavier_normal), not a list"),
        (b"zeros\n", "not the single value 'zeros'"),
        (b"", "not empty"),
        (b"{}", "the policy holds no rules; write e.g. Linear: kaiming_normal"),
        (b"Linear: zeros\n---\nReLU: ones\n", "line 2: invalid YAML (expected a single "
         "document in the stream, but found another document); fix the syntax there"),
        (b"Linear: [zeros\n", "line 2: invalid YAML (while parsing a flow sequence: expected "
         "',' or ']', but got '<stream end>'); fix the syntax there"),
    ],
)  # fmt: skip
def test_keys_and_values_of_the_wrong_kind(tmp_path: Path, content: bytes, expected: str) -> None:
    _, message = _policy_error(tmp_path, content)
    assert expected in message
    assert len(message) < 400  # a 5,000-digit number is not echoed whole


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (os.urandom(4000) + b"\xff", "is not UTF-8 text; save it as UTF-8"),
        (b"Linear: zer\xffos\n", "is not UTF-8 text; save it as UTF-8"),
        ("Linear: zeros\n".encode("utf-16"), "is not UTF-8 text; save it as UTF-8"),
        (b"ReLU: ones\nLinear: ze\x00ros\n", "line 2: character #x0000 is not allowed in YAML"),
        (b"Linear: zeros\n" + b"#\n" * 40_000, "is larger than 65,536 bytes, too large for a "
         "policy file"),
        (b"Linear: " + b"z" * 60_000 + b"\n", f"rule 'Linear={'z' * 50}...' is 60,007 "
         "characters long; a rule is at most 1,000"),
        (b"".join(b"L%d: zeros\n" % i for i in range(1001)), "holds 1,001 rules; a policy "
         "holds at most 1,000"),
    ],
    ids=["binary", "invalid-utf8", "utf16", "nul", "huge", "long-line", "many-rules"],
)  # fmt: skip
def test_bytes_that_are_no_policy(tmp_path: Path, content: bytes, expected: str) -> None:
    _, message = _policy_error(tmp_path, content)
    assert expected in message and len(message) < 400


def test_a_utf8_bom_and_crlf_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_bytes(b"\xef\xbb\xbfLinear: zeros\r\n'*.bias': ones\r\n")
    assert policy.read_file(str(path)) == {"Linear": "zeros", "*.bias": "ones"}


def test_a_policy_file_is_a_regular_file(tmp_path: Path) -> None:
    assert _error("inspect", SPEC, "--init", "@/dev/null") == (
        "/dev/null is a device, not a regular file; initcli reads only regular files: copy what "
        "it holds into a file and name that"
    )
    assert _error("inspect", SPEC, "--init", f"@{tmp_path}") == (
        f"{tmp_path} is a directory; give a .yaml policy file"
    )


def _within_seconds(call: Callable[[], object], seconds: float = 20) -> BaseException:
    """The error `call` raises, failing (not hanging) if it blocks: it runs in a daemon thread."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "blocked on the FIFO"
    assert raised, "no error"
    return raised[0]


def test_fifos_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    # Every reader goes through files.open_regular: one check, one message.
    said = (
        f"{fifo} is a FIFO (named pipe), not a regular file; initcli reads only regular files: "
        "copy what it holds into a file and name that"
    )
    for read in (
        lambda: policy.parse(f"@{fifo}", None),
        lambda: load_spec(fifo),
        lambda: baseline.read_baseline(fifo),
    ):
        exc = _within_seconds(read)
        assert isinstance(exc, NotRegularFileError) and str(exc) == said


# --- policy strings: the unknown selector, long and many rules -----------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("Nope=zeros", "rule 'Nope=zeros': 'Nope' is no module class of the model nor of "
         "torch.nn; name one of the model's module types (Linear, ReLU, Sequential), or match "
         "parameter names with a glob such as '*.weight'"),
        ("Nope.weight=zeros", "rule 'Nope.weight=zeros': 'Nope' is no module class of the "
         "model nor of torch.nn; name one of the model's module types (Linear, ReLU, "
         "Sequential), or match parameter names with a glob such as '*.weight'"),
        ("Linaer=zeros", "rule 'Linaer=zeros': 'Linaer' is no module class of the model nor "
         "of torch.nn; did you mean 'Linear'? (the model's module types: Linear, ReLU, "
         "Sequential; a glob such as '*.weight' matches parameter names)"),
        ("*.bias=zeros; Nope=ones", "rule 'Nope=ones': 'Nope' is no module class of the model "
         "nor of torch.nn; name one of the model's module types (Linear, ReLU, Sequential), or "
         "match parameter names with a glob such as '*.weight'"),
    ],
)  # fmt: skip
def test_the_unknown_selector_message(rule: str, message: str) -> None:
    text = _error("inspect", SPEC, "--init", rule)
    assert text == message and "; (" not in text


def test_a_glob_that_matches_nothing_is_a_note_not_an_error() -> None:
    code, _, err = run("inspect", SPEC, "--init", "Nope*=zeros", "-f", "json")
    assert code == 0 and "Note: rule 'Nope*=zeros' sets no parameter of" in err


def test_an_unknown_scheme_parameter_has_no_stray_separator() -> None:
    assert _error("inspect", SPEC, "--init", "Linear=normal:xyz=1") == (
        "rule 'Linear=normal:xyz=1': normal has no parameter 'xyz'; it takes: mean, std"
    )


def test_long_and_many_rules_in_a_string_are_bounded() -> None:
    assert _error("inspect", SPEC, "--init", ";".join(["Linear=zeros"] * 1001)) == (
        "the policy holds 1,001 rules; a policy holds at most 1,000"
    )
    message = _error("inspect", SPEC, "--init", "L" * 100_000 + "=zeros")
    assert message.endswith("is 100,006 characters long; a rule is at most 1,000 (a class name "
                            "or parameter glob, '=', a scheme)")  # fmt: skip
    assert len(message) < 200


# --- baselines -----------------------------------------------------------------------------------


def _entry(**changes: Any) -> dict[str, Any]:
    entry = {"target": SPEC, "args": {}, "total": 51, "trainable": 51, "frozen": 0,
             "buffers": 0, "modules": {}}  # fmt: skip
    return {**entry, **changes}


def _stats(**changes: Any) -> dict[str, Any]:
    return {"init": None, "bias_init": None, "seed": 0, "scheme": None, "params": {}, **changes}


def _baseline_error(tmp_path: Path, text: str | bytes) -> tuple[Path, str]:
    path = tmp_path / "b.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path, _error("check", str(path))


def _dump(*entries: dict[str, Any]) -> str:
    return json.dumps({"format": 1, "models": list(entries)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"format": ' + "9" * 5000 + ', "models": []}', "holds a number initcli cannot read "
         "(Exceeds the limit (4300 digits) for integer string conver...); regenerate it with "
         "initcli snapshot"),
        (_dump(_entry()).replace('"total": 51', '"total": 51, "total": 52'), "gives the key "
         "'total' twice in one object; keep one, or regenerate it with initcli snapshot"),
        ("[" * 100_000 + "]" * 100_000, "nests lists or objects too deeply to be an initcli "
         "baseline"),
        (_dump(_entry(args={"x": json.loads("[" * 40 + "]" * 40)})), "nests lists or objects "
         "more than 32 levels deep, too deeply to be an initcli baseline"),
        (_dump(_entry(total=float("nan"))), "(models.0.total: Input should be a valid integer)"),
        (_dump(_entry()).replace('"total": 51', '"total": 1e400'), "(models.0.total: Input "
         "should be a valid integer)"),
        (_dump(_entry(total=True)), "(models.0.total: Input should be a valid integer)"),
        (_dump(_entry(total="51")), "(models.0.total: Input should be a valid integer)"),
        (_dump(_entry(total=-1)), "(models.0.total: Input should be greater than or equal to 0)"),
        (_dump(_entry(stats=_stats(seed=10**30))), "(models.0.stats.seed: Input should be less "
         "than 18446744073709551616)"),
        (_dump(_entry(stats=_stats(params={"w": {"shape": [2], "init": "x", "mean": float("inf"),
                                                 "std": None, "expected_var": None,
                                                 "status": "ok"}}))),
         "(models.0.stats.params.w.mean: Input should be a finite number)"),
        (_dump(_entry(target="\ud800.yaml")), "(models.0.target: Value error, the target holds "
         "a lone surrogate"),
        (_dump(_entry(target="x\x00.yaml")), "without NUL"),
        (_dump(_entry(target="a" * 100_000 + ".yaml")), "(models.0.target: Value error, a target "
         "is a path or pkg.mod:Name of at most 4,096 characters, without NUL)"),
        (_dump(_entry(**{"k" * 100_000: 1})), "(models.0.kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"),
        (os.urandom(3000) + b"\xff", "is not UTF-8 text"),
        ("", "is not valid JSON (line 1: Expecting value)"),
        ("null", "is not an initcli baseline (the top level: "),
    ],
    ids=["5000-digits", "duplicate-key", "100k-deep", "40-deep-args", "nan", "1e400", "bool",
         "string", "negative", "huge-seed", "inf-stat", "surrogate", "nul", "long-target",
         "long-key", "binary", "empty", "null"],
)  # fmt: skip
def test_hostile_baselines_are_one_line(tmp_path: Path, text: str | bytes, expected: str) -> None:
    path, message = _baseline_error(tmp_path, text)
    assert message.startswith(f"baseline {path} ") and expected in message
    assert len(message) < 400


def test_a_baseline_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    with path.open("wb") as handle:
        handle.write(_dump(_entry()).encode())
        handle.truncate(baseline.MAX_BASELINE_BYTES + 1)  # sparse: never parsed
    with pytest.raises(BaselineError) as info:
        baseline.read_baseline(path)
    assert str(info.value) == (
        f"baseline {path} is larger than 64,000,000 bytes, more than an initcli baseline "
        "holds; regenerate it with initcli snapshot"
    )


def test_a_baseline_with_a_bom_reads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(b"\xef\xbb\xbf" + _dump(_entry()).encode())
    assert baseline.read_baseline(path).models[0].total == 51


def test_recorded_inits_are_vetted_before_any_target_is_imported(tmp_path: Path) -> None:
    marker = tmp_path / "MARKER"
    net = tmp_path / "net.py"
    net.write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
        "from torch import nn\n\nclass Net(nn.Linear):\n"
        "    def __init__(self) -> None:\n        super().__init__(2, 2)\n"
    )
    deep = tmp_path / "deep.yaml"
    deep.write_text("Linear: " + "[" * 5000 + "]" * 5000)
    first = _entry(target=f"{net}:Net")
    for init, expected in [
        ("fn:os:system", "os:system names the standard library module 'os', not a model"),
        ("Linear=zeros; Linear=ones", "rule 'Linear' is given twice"),
        (f"@{deep}", f"{deep}, line 1: lists or mappings nest more than 32 levels deep"),
    ]:
        second = _entry(stats=_stats(init=init))
        path, message = _baseline_error(tmp_path, _dump(first, second))
        assert message.startswith(f"{path}: {SPEC}: ") and expected in message, message
        assert not marker.exists()
