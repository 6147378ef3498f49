"""A HF model folder's own model, built on the meta device from its config.json (transformers)."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules import module as torch_module

from initcli.errors import CheckpointError, InitcliError, first_line
from initcli.heard import library_messages
from initcli.init import recorded, schemes
from initcli.init.recorded import FillLog
from initcli.model import building, record
from initcli.text import first_and_more, printable
from initcli.weights import renames
from initcli.weights.safetensors_files import in_folder, read_json

__all__ = [
    "INSTALL_NOTE",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_DEPTH",
    "Built",
    "HFModel",
    "build_limit",
    "layer_limit",
    "meta_model",
    "rebuilt",
]

# A model's config.json is read whole (it is JSON): real ones are a few kB, the largest (label
# maps of 20k ImageNet-21k classes) ~1 MB. Past this it is refused before it is read.
MAX_CONFIG_BYTES = 16 * 2**20
# Real configs nest 2-4 levels (text_config, rope_scaling); this keeps transformers' recursive
# walks of the config (to_dict, deepcopy) far from Python's recursion limit.
MAX_CONFIG_DEPTH = 64

INSTALL_NOTE = (
    "this folder has a config.json: with transformers installed (pip install 'initcli[hf]') "
    "initcli builds its model on the meta device, so module types, tied weights and torchinfo's "
    "count are the model's own, not inferred."
)


@dataclass(frozen=True)
class HFModel:
    """The folder's model on meta, and how the stored tensor names map onto its own."""

    model: nn.Module
    architecture: str
    names: Mapping[str, str]  # stored name -> the model's state-dict name
    tied: tuple[str, ...]  # model tensors not in the file because they are tied to one that is
    missing: tuple[str, ...]  # model tensors not in the file at all
    unexpected: tuple[str, ...]  # stored tensors the model has no place for
    seconds: float  # what the config read and meta build cost
    fills: FillLog  # the init the constructor and post_init gave each tensor (recorded on meta)

    @cached_property
    def _tensors(self) -> dict[str, torch.Tensor]:
        return dict(self.model.state_dict(keep_vars=True))

    def init_of(self, stored: str, tensor: torch.Tensor) -> schemes.Expectation:
        """What the model's own init (its constructors, then `_init_weights` through post_init)
        implies for the stored tensor `stored`; schemes.UNKNOWN where that is not known."""
        mapped = self.names.get(stored)
        if mapped is None:
            return schemes.UNKNOWN
        own = self._tensors.get(mapped)
        if own is None:
            return schemes.UNKNOWN
        # A tensor stacked or split on load (renames.Renamed.converted) draws as its model
        # tensor does: fans come from the model's shape, not the stored one.
        shaped = tensor if tensor.shape == own.shape else own
        exp = recorded.implied_expectation(self.fills.of(own), shaped)
        return replace(exp, init=f"{exp.init} · model's init") if exp.var is not None else exp


def layer_limit(blocks: int) -> int:
    """The most layers a config.json may give for weights whose numbered blocks reach `blocks`
    (`h.0` … `h.{blocks-1}`): the meta build costs ~15 ms a layer, so a config of 10⁴ layers
    beside two stored ones took minutes. Generous slack keeps partial and stacked layouts."""
    return 4 * blocks + 64


def build_limit(stored: int) -> int:
    """The most parameters, buffers and submodules the meta build may register for `stored`
    tensors (a real model registers 2-3 per stored tensor): past this the build is stopped."""
    return 8 * stored + 4096


@dataclass(frozen=True)
class Built:
    """`meta_model`'s answer: the model (or None), notes for the counts saying why the config was
    not used, and what transformers logged or warned while building (stderr Notes)."""

    model: HFModel | None
    notes: tuple[str, ...] = ()
    heard: tuple[str, ...] = field(default=())


def meta_model(folder: Path, stored: Mapping[str, torch.Tensor]) -> Built:
    """The model of `folder/config.json`, built on meta (nothing downloaded, no code from the
    folder, stdin never read), with the stored names mapped onto it and every stored tensor
    checked against it; Built(None, note) when it is not used.

    Raises CheckpointError when config.json is not a readable config, needs the folder's own
    Python code, or describes tensors of other shapes than the stored ones.
    """
    path = folder / "config.json"
    if not path.exists():  # a FIFO or a folder of that name is refused by read_json
        return Built(None)
    start = time.perf_counter()
    try:
        import transformers
    except ImportError:
        return Built(None, (INSTALL_NOTE,))
    if not in_folder(folder, path):
        raise CheckpointError(
            f"{path} links to a file outside {folder}; initcli reads only the files inside a "
            "weights folder: copy the config into the folder instead of linking it"
        )
    raw = _config_json(path)
    too_big = _too_many_layers(raw, stored)
    if too_big:
        return Built(None, (too_big,))
    model_type = raw.get("model_type")
    has_code = _has_auto_map(raw)
    if has_code and not (isinstance(model_type, str) and model_type in transformers.CONFIG_MAPPING):
        raise _needs_code(folder)
    limit = build_limit(len(stored))
    with library_messages() as heard:
        built = _build(transformers, folder, has_code, limit)
    if not isinstance(built, tuple):
        note = built if built is not None else _too_large(limit, len(stored))
        return Built(None, (note,), tuple(heard))
    model, trace = built
    own_tensors = model.state_dict(keep_vars=True)
    own = set(own_tensors)
    # The names from_pretrained loads each stored tensor into (transformers' own rules).
    renamed = renames.loaded_names(model, stored)
    names = renamed.names
    differ = _misfits(stored, own_tensors, names, renamed.converted)
    if differ:
        if "quantization_config" in raw:
            # A quantized folder stores packed or integer tensors for the float model the
            # config describes: its layout is the stored one, not the config's model.
            note = (
                "config.json describes the model before quantization, whose tensors are not "
                f"the stored ones ({differ[0]}); module types are inferred."
            )
            return Built(None, (note,), tuple(heard))
        raise CheckpointError(
            f"{path} does not fit the stored tensors: {first_and_more(differ, 3, '; ')}; "
            "put the config.json these weights were saved with beside them, or move config.json "
            "away to inspect the tensors alone"
        )
    absent = own - renamed.filled
    shared = _aliases(model)
    tied = sorted(n for n in absent if shared.get(n, set()) & set(names.values()))
    missing = sorted(absent - set(tied))
    seconds = time.perf_counter() - start
    kind = type(model).__name__
    found = HFModel(
        model,
        kind,
        names,
        tuple(tied),
        tuple(missing),
        renamed.unexpected,
        seconds,
        FillLog.of_trace(trace),
    )
    return Built(found, (), tuple(heard))


def rebuilt(model: nn.Module) -> Built:
    """A transformers model that the user's own code built (and loaded), built again on meta
    from its config with its init recorded: what its class draws for each tensor, so `inspect
    TARGET --loaded` judges the loaded values as a folder with config.json is judged. Built(None)
    for a module that is not a transformers model, or a class that cannot be built again."""
    try:
        import transformers
    except ImportError:
        return Built(None)
    if not isinstance(model, transformers.PreTrainedModel):
        return Built(None)
    start = time.perf_counter()
    stored = model.state_dict()
    limit = build_limit(len(stored))
    trace = record.Trace()
    failed: str | None = None
    with library_messages() as heard:
        over: list[bool] = []
        try:
            with _bounded(limit) as over, building.on_meta(trace):
                meta = type(model)(copy.deepcopy(model.config))
            replay = getattr(meta, "initialize_weights", None)
            if callable(replay):
                with building.recording(trace):
                    replay()
        except Exception as exc:  # the user's class: whatever it raises, its init stays unknown
            failed = first_line(exc)
    if failed is not None or over:
        why = failed or f"it registers more than {limit:,} tensors and modules"
        note = f"{type(model).__name__} was not built again on meta ({why}): named inits only."
        return Built(None, (note,), tuple(heard))
    renamed = renames.loaded_names(meta, stored)
    found = HFModel(
        meta,
        type(model).__name__,
        renamed.names,
        (),
        (),
        renamed.unexpected,
        time.perf_counter() - start,
        FillLog.of_trace(trace),
    )
    return Built(found, (), tuple(heard))


def _build(
    transformers: Any, folder: Path, has_code: bool, limit: int
) -> tuple[nn.Module, record.Trace] | str | None:
    """The config's model built on meta and its recorded init; else a note saying why the config
    is not used, or None when the build was stopped at `limit` registrations."""
    over: list[bool] = []
    try:
        # trust_remote_code=False: transformers never asks (its prompt reads stdin only when the
        # argument is None) and never imports code from the folder.
        config = transformers.AutoConfig.from_pretrained(
            str(folder), local_files_only=True, trust_remote_code=False
        )
        _drop_auto_maps(config)  # no later Auto* call sees remote code to ask about
        cls = _native_class(transformers, config)
        if has_code and cls is None and type(config) not in transformers.MODEL_MAPPING:
            raise _needs_code(folder)
        trace = record.Trace()
        with _bounded(limit) as over, building.on_meta(trace):
            if cls is not None:
                model = cls(config)
            else:
                model = transformers.AutoModel.from_config(config, trust_remote_code=False)
        replay = getattr(model, "initialize_weights", None)
        if callable(replay):
            with building.recording(trace):
                replay()
    except InitcliError:
        raise
    except Exception as exc:  # any config transformers cannot build: the file-only path
        if over:
            return None
        return f"config.json was not used ({first_line(exc)}); module types are inferred."
    if over:  # the model caught the stop and went on
        return None
    return model, trace


def _needs_code(folder: Path) -> CheckpointError:
    return CheckpointError(
        f"{folder}/config.json names the folder's own Python code (auto_map) for a model "
        "transformers does not have, and initcli never runs code from a weights folder; to "
        "inspect it anyway, write a factory that builds the model on purpose, e.g. build.py "
        "with def build(): ..., and run initcli inspect build.py:build"
    )


def _config_json(path: Path) -> dict[str, Any]:
    """config.json parsed, size and depth checked; a JSON object."""
    raw = read_json(path, MAX_CONFIG_BYTES, "model config")
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} is not a model config: its JSON is not an object")
    todo: list[tuple[dict[str, Any] | list[Any], int]] = [(raw, 1)]
    while todo:
        value, level = todo.pop()
        if level > MAX_CONFIG_DEPTH:
            raise CheckpointError(
                f"{path} is not a model config: it nests deeper than {MAX_CONFIG_DEPTH} levels"
            )
        children = value.values() if isinstance(value, dict) else value
        todo.extend((c, level + 1) for c in children if isinstance(c, (dict, list)))
    return raw


def _walk(raw: dict[str, Any]) -> Iterator[tuple[str, object]]:
    """Every (key, value) of the config's objects, nested ones included (depth is checked)."""
    todo: list[object] = [raw]
    while todo:
        value = todo.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                yield str(key), child
                todo.append(child)
        elif isinstance(value, list):
            todo.extend(value)


def _has_auto_map(raw: dict[str, Any]) -> bool:
    return any(key == "auto_map" for key, _ in _walk(raw))


def _drop_auto_maps(config: Any) -> None:
    """Remove `auto_map` from the config and its sub-configs: transformers asks on stdin whether
    to run a folder's code only where a config has one, so after this no call can ask."""
    todo, seen = [config], set()
    while todo:
        found = todo.pop()
        if id(found) in seen:
            continue
        seen.add(id(found))
        if "auto_map" in vars(found):
            delattr(found, "auto_map")
        todo.extend(v for v in vars(found).values() if _is_config(v))


def _is_config(value: object) -> bool:
    from transformers import PretrainedConfig

    return isinstance(value, PretrainedConfig)


def _native_class(transformers: Any, config: Any) -> type[nn.Module] | None:
    """The transformers model class config.architectures names, if it is one (a name that is not
    a transformers model class, e.g. a function, is never called)."""
    arch = next(iter(getattr(config, "architectures", None) or []), None)
    if not isinstance(arch, str) or not arch.isidentifier() or arch.startswith("_"):
        return None
    try:
        cls = getattr(transformers, arch, None)
    except Exception:  # a lazy import of a model whose dependencies are missing
        return None
    if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
        return cls
    return None


_BLOCK = re.compile(r"\.(\d{1,9})(?=\.|$)")
_LAYER_KEY = re.compile(r"(^|_)layers?$")


def _too_many_layers(raw: dict[str, Any], stored: Mapping[str, torch.Tensor]) -> str | None:
    """A note when a layer count in config.json (n_layer, num_hidden_layers, …) is far above the
    numbered blocks the stored names reach (`h.0`, `h.1`, …); None when it fits."""
    blocks: dict[str, int] = {}
    for name in stored:
        for match in _BLOCK.finditer(name):
            where = name[: match.start()]
            blocks[where] = max(blocks.get(where, 0), int(match.group(1)) + 1)
    reach = max(blocks.values(), default=0)
    limit = layer_limit(reach)
    for key, value in _walk(raw):
        count = value if isinstance(value, int) and not isinstance(value, bool) else 0
        if count > limit and _LAYER_KEY.search(key):
            return (
                f"config.json gives {printable(key)} = {count:,}, but the stored tensors hold "
                f"{reach:,} numbered blocks (at most {limit:,} layers are built for them): its "
                "model was not built; module types are inferred."
            )
    return None


def _too_large(limit: int, stored: int) -> str:
    return (
        f"config.json describes a model of over {limit:,} tensors and modules for the "
        f"{stored:,} stored tensors: its build was stopped; module types are inferred."
    )


@contextmanager
def _bounded(limit: int) -> Iterator[list[bool]]:
    """Stop a build once it registers more than `limit` parameters, buffers and submodules: a
    config cannot make the meta build run for minutes. Yields a list that holds True once
    stopped (a model may catch the error; every later registration raises again)."""
    over: list[bool] = []
    registered = 0

    def hook(*_: object) -> None:
        nonlocal registered
        registered += 1
        if registered > limit:
            over[:] = [True]
            raise _TooLargeError(f"the build registered more than {limit:,} tensors and modules")

    handles = [
        torch_module.register_module_parameter_registration_hook(hook),
        torch_module.register_module_buffer_registration_hook(hook),
        torch_module.register_module_module_registration_hook(hook),
    ]
    try:
        yield over
    finally:
        for handle in handles:
            handle.remove()


class _TooLargeError(Exception):
    """Raised inside a meta build that registers more than its limit."""


def _kind(dtype: torch.dtype) -> str:
    if dtype.is_floating_point:
        return "float"
    return "complex" if dtype.is_complex else "integer"


def _misfits(
    stored: Mapping[str, torch.Tensor],
    own: Mapping[str, torch.Tensor],
    names: Mapping[str, str],
    converted: frozenset[str] = frozenset(),
) -> list[str]:
    """Each stored tensor whose shape, or kind of dtype (float, complex, integer), is not its
    model tensor's, in words. Float widths may differ: a bf16 checkpoint of an fp32-built model
    is the usual case; so may the shapes of `converted` tensors (stacked or split on load)."""
    found = []
    for name, mapped in names.items():
        have, want = stored[name], own[mapped]
        shaped = name in converted or have.shape == want.shape
        if not shaped or _kind(have.dtype) != _kind(want.dtype):
            dtypes = _kind(have.dtype) != _kind(want.dtype)
            found.append(
                f"{printable(name)} is {_described(have, dtypes)} in the file, "
                f"{_described(want, dtypes)} in the model"
            )
    return found


def _described(t: torch.Tensor, dtype: bool) -> str:
    return f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}" if dtype else str(list(t.shape))


def _aliases(model: nn.Module) -> dict[str, set[str]]:
    """State-dict name -> the other names of the same tensor (tied weights)."""
    by_id: dict[int, set[str]] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        by_id.setdefault(id(t), set()).add(name)
    return {n: group - {n} for group in by_id.values() for n in group}
