"""Repeated blocks folded into one row: rows grouped by their name's pattern, odd blocks apart."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from initcli.measure.counting import ModuleCount
from initcli.report.measuring import ParamReport
from initcli.text import block_pattern

# Fewer rows than this stay apart: two rows side by side show both values in the room a range
# takes, and a 2-block model reads well as it is.
MIN_GROUP = 3

# How far (in standard deviations) a block's std or mean may sit from its peers' median before it
# stands alone: the 5 standard errors statuses.md's `ok` band allows an init's own draws.
TOLERANCE = 5.0
# The median absolute deviation of normal values times this is their standard deviation.
_MAD_TO_SD = 1.4826

# Statuses from least to most alarming (docs/contract/statuses.md): a group row shows its worst.
# ok and custom say the values are an init's; unknown says nothing; off, symmetric (every unit
# the same: nothing can break the tie) and uninitialized (no init's draw at all) are findings.
STATUS_ORDER = ("ok", "custom", "unknown", "off", "symmetric", "uninitialized")


@dataclass(frozen=True)
class RowGroup:
    """Rows of one pattern (`h.*.attn.c_proj.weight`) shown as one, and the odd ones shown apart.

    `members` and `apart` index the report's rows (parameters or modules), in order. `mean` and
    `std` are the range (low, high) across the members, `status` the worst, `looks_like` the
    members' shared label (None where they do not share one); all None for modules.
    """

    pattern: str
    members: tuple[int, ...]
    apart: tuple[int, ...] = ()
    mean: tuple[float, float] | None = None
    std: tuple[float, float] | None = None
    status: str | None = None
    looks_like: str | None = None


def worst_status(statuses: Iterable[str]) -> str:
    """The most alarming of `statuses` by STATUS_ORDER (one not listed counts as unknown)."""
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    unknown = rank["unknown"]
    return max(statuses, key=lambda s: rank.get(s, unknown))


Scale = tuple[float, float, int]  # (mean, std, elements) of a row whose values are known


def group_rows(
    names: Sequence[str],
    kinds: Sequence[Hashable],
    scales: Sequence[Scale | None] | None = None,
    labels: Sequence[str | None] | None = None,
    fits: Callable[[int, str], bool] | None = None,
) -> tuple[RowGroup, ...]:
    """Group rows whose names share a pattern and whose `kinds` are equal; a row whose label is
    not its peers' most common one, and whose values do not `fit` that label either, stands
    apart; with `scales`, so does a row whose std or mean differs from its peers' (`_odd`).
    A group needs MIN_GROUP rows; its `looks_like` is the peers' label.

    Only the patterns and kinds are compared: O(rows), for files of 10⁶ modules.
    """
    by_pattern: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        shape = block_pattern(name)
        if shape != name:
            by_pattern.setdefault(shape, []).append(i)
    found: list[RowGroup] = []
    for shape, rows in by_pattern.items():
        if len(rows) < MIN_GROUP:
            continue
        by_kind: dict[Hashable, list[int]] = {}
        for i in rows:
            by_kind.setdefault(kinds[i], []).append(i)
        groups: list[tuple[list[int], str | None]] = []
        for kin in by_kind.values():
            groups += _clusters(kin, scales, labels, fits)
        grouped = {i for peers, _ in groups for i in peers}
        apart = tuple(i for i in rows if i not in grouped)
        found += [RowGroup(shape, tuple(peers), apart, looks_like=lbl) for peers, lbl in groups]
    return tuple(sorted(found, key=lambda g: g.members[0]))


def _clusters(
    rows: list[int],
    scales: Sequence[Scale | None] | None,
    labels: Sequence[str | None] | None,
    fits: Callable[[int, str], bool] | None,
) -> list[tuple[list[int], str | None]]:
    """Rows of one pattern and kind as groups: those that fit the most common label, less the
    ones whose scale is odd, then the same among the rest (blocks that alternate two inits make
    two groups)."""
    found: list[tuple[list[int], str | None]] = []
    left = rows
    while len(left) >= MIN_GROUP:
        alike, label = left, None
        if labels is not None:
            # Labels are picked among near-equal candidates by each block's sampling noise
            # (normal vs trunc_normal at ±2σ, two kaimings of one variance): a block differs
            # only where its values do not fit its peers' label at all.
            label = Counter(labels[i] for i in left).most_common(1)[0][0]
            alike = [
                i
                for i in left
                if labels[i] == label or (label is not None and fits is not None and fits(i, label))
            ]
        odd = _odd([scales[i] for i in alike]) if scales is not None else set()
        peers = [i for n, i in enumerate(alike) if n not in odd]
        if len(peers) >= MIN_GROUP:
            found.append((peers, label))
        if alike is left:
            break
        taken = set(alike)
        left = [i for i in left if i not in taken]
    return found


def _odd(scales: Sequence[Scale | None]) -> set[int]:
    """The positions whose std or mean is not one its peers' could have drawn.

    On a log scale, a sample std of n elements from one distribution has sd ≈ 1/√(2n) (normal
    values); a mean, std/√n. Peers that were trained, or scaled by depth, spread wider than that:
    their own spread, robustly from the median absolute deviation, is used where it is wider. A
    row more than TOLERANCE such sds from the peers' median stands apart; rows whose std is
    0, not finite or unknown are compared by their kind alone (a constant's value is in its
    label).
    """
    known = {
        n: s
        for n, s in enumerate(scales)
        if s is not None and s[2] >= 2 and s[1] > 0 and math.isfinite(s[0] * s[1])
    }
    if len(known) < MIN_GROUP:
        return set()
    logs = {n: math.log(s[1]) for n, s in known.items()}
    means = {n: s[0] for n, s in known.items()}
    log_mid = statistics.median(logs.values())
    mean_mid = statistics.median(means.values())
    log_spread = _MAD_TO_SD * statistics.median(abs(v - log_mid) for v in logs.values())
    mean_spread = _MAD_TO_SD * statistics.median(abs(v - mean_mid) for v in means.values())
    sigma = math.exp(log_mid)
    odd = set()
    for n, (_, _, elements) in known.items():
        log_sd = max(log_spread, 1 / math.sqrt(2 * elements))
        mean_sd = max(mean_spread, sigma / math.sqrt(elements))
        if (
            abs(logs[n] - log_mid) > TOLERANCE * log_sd
            or abs(means[n] - mean_mid) > TOLERANCE * mean_sd
        ):
            odd.add(n)
    return odd


def param_kind(p: ParamReport) -> Hashable:
    """What must be equal for two parameters to share a row: shape, dtype, trainability, init,
    status, forward fans, and whether the values are known, constant or not finite (what they
    look like is compared by group_rows: `param_label`). An `auto` choice's reason names the
    module after the weight: by its pattern.
    """
    head, arrow, why = p.init.partition(" ← ")
    std = p.std
    values = "none" if std is None else "constant" if std == 0 else "finite"
    if std is not None and not math.isfinite(std):
        values = "not finite"
    return (
        p.shape, p.dtype, p.requires_grad, head + arrow + block_pattern(why), p.status,
        p.forward_fan_in, p.forward_fan_out, values,
    )  # fmt: skip


def param_label(p: ParamReport) -> str | None:
    """What a parameter's values look like, as grouping compares it: the label where it names an
    init (a match, a constant, orthogonal), else the family (`normal(std=0.0413)`, which no named
    init matches, is `normal`: its number is the std the group's range shows)."""
    if p.fit is not None and not p.fit.matches and p.fit.family not in ("constant", "orthogonal"):
        return p.fit.family
    return p.looks_like


def group_params(
    params: Sequence[ParamReport], kind: Callable[[ParamReport], Hashable] = param_kind
) -> tuple[RowGroup, ...]:
    """The groups of an inspect report's parameters (a weights file's: `kind` adds its state).

    A parameter whose label differs from its peers' stays with them where its values fit their
    label too (the label is among its fit's matches).
    """
    scales = [
        None if p.mean is None or p.std is None or p.numel is None else (p.mean, p.std, p.numel)
        for p in params
    ]

    def fits(i: int, label: str) -> bool:
        fit = params[i].fit
        return fit is not None and label in fit.matches

    groups = group_rows(
        [p.name for p in params],
        [kind(p) for p in params],
        scales,
        [param_label(p) for p in params],
        fits,
    )
    return tuple(_described(g, params) for g in groups)


def _described(group: RowGroup, params: Sequence[ParamReport]) -> RowGroup:
    members = [params[i] for i in group.members]
    labels = {p.looks_like for p in members}
    # The members' label where they share one; else their peers' label where it names an init
    # (every member fits it), not a family (their numbers differ: the std range shows them).
    shared = labels.pop() if len(labels) == 1 else None
    if shared is None and group.looks_like in labels:
        shared = group.looks_like
    return RowGroup(
        group.pattern,
        group.members,
        group.apart,
        mean=_span(p.mean for p in members),
        std=_span(p.std for p in members),
        status=worst_status(p.status for p in members),
        looks_like=shared,
    )


def _span(values: Iterable[float | None]) -> tuple[float, float] | None:
    known = [v for v in values if v is not None and math.isfinite(v)]
    return (min(known), max(known)) if known else None


def group_modules(modules: Sequence[ModuleCount]) -> tuple[RowGroup, ...]:
    """The groups of `count`'s module table: same pattern, type, hand count and parameters."""
    return group_rows([m.name for m in modules], [(m.type, m.formula, m.params) for m in modules])
