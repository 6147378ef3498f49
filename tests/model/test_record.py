"""initcli.model.record: the writes and draws of a meta build, in the order they ran."""

from __future__ import annotations

import gc
import math
import weakref

import torch
from torch import nn

from initcli.model import building, record, resolve


def _rows(trace: record.Trace) -> list[tuple[str, bool, bool, bool, bool]]:
    """(name, draws, in_reset, in_apply, creates) per recorded write."""
    return [
        (e.name, e.draws, e.in_reset, e.in_apply, e.creates)
        for e in trace.events
        if isinstance(e, record.Write)
    ]


def test_a_linear_built_on_meta_records_its_two_draws_in_order() -> None:
    trace = record.Trace()
    with building.on_meta(trace):
        lin = nn.Linear(4, 5)
    weight, bias = trace.events
    assert isinstance(weight, record.Write) and isinstance(bias, record.Write)
    # Linear.reset_parameters: kaiming_uniform_(weight, a=√5), then bias ~ U(±1/√fan_in).
    assert _rows(trace) == [
        ("kaiming_uniform_", True, True, False, False),
        ("uniform_", True, True, False, False),
    ]
    assert weight.target is lin.weight and bias.target is lin.bias
    assert weight.func is nn.init.kaiming_uniform_ and weight.kwargs["a"] == math.sqrt(5)
    assert (bias.kwargs["a"], bias.kwargs["b"]) == (-0.5, 0.5)
    assert all(e.replayable for e in (weight, bias))
    assert not trace.model_init  # the module's own reset only


def test_writes_and_draws_are_recorded_in_order_bookkeeping_is_not() -> None:
    trace = record.Trace()
    gen = torch.Generator()
    with building.on_meta(trace):
        w = torch.empty(3, 3)
        w.normal_(generator=gen)  # its own generator: the global stream is not drawn from
        torch.randn(2)  # a random factory: a draw with no target
        w.fill_(0.5)
        w.add_(1.0)
        w[0] = 2.0
        w.requires_grad_()  # bookkeeping, not a write
        real = torch.zeros(3, device="cpu")
        real.fill_(1.0)  # a real tensor's write is run, not recorded, unless it draws
        real.normal_()
    assert _rows(trace) == [
        ("normal_", False, False, False, False),
        ("randn", True, False, False, False),
        ("fill_", False, False, False, False),
        ("add_", False, False, False, False),
        ("__setitem__", False, False, False, False),
        ("normal_", True, False, False, False),
    ]
    targets = [e.target for e in trace.events if isinstance(e, record.Write)]
    assert [t is w for t in targets] == [True, False, True, True, True, False]
    assert targets[1] is None and targets[-1] is real
    assert trace.model_init  # writes from outside any reset method


def test_constant_factories_are_recorded_as_creations() -> None:
    trace = record.Trace()
    with building.on_meta(trace):
        scale = nn.Parameter(torch.ones(4))
        torch.zeros(2, out=torch.empty(2))  # into an existing tensor: not a creation
    (made,) = trace.events
    assert isinstance(made, record.Write)
    assert (made.name, made.args, made.creates, made.draws) == ("ones", (4,), True, False)
    assert record.storage(made.target) == record.storage(scale)  # type: ignore[arg-type]
    assert not trace.model_init  # values known from the arguments, no init code


def test_a_model_level_apply_is_marked() -> None:
    trace = record.Trace()
    with building.on_meta(trace):
        model = nn.Sequential(nn.Linear(2, 2))
        model.apply(lambda m: nn.init.zeros_(m.bias) if isinstance(m, nn.Linear) else None)
    assert _rows(trace)[-1] == ("zero_", False, False, True, False)
    assert trace.model_init


def test_an_init_that_stops_at_is_meta_is_recorded_once_with_its_arguments() -> None:
    trace = record.Trace()
    with building.on_meta(trace):
        x = torch.empty(4)
        torch.nn.init.trunc_normal_(x, std=0.02)
    (write,) = trace.events
    assert isinstance(write, record.Write)
    assert (write.name, write.draws, write.replayable) == ("trunc_normal_", True, True)
    assert write.target is x
    assert (write.kwargs["mean"], write.kwargs["std"]) == (0.0, 0.02)


def test_storage_is_shared_by_data_and_views() -> None:
    w = torch.empty(3, 3, device="meta")
    assert record.storage(w.data) == record.storage(w) == record.storage(w[1])
    assert record.storage(torch.empty(3, 3, device="meta")) != record.storage(w)


def test_a_trace_is_kept_only_for_a_model_built_on_meta() -> None:
    built = building.build_meta(resolve.resolve("sample_models/mlp.py:MLP"))
    assert record.trace_of(built) is not None
    assert record.trace_of(nn.Linear(2, 2)) is None
    model, trace = nn.Linear(2, 2), record.Trace()
    record.remember(model, trace)
    assert record.trace_of(model) is trace


def test_a_model_without_model_level_init_keeps_the_reset_replay() -> None:
    meta = building.build_meta(resolve.resolve("sample_models.lenet:LeNet5"))
    trace = record.trace_of(meta)
    assert trace is not None and not trace.model_init


def test_the_trace_kept_beside_a_model_does_not_keep_it_alive() -> None:
    model = building.build_meta(resolve.resolve("tests/hf_models.py:gpt2"))
    ref = weakref.ref(model)
    assert record.trace_of(model) is not None
    del model
    gc.collect()
    assert ref() is None
