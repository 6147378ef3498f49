"""initcli.init.recorded: the last whole-tensor write a meta build made, and what it implies."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import pytest
import torch
from torch import nn

from initcli.init import recorded, schemes
from initcli.model import building, record

T = TypeVar("T")


def _log(build: Callable[[], T]) -> tuple[recorded.FillLog, T]:
    """Run `build()` on meta under a trace: the fill log, and what `build` returned."""
    trace = record.Trace()
    with building.on_meta(trace):
        made = build()
    return recorded.FillLog.of_trace(trace), made


def test_a_recorded_normal_std_002_implies_variance_00004() -> None:
    log, w = _log(lambda: nn.init.normal_(torch.empty(64, 32), std=0.02))
    fill = log.of(w)
    assert fill == recorded.Fill("normal:mean=0.0,std=0.02")
    exp = recorded.implied_expectation(fill, w)
    assert (exp.init, exp.mean, exp.var, exp.kurtosis) == (
        "normal(mean=0, std=0.02)", 0.0, pytest.approx(0.0004, rel=1e-15), 3.0
    )  # fmt: skip


def test_a_linear_on_meta_implies_torchs_own_default() -> None:
    log, lin = _log(lambda: nn.Linear(4, 5))
    weight = log.of(lin.weight)
    assert weight == recorded.Fill(
        f"kaiming_uniform:a={math.sqrt(5)!r},mode=fan_in,nonlinearity=leaky_relu"
    )
    assert log.of(lin.bias) == recorded.Fill("uniform:a=-0.5,b=0.5")
    for param in (lin.weight, lin.bias):
        exp = recorded.implied_expectation(log.of(param), param)
        assert exp.var == pytest.approx(1 / (3 * 4), rel=1e-12)  # U(±1/√fan_in)


def test_fills_named_as_schemes() -> None:
    def build() -> dict[str, torch.Tensor]:
        made = {name: torch.empty(6) for name in ("const", "zero", "tensor_fill", "copied")}
        made["const"].fill_(0.5)
        made["zero"].zero_()
        made["tensor_fill"].fill_(torch.tensor(1.0))  # a tensor argument: no value to name
        made["copied"].uniform_(0, 1)
        made["copied"].copy_(torch.ones(6))  # the last write wins, and copy_ is not a scheme
        made["full"] = torch.full((3,), 2)
        made["view"] = torch.empty(10)
        made["view"][2:5].normal_()  # part of the tensor: not a fill of it
        return made

    log, made = _log(build)
    fills = {name: log.of(t) for name, t in made.items()}
    assert fills == {
        "const": recorded.Fill("constant:val=0.5"),
        "zero": recorded.Fill("zeros"),
        "tensor_fill": recorded.Fill(None),
        "copied": recorded.Fill(None),
        "full": recorded.Fill("constant:val=2.0"),
        "view": None,
    }


def test_what_cannot_be_implied_is_unknown() -> None:
    t = torch.empty(4)
    assert recorded.implied_expectation(None, t) is schemes.UNKNOWN
    assert recorded.implied_expectation(recorded.Fill(None), t) is schemes.UNKNOWN
    assert recorded.implied_expectation(recorded.Fill("nosuch:x=1"), t) is schemes.UNKNOWN
    # A fan-based scheme on a 1-D tensor has no variance to imply.
    assert recorded.implied_expectation(recorded.Fill("kaiming_normal"), t) is schemes.UNKNOWN


def test_fill_log_records_the_last_whole_tensor_write() -> None:
    trace = record.Trace()
    with building.on_meta(trace):
        lin = nn.Linear(8, 4)
        emb = nn.Embedding(10, 4, padding_idx=0)
        norm = nn.Parameter(torch.ones(4))
    with building.recording(trace):
        nn.init.normal_(lin.weight, std=0.02)
        lin.bias.data.uniform_(-0.5, 0.5)  # a Tensor method, through .data, positional
        emb.weight.data[0].zero_()  # part of the tensor: the record stays
    log = recorded.FillLog.of_trace(trace)
    assert log.of(lin.weight) == recorded.Fill("normal:mean=0.0,std=0.02")
    assert log.of(lin.bias) == recorded.Fill("uniform:a=-0.5,b=0.5")
    assert log.of(emb.weight) == recorded.Fill("normal:mean=0.0,std=1.0")
    assert log.of(norm) == recorded.Fill("ones")
    with building.recording(trace):
        lin.weight.data.mul_(2.0)  # a write initcli cannot predict: no expectation
    log = recorded.FillLog.of_trace(trace)
    assert log.of(lin.weight) == recorded.Fill(None)
    assert recorded.implied_expectation(log.of(lin.weight), lin.weight) is schemes.UNKNOWN
    exp = recorded.implied_expectation(log.of(lin.bias), lin.bias)
    assert (exp.mean, exp.var) == (0.0, pytest.approx(1 / 12))
