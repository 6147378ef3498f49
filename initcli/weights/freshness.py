"""Did a checkpoint's weights load? Which tensors still hold a fresh init among trained ones."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from initcli.init.schemes import Expectation
from initcli.measure import dispersion, spectrum, stats
from initcli.measure.identify import Fit
from initcli.text import first_and_more

AT_INIT = "at init"
TRAINED = "trained"
UNDECIDED = "undecided"
UNPRODUCED = "uninitialized"

# Below this many values a non-constant tensor cannot be told from a fresh draw: the tolerance
# of a 64-element bias's variance spans every round std from 0.002 to 0.02 (measured: trained
# biases of small GPT-2/BERT configs "match" normal(std=0.005) after 30 Adam steps).
MIN_DECIDABLE = 1024
# A flag says "did it load?": on a checkpoint where every module trained it must come up in
# fewer than 1 run in 20, however lightly it trained (issue 22: a small Llama after 10 steps
# flagged trained modules in 3 of 5 seeds under a fixed 0.9 share of trained matrices). The
# family-wise false-alarm rate `_flagged` holds to.
FLAG_ALPHA = 0.05


@dataclass(frozen=True)
class Tensor:
    """What `state` needs of a measured tensor; `init` is the model's own init for it where
    known (a HF folder's config.json replayed on meta), else None."""

    name: str
    numel: int
    mean: float | None
    var: float | None
    fit: Fit | None
    init: Expectation | None = None
    ndim: int = 2
    # How far the top singular value stands above the i.i.d. bulk (spectrum.edge_z), and how
    # likely rows and columns this different are among i.i.d. values (dispersion.p_value),
    # measured where mean and variance alone say at init (`with_structure`); None where not.
    edge_z: float | None = None
    dispersion_p: float | None = None


def state(t: Tensor) -> str:
    """`at init`, `trained`, `uninitialized` (values neither produces) or `undecided`.

    With the model's own init known, at init means consistent with it (stats.consistent: mean and
    variance within the tolerance at this size); a small tensor (under MIN_DECIDABLE values) that
    is consistent with a random init is undecided, but one that left a constant init is trained.
    Without it: a constant tensor (a norm's ones, a bias's zeros) is at init, since one optimizer
    step moves every element that receives a gradient; a larger tensor is at init when its values
    form a clean family that a named init matches at its fans (identify.Fit.matches), trained
    otherwise. One-element tensors are always constant, so they are undecided. A matrix those
    moments call at init is trained when its structure says so (`with_structure`).
    """
    found = _moments_state(t)
    return TRAINED if found == AT_INIT and _structured(t) else found


def _structured(t: Tensor) -> bool:
    """Whether a matrix shows structure an i.i.d. draw does not have. Moments miss training that
    moved a matrix without changing its variance much (BERT's pooler moved 30% at variance ratio
    1.04); the structure training leaves shows as singular values above the Marchenko–Pastur
    bulk (spectrum.EDGE_Z), or, before that, as rows or columns that stopped being alike
    (dispersion.ALPHA: T5's MLPs after 10 steps)."""
    return spectrum.structured(t.edge_z) or dispersion.dispersed(t.dispersion_p)


def with_structure(t: Tensor, values: torch.Tensor) -> Tensor:
    """`t` with its `edge_z` and `dispersion_p` measured on `values` where mean and variance
    alone call it at init and it is a matrix of random values (spectrum.as_matrix): the only
    place they can change the state, so they run on few tensors of a trained checkpoint."""
    if t.ndim < 2 or t.mean is None or t.var is None or not t.var > 0:
        return t
    if _moments_state(t) != AT_INIT:
        return t
    return replace(
        t,
        edge_z=spectrum.edge_z(values, t.mean, t.var),
        dispersion_p=dispersion.p_value(values, t.mean),
    )


def _moments_state(t: Tensor) -> str:
    """`state` by mean, variance and the fitted family alone."""
    if t.fit is None or t.mean is None or t.var is None:
        return UNDECIDED
    if t.fit.family == "uninitialized" or not math.isfinite(t.mean):
        return UNPRODUCED
    if t.numel < 2:
        return UNDECIDED
    init = t.init
    if init is not None and init.var is not None:
        if not stats.consistent(t.numel, t.mean, t.var, init.mean, init.var, init.kurtosis):
            return TRAINED
        return UNDECIDED if init.var > 0 and t.numel < MIN_DECIDABLE else AT_INIT
    if t.fit.family == "constant":
        return AT_INIT
    if t.numel < MIN_DECIDABLE:
        return UNDECIDED
    if t.fit.family != "none" and t.fit.matches:
        return AT_INIT
    return TRAINED


@dataclass(frozen=True)
class LoadVerdict:
    """Per tensor its state; the modules whose every decided tensor is at init while most of
    the checkpoint looks trained; and the summary lines to print."""

    states: dict[str, str]
    fresh_modules: tuple[str, ...]
    notes: tuple[str, ...]


def _sure(t: Tensor) -> bool:
    """Whether a tensor at init is evidence enough to flag its module: consistent with the model's
    own init, or a constant (a bias's zeros, a norm's ones, which training always moves). A
    matrix matching only some named init is not: without the model's own init, trained
    matrices pass through round stds (bench_loaded.py: BERT after 10 steps, 8.6 false flags a
    run when they counted). Nor is a matrix whose top singular value, or whose rows and
    columns, are beyond what a fresh draw gives 99% of the time (spectrum.typical,
    dispersion.alike): moved, but not enough to call trained."""
    known = t.init is not None or (t.fit is not None and t.fit.family == "constant")
    return known and spectrum.typical(t.edge_z) and dispersion.alike(t.dispersion_p)


def _module(name: str) -> str:
    return name.rpartition(".")[0] or "(root)"


def _by_module(tensors: Sequence[Tensor]) -> dict[str, list[Tensor]]:
    by_module: dict[str, list[Tensor]] = {}
    for t in tensors:
        by_module.setdefault(_module(t.name), []).append(t)
    return by_module


def _at_init_modules(by_module: dict[str, list[Tensor]], states: dict[str, str]) -> tuple[str, ...]:
    """Modules none of whose tensors looks trained, with at least one `_sure` at init."""
    return tuple(
        m
        for m, ts in by_module.items()
        if any(states[t.name] == AT_INIT and _sure(t) for t in ts)
        and all(states[t.name] != TRAINED for t in ts)
    )


_INDEX = re.compile(r"(?<=\.)\d+(?=\.|$)|^\d+(?=\.)")


def _role(module: str) -> str:
    """The module's place in a repeated block: `model.layers.3.mlp.up_proj` → `model.layers.*.
    mlp.up_proj`; modules of one role are peers (the same layer in every block)."""
    return _INDEX.sub("*", module)


def _kind(t: Tensor) -> str:
    """Vectors (biases, norms: constants that leave at the first step) and matrices (whose
    moments leave their tolerance only after tens of steps) read at init at different rates."""
    return "matrix" if t.ndim >= 2 else "vector"


def _null_rates(
    by_module: dict[str, list[Tensor]], states: dict[str, str], suspects: set[str]
) -> dict[str, float]:
    """Per kind, how often a tensor that trained still reads at init in this checkpoint: the
    share at init among the decided tensors outside the suspects (and the vectors too small to
    decide, which read at init only when constant), as the Jeffreys estimate
    (k + ½)/(n + 1) (never 0 from a finite count); all kinds pooled where a kind has no tensor
    outside them."""
    counts: dict[str, list[int]] = {"matrix": [0, 0], "vector": [0, 0]}
    for m, ts in by_module.items():
        if m in suspects:
            continue
        for t in ts:
            # A vector under MIN_DECIDABLE values that left its constant is undecided, yet it is
            # a vector that no longer reads at init: counted (a bare file's biases are all such).
            counted = states[t.name] in (AT_INIT, TRAINED) or (
                _kind(t) == "vector" and states[t.name] == UNDECIDED and t.numel >= 2
            )
            if counted:
                counts[_kind(t)][0] += states[t.name] == AT_INIT
                counts[_kind(t)][1] += 1
    pooled = [sum(c[0] for c in counts.values()), sum(c[1] for c in counts.values())]
    return {
        kind: ((c if c[1] else pooled)[0] + 0.5) / ((c if c[1] else pooled)[1] + 1)
        for kind, c in counts.items()
    }


def _flagged(
    candidates: tuple[str, ...], by_module: dict[str, list[Tensor]], states: dict[str, str]
) -> tuple[str, ...]:
    """The candidates that stand out from training, at a family-wise false-alarm rate of
    FLAG_ALPHA on a checkpoint where every module trained.

    A suspect is a candidate whose peers (the same module in other blocks) all trained, or that
    has none (an embedding, a head). The null: a module that trained still reads at init by
    chance, each of its sure at-init tensors independently at its kind's rate in this checkpoint
    (`_null_rates`: a lightly trained checkpoint, where half the matrices still read at init,
    explains a module at init; one where all trained does not). Suspects with one parent (an
    MLP's gate, up and down projections, reset together) are tested as one group: flagged when
    the product of their tensors' rates is at most FLAG_ALPHA over the number of groups
    (Bonferroni) and each member's own product at most FLAG_ALPHA."""
    trained = {m for m, ts in by_module.items() if any(states[t.name] == TRAINED for t in ts)}
    peers: dict[str, set[str]] = {}
    for m in by_module:
        peers.setdefault(_role(m), set()).add(m)
    suspects = [m for m in candidates if peers[_role(m)] - {m} <= trained]
    rate = _null_rates(by_module, states, set(suspects))

    def chance(m: str) -> float:
        sure = [t for t in by_module[m] if states[t.name] == AT_INIT and _sure(t)]
        return math.prod(rate[_kind(t)] for t in sure)

    groups: dict[str, list[str]] = {}
    for m in suspects:
        groups.setdefault(m.rpartition(".")[0], []).append(m)
    flagged: set[str] = set()
    for members in groups.values():
        if math.prod(map(chance, members)) <= FLAG_ALPHA / len(groups):
            flagged |= {m for m in members if chance(m) <= FLAG_ALPHA}
    return tuple(m for m in candidates if m in flagged)


def judge_loaded(tensors: Sequence[Tensor]) -> LoadVerdict:
    """Each tensor's state and the summary: all at init (an untrained save), all trained, or
    modules that look freshly initialized among trained ones (a layer that did not load)."""
    states = {t.name: state(t) for t in tensors}
    decided_states = (AT_INIT, TRAINED)
    decided = [s for s in states.values() if s in decided_states]
    trained = decided.count(TRAINED)
    at_init = decided.count(AT_INIT)
    matrices = [states[t.name] for t in tensors if t.ndim >= 2 and states[t.name] in decided_states]
    basis = matrices or decided
    kind = "weight matrices" if matrices else "tensors"
    told = f"{basis.count(TRAINED)} of {len(basis)} decided {kind}"
    notes: list[str] = []
    fresh: tuple[str, ...] = ()
    if decided and trained == 0:
        notes.append(
            f"every tensor that can be told ({at_init} of {len(states)}) still holds a fresh "
            "init's distribution: an untrained checkpoint, or one saved before training moved it."
        )
    elif at_init == 0 and decided:
        notes.append(f"every tensor that can be told ({trained} of {len(states)}) looks trained.")
    elif decided:
        by_module = _by_module(tensors)
        candidates = _at_init_modules(by_module, states)
        fresh = _flagged(candidates, by_module, states)
        named = [m for m in candidates if m not in fresh]
        if fresh:
            notes.append(
                f"{len(fresh)} module{'s look' if len(fresh) > 1 else ' looks'} freshly "
                f"initialized among trained ones ({told} look trained): "
                f"{first_and_more(fresh, 5)} — did {'they' if len(fresh) > 1 else 'it'} load? "
                "A layer missing from the checkpoint, or stored under a name the model does not "
                "use, keeps its init."
            )
        if named:
            notes.append(
                f"{told} look trained; also still at init, but not standing out from their "
                f"peers: {first_and_more(named, 5)} (a lightly trained checkpoint, or training "
                "that touched only some layers; not flagged)."
            )
        elif not fresh:
            # Tensors still at init whose modules are not candidates: beside a trained tensor,
            # or matching only a named init (not `_sure`). Said as such, never "none at init".
            left = [n for n, s in states.items() if s == AT_INIT]
            notes.append(
                f"{told} look trained; {len(left)} tensor{'s' if len(left) > 1 else ''} still "
                f"read at init ({first_and_more(left, 3)}), none flagged: each shares its module "
                "with a trained tensor, or is no sure sign of a fresh init (it matches only a "
                "named init, or its top singular value is above a fresh draw's)."
            )
    structured = [t.name for t in tensors if states[t.name] == TRAINED and _structured(t)]
    if structured:
        many = len(structured) > 1
        notes.append(
            f"{len(structured)} matri{'ces' if many else 'x'} whose mean and variance "
            f"still fit {'their' if many else 'its'} init "
            f"({first_and_more(structured, 3)}) {'are' if many else 'is'} called "
            "trained by their structure: a top singular value above the Marchenko–Pastur edge "
            f"of an i.i.d. draw (over {spectrum.EDGE_Z:g} Tracy–Widom scales), or rows or "
            f"columns that differ more than i.i.d. values allow (p < {dispersion.ALPHA:g})."
        )
    undecided = sum(s == UNDECIDED for s in states.values())
    if undecided and decided:
        notes.append(
            f"{undecided} tensors are too small (under {MIN_DECIDABLE:,} values, not constant) "
            "to tell a fresh init from a trained one."
        )
    return LoadVerdict(states, fresh, tuple(notes))
