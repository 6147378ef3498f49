"""Ties between formulas, names settled over a model, config-named stds, weight norm's g."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initcli import report
from initcli.init import schemes
from initcli.measure import identify, naming, stats
from initcli.measure.identify import Fit

MODELS = "tests/models_for_naming.py"


def _exact(shape: tuple[int, ...], std: float, seed: int = 0) -> torch.Tensor:
    """Normal draws rescaled to mean 0 and exactly `std`: the fit is then decided by formulas'
    variances alone, not by the draw's noise."""
    torch.manual_seed(seed)
    w = torch.randn(shape, dtype=torch.float64)
    w = (w - w.mean()) / w.std(correction=0) * std
    return w.float()


def _identify(w: torch.Tensor) -> identify.Identification:
    return identify.identify(
        stats.tensor_stats(w), ndim=w.dim(), fans=schemes.fans(w), dtype=w.dtype, values=w
    )


def test_an_exact_tie_is_shown_not_named() -> None:
    # fan_in 16, fan_out 32: 2/fan_out = 1/fan_in, so kaiming(fan_out, relu) and kaiming(fan_in,
    # linear) (= lecun_normal, one formula) draw the same variance; no data can tell them apart.
    found = _identify(_exact((32, 16, 1, 1), math.sqrt(2 / 32)))
    assert {"kaiming_normal(fan_in, linear)", "kaiming_normal(fan_out, relu)"} <= set(
        found.fit.ties
    )
    assert "lecun_normal" not in found.fit.ties  # kaiming_normal(fan_in, linear) written again
    assert " or " in (found.looks_like or "")
    assert "kaiming_normal(fan_out, relu)" in (found.looks_like or "")


def test_a_clearly_worse_fit_is_never_named_over_a_better_one() -> None:
    # The ResNet stem's fans (147, 784) at exactly kaiming_normal(fan_out, relu): xavier_normal's
    # std is 9% lower, 2352 values put its variance ~6 standard errors away.
    found = _identify(_exact((16, 3, 7, 7), math.sqrt(2 / 784)))
    assert "xavier_normal" not in found.fit.ties
    assert "kaiming_normal(fan_out, relu)" in found.fit.ties


@pytest.mark.parametrize(("gap_se", "tied"), [(1.0, True), (2.9, True), (3.2, False), (4.5, False)])
def test_the_tie_rule_in_standard_errors(gap_se: float, tied: bool) -> None:
    # Two normal candidates, the observed variance on the first; the second gap_se standard
    # errors of a sample variance (of n normal draws) away: tied below TIE_SE = 3, not above.
    n, var = 10_000, 0.01
    rel = math.sqrt((3 - (n - 3) / (n - 1)) / n)
    near = identify._Candidate("A", "normal", math.sqrt(var), kind="a")
    far = identify._Candidate("B", "normal", math.sqrt(var * math.exp(gap_se * rel)), kind="b")
    got = [c.label for c in identify._ties([far, near], var, n, {"normal"})]
    assert got == (["A", "B"] if tied else ["A"])  # nearest first


def test_one_formula_written_two_ways_counts_once() -> None:
    # leaky_relu's default slope moves relu's gain by 0.005%: one formula, the first listed.
    relu = identify._Candidate("relu", "normal", 0.1, kind="k")
    leaky = identify._Candidate("leaky", "normal", 0.1 * math.sqrt(1 / 1.0001), kind="k")
    other = identify._Candidate("other", "normal", 0.1, kind="x")
    got = [c.label for c in identify._ties([relu, leaky, other], 0.01, 4096, {"normal"})]
    assert got == ["relu", "other"]


def _fit(*ties: str) -> Fit:
    return Fit("normal", 0.1, None, ties, ties)


def test_settle_prefers_the_formula_that_fits_every_tensor_of_the_kind() -> None:
    conv = ("Conv2d", "weight")
    tensors = [
        (conv, _fit("a", "b")),
        (conv, _fit("b", "c")),
        (conv, _fit("b")),
        (("Linear", "weight"), _fit("c")),
    ]
    assert naming.settle(tensors) == ["b", "b", None, None]


def test_settle_narrows_a_tie_and_keeps_it_where_nothing_decides() -> None:
    kind = ("Conv2d", "weight")
    # a and b fit both tensors of the kind, c only the first: the tie narrows to a or b.
    assert naming.settle([(kind, _fit("a", "b", "c")), (kind, _fit("a", "b"))]) == [
        "a or b",
        None,
    ]
    # A formula no other tensor has is no evidence: a lone tie stays as it is.
    assert naming.settle([(kind, _fit("a", "b")), (("Linear", "weight"), None)]) == [None, None]


def test_settle_looks_at_the_whole_model_after_the_kind() -> None:
    tensors = [
        (("Embedding", "weight"), _fit("normal(std=0.1)", "normal(std=d_model^-0.5)")),
        (("Linear", "weight"), _fit("normal(std=d_model^-0.5)")),
        (("Linear", "weight"), _fit("normal(std=d_model^-0.5)")),
    ]
    assert naming.settle(tensors)[0] == "normal(std=d_model^-0.5)"


def test_settle_counts_no_tie_as_evidence() -> None:
    # LeNet's fc biases at torch's default uniform(±1/√fan_in): 84 and 10 values tie a normal
    # with round uniforms; that normal(std=0.05) fits two of them names neither.
    kind = ("Linear", "bias")
    tensors = [
        (kind, _fit("normal(std=0.05)", "uniform(±0.1)")),
        (kind, _fit("normal(std=0.1)", "normal(std=0.05)")),
        (kind, _fit("uniform(±0.05)")),
    ]
    assert naming.settle(tensors) == [None, None, None]


def _rows(target: str, init: str | None = None, seed: int = 0) -> dict[str, report.ParamReport]:
    return {p.name: p for p in report.inspect(f"{MODELS}:{target}", init, seed=seed).params}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_resnet_convs_are_named_kaiming_normal_fan_out_relu(seed: int) -> None:
    # transformers' ResNet draws every conv with kaiming_normal_(mode="fan_out", relu).
    convs = {n: p for n, p in _rows("resnet", seed=seed).items() if p.module == "Conv2d"}
    assert len(convs) == 16
    wrong = {
        n: p.looks_like
        for n, p in convs.items()
        if "kaiming_normal(fan_out, relu)" not in (p.looks_like or "")
        or (p.looks_like != "kaiming_normal(fan_out, relu)" and " or " not in p.looks_like)
    }
    assert not wrong
    named = sum(p.looks_like == "kaiming_normal(fan_out, relu)" for p in convs.values())
    assert named >= 14, {n: p.looks_like for n, p in convs.items()}


def test_t5_scales_are_named_by_their_formulas() -> None:
    rows = _rows("t5")
    q = rows["encoder.block.0.layer.0.SelfAttention.q.weight"]
    assert q.looks_like == "normal(std=(d_model·d_kv)^-0.5)"
    # 96 values at d_model^-0.5 = 0.112 tie with the round 0.1 (issue 19: it was named 0.1),
    # and no tensor is named d_model^-0.5 alone (k, v and wi tie it with 1/√fan_in): a tie.
    bias = rows["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]
    assert (bias.looks_like or "").startswith("normal(std=d_model^-0.5), ")
    # With initializer_factor 1, d_model^-0.5 is 1/√fan_in: the same formula either way.
    k = rows["encoder.block.0.layer.0.SelfAttention.k.weight"]
    assert k.fit is not None and "normal(std=d_model^-0.5)" in k.fit.ties


def test_t5_scales_with_initializer_factor() -> None:
    rows = _rows("t5_factor")
    expected = {
        "encoder.block.0.layer.0.SelfAttention.q.weight": "normal(std=(d_model·d_kv)^-0.5·factor)",
        "encoder.block.0.layer.0.SelfAttention.k.weight": "normal(std=d_model^-0.5·factor)",
        "encoder.block.1.layer.1.DenseReluDense.wi.weight": "normal(std=d_model^-0.5·factor)",
        "encoder.block.1.layer.1.DenseReluDense.wo.weight": "normal(std=d_ff^-0.5·factor)",
        "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight":
            "normal(std=d_model^-0.5·factor)",
    }  # fmt: skip
    assert {n: rows[n].looks_like for n in expected} == expected


def test_clip_scales_are_named_by_their_formulas() -> None:
    rows = _rows("clip")
    prefix = "text_model.encoder.layers.1."
    expected = {
        "self_attn.q_proj.weight": "(2·hidden_size·num_hidden_layers)^-0.5·factor",
        "mlp.fc1.weight": "(2·hidden_size)^-0.5·factor",
        "self_attn.out_proj.weight": "hidden_size^-0.5·factor",
    }
    for leaf, formula in expected.items():
        looks = rows[prefix + leaf].looks_like or ""
        # Named, or in a tie shown (out_proj's 0.095 is 5% from the round 0.1 on 1,600 values).
        assert f"normal(std={formula})" in looks, (leaf, looks)
    patch = rows["vision_model.embeddings.patch_embedding.weight"]
    assert patch.looks_like == "normal(std=initializer_range·factor)"


def test_one_layer_reads_normal_std_0_02() -> None:
    rows = _rows("mixtral")
    assert rows["model.layers.0.self_attn.q_proj.weight"].looks_like == "normal(std=0.02)"
    assert identify._candidates(None, 1, None)[0].label == "normal(std=0.02/√(2·1))"
    assert not any(c.label.endswith("/√1)") for c in identify._candidates(None, 1, None))


def test_wav2vec2_weight_g_is_named_the_norm_of_v() -> None:
    g = "encoder.pos_conv_embed.conv.parametrizations.weight.original0"
    rows = _rows("wav2vec2")
    assert (
        rows[g].looks_like == "‖original1‖ over dims 0, 1 per slice along dim 2 (weight norm's g)"
    )
    # A named scheme redraws g: no longer v's norm, and not called so.
    assert "weight norm" not in (_rows("wav2vec2", "kaiming_normal")[g].looks_like or "")


@pytest.mark.filterwarnings("ignore:.*weight_norm. is deprecated:FutureWarning")
def test_legacy_weight_norm_g_is_named_too() -> None:
    conv = nn.utils.weight_norm(nn.Conv1d(4, 6, 3), dim=0)  # weight_g, weight_v
    looks = naming.weight_norm_g(conv, "weight_g", conv.weight_g)
    assert looks == "‖weight_v‖ over dims 1, 2 per slice along dim 0 (weight norm's g)"
    with torch.no_grad():
        conv.weight_g.mul_(1.5)
    assert naming.weight_norm_g(conv, "weight_g", conv.weight_g) is None
    assert naming.weight_norm_g(conv, "bias", conv.bias) is None


def test_config_scales_name_equal_values_together() -> None:
    from transformers import T5Config, T5Model

    # T5-small's shape: num_heads·d_kv = d_model, so one std has two names.
    model = T5Model(T5Config(d_model=64, d_kv=16, num_heads=4, d_ff=96, num_layers=1))
    labels = {s.label: s.std for s in naming.config_scales(model)}
    assert labels["d_model^-0.5 = (d_kv·num_heads)^-0.5"] == pytest.approx(64**-0.5)
    assert labels["(d_model·d_kv)^-0.5"] == pytest.approx((64 * 16) ** -0.5)
    assert naming.config_scales(nn.Linear(2, 2)) == ()
