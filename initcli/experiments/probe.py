"""Forward/backward probes at init: activation statistics by depth, gradients, a two-moons run."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from initcli import memory
from initcli.errors import ProbeError, first_line
from initcli.experiments.batches import Batch, holds_weight, read_loss, read_output
from initcli.experiments.verdict import (
    SATURATION_LEVEL,
    Evidence,
    Verdict,
    decide_stacks,
)
from initcli.init import auto

# Histograms: bins, at most this many values per block (an even stride through the output), and
# a shared x-range per scheme of the blocks' mean ± HIST_SIGMAS·std, clipped to their min/max.
HIST_BINS = 50
HIST_SAMPLES = 1 << 16
HIST_SIGMAS = 4.0
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
        if not any(True for _ in module.children()) or holds_weight(module)
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


def _forward(
    model: nn.Module, batch: torch.Tensor | Batch, stack: list[_Call], what: str
) -> object:
    fed = batch if isinstance(batch, Batch) else Batch((batch,))
    try:
        return fed.feed(model)
    except Exception as exc:
        shape = "×".join(map(str, fed.main.shape))
        if memory.is_out_of_memory(exc):  # the size, not the shape, is what to change
            raise memory.out_of_memory_error(f"running {what} on {shape}") from None
        where = (
            f"in layer '{stack[-1].name}' ({type(stack[-1].module).__name__})"
            if stack
            else "outside any layer (in the model's own forward)"
        )
        raise ProbeError(
            f"{what} on an input of shape {shape} failed {where}: {first_line(exc)}; check "
            "--input-shape (one sample, no batch dimension), or pass --input file.py:make_batch"
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
        if not holds_weight(call.module):
            continue
        name = names[id(call.module)]
        if name in found:
            continue
        follower = auto.Follower(None, where="no activation follows (output)")
        for later in calls[i + 1 :]:
            if holds_weight(later.module):
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
    grad_norm: float | None  # of the weighted layer's own parameters (a repeated block's: all)
    hist: Histogram
    output_of: str = ""  # the call whose output is the block's: its last layer, or the block


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
    loss: float | None  # the loss whose gradients are reported (`loss_kind` says which)
    output: str = "the output tensor"  # what was measured as the output (logits, output[0], ...)
    loss_kind: str = "mean(output²) of the output tensor"
    # std ∝ (block number)^k through depth (verdict.depth_exponent); None: under 3 blocks.
    depth_exponent: float | None = None


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
    if holds_weight(call.module) and t.dim() >= 2:
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


def repeated_blocks(model: nn.Module) -> tuple[str, ...]:
    """The model's repeated modules: the children of a ModuleList or Sequential that holds at least
    two modules of one class, each with children of its own (GPT-2's h.N, Llama's layers.N, BERT's
    encoder.layer.N, a ResNet's stages); the outermost such level; () for a plain stack of layers.
    """
    found: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList | nn.Sequential):
            continue
        kids = list(module.named_children())
        if len(kids) < 2 or len({type(k) for _, k in kids}) != 1:
            continue
        if all(any(True for _ in k.children()) for _, k in kids):
            found.extend(f"{name}.{k}" if name else k for k, _ in kids)
    return tuple(n for n in found if not any(n.startswith(f"{o}.") for o in found))


@contextmanager
def _block_outputs(model: nn.Module, names: tuple[str, ...]) -> Iterator[dict[str, torch.Tensor]]:
    """Each named block's first output tensor, in the order the blocks ran."""
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def hook(name: str) -> Callable[[nn.Module, object, object], None]:
        def record(_module: nn.Module, _args: object, output: object) -> None:
            found = _first_tensor(output)
            if name not in seen and found is not None and found.is_floating_point():
                seen[name] = found

        return record

    try:
        for name in names:
            handles.append(model.get_submodule(name).register_forward_hook(hook(name)))
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def probe(model: nn.Module, batch: torch.Tensor | Batch) -> ProbeResult:
    """One forward pass with hooks on every leaf module (and on the repeated blocks), one backward
    of the model's own loss where the batch carries labels, else of mean(output²)."""
    with threads_for(model):
        return _probe(model, batch if isinstance(batch, Batch) else Batch((batch,)))


@dataclass(frozen=True)
class _Group:
    """A block as found: its name, the module that starts it, its output's call and measure."""

    name: str
    layer: str
    end: _Call
    measured: _Measured
    saturated_frac: float | None
    grad_norm: float | None


def _probe(model: nn.Module, batch: Batch) -> ProbeResult:
    model.train()  # what the first training step sees: batch statistics, dropout on
    model.zero_grad(set_to_none=True)
    repeated = repeated_blocks(model)
    with _recording(model) as (calls, stack), _block_outputs(model, repeated) as outs:
        out = read_output(_forward(model, batch, stack, "the forward pass"))
    if out.tensor is None and out.loss is None:
        raise ProbeError(
            f"the model's output is {out.which}, so there is no loss to take gradients of; "
            "return a float tensor (logits), or pass --input file.py:make_batch with labels so "
            "the model returns its own loss"
        )
    loss, loss_kind = read_loss(batch, out)
    loss_value: float | None = None
    if loss is not None and loss.requires_grad:
        loss_value = float(loss.detach())
        torch.autograd.backward(loss)
    kept = [c for c in calls if c.output is not None and c.output.is_floating_point()]
    if not kept:
        raise ProbeError("no layer produced a float output to measure")
    by_call: dict[int, _Measured] = {}
    groups = _repeated_groups(model, outs, kept, by_call) if outs else _layer_groups(kept, by_call)
    with torch.no_grad():
        for c in kept:
            if id(c) not in by_call and c.output is not None:
                by_call[id(c)] = _measure(c, c.output, False)
    measured = [(c, by_call[id(c)]) for c in kept]
    ends = {id(g.end) for g in groups}
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
    lo, hi = _hist_range([g.measured for g in groups])
    blocks = tuple(
        BlockStats(
            g.name,
            g.layer,
            g.measured.mean,
            g.measured.std,
            g.measured.zero_frac,
            g.saturated_frac,
            g.grad_norm,
            Histogram(lo, hi, _counts(g.measured.sample, lo, hi)),
            g.end.name,
        )
        for g in groups
    )
    grads = tuple(ParamGrad(name, _grad_norm([param])) for name, param in model.named_parameters())
    dead_i = max(range(len(blocks)), key=lambda i: blocks[i].zero_frac)
    sat_blocks = [b for b in blocks if b.saturated_frac is not None]
    most_saturated = max(sat_blocks, key=lambda b: b.saturated_frac or 0.0) if sat_blocks else None
    evidence = Evidence(
        first_std=math.inf,  # per stack, in decide_stacks
        last_std=math.inf,
        max_zero_frac=blocks[dead_i].zero_frac,
        max_saturated_frac=None if most_saturated is None else most_saturated.saturated_frac,
        symmetric_layer=next((c.name for c, m in measured if m.symmetric), None),
        dead_layer=blocks[dead_i].name,
        saturated_layer=None if most_saturated is None else most_saturated.name,
        nonfinite_layer=next((c.name for c, m in measured if m.nonfinite), None),
    )
    # Repeated blocks in two containers (an encoder's and a decoder's) are two depths, not one.
    stacks: dict[str, list[float | None]] = {}
    for b in blocks:
        stacks.setdefault(b.name.rpartition(".")[0] if outs else "", []).append(b.std)
    verdict, reason, ratio, k = decide_stacks(evidence, list(stacks.items()))
    model.zero_grad(set_to_none=True)
    return ProbeResult(
        layers, blocks, grads, verdict, reason, ratio, loss_value, out.which, loss_kind, k
    )


def _counts(sample: torch.Tensor, lo: float, hi: float) -> tuple[int, ...]:
    counts = torch.histc(sample.clamp(lo, hi).float(), HIST_BINS, lo, hi)
    return tuple(int(c) for c in counts.tolist())


def _layer_groups(kept: list[_Call], by_call: dict[int, _Measured]) -> list[_Group]:
    """Blocks of a plain stack: each weighted call starts one; calls before the first weighted
    call are left out. A model without weighted layers gets one block per call. Every call's
    measure goes into `by_call`."""
    call_groups: list[list[_Call]] = []
    any_weighted = any(holds_weight(c.module) for c in kept)
    for call in kept:
        if not any_weighted or holds_weight(call.module):
            call_groups.append([call])
        elif call_groups:
            call_groups[-1].append(call)
    out = []
    with torch.no_grad():
        for group in call_groups:
            start, end = group[0], group[-1]
            measures = [_measure(c, c.output, c is end) for c in group if c.output is not None]
            by_call.update((id(c), m) for c, m in zip(group, measures, strict=True))
            sats = [m.saturated_frac for m in measures if m.saturated_frac is not None]
            out.append(
                _Group(
                    start.name if start is end else f"{start.name} → {end.name}",
                    start.name,
                    end,
                    measures[-1],
                    max(sats) if sats else None,
                    _grad_norm(list(start.module.parameters(recurse=False))),
                )
            )
    return out


def _repeated_groups(
    model: nn.Module,
    outs: dict[str, torch.Tensor],
    kept: list[_Call],
    by_call: dict[int, _Measured],
) -> list[_Group]:
    """One block per repeated module, in the order they ran: its output (for a transformer the
    residual stream), the most saturated bounded layer inside it, all of its parameters' grads."""
    out = []
    with torch.no_grad():
        by_call.update(
            (id(c), _measure(c, c.output, False))
            for c in kept
            if _bounds(c.module) and c.output is not None
        )
        for name, tensor in outs.items():
            module = model.get_submodule(name)
            end = _Call(name, module, tensor)
            sats = [
                s
                for c in kept
                if c.name.startswith(f"{name}.")
                and id(c) in by_call
                and (s := by_call[id(c)].saturated_frac) is not None
            ]
            out.append(
                _Group(
                    name,
                    name,
                    end,
                    _measure(end, tensor, True),
                    max(sats) if sats else None,
                    _grad_norm(list(module.parameters())),
                )
            )
    return out


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
