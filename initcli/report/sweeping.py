"""`initcli probe --sweep`: per block, output std (and one step's update) against width."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from initcli import limits, memory
from initcli.errors import ArgError, MemoryLimitError, ProbeError, SchemeError
from initcli.experiments import batches, probe, sweep
from initcli.model import building, resolve
from initcli.report._shared import (
    batch_for,
    guarded,
    initialized,
    resolve_policy,
    resolve_target,
)

# --step: one Adam step at this learning rate on the probe's loss mean(output²), as muP's coord
# check does; Adam's update size per weight is ~lr whatever the gradient's scale.
STEP_LR = 1e-3
# Copies of a point's parameters alive at once: the probed model and its gradients; --step adds a
# fresh model, its gradients and Adam's two moments (the probed one is still held).
PROBE_COPIES = 2
STEP_COPIES = 6


@dataclass(frozen=True)
class BlockSweep:
    """One block across the widths: output std per width and its fitted exponent."""

    name: str
    stds: tuple[float | None, ...]
    exponent: sweep.Exponent
    updates: tuple[float | None, ...] | None = None  # --step: std of the output's change
    update_exponent: sweep.Exponent | None = None


@dataclass(frozen=True)
class SchemeSweep:
    scheme: str
    blocks: tuple[BlockSweep, ...]
    verdict: str  # overall: width-stable only if every block (and update, with --step) is


@dataclass(frozen=True)
class SweepReport:
    target: str
    key: str
    widths: tuple[int, ...]
    seed: int
    input_shape: tuple[int, ...]
    step: bool
    schemes: tuple[SchemeSweep, ...]
    threshold: float = sweep.STABLE_EXPONENT
    notes: tuple[str, ...] = ()


def _sources(
    target: str, key: str, widths: Sequence[int], args: Mapping[str, object]
) -> list[resolve.ModelSource]:
    base = resolve_target(target, args)
    if base.spec is not None:
        if key != sweep.SPEC_KEY:
            close = difflib.get_close_matches(key, [sweep.SPEC_KEY, "units"], n=1)
            hint = f"did you mean '{sweep.SPEC_KEY}'? " if close else ""
            raise ArgError(
                f"--sweep {key}: a YAML spec sweeps {sweep.SPEC_KEY} (every layer's units but the "
                f"last); {hint}e.g. --sweep {sweep.SPEC_KEY}=64,128,256"
            )
        from initcli.model.spec import build_mlp

        out = []
        for w in widths:
            layers = base.spec.layers
            changed = [layer.model_copy(update={"units": w}) for layer in layers[:-1]]
            spec = base.spec.model_copy(update={"layers": [*changed, layers[-1]]})
            out.append(resolve.ModelSource(target, functools.partial(build_mlp, spec), spec=spec))
        return out
    if key in args:
        raise ArgError(f"--sweep {key} and --arg {key} both set {key}; give it once")
    try:
        return [resolve_target(target, {**args, key: w}) for w in widths]
    except ArgError as exc:
        raise ArgError(str(exc).replace(f"--arg {key}", f"--sweep {key}")) from None


def _point_size(source: resolve.ModelSource) -> tuple[int, int] | None:
    """(elements, bytes) of one sweep point's parameters and buffers, without allocating them:
    by arithmetic for a spec, else from a meta build (None where the constructor cannot run on
    meta; the backstop around the real build still holds there)."""
    if source.spec is not None:
        from initcli.model.spec import parameter_count

        params = parameter_count(source.spec)
        return params, params * 4  # float32, as build_mlp builds
    try:
        model = building.build_meta(source, quiet=True)
    except Exception:
        return None
    numel = sum(t.numel() for _, t in building.unique_parameters(model))
    return numel, building.tensor_bytes(model)


def check_points_fit(
    sources: Sequence[resolve.ModelSource], found: sweep.Sweep, step: bool
) -> None:
    """Refuse the whole sweep, before anything is built, when one point cannot fit: its model
    times the copies the probe keeps must stay within memory.REFUSE_SHARE of free memory."""
    free = memory.available_bytes(torch.device("cpu"))
    if free is None:
        return
    copies = STEP_COPIES if step else PROBE_COPIES
    for width, source in zip(found.values, sources, strict=True):
        size = _point_size(source)
        if size is None or size[1] * copies <= memory.REFUSE_SHARE * free:
            continue
        numel, nbytes = size
        what = "its gradients, a second copy and Adam's moments" if step else "its gradients"
        raise MemoryLimitError(
            f"--sweep {found.key}={width}: the model there has {_count(numel)} parameters "
            f"({_bytes(nbytes)}) and needs about {_bytes(nbytes * copies)} with {what}, more "
            f"than the {_bytes(free)} free; sweep smaller widths"
        )


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"{n:.2e}"


def _bytes(n: int) -> str:
    return memory.human_bytes(n) if n < 10**16 else f"{n:.2e} bytes"


def _block_outputs(
    model: nn.Module, names: Sequence[str], batch: batches.Batch
) -> list[torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    handles = []
    for name in names:
        module = model.get_submodule(name)

        def hook(_m: nn.Module, _i: object, out: object, name: str = name) -> None:
            found = probe._first_tensor(out)
            if found is not None and name not in seen:
                seen[name] = found.detach().clone()

        handles.append(module.register_forward_hook(hook))
    try:
        batch.feed(model)
    finally:
        for h in handles:
            h.remove()
    return [seen[n] for n in names]


def _update_sizes(model: nn.Module, names: Sequence[str], batch: batches.Batch) -> list[float]:
    """Std of each block output's change after one Adam step on the probe's loss."""
    before = _block_outputs(model, names, batch)
    optimizer = torch.optim.Adam(model.parameters(), lr=STEP_LR)
    loss, _ = batches.read_loss(batch, batches.read_output(batch.feed(model)))
    if loss is None:
        raise ProbeError("--step needs a model whose forward returns a float tensor or its loss")
    optimizer.zero_grad()
    torch.autograd.backward(loss.float())
    optimizer.step()
    after = _block_outputs(model, names, batch)
    return [float((a.float() - b.float()).std()) for a, b in zip(after, before, strict=True)]


@guarded("run")
def sweep_report(
    target: str,
    inits: Sequence[str],
    sweep_text: str,
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = batches.DEFAULT_BATCH,
    step: bool = False,
    input_fn: str | None = None,
) -> SweepReport:
    """`probe --sweep KEY=W1,W2,...`: per scheme and width a fresh model and the same batch."""
    if not inits:
        raise SchemeError("give at least one --init SCHEME (e.g. --init kaiming_normal)")
    limits.check_seed(seed)
    if batch_size < 1:
        raise ArgError(f"--batch-size must be ≥ 1, got {batch_size}")
    spec_sweep = sweep.parse_sweep(sweep_text)
    sources = _sources(target, spec_sweep.key, spec_sweep.values, dict(args or {}))
    parsed = [resolve_policy(init, bias_init, None) for init in inits]
    check_points_fit(sources, spec_sweep, step)
    batch: batches.Batch | None = None
    results = []
    for chosen in parsed:
        per_width: list[tuple[list[str], list[float | None], list[float] | None]] = []
        for width, source in zip(spec_sweep.values, sources, strict=True):
            # The backstop where the estimate falls short (activations, a constructor that
            # allocates outside torch's default device): a failed allocation is one Error line
            # that names the point.
            try:
                with memory.out_of_memory_is_an_error(f"building and probing {source.target}"):
                    model, _, _ = initialized(source, chosen, seed, input_shape)
                    if batch is None:
                        batch = batch_for(source, model, input_shape, batch_size, seed, input_fn)
                    result = probe.probe(model, batch)
                    names = [b.name for b in result.blocks]
                    updates = None
                    if step:
                        fresh, _, _ = initialized(source, chosen, seed, input_shape)
                        ends = [b.output_of for b in result.blocks]
                        with probe.threads_for(fresh):
                            updates = _update_sizes(fresh, ends, batch)
            except MemoryLimitError as exc:
                if not str(exc).startswith("ran out of memory"):
                    raise  # --batch-size's own refusal names what to change
                raise MemoryLimitError(f"at --sweep {spec_sweep.key}={width}: {exc}") from None
            per_width.append((names, [b.std for b in result.blocks], updates))
        names = per_width[0][0]
        if any(len(p[0]) != len(names) for p in per_width):
            counts = ", ".join(str(len(p[0])) for p in per_width)
            raise ProbeError(
                f"--sweep {spec_sweep.key}: the block count changes with width ({counts}); "
                "sweep a width, not a depth"
            )
        blocks = []
        for i, name in enumerate(names):
            stds = tuple(p[1][i] for p in per_width)
            ups = None if not step else tuple(p[2][i] for p in per_width if p[2] is not None)
            blocks.append(
                BlockSweep(
                    name,
                    stds,
                    sweep.fit_exponent(spec_sweep.values, stds),
                    ups,
                    None if ups is None else sweep.fit_exponent(spec_sweep.values, ups),
                )
            )
        verdicts = [b.exponent.verdict for b in blocks] + [
            b.update_exponent.verdict for b in blocks if b.update_exponent is not None
        ]
        results.append(SchemeSweep(chosen.describe(), tuple(blocks), sweep.overall(verdicts)))
    assert batch is not None
    return SweepReport(
        sources[0].target,
        spec_sweep.key,
        spec_sweep.values,
        seed,
        tuple(batch.main.shape),
        step,
        tuple(results),
        notes=tuple(note for s in results if (note := _readout_note(s)) is not None),
    )


def _readout_note(scheme: SchemeSweep) -> str | None:
    """A last block that shrinks as width^-1/2 is what a muP readout does at init: say so, so
    `shrinks` is not read as a fault there (the verdict itself stays what was measured)."""
    e = scheme.blocks[-1].exponent
    if e.verdict != "shrinks" or e.low is None or e.high is None or not e.low <= -0.5 <= e.high:
        return None
    return (
        f"{scheme.scheme}: the output block {scheme.blocks[-1].name} shrinks as width^-1/2, as a "
        "muP readout (output weights ∝ 1/width) means to at init: its logits start near 0 and "
        "training, not the init, sets their size. Under the standard parametrization it is an "
        "output scaled down too far."
    )
