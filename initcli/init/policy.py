"""Init policies: `SELECTOR=SCHEME` rules, `@file.yaml`, `fn:`/`method:` — parsed and matched."""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import yaml
from torch import nn

from initcli.errors import PolicyError, SchemeError
from initcli.files import read_regular
from initcli.init import schemes
from initcli.init.idle_rules import mro_names, why_idle
from initcli.init.norms import norm_of
from initcli.init.schemes import Choices, Scheme
from initcli.model import building
from initcli.text import first_and_more

# A policy file holds a few dozen rules; anything much larger is not one.
MAX_POLICY_BYTES = 65_536
# A policy file holds one flat mapping; the bound stops deep nesting before PyYAML's recursive
# composer reaches Python's recursion limit (a file of 5,000 `[` would).
MAX_POLICY_DEPTH = 32
# The most rules a policy may hold: each parameter is matched against the rules in order, so
# rules times parameters is the work; real policies hold a few dozen.
MAX_RULES = 1_000
# The longest rule (`SELECTOR=SCHEME`): real ones are under a hundred characters.
MAX_RULE_CHARS = 1_000
# How much of a selector or rule a message quotes.
_SHOWN_CHARS = 60
_GLOB = frozenset("*?[")
FN, METHOD = "fn", "method"


@dataclass(frozen=True)
class Rule:
    """One `SELECTOR=SCHEME`; `text` is what the init column shows for what it sets."""

    selector: str
    scheme: Scheme
    text: str

    @property
    def is_glob(self) -> bool:
        return any(c in _GLOB for c in self.selector)


@dataclass(frozen=True)
class UserCode:
    """`fn:TARGET` (model.apply(fn)) or `method:NAME` (model.NAME()), run after the seed."""

    kind: str  # FN or METHOD
    target: str  # `pkg.mod:name` / `file.py:name`, or the method's name

    @property
    def name(self) -> str:
        """The function's own name, as messages and labels say it: `init_weights`."""
        return self.target.rsplit(":", 1)[-1]

    def describe(self) -> str:
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class Policy:
    """What --init asked for: a plain scheme (no rules), rules, or the user's own init code.

    A plain scheme is the one-rule case: `weight` and `bias` are its schemes. With rules, `weight`
    is the `schemes.RULES` marker and `bias` is --bias-init, the scheme of the biases of a module
    a bare class rule claims. With `code`, both are unused.
    """

    weight: Scheme
    bias: Scheme
    rules: tuple[Rule, ...] = ()
    code: UserCode | None = None

    @property
    def is_plain(self) -> bool:
        return not self.rules and self.code is None

    @property
    def is_default(self) -> bool:
        return self.is_plain and self.weight.is_default

    def describe(self) -> str:
        """The heading and JSON `scheme`: the scheme, the rules joined by `; `, or `fn:...`."""
        if self.code is not None:
            return self.code.describe()
        if self.rules:
            return "; ".join(rule.text for rule in self.rules)
        return self.weight.describe()

    def scheme_names(self) -> set[str]:
        """Every scheme name the policy may apply (orthogonal's values depend on threads)."""
        return {self.weight.name, self.bias.name, *(rule.scheme.name for rule in self.rules)}


@dataclass(frozen=True)
class Assignment:
    """A policy's rules matched on one model: per parameter the scheme and the rule's text."""

    choices: Choices
    # Parameters no rule sets: they keep their constructors' values (`default`).
    defaults: tuple[str, ...]
    remarks: tuple[str, ...]


def is_rules(text: str) -> bool:
    """Whether --init text is rules (`Linear=normal:std=0.01`) rather than one scheme
    (`normal:std=0.01`): a `;`, or an `=` before any `:`."""
    eq, colon = text.find("="), text.find(":")
    return ";" in text or (eq >= 0 and (colon < 0 or eq < colon))


def parse(init: str | Mapping[str, object] | None, bias_init: str | None) -> Policy:
    """--init (or a spec's `init:`) and --bias-init as one Policy; raise what to fix."""
    if isinstance(init, Mapping):
        return _with_rules(rules_from_mapping(init, "init: "), bias_init)
    text = (init or "default").strip()
    for kind in (FN, METHOD):
        if text.startswith(kind + ":"):
            return _with_code(kind, text[len(kind) + 1 :].strip(), bias_init)
    if text.startswith("@"):
        path = text[1:].strip()
        return _with_rules(rules_from_mapping(read_file(path), f"{path}: "), bias_init)
    if is_rules(text):
        return _with_rules(parse_rules(text), bias_init)
    return _plain(schemes.parse_scheme(text), bias_init)


def _plain(weight: Scheme, bias_init: str | None) -> Policy:
    if weight.is_default:
        if bias_init is not None and not schemes.parse_scheme(bias_init).is_default:
            raise SchemeError(
                "--bias-init needs a named --init: with default, the modules' own "
                "constructors set the biases (add e.g. --init kaiming_normal)"
            )
        return Policy(weight, weight)
    return Policy(weight, _bias(bias_init))


def _bias(bias_init: str | None) -> Scheme:
    bias = schemes.parse_scheme(bias_init or "zeros")
    if bias.info.min_dims > 1:
        raise SchemeError(
            f"--bias-init {bias.name} needs ≥2-D tensors and biases are 1-D; use "
            "zeros, ones, constant, uniform, normal, trunc_normal or default"
        )
    return bias


def _with_rules(rules: tuple[Rule, ...], bias_init: str | None) -> Policy:
    return Policy(Scheme(schemes.RULES), _bias(bias_init), rules)


def _with_code(kind: str, target: str, bias_init: str | None) -> Policy:
    example = "fn:pkg.mod:init_weights or fn:file.py:init_weights"
    if kind == METHOD and not target.isidentifier():
        raise PolicyError(
            f"method:{target} does not name a method; write e.g. method:initialize_weights"
        )
    if kind == METHOD and target.startswith("_"):
        raise PolicyError(
            f"method:{target} is not a public method; name a public method, e.g. "
            "method:reset_parameters / method:init_weights"
        )
    if kind == FN and (":" not in target or not target.rsplit(":", 1)[-1].strip()):
        raise PolicyError(f"fn:{target} names no function; write e.g. {example}")
    if bias_init is not None:
        raise PolicyError(
            f"--bias-init does not apply to {kind}:{target}: that code sets the biases itself"
        )
    default = schemes.DEFAULT
    return Policy(default, default, code=UserCode(kind, target))


def parse_rules(text: str) -> tuple[Rule, ...]:
    """`SELECTOR=SCHEME; ...` as rules, in order; a malformed rule is a PolicyError."""
    parts = text.split(";")
    if len(parts) > MAX_RULES:
        raise PolicyError(
            f"the policy holds {len(parts):,} rules; a policy holds at most {MAX_RULES:,}"
        )
    rules: list[Rule] = []
    first: dict[str, int] = {}
    for i, part in enumerate(parts, 1):
        rule = part.strip()
        if not rule:
            raise PolicyError(
                f"rule {i} of {len(parts)} in the policy is empty; remove the extra ';'"
            )
        selector, eq, scheme_text = rule.partition("=")
        if not eq:
            raise PolicyError(
                f"rule {_show(rule)} has no '='; write SELECTOR=SCHEME, "
                "e.g. Linear=kaiming_normal or *.bias=zeros"
            )
        made = make_rule(selector, scheme_text)
        before = first.setdefault(made.selector, i)
        if before != i:
            # First match wins: the later rule would silently never apply.
            raise PolicyError(
                f"rule {_show(made.selector)} is given twice, as rules {before} and {i} "
                f"of the policy ({_show(rules[before - 1].text)} and {_show(made.text)}); keep one"
            )
        rules.append(made)
    return tuple(rules)


def make_rule(selector: str, scheme_text: object, where: str = "") -> Rule:
    """One rule from its selector and scheme text; PolicyError with the rule quoted."""
    selector = selector.strip()
    if not isinstance(scheme_text, str):
        raise PolicyError(
            f"{where}rule {_show(selector)}: the scheme must be a string such as xavier_normal, "
            f"got {_cut(repr(scheme_text))}"
        )
    scheme_text = scheme_text.strip()
    text = f"{selector}={scheme_text}"
    shown = _show(text)
    if len(text) > MAX_RULE_CHARS:
        raise PolicyError(
            f"{where}rule {shown} is {len(text):,} characters long; a rule is at most "
            f"{MAX_RULE_CHARS:,} (a class name or parameter glob, '=', a scheme)"
        )
    if not selector or any(c.isspace() for c in selector):
        raise PolicyError(
            f"{where}rule {shown} has no selector before '='; write e.g. Conv2d={scheme_text}"
            if not selector
            else f"{where}rule {shown}: a selector has no spaces; write e.g. Conv2d.weight"
        )
    try:
        scheme = schemes.parse_scheme(scheme_text)
    except SchemeError as exc:
        raise PolicyError(f"{where}rule {shown}: {exc}") from None
    if scheme.name == schemes.AUTO:
        raise PolicyError(
            f"{where}rule {shown}: auto chooses per weight itself and cannot be one rule; "
            "use --init auto alone, or name a scheme"
        )
    return Rule(selector, scheme, text)


def rules_from_mapping(mapping: Mapping[Any, object], where: str) -> tuple[Rule, ...]:
    """A mapping `SELECTOR: SCHEME` (a policy file, a spec's `init:`) as rules, in order."""
    if not mapping:
        raise PolicyError(f"{where}the policy holds no rules; write e.g. Linear: kaiming_normal")
    if len(mapping) > MAX_RULES:
        raise PolicyError(
            f"{where}the policy holds {len(mapping):,} rules; a policy holds at most {MAX_RULES:,}"
        )
    return tuple(make_rule(str(key), value, where) for key, value in mapping.items())


def read_file(path: str) -> Mapping[str, str]:
    """A policy file (`--init @policy.yaml`): one YAML mapping `SELECTOR: SCHEME`, in order.

    Read as data: at most MAX_POLICY_BYTES from a regular file, composed by `_PolicyLoader`
    (no anchors, aliases or tags, at most MAX_POLICY_DEPTH levels), and only the mapping's text
    is used, so no YAML constructor runs (`2001-13-45` or a 5,000-digit number cannot raise).
    """
    if not path:
        raise PolicyError("--init @ names no file; write e.g. --init @policy.yaml")
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path} is not UTF-8 text; save it as UTF-8") from None
    try:
        loader = _PolicyLoader(text, path)
    except yaml.reader.ReaderError as exc:  # the reader checks every character up front
        line = text.count("\n", 0, exc.position) + 1
        raise PolicyError(
            f"{path}, line {line}: character #x{exc.character:04x} is not allowed in YAML; "
            "remove it"
        ) from None
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        problem = exc.problem or "syntax error"
        if exc.context:
            problem = f"{exc.context}{', ' if problem.startswith('but') else ': '}{problem}"
        # An unquoted `*.bias:` is read as a YAML alias: the usual cause of a syntax error here.
        hint = (
            "quote selectors that start with '*', e.g. '*.bias': zeros"
            if "alias" in problem
            else "fix the syntax there"
        )
        mark = exc.problem_mark or exc.context_mark
        raise PolicyError(f"{_at(path, mark)}invalid YAML ({_one_line(problem)}); {hint}") from None
    finally:
        loader.dispose()
    if not isinstance(root, yaml.MappingNode):
        kind = (
            "empty"
            if root is None or (isinstance(root, yaml.ScalarNode) and root.value == "")
            else "a list"
            if isinstance(root, yaml.SequenceNode)
            else f"the single value {_show(root.value)}"
        )
        raise PolicyError(
            f"{path} must hold a mapping of rules (SELECTOR: SCHEME, e.g. Conv2d: "
            f"xavier_normal), not {kind}"
        )
    return _rules_text(root, path)


def _cut(text: str) -> str:
    """Text from the user's input, short enough for a one-line message."""
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _show(text: str) -> str:
    return repr(_cut(text))


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Mark(Protocol):
    line: int


def _line(mark: _Mark | None) -> int | None:
    return None if mark is None else mark.line + 1


def _at(path: str, mark: _Mark | None) -> str:
    line = _line(mark)
    return f"{path}, line {line}: " if line is not None else f"{path}: "


def _read_bytes(path: str) -> bytes:
    """At most MAX_POLICY_BYTES + 1 bytes of a regular file, checked before any read blocks."""
    try:
        data = read_regular(path, MAX_POLICY_BYTES + 1)
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file; check the path") from None
    except IsADirectoryError:
        raise PolicyError(f"{path} is a directory; give a .yaml policy file") from None
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(
            f"{path} is larger than {MAX_POLICY_BYTES:,} bytes, too large for a policy file"
        )
    return data


class _PolicyLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses, as each node starts, what a policy never holds:
    anchors and aliases (an alias bomb is refused at its first anchor), tags, and nesting past
    MAX_POLICY_DEPTH (before the recursive composer could reach Python's recursion limit)."""

    def __init__(self, text: str, path: str) -> None:
        super().__init__(text)
        self._path = path
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        where = _at(self._path, event.start_mark)
        # An AliasEvent carries the anchor it names, so this refuses both &x and *x.
        if getattr(event, "anchor", None) is not None:
            raise PolicyError(
                f"{where}YAML anchors and aliases (&x / *x) are not allowed in a policy file; "
                "write each scheme out, and quote selectors that start with '*' "
                "(e.g. '*.bias': zeros)"
            )
        tag = getattr(event, "tag", None)
        if tag is not None:
            raise PolicyError(
                f"{where}YAML tag {_show(_short_tag(tag))} is not allowed in a policy file; "
                "remove it (a policy holds only SELECTOR: SCHEME strings)"
            )
        if not isinstance(event, yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_POLICY_DEPTH:
            raise PolicyError(
                f"{where}lists or mappings nest more than {MAX_POLICY_DEPTH} levels deep; "
                "a policy file is one mapping SELECTOR: SCHEME"
            )
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _rules_text(root: yaml.MappingNode, path: str) -> dict[str, str]:
    """The mapping's selectors and schemes as the text written, refusing a selector given twice
    (first match wins, so the second would silently never apply), a selector that is a list or
    mapping, and a scheme that is not a string."""
    if len(root.value) > MAX_RULES:
        raise PolicyError(
            f"{path} holds {len(root.value):,} rules; a policy holds at most {MAX_RULES:,}"
        )
    rules: dict[str, str] = {}
    first_line: dict[str, int | None] = {}
    for key_node, value_node in root.value:
        where = _at(path, key_node.start_mark)
        if not isinstance(key_node, yaml.ScalarNode):
            raise PolicyError(
                f"{where}a selector is a list or mapping; write selectors as names such as "
                "Linear or '*.bias'"
            )
        selector = str(key_node.value).strip()
        line = _line(key_node.start_mark)
        if selector in first_line:
            raise PolicyError(
                f"rule {_show(selector)} is given twice, on lines {first_line[selector]} and "
                f"{line} of {path}; keep one"
            )
        first_line[selector] = line
        if isinstance(value_node, yaml.ScalarNode) and value_node.tag == _STR_TAG:
            rules[selector] = str(value_node.value)
            continue
        got = (
            "a list"
            if isinstance(value_node, yaml.SequenceNode)
            else "a mapping"
            if isinstance(value_node, yaml.MappingNode)
            else "nothing (an empty value)"
            if value_node.tag == _NULL_TAG
            else _cut(str(value_node.value))
        )
        raise PolicyError(
            f"{where}rule {_show(selector)}: the scheme must be a string such as "
            f"xavier_normal, got {got}"
        )
    return rules


_YAML_TAG = "tag:yaml.org,2002:"
_STR_TAG = _YAML_TAG + "str"
_NULL_TAG = _YAML_TAG + "null"


def _short_tag(tag: str) -> str:
    """A tag as it is written in YAML: `!!int`, not `tag:yaml.org,2002:int`."""
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


# --- matching rules to a model's parameters ------------------------------------------------------


def _torch_classes() -> frozenset[str]:
    return frozenset(
        name
        for name, value in vars(nn).items()
        if isinstance(value, type) and issubclass(value, nn.Module)
    )


def assign(policy: Policy, model: nn.Module, target: str) -> Assignment:
    """Match the rules on `model` (first match wins) and check each scheme fits its parameter.

    A glob matches the full parameter name; `Class` or `Class.param` a parameter held directly by
    a module with that class in its MRO. A bare class sets the module's ≥2-D parameters and a
    norm layer's weight; its other (1-D) parameters take the first rule that names them, else
    --bias-init. Unknown classes and unfit schemes raise PolicyError; idle rules are remarks.
    """
    held = schemes.owners(model)
    named = [(n, p) for n, p in model.named_parameters() if not building.is_uninitialized(p)]
    known = frozenset().union(*(mro_names(m) for m in model.modules())) | _torch_classes()
    kinds = [_kind(rule, known, model, {n for n, _ in named}) for rule in policy.rules]
    choices: dict[str, tuple[Scheme, str]] = {}
    used: set[int] = set()  # the rules that set (or claimed) some parameter
    defaults: list[str] = []
    for name, param in named:
        module = held[id(param)][1]
        mro = mro_names(module)
        leaf = name.rsplit(".", 1)[-1]
        norm = norm_of(module)
        weightlike = param.dim() >= 2 or (norm is not None and leaf == norm.gain)
        claimed: int | None = None
        picked: tuple[Scheme, str] | None = None
        for i, (rule, (cls, pname)) in enumerate(zip(policy.rules, kinds, strict=True)):
            if cls is None:
                hit = fnmatch.fnmatchcase(name, rule.selector)
            elif pname is not None:
                hit = cls in mro and leaf == pname
            else:
                hit = cls in mro and weightlike
                if cls in mro and not weightlike and claimed is None:
                    claimed = i
            if hit:
                used.add(i)
                picked = (rule.scheme, rule.text)
                break
        if picked is None and claimed is not None:
            used.add(claimed)
            picked = (policy.bias, f"--bias-init={policy.bias.describe()}")
        if picked is None or picked[0].is_default:
            defaults.append(name)
            continue
        _check_fits(picked, name, param)
        choices[name] = picked
    remarks = [
        f"rule '{rule.text}' sets no parameter of {target}"
        + why_idle(rule.selector, kind, model, choices)
        for i, (rule, kind) in enumerate(zip(policy.rules, kinds, strict=True))
        if i not in used
    ]
    if defaults:
        shown = first_and_more(defaults, 5)
        remarks.append(
            f"{len(defaults)} parameter{'s' if len(defaults) != 1 else ''} of {target} match no "
            f"rule and keep their constructors' values (default): {shown}"
        )
    return Assignment(choices, tuple(defaults), tuple(remarks))


def _kind(
    rule: Rule, known: frozenset[str], model: nn.Module, names: set[str]
) -> tuple[str | None, str | None]:
    """(class, parameter) for a class selector; (None, None) for a glob or a parameter name."""
    if rule.is_glob or rule.selector in names:
        return None, None
    head, _, leaf = rule.selector.partition(".")
    if head in known:
        return head, leaf or None
    own = sorted({type(m).__name__ for m in model.modules()})
    close = difflib.get_close_matches(head, own, n=1, cutoff=0.5)
    types = first_and_more(own, _SHOWN_TYPES)
    problem = (
        f"rule {_show(rule.text)}: {_show(head)} is no module class of the model nor of torch.nn"
    )
    if close:
        raise PolicyError(
            f"{problem}; did you mean '{close[0]}'? (the model's module types: {types}; "
            "a glob such as '*.weight' matches parameter names)"
        )
    raise PolicyError(
        f"{problem}; name one of the model's module types ({types}), or match parameter names "
        "with a glob such as '*.weight'"
    )


# How many of the model's module types the unknown-class message lists.
_SHOWN_TYPES = 20


def _check_fits(picked: tuple[Scheme, str], name: str, param: nn.Parameter) -> None:
    scheme, label = picked
    if scheme.info.min_dims > param.dim():
        raise PolicyError(
            f"rule '{label}' gives {name} (shape {tuple(param.shape)}) {scheme.name}, which needs "
            f"a tensor of ≥{scheme.info.min_dims} dimensions; narrow the selector (e.g. "
            "'Class.weight') or choose a scheme such as normal or zeros for it"
        )


def check_spec_init(value: str | dict[str, str]) -> None:
    """A YAML spec's `init:`: a scheme, rules as a string, or a mapping of rules (SchemeError)."""
    if isinstance(value, dict):
        rules_from_mapping(value, "")
    elif is_rules(value):
        parse_rules(value)
    else:
        schemes.parse_scheme(value)
