"""What `inspect --init default` says on 25 transformers architectures, checked against real builds.

    python benchmarks/architectures.py [NAME ...] [--rows]

Each architecture (benchmarks/models/hf_architectures.py, small configs) is inspected under
`default` and built for real with the same seed. Each row is checked against what the model
itself did, found without initcli: the real build's values (equal to the report's), a second
build with another seed (are the values a draw at all?), and the last whole-tensor init call
the real build made to each parameter, re-run on fresh copies to measure its true variance.
Counted per architecture:

- `ok_not_own`: `ok` (torch's default) on values the model does not have: a random default
  claimed for values that are not drawn, for a draw of another variance (≥ 5% off; unless the
  row says `too few to tell`), or a row whose `looks_like` names something else;
- `flagged_own`: `off`, `symmetric` or `unknown` on the model's own init (every value under
  `default` is);
- `wrong_name`: a single `looks_like` formula whose variance is ≥ 5% off the true one, or a
  constant other than the one written (a name that says `too few to tell` is not counted: the
  `too_few` column counts those).
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.models.hf_architectures import ARCHITECTURES
from initcli.measure import identify, naming
from initcli.report import ParamReport, inspect

SEED = 0
_WRITES = frozenset((
    "normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
    "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "zero_", "fill_", "copy_", "zeros_",
    "ones_", "constant_", "random_",
))  # fmt: skip
_DRAWS = frozenset((
    "normal_", "uniform_", "trunc_normal_", "xavier_uniform_", "xavier_normal_",
    "kaiming_uniform_", "kaiming_normal_", "orthogonal_", "random_",
))  # fmt: skip


@dataclass(frozen=True)
class _Call:
    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


class _LastWrites(TorchFunctionMode):
    """The last whole-tensor init call made to each storage during a real build."""

    def __init__(self) -> None:
        super().__init__()
        self.last: dict[int, _Call] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        name = getattr(func, "__name__", "")
        if name in _WRITES and isinstance(target, torch.Tensor) and _whole(target):
            self.last[target.untyped_storage().data_ptr()] = _Call(func, args, dict(kwargs))
        return func(*args, **kwargs)


def _whole(t: torch.Tensor) -> bool:
    nbytes = t.untyped_storage().nbytes()
    return t.storage_offset() == 0 and t.numel() * t.element_size() == nbytes


@dataclass(frozen=True)
class Row:
    """One parameter: initcli's row and the truth about its values."""

    arch: str
    name: str
    status: str
    looks_like: str | None
    init: str
    drawn: bool  # the values differ between two seeds
    true_var: float | None  # the last init call's variance (None: no whole-tensor call seen)
    constant: float | None  # the value, where every element is the same
    same_values: bool  # the report's mean and variance are the real build's
    problem: str | None  # ok_not_own, flagged_own, wrong_name or None


def _true_var(call: _Call | None, shape: torch.Size) -> float | None:
    """The variance of the last init call's distribution: re-run on fresh copies, pooled."""
    if call is None or getattr(call.func, "__name__", "") not in _DRAWS:
        return None
    copies = max(1, 200_000 // max(1, shape.numel()))
    pooled = []
    gen_state = torch.random.get_rng_state()
    try:
        for _ in range(min(copies, 64)):
            fresh = torch.empty(shape)
            args = (fresh, *call.args[1:]) if call.args else ()
            kwargs = dict(call.kwargs)
            if not call.args:
                kwargs["tensor"] = fresh
            call.func(*args, **kwargs)
            pooled.append(fresh.flatten().double())
    finally:
        torch.random.set_rng_state(gen_state)
    return float(torch.cat(pooled).var())


def _label_vars(p: ParamReport, depth: int | None) -> dict[str, float]:
    fans = None if p.fan_in is None or p.fan_out is None else (p.fan_in, p.fan_out)
    return {c.label: c.var for c in identify._candidates(fans, depth, None)}


def _problem(p: ParamReport, row: Row, depth: int | None) -> str | None:
    if p.status in ("off", "symmetric", "unknown"):
        return "flagged_own"
    if p.status == "ok":
        random_claimed = (p.expected_var or 0.0) > 0
        named = p.fit is not None and any(m.endswith("torch default") for m in p.fit.matches)
        if random_claimed and (not row.drawn or not named):
            return "ok_not_own"
        unsure = (p.looks_like or "").endswith("too few to tell)")
        claimed, true = p.expected_var or 0.0, row.true_var or 0.0
        if claimed > 0 and true > 0 and not unsure and abs(math.log(claimed / true)) > 0.05:
            return "ok_not_own"  # torch's default claimed for a draw of another variance
    label = p.looks_like
    if label is None or "|" in label or " or " in label or label.endswith("too few to tell)"):
        return None  # no name, a tie shown as a tie, or a guess that says so
    if row.constant is not None and label.startswith("constant("):
        return None if label == f"constant({row.constant:g})" else "wrong_name"
    if row.true_var is None or row.true_var <= 0:
        return None
    label = label.removesuffix(" — torch default")
    var = _label_vars(p, depth).get(label)
    if var is not None and abs(math.log(var / row.true_var)) > math.log(1.05):
        return "wrong_name"
    return None


def audit(arch: str) -> list[Row]:
    """Every parameter of `arch` under `inspect --init default`, checked against the truth."""
    build = ARCHITECTURES[arch]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = inspect(f"benchmarks/models/hf_architectures.py:{arch}", seed=SEED)
        writes = _LastWrites()
        torch.manual_seed(SEED)
        with writes:
            model = build()
        torch.manual_seed(SEED + 1)
        other = dict(build().named_parameters())
    depth = naming.depth_hint(model)
    real = dict(model.named_parameters())
    rows = []
    for p in report.params:
        values = real[p.name].detach()
        drawn = not torch.equal(values, other[p.name].detach())
        call = writes.last.get(values.untyped_storage().data_ptr())
        flat = values.flatten()
        constant = float(flat[0]) if flat.numel() and bool((flat == flat[0]).all()) else None
        var = float(values.double().var()) if values.numel() > 1 else None
        same = p.mean is not None and math.isclose(
            p.mean, float(values.double().mean()), abs_tol=1e-9
        )
        if var is not None and p.var is not None:
            same = same and math.isclose(p.var, var, rel_tol=1e-6, abs_tol=1e-12)
        row = Row(
            arch, p.name, p.status, p.looks_like, p.init, drawn,
            _true_var(call, values.shape) if drawn else None, constant, same, None,
        )  # fmt: skip
        rows.append(Row(**{**row.__dict__, "problem": _problem(p, row, depth)}))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="architectures (default: all 25)")
    parser.add_argument("--rows", action="store_true", help="print every row with a problem")
    opts = parser.parse_args(argv)
    names = opts.names or list(ARCHITECTURES)
    kinds = ("ok_not_own", "flagged_own", "wrong_name")
    heads = ("rows", "same", "too_few", *kinds)
    print(f"{'architecture':14} " + " ".join(f"{k:>11}" for k in heads))
    totals = dict.fromkeys(heads, 0)
    for arch in names:
        rows = audit(arch)
        counts = {k: sum(r.problem == k for r in rows) for k in kinds}
        counts["rows"] = len(rows)
        counts["same"] = sum(r.same_values for r in rows)
        counts["too_few"] = sum((r.looks_like or "").endswith("too few to tell)") for r in rows)
        print(f"{arch:14} " + " ".join(f"{counts[k]:>11}" for k in heads))
        for k in heads:
            totals[k] += counts[k]
        if opts.rows:
            for r in rows:
                if r.problem:
                    print(f"    {r.problem:11} {r.status:9} {r.name}: {r.looks_like} [{r.init}]")
    print(f"{'total':14} " + " ".join(f"{totals[k]:>11}" for k in heads))


if __name__ == "__main__":
    main()
