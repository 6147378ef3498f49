"""Forward fans where torch's layout misleads (HF Conv1D, ConvTranspose, groups, stacked gates)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import run
from safetensors.torch import save_file
from torch import nn
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

from initcli import report
from initcli.init.schemes import fans as torch_fans
from initcli.init.schemes import parse_scheme
from initcli.measure import fans

LAYOUTS = "tests/models_for_tests.py:FanLayouts"


def forward(module: nn.Module, pname: str = "weight") -> tuple[int, int, str | None]:
    found = fans.forward_fans(module, pname, getattr(module, pname))
    assert found is not None
    return found.fan_in, found.fan_out, found.layout


def jacobian_fans(
    layer: nn.Module, x: torch.Tensor, out_at: tuple[int, ...], in_at: tuple[int, ...]
) -> tuple[int, int]:
    """(inputs one interior output element depends on, outputs one interior input element
    feeds), counted in the layer's own Jacobian: the fans its forward pass has."""
    y = layer(x)
    pick_out, pick_in = torch.zeros_like(y), torch.zeros_like(x)
    pick_out[out_at] = 1.0
    pick_in[in_at] = 1.0
    # One row of the Jacobian (vector-Jacobian product) and one column (Jacobian-vector).
    _, row = torch.autograd.functional.vjp(layer, x, pick_out)
    _, col = torch.autograd.functional.jvp(layer, x, pick_in)
    return int(torch.count_nonzero(row)), int(torch.count_nonzero(col))


@pytest.mark.parametrize(
    ("layer", "x", "out_at", "in_at", "torch_says", "forward_has"),
    [
        # transformers' Conv1D(nf=6, nx=4): weight 4×6, y = x @ W + b.
        (Conv1D(6, 4), torch.randn(1, 4), (0, 2), (0, 1), (6, 4), (4, 6)),
        # weight (in, out/groups, 3, 3) = (8, 2, 3, 3): torch reads 2·9 as fan_in.
        (nn.ConvTranspose2d(8, 4, 3, groups=2), torch.randn(1, 8, 7, 7),
         (0, 1, 4, 4), (0, 1, 3, 3), (18, 72), (36, 18)),
        # Depthwise: torch's fan_in 1·9 is the forward one; its fan_out 8·9 is not (1·9).
        (nn.Conv2d(8, 8, 3, groups=8), torch.randn(1, 8, 7, 7),
         (0, 2, 2, 2), (0, 2, 3, 3), (9, 72), (9, 9)),
        (nn.Conv2d(8, 16, 3, groups=4), torch.randn(1, 8, 7, 7),
         (0, 5, 2, 2), (0, 3, 3, 3), (18, 144), (18, 36)),
        (nn.Conv2d(8, 16, 3), torch.randn(1, 8, 7, 7),
         (0, 5, 2, 2), (0, 3, 3, 3), (72, 144), (72, 144)),
        (nn.ConvTranspose1d(4, 6, 3), torch.randn(1, 4, 9),
         (0, 1, 5), (0, 2, 4), (18, 12), (12, 18)),
    ],
)  # fmt: skip
def test_forward_fans_are_the_ones_the_layers_jacobian_has(
    layer: nn.Module,
    x: torch.Tensor,
    out_at: tuple[int, ...],
    in_at: tuple[int, ...],
    torch_says: tuple[int, int],
    forward_has: tuple[int, int],
) -> None:
    assert torch_fans(layer.weight) == torch_says
    assert forward(layer)[:2] == forward_has
    assert jacobian_fans(layer, x, out_at, in_at) == forward_has


def test_stacked_recurrent_weights_have_one_gates_fan_out() -> None:
    lstm, gru, rnn = nn.LSTM(12, 16), nn.GRU(12, 16), nn.RNN(12, 16)
    stacks = "stacks {} gates of hidden_size = 16 rows in one weight"
    assert forward(lstm, "weight_ih_l0") == (12, 16, "LSTM " + stacks.format(4))
    assert forward(lstm, "weight_hh_l0") == (16, 16, "LSTM " + stacks.format(4))
    assert forward(gru, "weight_ih_l0") == (12, 16, "GRU " + stacks.format(3))
    assert forward(nn.LSTMCell(12, 16), "weight_hh") == (16, 16, "LSTMCell " + stacks.format(4))
    # One gate: torch's fans are the forward ones; so are a projection's (weight_hr).
    assert forward(rnn, "weight_ih_l0") == (12, 16, None)
    assert forward(nn.LSTM(12, 16, proj_size=5), "weight_hr_l0") == (16, 5, None)
    assert fans.forward_fans(lstm, "bias_ih_l0", lstm.bias_ih_l0) is None


def test_gpt2_conv1d_weights_report_the_forward_fans_beside_torchs() -> None:
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=64, n_head=2, vocab_size=100))
    got = {
        name: forward(module)[:2]
        for name, module in model.named_modules()
        if isinstance(module, Conv1D)
    }
    assert got == {
        "transformer.h.0.attn.c_attn": (64, 192),
        "transformer.h.0.attn.c_proj": (64, 64),
        "transformer.h.0.mlp.c_fc": (64, 256),
        "transformer.h.0.mlp.c_proj": (256, 64),
    }
    rows = {p.name: p for p in report.inspect("tests/hf_models.py:gpt2").params}
    c_attn = rows["transformer.h.0.attn.c_attn.weight"]
    assert (c_attn.fan_in, c_attn.fan_out) == (
        192,
        64,
    )  # torch's, as docs/contract/json-output.md says
    assert (c_attn.forward_fan_in, c_attn.forward_fan_out) == (64, 192)
    wte = rows["transformer.wte.weight"]
    assert (wte.forward_fan_in, wte.forward_fan_out) == (wte.fan_in, wte.fan_out) == (64, 100)
    bias = rows["transformer.h.0.attn.c_attn.bias"]
    assert (bias.forward_fan_in, bias.forward_fan_out) == (None, None)


def test_remarks_give_the_factor_a_fan_based_init_is_off_by() -> None:
    remarks = report.inspect(LAYOUTS, "kaiming_normal:mode=fan_out").remarks
    assert remarks == (
        "kaiming_normal on depthwise.weight (Conv2d) uses torch's fan_out = 72, but the "
        "forward pass's fan_out is 9 (groups=8: an input channel feeds out/groups = 1 of the 8 "
        "output channels): the variance is 0.125× (9/72) that of kaiming_normal at the forward "
        "fan_out.",
        "kaiming_normal on grouped.weight (Conv2d) uses torch's fan_out = 144, but the forward "
        "pass's fan_out is 36 (groups=4: an input channel feeds out/groups = 4 of the 16 output "
        "channels): the variance is 0.25× (36/144) that of kaiming_normal at the forward "
        "fan_out.",
        "kaiming_normal on up.weight (ConvTranspose2d) uses torch's fan_out = 72, but the "
        "forward pass's fan_out is 18 (ConvTranspose2d stores its weight (in, out/groups, *k)): "
        "the variance is 0.25× (18/72) that of kaiming_normal at the forward fan_out.",
        "kaiming_normal on lstm.weight_ih_l0, lstm.weight_hh_l0 (LSTM) uses torch's fan_out = "
        "64, but the forward pass's fan_out is 16 (LSTM stacks 4 gates of hidden_size = 16 rows "
        "in one weight): the variance is 0.25× (16/64) that of kaiming_normal at the forward "
        "fan_out.",
        "kaiming_normal on gru.weight_ih_l0, gru.weight_hh_l0 (GRU) uses torch's fan_out = 48, "
        "but the forward pass's fan_out is 16 (GRU stacks 3 gates of hidden_size = 16 rows in "
        "one weight): the variance is 0.333× (16/48) that of kaiming_normal at the forward "
        "fan_out.",
    )


def test_torchs_default_on_a_transposed_conv_is_named_and_fan_in_modes_spare_groups() -> None:
    # Under default only the ConvTranspose2d's kaiming_uniform(a=√5) divides by a wrong fan:
    # the convolutions' fan_in is right, recurrent layers draw U(±1/√hidden_size).
    assert report.inspect(LAYOUTS).remarks == (
        "kaiming_uniform(a=√5) (torch's default) on up.weight (ConvTranspose2d) uses torch's "
        "fan_in = 18, but the forward pass's fan_in is 36 (ConvTranspose2d stores its weight "
        "(in, out/groups, *k)): the variance is 2× (36/18) that of kaiming_uniform(a=√5) at the "
        "forward fan_in.",
    )
    # HF's own init of Conv1D (normal, std 0.02) is no fan-based scheme: nothing to say.
    assert report.inspect("tests/hf_models.py:gpt2").remarks == ()


def test_xavier_on_an_lstm_counts_both_fans() -> None:
    lstm = [r for r in report.inspect(LAYOUTS, "xavier_normal").remarks if "(LSTM)" in r]
    assert lstm[0] == (
        "xavier_normal on lstm.weight_ih_l0 (LSTM) uses torch's fan_in+fan_out = 76, but the "
        "forward pass's fan_in+fan_out is 28 (LSTM stacks 4 gates of hidden_size = 16 rows in "
        "one weight): the variance is 0.368× (28/76) that of xavier_normal at the forward "
        "fan_in+fan_out."
    )


def test_table_marks_the_fans_that_differ_and_json_has_both() -> None:
    code, out, err = run("inspect", LAYOUTS, "--init", "kaiming_normal")
    assert code == 0
    assert " 9→72* " in out and " 18→72* " in out and " 16→4 " in out  # no mark on fc
    assert (
        "* torch's fans; the forward pass has: depthwise.weight 9→9, grouped.weight 18→36, "
        "up.weight 36→18, lstm.weight_ih_l0 12→16 and 3 more (JSON forward_fan_in/out)"
    ) in " ".join(out.split())
    assert err.count("Note: kaiming_normal on ") == 1  # fan_in mode: only the transposed conv
    code, out, _ = run("inspect", LAYOUTS, "--init", "kaiming_normal", "--format", "json")
    params = {p["name"]: p for p in json.loads(out)["params"]}
    up = params["up.weight"]
    assert [up[k] for k in ("fan_in", "fan_out", "forward_fan_in", "forward_fan_out")] == [
        18,
        72,
        36,
        18,
    ]
    assert (params["fc.weight"]["forward_fan_in"], params["fc.bias"]["forward_fan_in"]) == (
        16,
        None,
    )


def test_a_weights_file_has_no_forward_fans(tmp_path: Path) -> None:
    # Its module types are inferred from names and shapes: the layout is not known.
    path = tmp_path / "w.safetensors"
    save_file({"up.weight": torch.randn(8, 2, 3, 3), "fc.weight": torch.randn(4, 16)}, path)
    params = report.inspect_checkpoint(str(path)).params
    assert [(p.fan_in, p.forward_fan_in, p.forward_fan_out) for p in params] == [
        (16, None, None),
        (18, None, None),
    ]


def test_uninitialized_lazy_parameters_have_no_fans_and_no_remark() -> None:
    conv = nn.LazyConvTranspose2d(4, 3)
    assert fans.forward_fans(conv, "weight", conv.weight) is None
    assert fans.fan_use("up.weight", conv, "weight", conv.weight, None) is None


def test_a_strided_transposed_conv_says_its_stride_is_not_counted() -> None:
    up = nn.ConvTranspose2d(8, 4, 4, stride=2)
    assert forward(up) == (
        128, 64, "ConvTranspose2d stores its weight (in, out/groups, *k); stride (2, 2) is not "
        "counted: an output position sums about 1/4 of the kernel's taps",
    )  # fmt: skip
    # As said: an interior output element of this layer depends on 8·16/4 = 32 inputs.
    assert jacobian_fans(up, torch.randn(1, 8, 6, 6), (0, 1, 6, 6), (0, 1, 3, 3))[0] == 32


def test_multihead_attention_default_is_judged_on_fan_in_plus_fan_out_in_a_stderr_note() -> None:
    # torch's default for in_proj_weight is xavier_uniform: both fans of the (3·32)×32 weight
    # (128), where each of q, k, v has 32 + 32 = 64. Judged on fan_in alone (32 = 32), nothing
    # would be off and the Note, the finding here, would vanish from stderr; stdout is unchanged.
    code, out, err = run("inspect", "sample_models.transformer:TinyTransformer", "-f", "json")
    assert code == 0 and json.loads(out)
    assert err == (
        "Note: xavier_uniform (torch's default) on encoder.layers.0.self_attn.in_proj_weight, "
        "encoder.layers.1.self_attn.in_proj_weight (MultiheadAttention) uses torch's "
        "fan_in+fan_out = 128, but the forward pass's fan_in+fan_out is 64 (MultiheadAttention "
        "stacks q, k and v, each embed_dim = 32 rows in one weight): the variance is 0.5× "
        "(64/128) that of xavier_uniform at the forward fan_in+fan_out.\n"
    )


def test_conv1d_is_known_by_its_name_and_nf_and_says_its_layout() -> None:
    # The layout is the finding: without it no remark could say why the fans differ.
    assert forward(Conv1D(6, 4)) == (4, 6, "Conv1D stores its weight in×out (Linear: out×in)")
    # A module with an `nf` equal to its weight's columns is no Conv1D unless so named.
    linear = nn.Linear(4, 6)
    linear.nf = 4  # type: ignore[assignment]
    assert forward(linear) == (4, 6, None)
    # A Conv1D whose nf is not its weight's columns is not read as in×out.
    odd = Conv1D(6, 4)
    odd.nf = 5
    assert forward(odd) == (6, 4, None)

    class Named(nn.Module):  # named Conv1D, without nf: not transformers' layer
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(4, 6))

    Named.__name__ = "Conv1D"
    assert forward(Named()) == (6, 4, None)


def test_a_stride_of_two_on_one_axis_and_two_groups_are_counted() -> None:
    up = nn.ConvTranspose1d(4, 6, 3, stride=2)
    assert forward(up)[2] == (
        "ConvTranspose1d stores its weight (in, out/groups, *k); stride (2,) is not counted: "
        "an output position sums about 1/2 of the kernel's taps"
    )
    conv = nn.Conv2d(8, 16, 3, groups=2)
    assert forward(conv) == (
        36, 72, "groups=2: an input channel feeds out/groups = 8 of the 16 output channels"
    )  # fmt: skip


def test_only_multihead_attentions_in_proj_weight_is_stacked() -> None:
    # Separate q, k, v weights (kdim != embed_dim) are one matrix each.
    attention = nn.MultiheadAttention(8, 2, kdim=4, vdim=4)
    assert forward(attention, "q_proj_weight") == (8, 8, None)
    assert forward(attention, "k_proj_weight") == (4, 8, None)

    class Other(nn.Module):  # an in_proj_weight on another layer: nothing known of it
        def __init__(self) -> None:
            super().__init__()
            self.in_proj_weight = nn.Parameter(torch.zeros(12, 4))

    assert forward(Other(), "in_proj_weight") == (4, 12, None)


def test_fan_used_by_each_scheme_and_by_torchs_defaults() -> None:
    linear, attention = nn.Linear(4, 6), nn.MultiheadAttention(8, 2)
    expected = {
        "kaiming_normal": "fan_in",
        "kaiming_uniform:mode=fan_out": "fan_out",
        "kaiming_normal:mode=fan_out": "fan_out",
        "xavier_normal": fans.SUM,
        "xavier_uniform": fans.SUM,
        "lecun_normal": "fan_in",
        "normal": None,
        "orthogonal": None,
    }
    got = {text: fans.fan_used(parse_scheme(text), linear, "weight") for text in expected}
    assert got == expected
    default = parse_scheme("default")
    assert fans.fan_used(default, linear, "weight") == fans.fan_used(None, linear, "weight")
    assert fans.fan_used(None, linear, "weight") == "fan_in"
    # torch's default draws a bias, an embedding, an LSTM on no fan.
    assert fans.fan_used(None, linear, "bias") is None
    assert fans.fan_used(None, nn.Embedding(10, 4), "weight") is None
    assert fans.fan_used(None, nn.LSTM(4, 4), "weight_ih_l0") is None
    assert fans.fan_used(None, attention, "in_proj_weight") == fans.SUM
    assert fans.fan_used(None, attention, "in_proj_bias") is None


def _use(name: str) -> fans.FanUse:
    return fans.FanUse(name, "LSTM", "xavier_normal", fans.SUM, 76, 28, "the layout")


@pytest.mark.parametrize(
    ("count", "names"),
    [
        (3, "w0, w1, w2"),
        (4, "w0, w1, w2 and 1 more"),
        (6, "w0, w1, w2 and 3 more"),
    ],
)
def test_a_remark_names_three_parameters_and_counts_the_rest(count: int, names: str) -> None:
    (remark,) = fans.off_remarks(_use(f"w{i}") for i in range(count))
    assert remark.startswith(f"xavier_normal on {names} (LSTM) uses torch's fan_in+fan_out = 76")
