"""What a probe feeds a model and reads back: the input's shape, a seeded batch, labels, output."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from initcli.errors import ArgError, ProbeError, TargetError, first_line
from initcli.model import resolve

DEFAULT_BATCH = 256
# What an input shape inferred from a first Conv or Embedding assumes (--input-shape overrides).
DEFAULT_SEQ_LEN = 16
DEFAULT_SPATIAL = {1: (32,), 2: (32, 32), 3: (16, 16, 16)}

# Where the input batch's random stream starts, relative to the init's: the input must not be
# drawn from the same stream as the weights, or x·Wᵀ picks up a spurious diagonal (measured: the
# first ReLU layer's std doubles). A 64-bit LCG step turns the seed into a distinct one.
_LCG_A = 6364136223846793005
_LCG_C = 1442695040888963407


def input_seed(seed: int) -> int:
    """The seed of the input batch's generator: derived from --seed, never equal to it."""
    return (seed * _LCG_A + _LCG_C) % (1 << 63)


# --- the input's shape --------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The per-sample input shape (no batch dimension) and how it was found."""

    shape: tuple[int, ...]
    token_ids: int | None  # integer ids in [0, token_ids) for an Embedding; None: N(0, 1) floats
    source: str
    # The forward's keyword for it (a transformers model's main_input_name); None: positional.
    keyword: str | None = None


# One sample's sizes, each separated by one `,`, `x` or `×` (spaces around it allowed) or by
# spaces alone; nothing else, so `4,,4` or `4,4 x` is a typo to report, not a shape to guess.
_SHAPE = re.compile(r"\s*\d{1,18}(?:(?:\s*[,x×]\s*|\s+)\d{1,18})*\s*")


def parse_shape(text: str) -> tuple[int, ...]:
    """`--input-shape 3,32,32` (also 3x32x32): the shape of one sample, batch dimension left out."""
    shape = tuple(int(p) for p in re.findall(r"\d+", text)) if _SHAPE.fullmatch(text) else ()
    if not shape or any(d < 1 for d in shape):
        raise ArgError(
            f"--input-shape {text!r} is not a shape; give positive sizes of one sample without "
            "the batch dimension, e.g. --input-shape 3,32,32 (the batch size is --batch-size)"
        )
    return shape


def holds_weight(module: nn.Module) -> bool:
    """Whether the module holds a weight matrix (≥2-D parameter) itself: a layer an init shapes."""
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


def infer_input(model: nn.Module) -> InputSpec:
    """From the first weighted module in registration order: Linear, Conv or Embedding."""
    for name, module in model.named_modules():
        if not holds_weight(module):
            continue
        label = f"{name or 'the model'} ({type(module).__name__})"
        if isinstance(module, nn.Embedding | nn.EmbeddingBag):
            return InputSpec(
                (DEFAULT_SEQ_LEN,),
                module.num_embeddings,
                f"token ids for {label}, {DEFAULT_SEQ_LEN} per sample (assumed)",
            )
        if isinstance(module, nn.Linear) and module.in_features > 0:
            return InputSpec((module.in_features,), None, f"in_features of {label}")
        if isinstance(module, nn.modules.conv._ConvNd) and module.in_channels > 0:
            spatial = DEFAULT_SPATIAL.get(len(module.kernel_size))
            if spatial is not None:
                size = "×".join(map(str, spatial))
                return InputSpec(
                    (module.in_channels, *spatial),
                    None,
                    f"in_channels of {label}, spatial size {size} (assumed)",
                )
        raise ProbeError(
            f"cannot infer the input shape from the first layer, {label}; give it with "
            "--input-shape (one sample, no batch dimension), e.g. --input-shape 3,32,32"
        )
    raise ProbeError(
        "cannot infer the input shape: the model has no Linear, Conv or Embedding layer; give "
        "it with --input-shape (one sample, no batch dimension)"
    )


def input_spec(
    model: nn.Module, spec_input: int | None, input_shape: tuple[int, ...] | None
) -> InputSpec:
    """--input-shape, else the YAML spec's `input:`, else inferred from the first layer; for a
    transformers model, from its main input (token ids, pixel values, audio features)."""
    keyword = main_input(model)
    if keyword is not None:
        return _main_input_spec(model, keyword, input_shape)
    token_ids = None
    for module in model.modules():
        if holds_weight(module):
            if isinstance(module, nn.Embedding | nn.EmbeddingBag):
                token_ids = module.num_embeddings
            break
    if input_shape is not None:
        return InputSpec(input_shape, token_ids, "--input-shape")
    if spec_input is not None:
        return InputSpec((spec_input,), None, "the spec's input:")
    return infer_input(model)


def make_batch(spec: InputSpec, batch_size: int, seed: int) -> torch.Tensor:
    """A seeded batch: N(0, 1) floats, or uniform token ids for an Embedding first layer."""
    gen = torch.Generator().manual_seed(input_seed(seed))
    shape = (batch_size, *spec.shape)
    if spec.token_ids is not None:
        return torch.randint(0, spec.token_ids, shape, generator=gen)
    return torch.randn(shape, generator=gen)


# --- transformers models: their main input ------------------------------------------------------

# What a speech model's input is assumed to be without --input-shape: one second at 16 kHz for raw
# audio (wav2vec2's input_values); Whisper's input_features are fixed by its config.
DEFAULT_AUDIO_SAMPLES = 16_000
INPUT_HINT = (
    "pass --input file.py:make_batch (a function returning a tensor or a dict of keyword arguments)"
)


def main_input(model: nn.Module) -> str | None:
    """A transformers model's main input keyword (input_ids, pixel_values, ...); None otherwise.

    Read from the model's own attributes, so that plain torch models never import transformers.
    """
    name = getattr(model, "main_input_name", None)
    return name if isinstance(name, str) and hasattr(model, "config") else None


def _size(value: object) -> tuple[int, ...] | None:
    if isinstance(value, int) and value > 0:
        return (value, value)
    if isinstance(value, list | tuple) and all(isinstance(v, int) and v > 0 for v in value):
        return tuple(value)
    return None


def _main_input_spec(
    model: nn.Module, keyword: str, input_shape: tuple[int, ...] | None
) -> InputSpec:
    config = getattr(model, "config", None)
    cls = type(model).__name__
    if keyword in ("input_ids", "decoder_input_ids"):
        get = getattr(model, "get_input_embeddings", None)
        embeddings = get() if callable(get) else None
        vocab = getattr(embeddings, "num_embeddings", None) or getattr(config, "vocab_size", None)
        if not isinstance(vocab, int) or vocab < 1:
            raise ProbeError(f"{cls} takes {keyword} but names no vocabulary size; {INPUT_HINT}")
        if input_shape is not None and len(input_shape) != 1:
            raise ArgError(
                f"{cls} takes token ids: --input-shape is the sequence length, e.g. "
                f"--input-shape {DEFAULT_SEQ_LEN}, got {len(input_shape)} sizes"
            )
        seq = input_shape or (DEFAULT_SEQ_LEN,)
        how = "--input-shape" if input_shape else "assumed"
        return InputSpec(
            seq, vocab, f"{keyword} of {cls}, sequence length {seq[0]} ({how})", keyword
        )
    if keyword == "pixel_values":
        if input_shape is not None:
            return InputSpec(input_shape, None, f"{keyword} of {cls}, --input-shape", keyword)
        channels = getattr(config, "num_channels", 3)
        side = _size(getattr(config, "image_size", None))
        how = "config" if side is not None else "size assumed; --input-shape 3,H,W sets it"
        side = side or DEFAULT_SPATIAL[2]
        size = "×".join(map(str, (channels, *side)))
        return InputSpec((channels, *side), None, f"{keyword} of {cls}, {size} ({how})", keyword)
    if keyword == "input_features":
        bins = getattr(config, "num_mel_bins", None) or getattr(config, "feature_size", None)
        frames = getattr(config, "max_source_positions", None)
        if input_shape is not None:
            return InputSpec(input_shape, None, f"{keyword} of {cls}, --input-shape", keyword)
        if not isinstance(bins, int) or not isinstance(frames, int):
            raise ProbeError(
                f"{cls} takes input_features and its config does not give their shape; give it "
                "with --input-shape (features, frames), or " + INPUT_HINT
            )
        # Whisper's encoder halves the frames with a stride-2 conv to max_source_positions.
        return InputSpec(
            (bins, 2 * frames), None, f"{keyword} of {cls}, {bins}×{2 * frames} (config)", keyword
        )
    if keyword == "input_values":
        shape: tuple[int, ...] = input_shape or (DEFAULT_AUDIO_SAMPLES,)
        how = "--input-shape" if input_shape else "1 s at 16 kHz, assumed"
        return InputSpec(shape, None, f"{keyword} of {cls}, {shape[0]} samples ({how})", keyword)
    raise ProbeError(f"{cls} takes {keyword}, for which initcli builds no batch; {INPUT_HINT}")


# --- the batch -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """One forward pass's arguments, what they are, and what makes the model take its own loss."""

    args: tuple[torch.Tensor, ...]
    kwargs: Mapping[str, object] = field(default_factory=dict)
    kind: str = "float32 N(0, 1)"
    source: str = ""
    labels: str | None = None  # how the `labels` keyword was made; None: no labels passed

    @property
    def main(self) -> torch.Tensor:
        """The input a report shows: the positional tensor, else the first keyword tensor."""
        if self.args:
            return self.args[0]
        return next(v for v in self.kwargs.values() if isinstance(v, torch.Tensor))

    def feed(self, model: nn.Module) -> object:
        return model(*self.args, **self.kwargs)


def _kind(spec: InputSpec) -> str:
    return (
        f"token ids in [0, {spec.token_ids})" if spec.token_ids is not None else "float32 N(0, 1)"
    )


def _class_names(model: nn.Module) -> set[str]:
    return {c.__name__ for c in type(model).__mro__}


@functools.cache
def _task_classes() -> dict[str, frozenset[str]]:
    """transformers' own lists of model classes per task (lm: labels are the input ids; classes:
    labels are one class per sample)."""
    from transformers.models.auto import modeling_auto as names

    def flat(*mappings: Mapping[str, str | Sequence[str]]) -> frozenset[str]:
        out: set[str] = set()
        for mapping in mappings:
            for value in mapping.values():
                out |= {value} if isinstance(value, str) else set(value)
        return frozenset(out)

    return {
        "lm": flat(
            names.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            names.MODEL_FOR_MASKED_LM_MAPPING_NAMES,
            names.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES,
        ),
        "classes": flat(
            names.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
            names.MODEL_FOR_IMAGE_CLASSIFICATION_MAPPING_NAMES,
            names.MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING_NAMES,
        ),
    }


def _accepts(model: nn.Module, keyword: str) -> bool:
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params


def task_of(model: nn.Module) -> str | None:
    """ "lm" (labels = the input ids), "classes" (one label per sample) or None: what labels a
    transformers model's own loss takes, from transformers' task lists (subclasses included)."""
    if main_input(model) is None or not _accepts(model, "labels"):
        return None
    found = _class_names(model)
    for task, classes in _task_classes().items():
        if found & classes:
            return task
    return None


def build_batch(model: nn.Module, spec: InputSpec, batch_size: int, seed: int) -> Batch:
    """The seeded input (make_batch) as the model takes it, with labels where they can be made:
    the ids themselves for a language model, random classes for a classifier."""
    x = make_batch(spec, batch_size, seed)
    if spec.keyword is None:
        return Batch((x,), {}, _kind(spec), spec.source)
    kwargs: dict[str, object] = {spec.keyword: x}
    labels = None
    task = task_of(model)
    config = getattr(model, "config", None)
    # A stream of its own, apart from the input's (input_seed applied twice).
    gen = torch.Generator().manual_seed(input_seed(input_seed(seed)))
    if task == "lm" and spec.token_ids is not None:
        kwargs["labels"] = x
        labels = f"labels = {spec.keyword}"
    elif task == "classes" and isinstance(getattr(config, "num_labels", None), int):
        n = max(int(getattr(config, "num_labels", 2)), 1)
        kwargs["labels"] = torch.randint(0, n, (batch_size,), generator=gen)
        labels = f"random class labels in [0, {n})"
    if (
        labels is None
        and getattr(config, "is_encoder_decoder", False)
        and _accepts(model, "decoder_input_ids")
    ):
        # An encoder-decoder without labels needs the decoder's ids given (T5Model): the input's
        # own ids, or random ones over the decoder's vocabulary.
        if spec.token_ids is not None:
            kwargs["decoder_input_ids"] = x
        else:
            vocab = int(getattr(config, "vocab_size", 2))
            kwargs["decoder_input_ids"] = torch.randint(
                0, vocab, (batch_size, DEFAULT_SEQ_LEN), generator=gen
            )
    return Batch((), kwargs, _kind(spec), spec.source, labels)


# What a --input factory may take, by name.
FACTORY_ARGS = ("batch_size", "seed", "model")


def factory_batch(target: str, model: nn.Module, batch_size: int, seed: int) -> Batch:
    """`--input file.py:make_batch`: call it (with those of batch_size, seed, model it names) under
    a seed of the input's own stream; a tensor is passed positionally, a dict as keywords."""
    function = resolve.resolve_batch_function(target)
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    unknown = [
        p.name
        for p in params.values()
        if p.name not in FACTORY_ARGS
        and p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if unknown:
        raise TargetError(
            f"--input {target} needs {', '.join(unknown)}; initcli passes only "
            f"{', '.join(FACTORY_ARGS)} (by name)"
        )
    given = {"batch_size": batch_size, "seed": seed, "model": model}
    kwargs = {k: v for k, v in given.items() if k in params}
    torch.manual_seed(input_seed(seed))  # its draws: seeded, apart from the init's stream
    try:
        with resolve.user_code(target, "run"):
            out = function(**kwargs)
    except TargetError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # user code may raise any class it made up
        raise TargetError(f"calling --input {target} failed: {first_line(exc)}") from None
    source = f"--input {target}"
    if isinstance(out, torch.Tensor):
        return Batch((out,), {}, _tensor_kind(out), source)
    if isinstance(out, Mapping) and out and all(isinstance(k, str) for k in out):
        tensors = [v for v in out.values() if isinstance(v, torch.Tensor)]
        if not tensors:
            raise TargetError(f"--input {target} returned a dict without a tensor in it")
        first = next(iter(v for v in out.values() if isinstance(v, torch.Tensor)))
        labels = "labels from --input" if "labels" in out else None
        return Batch((), dict(out), _tensor_kind(first), source, labels)
    raise TargetError(
        f"--input {target} returned a {type(out).__name__}; return a tensor or a dict of "
        "keyword arguments (e.g. {'input_ids': ids, 'labels': ids})"
    )


def _tensor_kind(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


# --- what comes back ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """The float tensor a probe measures as the model's output, its name, and the model's loss."""

    tensor: torch.Tensor | None
    which: str
    loss: torch.Tensor | None = None


# Which entry of a ModelOutput or dict is the output, in this order of preference.
OUTPUT_KEYS = ("logits", "last_hidden_state", "prediction_logits", "reconstruction")


def _is_float(value: object) -> bool:
    return isinstance(value, torch.Tensor) and value.is_floating_point()


def read_output(output: object) -> Output:
    """A tensor; a ModelOutput or dict (logits, else last_hidden_state, else its first float
    tensor; `loss` when it holds one); a tuple or list (its first float tensor)."""
    if isinstance(output, torch.Tensor):
        return Output(output if output.is_floating_point() else None, "the output tensor")
    if isinstance(output, Mapping):
        given = output.get("loss")
        loss = given if isinstance(given, torch.Tensor) and _is_float(given) else None
        loss = loss if loss is not None and loss.numel() == 1 else None
        for key in (*OUTPUT_KEYS, *output):
            value = output.get(key)
            if key != "loss" and _is_float(value):
                return Output(value, key, loss)
        return Output(None, f"a {type(output).__name__} without a float tensor", loss)
    if isinstance(output, tuple | list):
        for i, item in enumerate(output):
            if _is_float(item):
                return Output(item, f"output[{i}]")
            if isinstance(item, tuple | list | Mapping):
                inner = read_output(item)
                if inner.tensor is not None:
                    return Output(inner.tensor, f"output[{i}]: {inner.which}", inner.loss)
    return Output(None, f"a {type(output).__name__} without a float tensor")


def read_loss(batch: Batch, out: Output) -> tuple[torch.Tensor | None, str]:
    """The probe's loss and what it is: the model's own where labels were passed and it gave one,
    else mean(output²) of the output measured."""
    if batch.labels is not None and out.loss is not None:
        return out.loss.double(), f"the model's own loss ({batch.labels})"
    if out.tensor is None or not out.tensor.requires_grad:
        return None, f"mean(output²) of {out.which}"
    return out.tensor.double().pow(2).mean(), f"mean(output²) of {out.which}"
