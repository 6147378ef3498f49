"""A 200,000-module baseline loads and compares in linear time."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from initcli.report import baseline


def _baseline(n: int, every: int) -> dict[str, Any]:
    modules = {f"layers.{i}": {"type": "Linear", "params": 10 + (i % every == 0)} for i in range(n)}
    entry = {"target": "net.py:Net", "args": {}, "total": 10 * n, "trainable": 10 * n,
             "frozen": 0, "buffers": 0, "modules": modules}  # fmt: skip
    return {"format": 1, "models": [entry]}


def _seconds(tmp_path: Path, n: int) -> float:
    path = tmp_path / f"b{n}.json"
    path.write_text(json.dumps(_baseline(n, 10**9)))
    new = baseline.Baseline.model_validate(_baseline(n, 7)).models[0]
    start = time.perf_counter()
    old = baseline.read_baseline(path).models[0]
    changes = baseline.compare(old, new).changes
    elapsed = time.perf_counter() - start
    assert len(changes) == len(range(7, n, 7))  # layers.0 has 11 in both
    return elapsed


@pytest.mark.slow
def test_load_and_compare_scale_linearly(tmp_path: Path) -> None:
    small, big = _seconds(tmp_path, 25_000), _seconds(tmp_path, 200_000)
    # 8x the rows: linear is ~8x the time, quadratic 64x; 20x leaves room for a loaded machine.
    assert big < 20 * small, (small, big)
    assert big < 30


def test_load_and_compare_20000_modules_well_within_linear_time(tmp_path: Path) -> None:
    # The fast smoke of the test above: 20,000 rows take ~0.2 s; a pass over every row for each
    # row (2·10⁸ steps in Python) would take tens of seconds.
    assert _seconds(tmp_path, 20_000) < 5
