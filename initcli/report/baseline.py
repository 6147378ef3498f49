"""Parameter-count baselines: `initcli snapshot` records them as JSON, `initcli check` compares."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from initcli import limits
from initcli.errors import ArgError, BaselineError, InitcliError
from initcli.files import read_regular
from initcli.report._shared import is_weights

__all__ = [
    "Baseline",
    "Change",
    "CheckReport",
    "TargetCheck",
    "check",
    "dumps",
    "merge",
    "read_baseline",
    "snapshot",
]

# Bumped only if a baseline written by one initcli could be misread by another.
FORMAT_VERSION = 1
# Statistics are stored to 6 significant digits: enough to catch any change of scheme, scale or
# seed, few enough that the file reads well and does not churn on the last bits of float maths.
_DIGITS = 6
_REL_TOL = 1e-4
# The largest baseline file read: a 200,000-module model's baseline is about 20 MB; json.loads
# takes roughly ten times a file's size in memory.
MAX_BASELINE_BYTES = 64_000_000
# A baseline is seven levels deep (top, models, entry, stats, params, parameter, shape), plus
# what an --arg list nests; deeper input is refused before validation walks it.
MAX_BASELINE_DEPTH = 32
# torch.manual_seed takes a seed below 2**64 (limits.SEED_LIMIT).
_SEED_LIMIT = 2**64
# A target is a path or `pkg.mod:Name`: longer than a path may be (PATH_MAX) is not one.
_MAX_TARGET_CHARS = 4096


class _Frozen(BaseModel):
    # strict: a count is a JSON integer (not "51" or true), as snapshot writes it; no NaN/inf.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


Count = Annotated[int, Field(ge=0)]


class ModuleEntry(_Frozen):
    type: str
    params: Count


class ParamEntry(_Frozen):
    shape: list[int] | None
    init: str
    mean: float | None
    std: float | None
    expected_var: float | None
    status: str


class StatsEntry(_Frozen):
    init: str | None  # as given to --init (None: the spec's init:, else default)
    bias_init: str | None
    seed: Annotated[int, Field(ge=0, lt=_SEED_LIMIT)] | None  # None for a weights file
    scheme: str | None  # the scheme as initcli describes it
    params: dict[str, ParamEntry]


class Entry(_Frozen):
    """One target as it was recorded."""

    target: str
    args: dict[str, Any]
    total: Count
    trainable: Count
    frozen: Count
    buffers: Count
    modules: dict[str, ModuleEntry]
    stats: StatsEntry | None = None

    @field_validator("target")
    @classmethod
    def _a_target(cls, target: str) -> str:
        # Checked here, as data: a path the OS cannot take must not reach the loaders.
        if not target.strip() or len(target) > _MAX_TARGET_CHARS or "\x00" in target:
            raise ValueError(
                f"a target is a path or pkg.mod:Name of at most {_MAX_TARGET_CHARS:,} "
                "characters, without NUL"
            )
        try:
            target.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("the target holds a lone surrogate (\\ud800-\\udfff)") from None
        return target

    @property
    def key(self) -> tuple[str, str]:
        return self.target, json.dumps(self.args, sort_keys=True)


class Baseline(_Frozen):
    """A baseline file: what `initcli check` compares every target with."""

    format: int = FORMAT_VERSION
    models: list[Entry]


@dataclass(frozen=True)
class Change:
    """One difference between a baseline entry and the target as it builds now.

    `field` is what changed: a total (`total`, `trainable`, `frozen`, `buffers`), a module's
    `params` or `type`, or a parameter's statistic (`shape`, `init`, `mean`, `std`,
    `expected_var`, `status`). `name` is the module or parameter ('' for totals); None in
    `before`/`after` means absent (a module added or removed).
    """

    field: str
    name: str
    type: str
    before: int | float | str | list[int] | None
    after: int | float | str | list[int] | None

    @property
    def delta(self) -> int | None:
        """after - before for parameter counts (absent counts as 0); None for other fields."""
        if self.field not in ("total", "trainable", "frozen", "buffers", "params"):
            return None
        before = self.before if isinstance(self.before, int) else 0
        after = self.after if isinstance(self.after, int) else 0
        return after - before


@dataclass(frozen=True)
class TargetCheck:
    target: str
    args: Mapping[str, Any]
    total_before: int
    total_after: int
    changes: tuple[Change, ...]

    @property
    def ok(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class CheckReport:
    """`initcli check`: every target of a baseline, rebuilt and compared."""

    baseline: str
    targets: tuple[TargetCheck, ...]
    # The baseline as it would be recorded now (for `check --update`); not part of the report.
    current: Baseline = field(repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    @property
    def changed(self) -> tuple[TargetCheck, ...]:
        return tuple(t for t in self.targets if not t.ok)


def _round(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(f"{value:.{_DIGITS}g}")


def _json_args(args: Mapping[str, object]) -> dict[str, Any]:
    try:
        json.dumps(args)
    except (TypeError, ValueError):
        raise ArgError(
            "a --arg value cannot be stored in a baseline (not a JSON value, e.g. a YAML date); "
            "quote it to pass a string"
        ) from None
    return dict(args)


def _entry(
    target: str,
    args: Mapping[str, object],
    stats: bool,
    init: str | None,
    bias_init: str | None,
    seed: int,
) -> Entry:
    from initcli import report

    stored_args = _json_args(args)  # before the build: a bad value should fail fast
    recorded: StatsEntry | None = None
    if not stats:
        counted = report.count(target, args)
    elif is_weights(target):
        if args:
            raise ArgError(f"--arg does not apply to a weights file ({target})")
        found = report.inspect_checkpoint(target, init, bias_init)
        counted = found.counts
        recorded = _stats(init, bias_init, None, found.against, found.params)
    else:
        inspected = report.inspect(target, init, bias_init, seed, args)
        counted = inspected.counts
        recorded = _stats(init, bias_init, seed, inspected.scheme, inspected.params)
    c = counted.counts
    return Entry(
        target=counted.target,
        args=stored_args,
        total=c.total,
        trainable=c.trainable,
        frozen=c.frozen,
        buffers=c.buffers,
        # A module name can repeat only if named_modules() yields it twice, which it never does.
        modules={m.name: ModuleEntry(type=m.type, params=m.params) for m in c.modules},
        stats=recorded,
    )


def _stats(
    init: str | None,
    bias_init: str | None,
    seed: int | None,
    scheme: str | None,
    params: Sequence[Any],
) -> StatsEntry:
    return StatsEntry(
        init=init,
        bias_init=bias_init,
        seed=seed,
        scheme=scheme,
        params={
            p.name: ParamEntry(
                shape=None if p.shape is None else list(p.shape),
                init=p.init,
                mean=_round(p.mean),
                std=_round(p.std),
                expected_var=_round(p.expected_var),
                status=p.status,
            )
            for p in params
        },
    )


def snapshot(
    targets: Sequence[str],
    args: Mapping[str, object] | None = None,
    stats: bool = False,
    init: str | None = None,
    bias_init: str | None = None,
    seed: int = 0,
) -> Baseline:
    """Build each target (with the same `args`) and record its counts, and statistics if asked."""
    if not stats and (init is not None or bias_init is not None):
        raise ArgError("--init and --bias-init only apply with --stats")
    limits.check_seed(seed)
    entries: dict[tuple[str, str], Entry] = {}
    for target in targets:
        entry = _entry(target, args or {}, stats, init, bias_init, seed)
        if entry.key in entries:
            raise ArgError(f"{target} is named twice; name each target once")
        entries[entry.key] = entry
    return Baseline(models=[entries[k] for k in sorted(entries)])


def merge(old: Baseline, new: Baseline) -> Baseline:
    """`snapshot --update`: `new`'s entries replace those with the same target and args."""
    entries = {e.key: e for e in old.models}
    entries.update({e.key: e for e in new.models})
    return Baseline(models=[entries[k] for k in sorted(entries)])


def dumps(baseline: Baseline) -> str:
    """Stable, diff-friendly JSON: sorted keys, 2-space indent, one trailing newline."""
    data = baseline.model_dump()
    for entry in data["models"]:
        # Counts-only entries carry no "stats" key at all, rather than a null.
        if entry["stats"] is None:
            del entry["stats"]
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class _DuplicateKeyError(ValueError):
    """A JSON object that gives one key twice (json.loads would keep the last silently)."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return obj


def _depth(data: object) -> int:
    """How deeply lists and objects nest in `data`, without recursion; stops past the bound."""
    deepest = 0
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack and deepest <= MAX_BASELINE_DEPTH:
        item, depth = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _missing(file: Path, is_dir: bool) -> BaselineError:
    what = "is a directory" if is_dir else "does not exist"
    return BaselineError(
        f"baseline {file} {what}; create one with: initcli snapshot TARGET... -o {file}"
    )


def _read(file: Path) -> bytes:
    """At most MAX_BASELINE_BYTES + 1 bytes of a regular file, checked before any read blocks."""
    try:
        data = read_regular(file, MAX_BASELINE_BYTES + 1)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise _missing(file, isinstance(exc, IsADirectoryError)) from None
    except OSError as exc:
        raise BaselineError(f"baseline {file}: cannot read it ({exc.strerror})") from None
    if len(data) > MAX_BASELINE_BYTES:
        raise BaselineError(
            f"baseline {file} is larger than {MAX_BASELINE_BYTES:,} bytes, more than an initcli "
            "baseline holds; regenerate it with initcli snapshot"
        )
    return data


def read_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read and validate a baseline file: JSON of at most MAX_BASELINE_BYTES, nested at most
    MAX_BASELINE_DEPTH deep, no key twice in an object, every value of the type snapshot wrote."""
    file = Path(path)
    regenerate = "regenerate it with initcli snapshot"
    data = _read(file)
    try:
        # utf-8-sig: a byte-order mark (an editor's) is not part of the JSON.
        loaded = json.loads(data.decode("utf-8-sig"), object_pairs_hook=_object)
    except UnicodeDecodeError:
        raise BaselineError(f"baseline {file} is not UTF-8 text") from None
    except RecursionError:
        raise BaselineError(
            f"baseline {file} nests lists or objects too deeply to be an initcli baseline; "
            + regenerate
        ) from None
    except json.JSONDecodeError as exc:
        raise BaselineError(
            f"baseline {file} is not valid JSON (line {exc.lineno}: {exc.msg}); {regenerate}"
        ) from None
    except _DuplicateKeyError as exc:
        raise BaselineError(
            f"baseline {file} gives the key {_short(repr(exc.args[0]))} twice in one object; "
            "keep one, "
            f"or {regenerate}"
        ) from None
    except ValueError as exc:  # Python's limit on digits in an integer (4,300)
        raise BaselineError(
            f"baseline {file} holds a number initcli cannot read ({_short(str(exc))}); "
            + regenerate
        ) from None
    if _depth(loaded) > MAX_BASELINE_DEPTH:
        raise BaselineError(
            f"baseline {file} nests lists or objects more than {MAX_BASELINE_DEPTH} levels deep, "
            f"too deeply to be an initcli baseline; {regenerate}"
        )
    try:
        baseline = Baseline.model_validate(loaded)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(_short(str(part)) for part in first["loc"]) or "the top level"
        raise BaselineError(
            f"baseline {file} is not an initcli baseline ({where}: {first['msg']}); " + regenerate
        ) from None
    if baseline.format != FORMAT_VERSION:
        raise BaselineError(
            f"baseline {file} has format {baseline.format}; this initcli reads format "
            f"{FORMAT_VERSION}: {regenerate}"
        )
    return baseline


def _short(text: str) -> str:
    """Text from the file, short enough for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."


def _close(before: float | None, after: float | None, scale: float) -> bool:
    if before is None or after is None:
        return before is after
    return math.isclose(before, after, rel_tol=_REL_TOL, abs_tol=_REL_TOL * scale)


def _module_changes(old: Entry, new: Entry) -> list[Change]:
    changes = []
    for name in [*old.modules, *(n for n in new.modules if n not in old.modules)]:
        was, now = old.modules.get(name), new.modules.get(name)
        if was is not None and now is not None and was.type != now.type:
            changes.append(Change("type", name, now.type, was.type, now.type))
        before = None if was is None else was.params
        after = None if now is None else now.params
        if before != after:
            kind = now.type if now is not None else was.type if was is not None else ""
            changes.append(Change("params", name, kind, before, after))
    return changes


def _stats_changes(old: StatsEntry, new: StatsEntry) -> list[Change]:
    changes = []
    for name in [*old.params, *(n for n in new.params if n not in old.params)]:
        was, now = old.params.get(name), new.params.get(name)
        if was is None or now is None:
            # A parameter added or removed: its shape stands for it.
            before = None if was is None else was.shape
            after = None if now is None else now.shape
            changes.append(Change("param", name, "", before, after))
            continue
        scale = max(was.std or 0.0, now.std or 0.0)
        for key in ("shape", "init", "status"):
            if getattr(was, key) != getattr(now, key):
                changes.append(Change(key, name, "", getattr(was, key), getattr(now, key)))
        for key in ("mean", "std", "expected_var"):
            before, after = getattr(was, key), getattr(now, key)
            if not _close(before, after, scale if key == "mean" else 0.0):
                changes.append(Change(key, name, "", before, after))
    return changes


def compare(old: Entry, new: Entry) -> TargetCheck:
    """Every difference between a recorded entry and a fresh one of the same target."""
    changes = [
        Change(key, "", "", getattr(old, key), getattr(new, key))
        for key in ("total", "trainable", "frozen", "buffers")
        if getattr(old, key) != getattr(new, key)
    ]
    changes += _module_changes(old, new)
    if old.stats is not None and new.stats is not None:
        changes += _stats_changes(old.stats, new.stats)
    return TargetCheck(old.target, old.args, old.total, new.total, tuple(changes))


def check(path: str | os.PathLike[str]) -> CheckReport:
    """Rebuild every target of the baseline at `path` and compare it with what was recorded."""
    from initcli.init import policy
    from initcli.model import resolve

    baseline = read_baseline(path)
    # Every entry is vetted before any is built: a baseline names code to run, and one edited
    # to name `os:system` or `builtins:exit` must not get a single call (loading refuses the
    # rest, e.g. a non-model function, before calling it).
    for old in baseline.models:
        try:
            if is_weights(old.target):
                continue
            resolve.refuse_library_target(old.target)
            if old.stats is not None:
                # The recorded --init too: a malformed policy, or `fn:` naming the standard
                # library, is refused before any entry is built.
                found = policy.parse(old.stats.init, old.stats.bias_init)
                if found.code is not None and found.code.kind == policy.FN:
                    resolve.refuse_library_target(found.code.target)
        except InitcliError as exc:
            raise type(exc)(f"{path}: {old.target}: {exc}") from None
    results = []
    entries = []
    for old in baseline.models:
        stats = old.stats
        try:
            new = _entry(
                old.target,
                old.args,
                stats is not None,
                stats.init if stats else None,
                stats.bias_init if stats else None,
                (stats.seed or 0) if stats else 0,
            )
        except InitcliError as exc:
            raise type(exc)(f"{path}: {old.target}: {exc}") from None
        results.append(compare(old, new))
        entries.append(new)
    return CheckReport(str(path), tuple(results), Baseline(models=entries))
