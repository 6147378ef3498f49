"""Experts' stacked 3-D weights: per-slice forward fans (against the Jacobian), per-slice inits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional
from torch.overrides import TorchFunctionMode
from transformers import MixtralConfig
from transformers.models.mixtral.modeling_mixtral import MixtralExperts

from initcli import report
from initcli.init import assign, schemes, stacking
from initcli.measure import fans

MIXTRAL = "tests/models_for_naming.py:mixtral"
HIDDEN, INTER, EXPERTS = 128, 256, 4


def _experts() -> MixtralExperts:
    torch.manual_seed(0)
    config = MixtralConfig(
        hidden_size=HIDDEN, intermediate_size=INTER, num_local_experts=EXPERTS, hidden_act="silu"
    )
    module = MixtralExperts(config)
    for p in module.parameters():
        nn.init.normal_(p, std=0.02)
    return module


class _Linears(TorchFunctionMode):
    """The weights every functional.linear call of a forward pass receives."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func is functional.linear:
            self.weights.append(args[1])
        return func(*args, **(kwargs or {}))


def _jacobian_fans(f, x: torch.Tensor, rows: slice) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(inputs one output element of `rows` depends on, outputs within `rows` one input feeds)."""
    y = f(x)
    pick_out, pick_in = torch.zeros_like(y), torch.zeros_like(x)
    pick_out[0, rows.start] = 1.0
    pick_in[0, 0] = 1.0
    _, row = torch.autograd.functional.vjp(f, x, pick_out)
    _, col = torch.autograd.functional.jvp(f, x, pick_in)
    return int(torch.count_nonzero(row)), int(torch.count_nonzero(col[:, rows]))


def test_mixtral_experts_forward_fans_are_one_slices_checked_on_the_jacobian() -> None:
    experts = _experts()
    x = torch.randn(3, HIDDEN)
    route = torch.full((3, 1), 2)  # every token to expert 2, weight 1
    with _Linears() as seen:
        experts(x, route, torch.ones(3, 1))
    gate_up, down = seen.weights  # the forward applies one slice of each, out×in
    assert gate_up.data_ptr() == experts.gate_up_proj[2].data_ptr()
    assert down.data_ptr() == experts.down_proj[2].data_ptr()
    # gate and up are one matrix each (chunk(2)): a fan_out counts one of them.
    gate_fans = _jacobian_fans(lambda v: functional.linear(v, gate_up), x, slice(0, INTER))
    hidden = torch.randn(3, INTER)
    down_fans = _jacobian_fans(lambda v: functional.linear(v, down), hidden, slice(0, HIDDEN))
    got = {
        name: fans.forward_fans(experts, name, getattr(experts, name))
        for name in ("gate_up_proj", "down_proj")
    }
    assert schemes.fans(experts.gate_up_proj) == (65_536, 512)  # torch's: out·in, experts·in
    assert schemes.fans(experts.down_proj) == (32_768, 1_024)
    assert got["gate_up_proj"] is not None and got["down_proj"] is not None
    assert (got["gate_up_proj"].fan_in, got["gate_up_proj"].fan_out) == gate_fans == (128, 256)
    assert (got["down_proj"].fan_in, got["down_proj"].fan_out) == down_fans == (256, 128)
    assert got["gate_up_proj"].layout == (
        "MixtralExperts stacks 4 experts' out×in matrices in one weight; each slice fuses gate "
        "and up (2 matrices)"
    )


class _TransposedExperts(nn.Module):
    """A grouped GEMM stored in×out per expert (GPT-OSS's layout): x @ w[e]."""

    def __init__(self) -> None:
        super().__init__()
        self.num_experts, self.is_transposed = 3, True
        self.down_proj = nn.Parameter(torch.randn(3, 12, 5))

    def forward(self, x: torch.Tensor, expert: int = 1) -> torch.Tensor:
        return x @ self.down_proj[expert]


def test_a_transposed_stack_has_the_slices_fans_too() -> None:
    layer = _TransposedExperts()
    found = fans.forward_fans(layer, "down_proj", layer.down_proj)
    assert found is not None
    assert (found.fan_in, found.fan_out) == _jacobian_fans(layer, torch.randn(2, 12), slice(0, 5))
    assert (found.fan_in, found.fan_out) == (12, 5)
    # nn.init reads an out×in view of each slice: fan_in 12.
    view = stacking.stack_of(layer, "down_proj", layer.down_proj).views(layer.down_proj)[0]  # type: ignore[union-attr]
    assert schemes.fans(view) == (12, 5)
    # Not a stack: no num_experts, or a leading dim that is not the experts'.
    assert stacking.stack_of(nn.Linear(2, 2), "weight", torch.empty(3, 2, 2)) is None
    assert stacking.stack_of(layer, "down_proj", torch.empty(4, 12, 5)) is None


def test_kaiming_normal_on_mixtral_gives_each_expert_slice_its_fan_in_variance() -> None:
    result = report.inspect(MIXTRAL, "kaiming_normal")
    rows = {p.name: p for p in result.params}
    for name, fan_in in (("gate_up_proj", HIDDEN), ("down_proj", INTER)):
        row = rows[f"model.layers.0.mlp.experts.{name}"]
        formula = 2.0 / fan_in  # kaiming_normal(fan_in, leaky_relu with a=0): gain² = 2
        assert row.expected_var == formula and row.status == "ok"
        assert (row.forward_fan_in, row.fan_in) == (fan_in, fan_in * row.shape[1])  # type: ignore[index]
        # 65,536 (32,768) values: the sample variance's relative standard error is 0.55%
        # (0.78%); 4% is more than 5 of them.
        assert abs(row.var / formula - 1) < 0.04, (name, row.var, formula)  # type: ignore[operator]
    # Identified at one slice's fans, those the per-slice init read.
    assert rows["model.layers.0.mlp.experts.gate_up_proj"].looks_like == (
        "kaiming_normal(fan_in, relu)"
    )
    notes = [r for r in result.remarks if "was applied per expert" in r]
    assert len(notes) == 2
    assert notes[0] == (
        "kaiming_normal on model.layers.0.mlp.experts.gate_up_proj (MixtralExperts) was applied "
        "per expert: one torch.nn.init call on each of the 4 slices (512×128, fan_in 128, the "
        "forward pass's), not on the 3-D tensor, whose torch fan_in (65,536) is no layer's; a "
        "seed gives what a script calling it on each slice in order would."
    )


def test_per_slice_values_are_a_training_scripts_per_slice_calls() -> None:
    experts = _experts()
    assign.initialize(experts, schemes.parse_scheme("kaiming_normal"), schemes.DEFAULT, seed=3)
    got = {n: p.detach().clone() for n, p in experts.named_parameters()}
    torch.manual_seed(3)  # the seeding contract: seed, then one call per parameter in order
    script = {}
    for name in ("gate_up_proj", "down_proj"):
        w = torch.empty(getattr(experts, name).shape)
        for e in range(EXPERTS):
            nn.init.kaiming_normal_(w[e])
        script[name] = w
    assert all(torch.equal(got[n], script[n]) for n in script)
    # Schemes that read no fan (normal) still fill the whole tensor in one call.
    assign.initialize(experts, schemes.parse_scheme("normal:std=0.02"), schemes.DEFAULT, seed=3)
    torch.manual_seed(3)
    whole = nn.init.normal_(torch.empty(experts.gate_up_proj.shape), std=0.02)
    assert torch.equal(experts.gate_up_proj.detach(), whole)


def test_streamed_and_real_builds_agree_on_experts() -> None:
    streamed = {p.name: p.var for p in report.inspect(MIXTRAL, "xavier_normal").params}
    real = {p.name: p.var for p in report.inspect(MIXTRAL, "xavier_normal", stream=False).params}
    assert streamed == real
    remarks = report.inspect(MIXTRAL, "xavier_normal").remarks
    # The fused gate_up's fan_out is still two matrices' (as an LSTM's gates): said so.
    assert any("fan_in+fan_out = 640" in r and "384" in r for r in remarks)
