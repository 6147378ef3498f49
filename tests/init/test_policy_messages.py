"""init/policy in process: each refusal of --init / --bias-init by its exact text, the bounds on
rules and policy files at their edges, and the remarks `assign` makes about idle rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from initcli.errors import PolicyError, SchemeError
from initcli.init import policy
from initcli.init.policy import MAX_POLICY_BYTES, MAX_RULE_CHARS, MAX_RULES

_BIAS_1D = (
    "--bias-init {0} needs ≥2-D tensors and biases are 1-D; use "
    "zeros, ones, constant, uniform, normal, trunc_normal or default"
)
_NO_FN = "fn:{0} names no function; write e.g. fn:pkg.mod:init_weights or fn:file.py:init_weights"

REFUSED: dict[str, tuple[str | dict[str, object], str | None, type[Exception], str]] = {
    "method not a name": (
        "method:a.b", None, PolicyError,
        "method:a.b does not name a method; write e.g. method:initialize_weights",
    ),
    "private method": (
        "method:_hidden", None, PolicyError,
        "method:_hidden is not a public method; name a public method, e.g. "
        "method:reset_parameters / method:init_weights",
    ),
    "fn without colon": ("fn:nocolon", None, PolicyError, _NO_FN.format("nocolon")),
    "fn without name": ("fn:pkg.mod: ", None, PolicyError, _NO_FN.format("pkg.mod:")),
    "fn ending in a colon": ("fn:a.py:b:", None, PolicyError, _NO_FN.format("a.py:b:")),
    "fn with bias": (
        "fn:pkg.mod:init", "zeros", PolicyError,
        "--bias-init does not apply to fn:pkg.mod:init: that code sets the biases itself",
    ),
    "method with bias": (
        "method:init_weights", "normal", PolicyError,
        "--bias-init does not apply to method:init_weights: that code sets the biases itself",
    ),
    "default with bias": (
        "default", "normal", SchemeError,
        "--bias-init needs a named --init: with default, the modules' own constructors set the "
        "biases (add e.g. --init kaiming_normal)",
    ),
    "2-D bias scheme": (
        "kaiming_normal", "xavier_normal", SchemeError, _BIAS_1D.format("xavier_normal"),
    ),
    "2-D bias scheme under rules": (
        "Linear=normal", "kaiming_uniform", SchemeError, _BIAS_1D.format("kaiming_uniform"),
    ),
    "2-D bias scheme under a mapping": (
        {"Linear": "normal"}, "xavier_uniform", SchemeError, _BIAS_1D.format("xavier_uniform"),
    ),
    "no selector": (
        "=normal", None, PolicyError,
        "rule '=normal' has no selector before '='; write e.g. Conv2d=normal",
    ),
    "spaced selector": (
        "Linear weight=normal", None, PolicyError,
        "rule 'Linear weight=normal': a selector has no spaces; write e.g. Conv2d.weight",
    ),
    "auto as a rule": (
        "Linear=auto", None, PolicyError,
        "rule 'Linear=auto': auto chooses per weight itself and cannot be one rule; use --init "
        "auto alone, or name a scheme",
    ),
    "mapping with a number": (
        {"Linear": 3}, None, PolicyError,
        "init: rule 'Linear': the scheme must be a string such as xavier_normal, got 3",
    ),
    "mapping with None": (
        {"Conv2d": None}, None, PolicyError,
        "init: rule 'Conv2d': the scheme must be a string such as xavier_normal, got None",
    ),
    "rule without =": (
        "Linear=normal; zeros", None, PolicyError,
        "rule 'zeros' has no '='; write SELECTOR=SCHEME, e.g. Linear=kaiming_normal or "
        "*.bias=zeros",
    ),
    "empty @": ("@ ", None, PolicyError, "--init @ names no file; write e.g. --init @policy.yaml"),
    "missing policy file": (
        "@/nonexistent/p.yaml", None, PolicyError,
        "/nonexistent/p.yaml: no such policy file; check the path",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(REFUSED))
def test_each_refusal_says_what_to_write(case: str) -> None:
    init, bias, kind, message = REFUSED[case]
    with pytest.raises(kind) as caught:
        policy.parse(init, bias)
    assert type(caught.value) is kind and str(caught.value) == message


def test_a_directory_and_an_unreadable_file_are_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        policy.parse(f"@{tmp_path}", None)
    assert str(caught.value) == f"{tmp_path} is a directory; give a .yaml policy file"
    # Any other OSError by its strerror: a path through a file (NotADirectoryError).
    (tmp_path / "f").write_text("")
    through = tmp_path / "f" / "p.yaml"
    with pytest.raises(PolicyError) as caught:
        policy.read_file(str(through))
    assert str(caught.value) == f"{through}: cannot read it (Not a directory)"


def test_the_policy_file_size_bound_is_inclusive(tmp_path: Path) -> None:
    line = "Linear: normal\n"
    exact = tmp_path / "exact.yaml"
    exact.write_text(line + "#" * (MAX_POLICY_BYTES - len(line)))
    assert policy.read_file(str(exact)) == {"Linear": "normal"}
    over = tmp_path / "over.yaml"
    over.write_text(line + "#" * (MAX_POLICY_BYTES - len(line) + 1))
    with pytest.raises(PolicyError) as caught:
        policy.read_file(str(over))
    assert str(caught.value) == (
        f"{over} is larger than {MAX_POLICY_BYTES:,} bytes, too large for a policy file"
    )


def _read(tmp_path: Path, text: str) -> str:
    """The refusal of `--init @p.yaml` holding `text`, without the file's path in front."""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError) as caught:
        policy.parse(f"@{path}", None)
    return str(caught.value).removeprefix(str(path))


def test_a_policy_file_s_rules_keep_its_name_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    assert _read(tmp_path, "Linear: normal\n'*.bias': [1]\n") == (
        ", line 2: rule '*.bias': the scheme must be a string such as xavier_normal, got a list"
    )
    assert _read(tmp_path, "Linear: normal\n[a, b]: zeros\n") == (
        ", line 2: a selector is a list or mapping; write selectors as names such as "
        "Linear or '*.bias'"
    )
    assert _read(tmp_path, "Linear: 'kaiming_normal:mode=sideways'\n").startswith(
        ": rule 'Linear=kaiming_normal:mode=sideways': "
    )
    path.write_text("Linear: normal\n")
    parsed = policy.parse(f"@{path}", "ones")
    assert [r.text for r in parsed.rules] == ["Linear=normal"] and parsed.bias.name == "ones"


def test_rule_counts_and_lengths_at_their_bounds(tmp_path: Path) -> None:
    many = ";".join(f"l{i}.weight=normal" for i in range(MAX_RULES))
    assert len(policy.parse(many, None).rules) == MAX_RULES
    path = tmp_path / "many.yaml"
    path.write_text("".join(f"l{i}.weight: normal\n" for i in range(MAX_RULES)))
    assert len(policy.parse(f"@{path}", None).rules) == MAX_RULES
    path.write_text("".join(f"l{i}.weight: normal\n" for i in range(MAX_RULES + 1)))
    with pytest.raises(PolicyError) as caught:
        policy.parse(f"@{path}", None)
    assert str(caught.value) == (
        f"{path} holds {MAX_RULES + 1:,} rules; a policy holds at most {MAX_RULES:,}"
    )
    with pytest.raises(PolicyError) as caught:
        policy.parse({f"l{i}.weight": "normal" for i in range(MAX_RULES + 1)}, None)
    assert str(caught.value) == (
        f"init: the policy holds {MAX_RULES + 1:,} rules; a policy holds at most {MAX_RULES:,}"
    )
    selector = "x" * (MAX_RULE_CHARS - len("=normal"))
    assert policy.make_rule(selector, "normal").text == f"{selector}=normal"
    with pytest.raises(PolicyError) as caught:
        policy.make_rule(selector + "x", "normal")
    shown = repr(("x" * 60)[:57] + "...")
    assert str(caught.value) == (
        f"rule {shown} is {MAX_RULE_CHARS + 1:,} characters long; a rule is at most "
        f"{MAX_RULE_CHARS:,} (a class name or parameter glob, '=', a scheme)"
    )
    # Quoted text is cut at 60 characters, no earlier.
    assert policy._cut("y" * 60) == "y" * 60


@pytest.mark.parametrize(
    ("text", "rules"),
    [
        ("Linear=normal", True), ("a=b:c", True), ("=x", True), ("a;b", True),
        ("normal:std=0.1", False), ("kaiming_normal:mode=fan_out", False), ("x", False),
        (":=", False), ("a:=b", False), ("a=:", True),
    ],
)  # fmt: skip
def test_rules_are_told_from_a_scheme_by_where_the_first_equals_sign_is(
    text: str, rules: bool
) -> None:
    assert policy.is_rules(text) is rules


def test_a_spec_s_init_is_checked_as_a_scheme_rules_or_a_mapping() -> None:
    policy.check_spec_init("kaiming_normal")
    policy.check_spec_init("Linear=normal")
    policy.check_spec_init({"Linear": "normal"})
    with pytest.raises(SchemeError, match=r"^unknown scheme 'nonsense'"):
        policy.check_spec_init("nonsense")
    with pytest.raises(PolicyError) as caught:
        policy.check_spec_init({"Linear": "auto"})
    assert str(caught.value).startswith("rule 'Linear=auto': auto chooses")


class _Scale(nn.Module):
    """A module whose only parameter is 1-D and no norm gain: a class rule leaves it to
    --bias-init, and the rule counts as used."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))


def _nested() -> nn.Module:
    return nn.Sequential(
        nn.Sequential(nn.Linear(4, 4), _Scale()),
        nn.Linear(4, 2),
        nn.LayerNorm(2),
    )


def test_assign_names_idle_rules_and_default_parameters() -> None:
    model = _nested()
    rules = policy.parse(
        "Linear.bias=normal; _Scale=normal; Conv2d=zeros; LayerNorm.weight=ones", "zeros"
    )
    done = policy.assign(rules, model, "m")
    # Class.param matches the parameter's own name in a nested module (0.0.bias), not its path.
    assert {n: label for n, (_, label) in done.choices.items()} == {
        "0.0.bias": "Linear.bias=normal",
        "1.bias": "Linear.bias=normal",
        "0.1.scale": "--bias-init=zeros",
        "2.weight": "LayerNorm.weight=ones",
    }
    assert done.defaults == ("0.0.weight", "1.weight", "2.bias")
    assert done.remarks[0].startswith("rule 'Conv2d=zeros' sets no parameter of m")
    assert done.remarks[1:] == (
        "3 parameters of m match no rule and keep their constructors' values (default): "
        "0.0.weight, 1.weight, 2.bias",
    )


def test_one_default_parameter_is_singular_and_six_are_cut_at_five() -> None:
    one = policy.assign(policy.parse("Linear.weight=normal", None), nn.Linear(2, 2), "m")
    assert one.remarks == (
        "1 parameter of m match no rule and keep their constructors' values (default): bias",
    )
    six = nn.Sequential(*[nn.Linear(2, 2) for _ in range(3)])
    many = policy.assign(policy.parse("Conv2d=normal; *.none=zeros", None), six, "m")
    assert many.remarks[-1] == (
        "6 parameters of m match no rule and keep their constructors' values (default): "
        "0.weight, 0.bias, 1.weight, 1.bias, 2.weight and 1 more"
    )


def test_an_unknown_class_suggests_the_one_closest_match() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    with pytest.raises(PolicyError) as caught:
        policy.assign(policy.parse("Lineer=normal", None), model, "m")
    assert str(caught.value) == (
        "rule 'Lineer=normal': 'Lineer' is no module class of the model nor of torch.nn; did "
        "you mean 'Linear'? (the model's module types: LayerNorm, Linear, Sequential; a glob "
        "such as '*.weight' matches parameter names)"
    )


def test_a_scheme_that_needs_two_dimensions_on_a_bias_says_how_to_narrow() -> None:
    with pytest.raises(PolicyError) as caught:
        model = nn.Sequential(nn.Linear(2, 3))
        policy.assign(policy.parse("*.bias=xavier_normal", None), model, "m")
    assert str(caught.value) == (
        "rule '*.bias=xavier_normal' gives 0.bias (shape (3,)) xavier_normal, which needs a tensor "
        "of ≥2 dimensions; narrow the selector (e.g. 'Class.weight') or choose a scheme such as "
        "normal or zeros for it"
    )


def test_the_nesting_bound_is_exact_and_counted_per_branch(tmp_path: Path) -> None:
    from initcli.init.policy import MAX_POLICY_DEPTH

    # The top mapping is level 1: a value nested to the bound is composed (and then refused as
    # not a string); one level more is refused while composing, at its line.
    inner = "[" * (MAX_POLICY_DEPTH - 1) + "]" * (MAX_POLICY_DEPTH - 1)
    assert _read(tmp_path, f"a: {inner}\nb: {inner}\n") == (
        ", line 1: rule 'a': the scheme must be a string such as xavier_normal, got a list"
    )
    deeper = "[" * MAX_POLICY_DEPTH + "]" * MAX_POLICY_DEPTH
    assert _read(tmp_path, f"a: {inner}\nb: {deeper}\n") == (
        f", line 2: lists or mappings nest more than {MAX_POLICY_DEPTH} levels deep; a policy "
        "file is one mapping SELECTOR: SCHEME"
    )


def test_a_character_yaml_forbids_and_a_tag_are_named_with_their_line(tmp_path: Path) -> None:
    bad = (
        "\nLinear: normal\n'*.bias': zer\x07os\nConv2d: zeros\nLayerNorm: ones\nEmbedding: normal\n"
    )
    assert _read(tmp_path, bad) == (", line 3: character #x0007 is not allowed in YAML; remove it")
    assert _read(tmp_path, "Linear: normal\nConv2d: !!str zeros\n") == (
        ", line 2: YAML tag '!!str' is not allowed in a policy file; remove it (a policy holds "
        "only SELECTOR: SCHEME strings)"
    )
    assert _read(tmp_path, "") == (
        " must hold a mapping of rules (SELECTOR: SCHEME, e.g. Conv2d: xavier_normal), not empty"
    )
    assert _read(tmp_path, "''\n") == (
        " must hold a mapping of rules (SELECTOR: SCHEME, e.g. Conv2d: xavier_normal), not empty"
    )
    assert _read(tmp_path, "- a\n") == (
        " must hold a mapping of rules (SELECTOR: SCHEME, e.g. Conv2d: xavier_normal), not a list"
    )
