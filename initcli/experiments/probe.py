"""Forward/backward probes at init: activation statistics by depth, gradients, a two-moons run."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from initcli import memory
from initcli.errors import ArgError, ProbeError, first_line
from initcli.experiments.verdict import SATURATION_LEVEL, Evidence, Verdict, decide, std_ratio
from initcli.init import auto

DEFAULT_BATCH = 256
# What an input shape inferred from a first Conv or Embedding assumes (--input-shape overrides).
DEFAULT_SEQ_LEN = 16
DEFAULT_SPATIAL = {1: (32,), 2: (32, 32), 3: (16, 16, 16)}
# Histograms: bins, at most this many values per block (an even stride through the output), and
# a shared x-range per scheme of the blocks' mean ± HIST_SIGMAS·std, clipped to their min/max.
HIST_BINS = 50
HIST_SAMPLES = 1 << 16
HIST_SIGMAS = 4.0
# Where the input batch's random stream starts, relative to the init's: the input must not be
# drawn from the same stream as the weights, or x·Wᵀ picks up a spurious diagonal (measured: the
# first ReLU layer's std doubles). A 64-bit LCG step turns the seed into a distinct one.
_LCG_A = 6364136223846793005
_LCG_C = 1442695040888963407


def input_seed(seed: int) -> int:
    """The seed of the input batch's generator: derived from --seed, never equal to it."""
    return (seed * _LCG_A + _LCG_C) % (1 << 63)


# Below this many parameters a probe takes ≤ 0.2 s on one thread (a 4-layer MLP of width 1024,
# 2.1M parameters: 0.1 s, against 0.07 s on two idle cores), while two threads on a 2-core machine
# that another process keeps busy were measured 60× slower (the 10-layer digits MLP: 0.47 s against
# 0.007 s): each op's threads wait on a descheduled peer. One thread also gives the same bits on any
# machine (two threads move the last digits of gradient norms).
ONE_THREAD_PARAMS = 4_000_000


@contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 inside, restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def threads_for(model: nn.Module) -> Iterator[None]:
    """One thread for a model of at most ONE_THREAD_PARAMS parameters; torch's own otherwise."""
    if sum(p.numel() for p in model.parameters()) > ONE_THREAD_PARAMS:
        yield
        return
    with one_thread():
        yield


# --- input --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """The per-sample input shape (no batch dimension) and how it was found."""

    shape: tuple[int, ...]
    token_ids: int | None  # integer ids in [0, token_ids) for an Embedding; None: N(0, 1) floats
    source: str


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


def _weighted(module: nn.Module) -> bool:
    """Whether the module holds a weight matrix (≥2-D parameter) itself: a layer an init shapes."""
    return any(p.dim() >= 2 for p in module.parameters(recurse=False))


def infer_input(model: nn.Module) -> InputSpec:
    """From the first weighted module in registration order: Linear, Conv or Embedding."""
    for name, module in model.named_modules():
        if not _weighted(module):
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
    """--input-shape, else the YAML spec's `input:`, else inferred from the first layer."""
    token_ids = None
    for module in model.modules():
        if _weighted(module):
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


# --- hooks ---------------------------------------------------------------------------------------


def _first_tensor(output: object) -> torch.Tensor | None:
    """A module's output tensor: itself, or the first tensor of a tuple/list (LSTM, attention)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, tuple | list):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    return None


def _hooked(model: nn.Module) -> list[tuple[str, nn.Module]]:
    # Leaves, plus modules that hold a weight themselves but have children (MultiheadAttention
    # holds in_proj_weight and an out_proj child its forward never calls).
    return [
        (name, module)
        for name, module in model.named_modules()
        if not any(True for _ in module.children()) or _weighted(module)
    ]


@dataclass
class _Call:
    """One call of a hooked module during the forward pass, in the order they were entered."""

    name: str
    module: nn.Module
    output: torch.Tensor | None = None


@contextmanager
def _recording(model: nn.Module) -> Iterator[tuple[list[_Call], list[_Call]]]:
    """Hooks that record every call (in entry order) and the calls entered but not yet left."""
    calls: list[_Call] = []
    stack: list[_Call] = []
    seen: dict[str, int] = {}
    handles = []

    def pre_hook(name: str) -> Callable[[nn.Module, object], None]:
        def hook(module: nn.Module, _args: object) -> None:
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            call = _Call(label or "(model)", module)
            calls.append(call)
            stack.append(call)

        return hook

    def post_hook(module: nn.Module, _args: object, output: object) -> None:
        # Pop the innermost call of this module; a leaf's call is always on top.
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].module is module:
                stack[i].output = _first_tensor(output)
                del stack[i]
                break

    try:
        for name, module in _hooked(model):
            handles.append(module.register_forward_pre_hook(pre_hook(name)))
            handles.append(module.register_forward_hook(post_hook))
        yield calls, stack
    finally:
        for handle in handles:
            handle.remove()


def _forward(model: nn.Module, batch: torch.Tensor, stack: list[_Call], what: str) -> object:
    try:
        return model(batch)
    except Exception as exc:
        shape = "×".join(map(str, batch.shape))
        if memory.is_out_of_memory(exc):  # the size, not the shape, is what to change
            raise memory.out_of_memory_error(f"running {what} on {shape}") from None
        where = (
            f"in layer '{stack[-1].name}' ({type(stack[-1].module).__name__})"
            if stack
            else "outside any layer (in the model's own forward)"
        )
        raise ProbeError(
            f"{what} on an input of shape {shape} failed {where}: {first_line(exc)}; "
            "check --input-shape (one sample, no batch dimension)"
        ) from None


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad for a look that must leave the model as it was (BatchNorm running
    statistics are not updated in eval mode); each module's own mode is restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


# --- followers: the activation after each weight, for auto and `defaults` ------------------------


def trace_followers(model: nn.Module, batch: torch.Tensor) -> dict[str, auto.Follower]:
    """Run one forward pass (eval mode, no grad) and name the activation after each weight.

    Keyed by module name; a weighted module's follower is the first activation module entered
    after it and before the next weighted module. Functional activations (F.relu inside a forward)
    are not modules, so they are not seen.
    """
    with _evaluating(model), _recording(model) as (calls, stack):
        _forward(model, batch, stack, "the forward pass that traces the activations")
    names = {id(m): n for n, m in model.named_modules()}
    found: dict[str, auto.Follower] = {}
    for i, call in enumerate(calls):
        if not _weighted(call.module):
            continue
        name = names[id(call.module)]
        if name in found:
            continue
        follower = auto.Follower(None, where="no activation follows (output)")
        for later in calls[i + 1 :]:
            if _weighted(later.module):
                where = f"no activation module before {later.name}"
                follower = auto.Follower(None, where=where)
                break
            kind = auto.activation_kind(later.module)
            if kind is not None:
                where = f"{later.name} {type(later.module).__name__}"
                follower = auto.Follower(kind[0], kind[1], where)
                break
        found[name] = follower
    # Transformer layers apply their activation functionally (F.relu by default), between
    # linear1 and linear2, where hooks cannot see it; the layer names it in `activation`.
    for name, module in model.named_modules():
        if isinstance(module, nn.TransformerEncoderLayer | nn.TransformerDecoderLayer):
            kind = auto.functional_kind(module.activation)
            key = f"{name}.linear1" if name else "linear1"
            if kind is not None and key in found:
                fn = getattr(module.activation, "__name__", type(module.activation).__name__)
                where = f"{name}.activation {fn}" if name else f"activation {fn}"
                found[key] = auto.Follower(kind[0], kind[1], where)
    return found


# --- the probe -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Histogram:
    lo: float
    hi: float
    counts: tuple[int, ...]


@dataclass(frozen=True)
class LayerStats:
    """One call of a hooked module: its output's statistics and its own parameters' gradient."""

    name: str
    type: str
    shape: tuple[int, ...]
    mean: float | None  # None: NaN/Inf in the output
    std: float | None
    zero_frac: float
    saturated_frac: float | None  # None: not a tanh/sigmoid-bounded layer
    grad_norm: float | None  # None: the module holds no parameter with a gradient
    ends_block: bool


@dataclass(frozen=True)
class BlockStats:
    """A weighted layer and what follows it up to the next one (fc1 → act1), by its output."""

    name: str
    layer: str  # the weighted layer that starts it
    mean: float | None
    std: float | None
    zero_frac: float
    saturated_frac: float | None  # the most saturated bounded layer inside the block
    grad_norm: float | None  # of the weighted layer's own parameters
    hist: Histogram


@dataclass(frozen=True)
class ParamGrad:
    name: str
    grad_norm: float | None


@dataclass(frozen=True)
class ProbeResult:
    layers: tuple[LayerStats, ...]
    blocks: tuple[BlockStats, ...]
    grads: tuple[ParamGrad, ...]
    verdict: Verdict
    reason: str
    std_ratio: float | None
    loss: float | None  # mean(output²), the loss whose gradients are reported


def _bounds(module: nn.Module) -> tuple[float, float] | None:
    """The output range of a bounded activation: tanh-like [-1, 1], sigmoid-like [0, 1]."""
    if isinstance(module, nn.Tanh | nn.Softsign):
        return -1.0, 1.0
    if isinstance(module, nn.Hardtanh) and not isinstance(module, nn.ReLU6):
        return float(module.min_val), float(module.max_val)
    if isinstance(module, nn.Sigmoid | nn.Hardsigmoid):
        return 0.0, 1.0
    return None


@dataclass(frozen=True)
class _Measured:
    mean: float | None
    std: float | None
    zero_frac: float
    saturated_frac: float | None
    nonfinite: bool
    symmetric: bool
    sample: torch.Tensor = field(repr=False)


def _measure(call: _Call, out: torch.Tensor, with_sample: bool) -> _Measured:
    # Few, whole-tensor operations: a probe measures every leaf call of the model, and on a busy
    # machine each small op costs far more than its arithmetic.
    t = out.detach()
    n = max(t.numel(), 1)
    d = t.double()  # float64 accumulation: exact enough whatever the tensor size
    if t.numel() > 1:
        std_t, mean_t = torch.std_mean(d)
        std, mean = float(std_t), float(mean_t)
    else:
        std, mean = 0.0, float(d.sum())
    # A float32 tensor sums to ±Inf or NaN in float64 only if it holds ±Inf or NaN itself.
    nonfinite = not (math.isfinite(mean) and math.isfinite(std))
    zero_frac = 1.0 - float(torch.count_nonzero(t)) / n
    saturated = None
    bounds = _bounds(call.module)
    if bounds is not None:
        lo, hi = bounds
        mid, half = (lo + hi) / 2, (hi - lo) / 2
        saturated = float(torch.count_nonzero((d - mid).abs() > SATURATION_LEVEL * half)) / n
    symmetric = False
    if _weighted(call.module) and t.dim() >= 2:
        # The feature axis: channels for a convolution, the last axis for everything else.
        axis = 1 if isinstance(call.module, nn.modules.conv._ConvNd) else t.dim() - 1
        if t.shape[axis] >= 2:
            symmetric = bool(torch.equal(t, t.narrow(axis, 0, 1).expand_as(t)))
    sample = d.new_empty(0)
    if with_sample:
        sample = d.reshape(-1)
        if sample.numel() > HIST_SAMPLES:
            # float32 linspace rounds its last index up past 2**24 elements: clamp it back.
            picks = torch.linspace(0, sample.numel() - 1, HIST_SAMPLES).long()
            sample = sample[picks.clamp_(max=sample.numel() - 1)]
        if nonfinite:
            sample = sample[torch.isfinite(sample)]
    return _Measured(
        None if nonfinite else mean,
        None if nonfinite else std,
        zero_frac,
        saturated,
        nonfinite,
        symmetric,
        sample,
    )


def _grad_norm(tensors: list[torch.Tensor]) -> float | None:
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads:
        return None
    return math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))


def _hist_range(blocks: list[_Measured]) -> tuple[float, float]:
    """One x-range for all of a scheme's histograms, so a collapsing signal looks collapsed."""
    los, his = [], []
    for m in blocks:
        if m.sample.numel() == 0:
            continue
        spread = HIST_SIGMAS * (m.std or 0.0)
        centre = m.mean or 0.0
        los.append(max(float(m.sample.min()), centre - spread))
        his.append(min(float(m.sample.max()), centre + spread))
    lo, hi = (min(los), max(his)) if los else (-1.0, 1.0)
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        centre = lo if math.isfinite(lo) else 0.0
        return centre - 1.0, centre + 1.0
    return lo, hi


def probe(model: nn.Module, batch: torch.Tensor) -> ProbeResult:
    """One forward pass with hooks on every leaf module, one backward of mean(output²)."""
    with threads_for(model):
        return _probe(model, batch)


def _probe(model: nn.Module, batch: torch.Tensor) -> ProbeResult:
    model.train()  # what the first training step sees: batch statistics, dropout on
    model.zero_grad(set_to_none=True)
    with _recording(model) as (calls, stack):
        output = _first_tensor(_forward(model, batch, stack, "the forward pass"))
    if output is None or not output.is_floating_point():
        raise ProbeError(
            "the model's output is not a float tensor, so there is no loss to take gradients of"
        )
    loss_value: float | None = None
    if output.requires_grad:
        loss = output.double().pow(2).mean()
        loss_value = float(loss.detach())
        torch.autograd.backward(loss)
    kept = [c for c in calls if c.output is not None and c.output.is_floating_point()]
    if not kept:
        raise ProbeError("no layer produced a float output to measure")
    # Blocks: each weighted call starts one; calls before the first weighted call are left out.
    # A model without weighted layers gets one block per call.
    call_groups: list[list[_Call]] = []
    any_weighted = any(_weighted(c.module) for c in kept)
    for call in kept:
        if not any_weighted or _weighted(call.module):
            call_groups.append([call])
        elif call_groups:
            call_groups[-1].append(call)
    ends = {id(group[-1]) for group in call_groups}
    with torch.no_grad():
        by_call = {
            id(c): _measure(c, c.output, id(c) in ends) for c in kept if c.output is not None
        }
    measured = [(c, by_call[id(c)]) for c in kept]
    groups = [[(c, by_call[id(c)]) for c in group] for group in call_groups]

    layers = tuple(
        LayerStats(
            call.name,
            type(call.module).__name__,
            tuple(call.output.shape) if call.output is not None else (),
            m.mean,
            m.std,
            m.zero_frac,
            m.saturated_frac,
            _grad_norm(list(call.module.parameters(recurse=False))),
            id(call) in ends,
        )
        for call, m in measured
    )
    lo, hi = _hist_range([group[-1][1] for group in groups])
    blocks: list[BlockStats] = []
    for group in groups:
        start, end = group[0][0], group[-1][0]
        m = group[-1][1]
        sats = [g[1].saturated_frac for g in group if g[1].saturated_frac is not None]
        counts = torch.histc(m.sample.clamp(lo, hi).float(), HIST_BINS, lo, hi)
        blocks.append(
            BlockStats(
                start.name if start is end else f"{start.name} → {end.name}",
                start.name,
                m.mean,
                m.std,
                m.zero_frac,
                max(sats) if sats else None,
                _grad_norm(list(start.module.parameters(recurse=False))),
                Histogram(lo, hi, tuple(int(c) for c in counts.tolist())),
            )
        )
    grads = tuple(ParamGrad(name, _grad_norm([param])) for name, param in model.named_parameters())

    block_measures = [group[-1][1] for group in groups]
    dead_i = max(range(len(blocks)), key=lambda i: blocks[i].zero_frac)
    sat_blocks = [b for b in blocks if b.saturated_frac is not None]
    most_saturated = max(sat_blocks, key=lambda b: b.saturated_frac or 0.0) if sat_blocks else None
    nonfinite = next((c.name for c, m in measured if m.nonfinite), None)
    symmetric = next((c.name for c, m in measured if m.symmetric), None)
    first = block_measures[0].std
    last = block_measures[-1].std
    evidence = Evidence(
        first_std=math.inf if first is None else first,
        last_std=math.inf if last is None else last,
        max_zero_frac=blocks[dead_i].zero_frac,
        max_saturated_frac=None if most_saturated is None else most_saturated.saturated_frac,
        symmetric_layer=symmetric,
        dead_layer=blocks[dead_i].name,
        saturated_layer=None if most_saturated is None else most_saturated.name,
        nonfinite_layer=nonfinite,
    )
    verdict, reason = decide(evidence)
    model.zero_grad(set_to_none=True)
    return ProbeResult(
        layers,
        tuple(blocks),
        grads,
        verdict,
        reason,
        std_ratio(evidence.first_std, evidence.last_std),
        loss_value,
    )


def check_moons_model(model: nn.Module) -> None:
    """Raise unless the model maps (N, 2) features to (N, 2) logits."""
    x = torch.zeros(4, 2)
    with _evaluating(model), _recording(model) as (_calls, stack):
        out = _first_tensor(
            _forward(model, x, stack, "--train needs 2 input features; the forward pass")
        )
    if out is None or tuple(out.shape) != (4, 2):
        got = "no tensor" if out is None else f"shape {tuple(out.shape)}"
        raise ProbeError(
            "--train fits two moons: the model must map 2 features to 2 logits, (N, 2) → (N, 2); "
            f"on (4, 2) it gave {got}"
        )
