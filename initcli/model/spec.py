"""Load, validate and build a YAML MLP spec (docs/contract/yaml-spec.md)."""

from __future__ import annotations

import difflib
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

import torch
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from initcli.errors import SchemeError, SpecError
from initcli.files import open_regular

# Checks a spec's `init:` (a scheme or a policy) and raises SchemeError: initcli.init.policy's
# check_spec_init, handed in by whoever reads the spec.
InitCheck = Callable[[str | dict[str, str]], None]

Activation = Literal[
    "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "selu", "elu", "identity"
]
Norm = Literal["batchnorm", "layernorm"]

ACTIVATIONS: tuple[str, ...] = get_args(Activation)
NORMS: tuple[str, ...] = get_args(Norm)

_ACTIVATION_MODULES: dict[str, Callable[[], torch.nn.Module]] = {
    "relu": torch.nn.ReLU,
    "leaky_relu": torch.nn.LeakyReLU,
    "tanh": torch.nn.Tanh,
    "sigmoid": torch.nn.Sigmoid,
    "gelu": torch.nn.GELU,
    "silu": torch.nn.SiLU,
    "selu": torch.nn.SELU,
    "elu": torch.nn.ELU,
    "identity": torch.nn.Identity,
}
_NORM_MODULES: dict[str, Callable[[int], torch.nn.Module]] = {
    "batchnorm": torch.nn.BatchNorm1d,
    "layernorm": torch.nn.LayerNorm,
}

# A spec file larger than this is refused before it is read: 10,000 layers written out one per
# line take ~0.4 MB, and PyYAML reads ~1 MB/s, so parsing stays within about a second.
MAX_SPEC_BYTES = 1_000_000
# The most layers a spec may list or expand to: every module of a spec is listed (and built on
# meta for torchinfo), and 10,000 layers take ~7 s. A list longer than this is refused while the
# YAML is parsed, before a single layer object is built; more after `repeat:` is refused by
# report._shared.check_spec_depth, by arithmetic.
MAX_LAYERS = 10_000
# Widths (units, input) above this are refused with the limit, not left to overflow in torch.
MAX_UNITS = 2**31 - 1

# A spec is three levels deep (top level, layers list, layer); the cap stops deeply nested input
# before PyYAML's recursive composer can hit Python's recursion limit.
_MAX_DEPTH = 32
_YAML_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_YAML_TAG + name for name in ("null", "bool", "int", "float", "str"))
_SEQ_TAG = _YAML_TAG + "seq"
_MAP_TAG = _YAML_TAG + "map"
_ALLOWED_TAGS = _SCALAR_TAGS | {_SEQ_TAG, _MAP_TAG}

# What each key takes, and an example to copy, for error messages.
_EXPECTED: dict[str, tuple[str, str]] = {
    "name": ("a string", "name: MyMLP"),
    "input": ("an integer ≥ 1", "input: 4"),
    "bias": ("true or false", "bias: false"),
    "init": ("a scheme string or a mapping of rules", "init: kaiming_normal"),
    "layers": ("a non-empty list of layers", "layers: [{units: 5}]"),
    "units": ("an integer ≥ 1", "units: 64"),
    "activation": (f"one of {', '.join(ACTIVATIONS)}", "activation: relu"),
    "norm": (f"one of {', '.join(NORMS)}", "norm: layernorm"),
    "dropout": ("a number p with 0 ≤ p < 1", "dropout: 0.1"),
    "repeat": ("an integer ≥ 1", "repeat: 3"),
}
_LAYER_EXPECTED = ("a mapping", "- {units: 5, activation: relu}")


class LayerSpec(BaseModel):
    """One entry of `layers:`: a Linear layer with its optional norm, activation and dropout."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    units: int = Field(ge=1, le=MAX_UNITS, description="out_features of this Linear layer")
    activation: Activation | None = Field(default=None, description="activation after the layer")
    bias: bool | None = Field(
        default=None, description="whether the layer has a bias; unset means the top-level bias"
    )
    norm: Norm | None = Field(default=None, description="normalization after the Linear layer")
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0, description="dropout probability")
    # No upper bound here: report refuses a spec that expands past its limit, saying how many.
    repeat: int = Field(default=1, ge=1, description="how many times this layer is stacked")


class MLPSpec(BaseModel):
    """A whole YAML MLP spec."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    name: str | None = Field(default=None, description="a name for the model (metadata only)")
    input: int = Field(ge=1, le=MAX_UNITS, description="in_features of the first layer")
    bias: bool = Field(default=True, description="default bias for every layer")
    init: str | dict[str, str] | None = Field(
        default=None,
        description="init used when --init is not given: a scheme (kaiming_normal:mode=fan_out) "
        "or a policy, rules as a string or a mapping SELECTOR: SCHEME (Linear: xavier_normal)",
    )
    layers: list[LayerSpec] = Field(min_length=1, description="the layers, in order")

    @field_validator("init")
    @classmethod
    def _known_scheme(
        cls, value: str | dict[str, str] | None, info: ValidationInfo
    ) -> str | dict[str, str] | None:
        # The scheme grammar belongs to initcli.init, which builds on this package: the caller
        # hands its check in (resolve's check_init), so a bad init: still names its line.
        check: InitCheck | None = (info.context or {}).get("check_init")
        if value is not None and check is not None:
            try:
                check(value)
            except SchemeError as exc:
                raise PydanticCustomError("init_scheme", "{reason}", {"reason": str(exc)}) from None
        return value


@dataclass(frozen=True)
class Layer:
    """One Linear layer after `repeat:` is expanded and the default bias is applied."""

    index: int
    in_features: int
    out_features: int
    bias: bool
    activation: str | None
    norm: str | None
    dropout: float


_KeyPath = tuple[str | int, ...]


def _error(source: str, line: int | None, message: str) -> SpecError:
    where = f"{source}, line {line}: " if line is not None else f"{source}: "
    # Every SpecError is one line: cli.py prints it after "Error: " and nothing else.
    return SpecError(" ".join((where + message).splitlines()))


class _Mark(Protocol):
    line: int


def _line(mark: _Mark | None) -> int | None:
    return mark.line + 1 if mark is not None else None


def _quote(text: str) -> str:
    # Keys and values come from the user's file: keep them short in a one-line message.
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def _check_events(text: str, source: str) -> None:
    """Refuse anchors, aliases, odd tags and deep nesting from the event stream, before any node
    is built: an alias bomb is caught at its first anchor, in time linear in the text."""
    depth = 0
    items = 0  # entries of the current list or mapping two levels down: `layers:`
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if not isinstance(event, yaml.NodeEvent | yaml.CollectionEndEvent):
            continue
        line = _line(event.start_mark)
        if depth == 2 and isinstance(event, yaml.NodeEvent):
            items += 1
            if items > MAX_LAYERS:
                raise _error(
                    source,
                    line,
                    f"layers: more than {MAX_LAYERS:,} entries; initcli handles at most "
                    f"{MAX_LAYERS:,} layers: make the model smaller",
                )
        # An AliasEvent carries the anchor it refers to, so this catches both &x and *x.
        if isinstance(event, yaml.NodeEvent) and event.anchor is not None:
            raise _error(
                source,
                line,
                "YAML anchors and aliases (&x / *x) are not allowed in a "
                "spec; write the layers out or use repeat:",
            )
        if (
            isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent)
            and event.tag is not None
            and event.tag not in _ALLOWED_TAGS
        ):
            raise _error(
                source,
                line,
                f"tag '{_show_tag(event.tag)}' is not allowed in a "
                "spec; remove it (a spec holds only plain YAML values)",
            )
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            items = 0 if depth == 2 else items
            if depth > _MAX_DEPTH:
                raise _error(
                    source,
                    line,
                    f"nesting is deeper than {_MAX_DEPTH} levels; a spec "
                    "needs three (top level, layers:, one layer)",
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        _check_events(text, source)
        loader = yaml.SafeLoader(text)
        try:
            return loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "syntax error"
        if exc.context:
            problem = f"{exc.context}{', ' if problem.startswith('but') else ': '}{problem}"
        raise _error(
            source, _line(mark), f"invalid YAML: {problem}; fix the syntax there"
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise _error(
            source, line, f"character #x{exc.character:04x} is not allowed in YAML; remove it"
        ) from None


def _name(path: _KeyPath) -> str:
    """How messages name a place in the spec: `units in layer 2`, `layer 2`, `input`."""
    if not path:
        return "the top level"
    if path[0] == "layers" and len(path) in (2, 3) and isinstance(path[1], int):
        layer = f"layer {path[1] + 1}"
        return layer if len(path) == 2 else f"{path[2]} in {layer}"
    return "".join(f"[{p + 1}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _where(path: _KeyPath) -> str:
    return "at the top level" if not path else f"in {_name(path)}"


def _to_python(
    node: yaml.Node,
    path: _KeyPath,
    lines: dict[_KeyPath, int | None],
    source: str,
    constructor: yaml.constructor.SafeConstructor,
) -> Any:
    """Build plain Python values from the node tree, recording each key's line for messages.

    Done by hand rather than with construct_document: PyYAML keeps the last of duplicate keys
    silently, and its scalar constructors raise bare ValueError/KeyError on input such as
    `!!int abc`, `0b_` or the date `2001-13-45`.
    """
    line = _line(node.start_mark)
    lines.setdefault(path, line)
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise _error(
                source,
                line,
                f"{_name(path)}: tag '{_show_tag(node.tag)}' does not fit a mapping; remove it",
            )
        result: dict[str, Any] = {}
        first_seen: dict[str, int | None] = {}
        for key_node, value_node in node.value:
            key_line = _line(key_node.start_mark)
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error(
                    source,
                    key_line,
                    f"a key {_where(path)} is a list or mapping; "
                    "keys must be plain names such as units",
                )
            key = str(key_node.value)
            if key in first_seen:
                raise _error(
                    source,
                    key_line,
                    f"duplicate key {_quote(key)} {_where(path)} "
                    f"(first at line {first_seen[key]}); keep only one",
                )
            first_seen[key] = key_line
            lines[(*path, key)] = key_line
            result[key] = _to_python(value_node, (*path, key), lines, source, constructor)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise _error(
                source,
                line,
                f"{_name(path)}: tag '{_show_tag(node.tag)}' does not fit a list; remove it",
            )
        return [
            _to_python(item, (*path, i), lines, source, constructor)
            for i, item in enumerate(node.value)
        ]
    kind = _show_tag(node.tag).removeprefix("!!")
    if node.tag not in _SCALAR_TAGS:
        # Only implicit resolution gets here (explicit tags were checked on the events):
        # PyYAML reads e.g. 2024-01-01 as a date.
        raise _error(
            source,
            line,
            f"{_name(path)}: value {_quote(node.value)} reads as a YAML "
            f"{kind}; quote it if you mean a string",
        )
    try:
        return constructor.construct_object(node)
    except (ValueError, KeyError, OverflowError) as exc:
        raise _error(
            source,
            line,
            f"{_name(path)}: value {_quote(node.value)} is not a valid "
            f"{kind}; fix it or quote it to make it a string",
        ) from exc


def _line_of(loc: _KeyPath, lines: dict[_KeyPath, int | None]) -> int | None:
    # A missing key has no node of its own: fall back to the enclosing mapping.
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _describe(value: object, strings_expected: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, str):
        shown = _quote(value)
        return shown if strings_expected else f"{shown} (a string)"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def _validation_message(exc: ValidationError) -> tuple[_KeyPath, str]:
    errors = exc.errors()
    # A misspelt key also reports its correct spelling as missing; the unknown key is the
    # useful half, so it comes first.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc: _KeyPath = tuple(err["loc"])
    if loc[:1] == ("init",):
        # init: is a string or a mapping; pydantic names the union member tried (init.str).
        loc = ("init",)
    field = str(loc[-1]) if loc else ""
    if err["type"] == "extra_forbidden":
        valid = list((MLPSpec if len(loc) == 1 else LayerSpec).model_fields)
        close = difflib.get_close_matches(field, valid, n=1)
        hint = f"did you mean '{close[0]}'?" if close else "remove it"
        return loc, (
            f"unknown key {_quote(field)} {_where(loc[:-1])}; {hint} "
            f"(valid keys: {', '.join(valid)})"
        )
    if err["type"] == "init_scheme":
        return loc, f"{field}: {err['msg']}"
    if err["type"] == "less_than_equal":
        limit = err["ctx"]["le"]
        return loc, (
            f"{_name(loc)} is {err['input']:,}, more than initcli's limit of {limit:,}; lower it"
        )
    expected, example = (
        _LAYER_EXPECTED
        if isinstance(loc[-1], int)
        else _EXPECTED.get(field, ("valid", f"{field}: ..."))
    )
    if err["type"] == "missing":
        return loc, f"missing key '{field}' {_where(loc[:-1])}; add it, e.g. {example} ({expected})"
    choices = {"activation": ACTIVATIONS, "norm": NORMS}.get(field, ())
    shown = _describe(err["input"], strings_expected=bool(choices) or field in ("name", "init"))
    message = f"{_name(loc)} must be {expected}, got {shown}"
    close = (
        difflib.get_close_matches(err["input"], choices, n=1)
        if isinstance(err["input"], str)
        else []
    )
    if close:
        return loc, f"{message}; did you mean '{close[0]}'?"
    return loc, f"{message}; write e.g. {example}"


def _too_big(source: str) -> SpecError:
    return SpecError(
        f"{source} is larger than {MAX_SPEC_BYTES:,} bytes, the most a spec may be "
        f"({MAX_LAYERS:,} layers written out fit in less): use repeat: for stacked layers"
    )


def parse_spec(text: str, source: str = "<spec>", check_init: InitCheck | None = None) -> MLPSpec:
    """Parse and validate spec text; every problem is a one-line SpecError naming key and line."""
    if len(text) > MAX_SPEC_BYTES:
        raise _too_big(source)
    root = _compose(text, source)
    if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _YAML_TAG + "null"):
        raise SpecError(f"{source} is empty; a spec needs input: and layers:")
    if not isinstance(root, yaml.MappingNode):
        is_list = isinstance(root, yaml.SequenceNode)
        kind = "a list" if is_list else f"the value {_quote(str(root.value))}"
        raise _error(
            source,
            _line(root.start_mark),
            f"a spec must be a mapping with input: "
            f"and layers:, not {kind}; write e.g. input: 4 then layers: [{{units: 2}}]",
        )
    lines: dict[_KeyPath, int | None] = {}
    data = _to_python(root, (), lines, source, yaml.constructor.SafeConstructor())
    try:
        return MLPSpec.model_validate(data, context={"check_init": check_init})
    except ValidationError as exc:
        loc, message = _validation_message(exc)
        raise _error(source, _line_of(loc, lines), message) from None


def load_spec(path: str | os.PathLike[str], check_init: InitCheck | None = None) -> MLPSpec:
    """Read a spec file and parse it; an unreadable file is a SpecError too."""
    source = os.fspath(path)
    try:
        with open_regular(path) as handle:
            # Read one byte past the limit: enough to know, without reading a huge file whole.
            data = handle.read(MAX_SPEC_BYTES + 1)
            if len(data) > MAX_SPEC_BYTES:
                raise _too_big(source)
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file; check the path") from None
    except IsADirectoryError:
        raise SpecError(f"{source} is a directory; give the path of a .yaml spec file") from None
    except OSError as exc:
        raise SpecError(
            f"{source}: cannot read it ({exc.strerror}); check the path and its permissions"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise _error(
            source,
            line,
            f"the file is not UTF-8 text (byte 0x{data[exc.start]:02x}); save it as UTF-8",
        ) from None
    return parse_spec(text, source, check_init)


def expand_layers(spec: MLPSpec) -> list[Layer]:
    """The spec's layers with `repeat:` expanded, bias defaults applied and widths chained."""
    layers: list[Layer] = []
    in_features = spec.input
    for layer in spec.layers:
        bias = spec.bias if layer.bias is None else layer.bias
        for _ in range(layer.repeat):
            layers.append(
                Layer(
                    index=len(layers) + 1,
                    in_features=in_features,
                    out_features=layer.units,
                    bias=bias,
                    activation=layer.activation,
                    norm=layer.norm,
                    dropout=layer.dropout,
                )
            )
            in_features = layer.units
    return layers


def parameter_count(spec: MLPSpec) -> int:
    """Exact parameter count by arithmetic, without expanding `repeat:` or building anything."""
    total = 0
    in_features = spec.input
    for layer in spec.layers:
        bias = spec.bias if layer.bias is None else layer.bias
        norm = 2 * layer.units if layer.norm is not None else 0  # weight and bias per unit
        per_layer = (layer.units if bias else 0) + norm  # everything but the weight matrix
        # The first repetition reads in_features, the others read units.
        total += in_features * layer.units + per_layer
        total += (layer.repeat - 1) * (layer.units * layer.units + per_layer)
        in_features = layer.units
    return total


def build_mlp(spec: MLPSpec) -> torch.nn.Sequential:
    """Build the spec with the modules' own default init (seed before calling for determinism)."""
    children: OrderedDict[str, torch.nn.Module] = OrderedDict()
    for layer in expand_layers(spec):
        i = layer.index
        children[f"fc{i}"] = torch.nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        if layer.norm is not None:
            children[f"norm{i}"] = _NORM_MODULES[layer.norm](layer.out_features)
        if layer.activation is not None:
            children[f"act{i}"] = _ACTIVATION_MODULES[layer.activation]()
        if layer.dropout > 0:
            children[f"drop{i}"] = torch.nn.Dropout(layer.dropout)
    return torch.nn.Sequential(children)


def spec_json_schema() -> dict[str, object]:
    """JSON Schema of the YAML spec, for editor completion and validation."""
    return MLPSpec.model_json_schema()
