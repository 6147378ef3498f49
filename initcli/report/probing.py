"""`initcli probe` and `compare`: per scheme, a fresh model, one seeded batch, the verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from initcli import limits, loading, probe, training
from initcli.errors import ArgError, ProbeError, SchemeError
from initcli.report._shared import check_spec_fits, guarded, initialized, resolve_policy


@dataclass(frozen=True)
class TrainSetup:
    steps: int
    lr: float
    points: int
    noise: float


@dataclass(frozen=True)
class SchemeProbe:
    """One scheme's probe and, for `compare --train`, its training run."""

    scheme: str
    result: probe.ProbeResult
    training: training.TrainResult | None = None


@dataclass(frozen=True)
class ProbeReport:
    target: str
    seed: int
    input_shape: tuple[int, ...]  # the whole batch, batch dimension first
    input_kind: str  # "float32 N(0, 1)" or "token ids in [0, n)"
    input_source: str
    schemes: tuple[SchemeProbe, ...]
    train: TrainSetup | None = None


@guarded("run")
def probe_report(
    target: str,
    inits: Sequence[str],
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = probe.DEFAULT_BATCH,
    train: TrainSetup | None = None,
) -> ProbeReport:
    """`initcli probe` and `compare`: per scheme, a fresh model, one seeded batch, the verdict."""
    if not inits:
        raise SchemeError("give at least one --init SCHEME (e.g. --init kaiming_normal)")
    if seed < 0:
        raise SchemeError(f"--seed must be ≥ 0, got {seed}")
    if batch_size < 1:
        raise ArgError(f"--batch-size must be ≥ 1, got {batch_size}")
    if train is not None:
        _check_train(train)
    source = loading.resolve(target, args)
    # The probed model, its gradients and (with --train) a second copy with Adam's two moments.
    check_spec_fits(source, copies=5 if train else 2, hint="probe a smaller spec")
    # Every scheme is parsed before anything is built, so a typo fails fast.
    parsed = [resolve_policy(init, bias_init, None) for init in inits]
    names = [chosen.describe() for chosen in parsed]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise SchemeError(f"--init {twice} is given twice; give each scheme once")
    results: list[SchemeProbe] = []
    spec: probe.InputSpec | None = None
    batch: torch.Tensor | None = None
    for chosen in parsed:
        model, _, _ = initialized(source, chosen, seed, input_shape)
        if spec is None or batch is None:
            spec = probe.input_spec(model, source.spec.input if source.spec else None, input_shape)
            limits.check_batch(batch_size, spec.shape)
            batch = probe.make_batch(spec, batch_size, seed)
            if train is not None:
                if spec.shape != (2,) or spec.token_ids is not None:
                    shape = "×".join(map(str, spec.shape))
                    raise ProbeError(
                        "--train fits two moons: the model must take 2 features and give 2 "
                        f"logits, and {source.target} takes {shape} per sample "
                        f"({spec.source})"
                    )
                probe.check_moons_model(model)
        # Training starts from the init, not from the probe's backward pass, so it gets its own
        # fresh copy; both are built and initialized identically.
        result = probe.probe(model, batch)
        trained = None
        if train is not None:
            fresh, _, _ = initialized(source, chosen, seed, input_shape)
            trained = training.train_moons(
                fresh, train.steps, train.lr, seed, train.points, train.noise
            )
        results.append(SchemeProbe(chosen.describe(), result, trained))
    assert spec is not None and batch is not None
    kind = (
        f"token ids in [0, {spec.token_ids})" if spec.token_ids is not None else "float32 N(0, 1)"
    )
    return ProbeReport(
        source.target, seed, tuple(batch.shape), kind, spec.source, tuple(results), train
    )


def _check_train(train: TrainSetup) -> None:
    if train.steps < 1:
        raise ArgError(f"--train must be ≥ 1 step, got {train.steps}")
    limits.check_count("--train", train.steps, limits.MAX_TRAIN_STEPS)
    limits.check_lr(train.lr)
    limits.check_count("--points", train.points, limits.MAX_POINTS, low=2)
    if train.points < 2:
        raise ArgError(f"--points must be ≥ 2, got {train.points}")
    if not (math.isfinite(train.noise) and train.noise >= 0):
        raise ArgError(f"--noise must be ≥ 0, got {train.noise:g}")
