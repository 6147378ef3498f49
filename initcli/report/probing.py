"""`initcli probe` and `compare`: per scheme, a fresh model, one seeded batch, the verdict."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from initcli import limits
from initcli.errors import ArgError, ProbeError, SchemeError
from initcli.experiments import batches, probe, seeds, training
from initcli.experiments import data as datasets
from initcli.experiments.training import TrainResult
from initcli.report._shared import (
    batch_for,
    check_spec_fits,
    guarded,
    initialized,
    resolve_policy,
    resolve_target,
)

MAX_SEEDS = 100


@dataclass(frozen=True)
class TrainSetup:
    steps: int
    lr: float
    points: int
    noise: float
    data: str = "moons"
    optimizer: str = "adam"
    batch: int | None = None  # None: full batch
    epochs: int | None = None  # given: steps = epochs × batches per epoch
    seeds: int = 1
    val_fraction: float | None = None  # None: moons 0, otherwise data.VAL_FRACTION
    target_loss: float | None = None  # None: a quarter of the mean step-0 loss


@dataclass(frozen=True)
class SeedSummary:
    """One scheme's training over --seeds: intervals and steps to the target loss per seed."""

    final_loss: seeds.Interval  # validation loss, or the training loss without a split
    accuracy: seeds.Interval | None
    to_target: tuple[int | None, ...]  # first step whose training loss ≤ target, per seed


@dataclass(frozen=True)
class TrainOutcome:
    """What --train measured beyond each scheme's runs: the data, target and paired tests."""

    data: str
    task: str
    steps: int
    target_loss: float
    metric: str  # "validation loss" or "training loss"
    tests: tuple[seeds.Paired, ...]
    floor: float | None = None  # the least reachable loss, where the data knows it (markov)


@dataclass(frozen=True)
class SchemeProbe:
    """One scheme's probe and, for `compare --train`, its training run."""

    scheme: str
    result: probe.ProbeResult
    training: TrainResult | None = None
    runs: tuple[TrainResult, ...] = ()  # one per --seeds seed; runs[0] is `training`
    summary: SeedSummary | None = None
    across: ProbeSeeds | None = None  # --seeds ≥ 2: the probe repeated per seed


@dataclass(frozen=True)
class ProbeSeeds:
    """The probe at --seed, --seed+1, ...: each seed's std ratio and verdict, and the verdict
    that holds at every seed (None where the seeds disagree)."""

    std_ratios: tuple[float | None, ...]
    verdicts: tuple[str, ...]
    holds: str | None
    # Mean ± 95% t-interval of the finite std ratios (None when none is finite).
    ratio: seeds.Interval | None = None


@dataclass(frozen=True)
class ProbeReport:
    target: str
    seed: int
    input_shape: tuple[int, ...]  # the whole batch, batch dimension first
    input_kind: str  # "float32 N(0, 1)", "token ids in [0, n)" or a --input tensor's dtype
    input_source: str
    schemes: tuple[SchemeProbe, ...]
    train: TrainSetup | None = None
    outcome: TrainOutcome | None = None
    # What each --init's policy or init code said while it was applied (a rule that sets nothing,
    # parameters left at torch's default): the CLI prints them as `Note:` lines.
    remarks: tuple[str, ...] = ()


@guarded("run")
def probe_report(
    target: str,
    inits: Sequence[str],
    bias_init: str | None = None,
    seed: int = 0,
    args: Mapping[str, object] | None = None,
    input_shape: tuple[int, ...] | None = None,
    batch_size: int = batches.DEFAULT_BATCH,
    train: TrainSetup | None = None,
    seeds_count: int = 1,
    input_fn: str | None = None,
) -> ProbeReport:
    """`initcli probe` and `compare`: per scheme, a fresh model, one seeded batch, the verdict."""
    if not inits:
        raise SchemeError("give at least one --init SCHEME (e.g. --init kaiming_normal)")
    limits.check_seed(seed)
    if batch_size < 1:
        raise ArgError(f"--batch-size must be ≥ 1, got {batch_size}")
    if train is not None:
        _check_train(train)
        seeds_count = train.seeds
    limits.check_range("--seeds", seeds_count, MAX_SEEDS)
    source = resolve_target(target, args)
    # The probed model, its gradients and (with --train) a second copy with Adam's two moments.
    check_spec_fits(source, copies=5 if train else 2, hint="probe a smaller spec")
    # Every scheme is parsed before anything is built, so a typo fails fast.
    parsed = [resolve_policy(init, bias_init, None) for init in inits]
    names = [chosen.describe() for chosen in parsed]
    if len(set(names)) < len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise SchemeError(f"--init {twice} is given twice; give each scheme once")
    results: list[SchemeProbe] = []
    remarks: list[str] = []
    batch: batches.Batch | None = None
    data = None
    how = None
    if train is not None and (train.data != "moons" or _new_options(train)):
        data = datasets.load_data(train.data, seed, train.points, train.noise, train.val_fraction)
        how = _fit(train, data)
    for chosen in parsed:
        model, _, said = initialized(source, chosen, seed, input_shape)
        # With several --init, each remark says whose it is.
        prefix = f"--init {chosen.describe()}: " if len(parsed) > 1 else ""
        remarks.extend(prefix + remark for remark in said if prefix + remark not in remarks)
        if batch is None:
            batch = batch_for(source, model, input_shape, batch_size, seed, input_fn)
            if data is not None:
                training.check_shapes(model, data)
            elif train is not None:
                per_sample = tuple(batch.main.shape[1:])
                if per_sample != (2,) or not batch.main.is_floating_point() or not batch.args:
                    shape = "×".join(map(str, per_sample))
                    raise ProbeError(
                        "--train fits two moons: the model must take 2 features and give 2 "
                        f"logits, and {source.target} takes {shape} per sample "
                        f"({batch.source})"
                    )
                probe.check_moons_model(model)
        # Training starts from the init, not from the probe's backward pass, so it gets its own
        # fresh copy; both are built and initialized identically.
        result = probe.probe(model, batch)
        runs: list[training.TrainResult] = []
        if train is not None:
            for k in range(train.seeds):
                fresh, _, _ = initialized(source, chosen, seed + k, input_shape)
                if data is None or how is None:
                    runs.append(
                        training.train_moons(
                            fresh, train.steps, train.lr, seed, train.points, train.noise
                        )
                    )
                else:
                    runs.append(training.fit(fresh, data, how, seed + k))
        trained = runs[0] if runs else None
        across = None
        if seeds_count > 1:
            others = [result]
            for k in range(1, seeds_count):
                again, _, _ = initialized(source, chosen, seed + k, input_shape)
                again_batch = batch_for(source, again, input_shape, batch_size, seed + k, input_fn)
                others.append(probe.probe(again, again_batch))
            verdicts = tuple(r.verdict.value for r in others)
            holds = verdicts[0] if len(set(verdicts)) == 1 else None
            ratios = tuple(r.std_ratio for r in others)
            finite = [r for r in ratios if r is not None and math.isfinite(r)]
            ratio = seeds.interval(finite) if finite else None
            across = ProbeSeeds(ratios, verdicts, holds, ratio)
        results.append(SchemeProbe(chosen.describe(), result, trained, tuple(runs), across=across))
    assert batch is not None
    outcome = None
    if train is not None:
        results, outcome = _summarize(results, train, data)
    return ProbeReport(
        source.target,
        seed,
        tuple(batch.main.shape),
        batch.kind,
        batch.source,
        tuple(results),
        # With --epochs the step count is known only once the data is, and the default minibatch
        # depends on the data: report the real ones.
        train
        if train is None or how is None
        else dataclasses.replace(train, steps=how.steps, batch=how.batch),
        outcome,
        tuple(remarks),
    )


def _new_options(train: TrainSetup) -> bool:
    """Whether --train uses anything beyond today's full-batch Adam on all of two moons."""
    return (
        train.optimizer != "adam"
        or train.batch is not None
        or train.epochs is not None
        or train.seeds != 1
        or bool(train.val_fraction)
    )


def _fit(train: TrainSetup, data: datasets.Data) -> training.Schedule:
    steps = train.steps
    batch = train.batch
    if batch is None:
        batch = datasets.DEFAULT_BATCH.get(data.name)
    elif batch > len(data.x_train):
        raise ArgError(
            f"--train-batch {train.batch} is more than the {len(data.x_train)} training samples"
        )
    if train.epochs is not None:
        per_epoch = max(1, len(data.x_train) // (batch or len(data.x_train)))
        steps = train.epochs * per_epoch
        limits.check_range("--epochs × batches per epoch", steps, limits.MAX_TRAIN_STEPS)
    return training.Schedule(steps, train.lr, train.optimizer, batch)


def _chance_loss(data: datasets.Data | None) -> float:
    """The loss of a model that knows nothing: ln(classes) (uniform logits) or var(y) (the mean).

    The default target is a quarter of it: a property of the data, so adding a scheme to the
    comparison never moves another scheme's steps to the target.
    """
    if data is None:
        return math.log(2)  # two moons
    if data.classes is not None:
        return math.log(max(data.classes, 2))
    return float(data.y_train.float().var())


def _summarize(
    results: list[SchemeProbe], train: TrainSetup, data: datasets.Data | None
) -> tuple[list[SchemeProbe], TrainOutcome]:
    runs = [r for sp in results for r in sp.runs]
    target = train.target_loss
    if target is None:
        least = 0.0 if data is None or data.floor is None else data.floor
        # A quarter of the way from the floor (0, or a chain's entropy rate) to chance.
        target = least + (_chance_loss(data) - least) / 4
    split = data is not None and data.x_val is not None
    out: list[SchemeProbe] = []
    finals: list[tuple[str, list[float]]] = []
    for sp in results:
        final = [
            (r.val_loss if split and r.val_loss is not None else r.losses[-1]) for r in sp.runs
        ]
        accs = [r.accuracy for r in sp.runs if r.accuracy is not None]
        reach = tuple(
            next((i for i, loss in enumerate(r.losses) if loss <= target), None) for r in sp.runs
        )
        summary = SeedSummary(seeds.interval(final), seeds.interval(accs) if accs else None, reach)
        finals.append((sp.scheme, final))
        out.append(SchemeProbe(sp.scheme, sp.result, sp.training, sp.runs, summary, sp.across))
    metric = "validation loss" if split else "training loss"
    steps = len(runs[0].losses) - 1
    task = "classification" if data is None else data.task
    name = "moons" if data is None else data.name
    tests = tuple(seeds.paired_tests(metric, finals))
    floor = None if data is None else data.floor
    return out, TrainOutcome(name, task, steps, target, metric, tests, floor)


def _check_train(train: TrainSetup) -> None:
    if train.steps < 1:
        raise ArgError(f"--train must be ≥ 1 step, got {train.steps}")
    limits.check_range("--train", train.steps, limits.MAX_TRAIN_STEPS)
    limits.check_lr(train.lr)
    limits.check_range("--seeds", train.seeds, MAX_SEEDS)
    if train.optimizer not in training.OPTIMIZERS:
        raise ArgError(f"--optimizer must be adam or sgd, got {train.optimizer!r}")
    if train.batch is not None:
        limits.check_range("--train-batch", train.batch, limits.MAX_POINTS)
    if train.epochs is not None:
        limits.check_range("--epochs", train.epochs, limits.MAX_TRAIN_STEPS)
    if train.target_loss is not None and not (
        math.isfinite(train.target_loss) and train.target_loss > 0
    ):
        raise ArgError(f"--target-loss must be a number above 0, got {train.target_loss:g}")
    limits.check_range("--points", train.points, limits.MAX_POINTS, low=2)
    if train.points < 2:
        raise ArgError(f"--points must be ≥ 2, got {train.points}")
    if not (math.isfinite(train.noise) and train.noise >= 0):
        raise ArgError(f"--noise must be ≥ 0, got {train.noise:g}")
