"""probe/compare/defaults/gain at the library level: the tutorials' experiments as tests."""

from __future__ import annotations

import math

import pytest
import torch

from initcli import report
from initcli.errors import ArgError, ProbeError, SchemeError
from initcli.experiments import batches, probe, training
from initcli.experiments.verdict import (
    DEAD_FRAC,
    EXPLODING_RATIO,
    SATURATED_FRAC,
    VANISHING_RATIO,
    Evidence,
    Verdict,
    decide,
)
from initcli.init import assign, schemes
from initcli.model import resolve
from initcli.model.spec import build_mlp, load_spec

RELU20 = "sample_models/relu20.yaml"
TANH10 = "sample_models/tanh10.yaml"
MOONS = "sample_models/moons.yaml"
MODELS = "tests/probe_models.py"
LN2 = math.log(2)


@pytest.fixture(scope="module")
def relu20() -> dict[str, report.SchemeProbe]:
    r = report.probe_report(RELU20, ["kaiming_normal", "xavier_normal", "zeros", "default"])
    return dict(zip(["kaiming", "xavier", "zeros", "default"], r.schemes, strict=True))


@pytest.fixture(scope="module")
def tanh10() -> dict[str, report.SchemeProbe]:
    r = report.probe_report(TANH10, ["normal:std=0.01", "normal:std=1.0", "xavier_normal", "auto"])
    return dict(zip(["small", "large", "xavier", "auto"], r.schemes, strict=True))


# --- the "done when", 20-layer ReLU and 10-layer tanh -------------------------------------


def test_relu20_kaiming_is_stable_within_2x(relu20: dict[str, report.SchemeProbe]) -> None:
    result = relu20["kaiming"].result
    assert len(result.blocks) == 20
    first, last = result.blocks[0].std, result.blocks[-1].std
    assert first is not None and last is not None
    assert 0.5 <= last / first <= 2.0
    assert result.verdict is Verdict.STABLE
    # ReLU zeroes about half of its inputs at a healthy init.
    assert all(0.35 < b.zero_frac < 0.65 for b in result.blocks)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_relu20_kaiming_is_stable_for_other_seeds(seed: int) -> None:
    # At finite width the std does a random walk through depth: over 20 layers 256 wide the
    # ratio was 0.57, 0.85, 1.30 and 0.44 for seeds 0-3, always inside the stable band.
    result = report.probe_report(RELU20, ["kaiming_normal"], seed=seed).schemes[0].result
    assert result.verdict is Verdict.STABLE
    assert result.std_ratio is not None and 0.4 < result.std_ratio < 1.5


def test_relu20_xavier_collapses_and_says_vanishing(relu20: dict[str, report.SchemeProbe]) -> None:
    result = relu20["xavier"].result
    stds = [b.std for b in result.blocks]
    assert all(s is not None for s in stds)
    # Each ReLU halves the variance Xavier preserves: ×1/√2 in std per layer, ~2^-9.5 over 19.
    assert stds[-1] / stds[0] < 0.005  # type: ignore[operator]
    assert stds[10] < stds[0] / 10  # type: ignore[operator]
    assert result.verdict is Verdict.VANISHING
    assert result.std_ratio is not None and result.std_ratio < VANISHING_RATIO


def test_relu20_zeros_is_symmetric_or_dead(relu20: dict[str, report.SchemeProbe]) -> None:
    result = relu20["zeros"].result
    assert result.verdict in (Verdict.SYMMETRIC, Verdict.DEAD)
    assert result.verdict is Verdict.SYMMETRIC  # what it actually says: every unit is identical
    assert "fc1" in result.reason
    assert all(b.zero_frac == 1.0 and b.std == 0.0 for b in result.blocks)
    assert all(g.grad_norm == 0.0 for g in result.grads)


def test_relu20_pytorch_default_vanishes(relu20: dict[str, report.SchemeProbe]) -> None:
    # Linear's own init is a sixth of He's variance: ×0.41 in std per layer (see `defaults`).
    result = relu20["default"].result
    assert result.verdict is Verdict.VANISHING
    assert result.std_ratio is not None and result.std_ratio < 1e-6


def test_tanh10_small_normal_vanishes(tanh10: dict[str, report.SchemeProbe]) -> None:
    result = tanh10["small"].result
    assert result.verdict is Verdict.VANISHING
    assert result.std_ratio is not None and result.std_ratio < 1e-5


def test_tanh10_large_normal_saturates(tanh10: dict[str, report.SchemeProbe]) -> None:
    result = tanh10["large"].result
    assert result.verdict is Verdict.SATURATED
    sats = [b.saturated_frac for b in result.blocks]
    assert all(s is not None and s > 0.8 for s in sats)  # |a| > 0.99 for most outputs


def test_tanh10_xavier_is_stable(tanh10: dict[str, report.SchemeProbe]) -> None:
    result = tanh10["xavier"].result
    assert result.verdict is Verdict.STABLE
    assert all(b.saturated_frac is not None and b.saturated_frac < 0.05 for b in result.blocks)


def test_tanh10_auto_uses_tanh_gain_and_is_stable(tanh10: dict[str, report.SchemeProbe]) -> None:
    result = tanh10["auto"].result
    assert result.verdict is Verdict.STABLE
    # gain 5/3 keeps the std nearly constant, where gain 1 loses a factor ~2.8 over 10 layers.
    assert result.std_ratio is not None and result.std_ratio > 0.7


def test_probe_is_deterministic() -> None:
    a = report.probe_report(TANH10, ["xavier_normal", "normal:std=0.05"], seed=3)
    b = report.probe_report(TANH10, ["xavier_normal", "normal:std=0.05"], seed=3)
    assert a == b
    c = report.probe_report(TANH10, ["xavier_normal"], seed=4)
    assert c.schemes[0] != a.schemes[0]


def test_layers_blocks_and_histograms(relu20: dict[str, report.SchemeProbe]) -> None:
    result = relu20["kaiming"].result
    names = [layer.name for layer in result.layers]
    assert names[:4] == ["fc1", "act1", "fc2", "act2"] and len(names) == 40
    assert [layer.name for layer in result.layers if layer.ends_block][:2] == ["act1", "act2"]
    assert result.blocks[0].name == "fc1 → act1" and result.blocks[0].layer == "fc1"
    assert result.layers[0].saturated_frac is None  # not a bounded layer
    assert result.layers[0].grad_norm is not None and result.layers[1].grad_norm is None
    assert result.layers[0].shape == (256, 256)
    for block in result.blocks:
        assert sum(block.hist.counts) == 256 * 256  # every value lands in a bin (clamped)
        assert len(block.hist.counts) == probe.HIST_BINS
    assert len({(b.hist.lo, b.hist.hi) for b in result.blocks}) == 1  # one range per scheme
    assert [g.name for g in result.grads][:2] == ["fc1.weight", "fc2.weight"]


def test_probe_matches_a_hand_written_forward() -> None:
    """The first block's std is exactly what the tutorial's loop computes on the same batch."""
    sp = report.probe_report(RELU20, ["kaiming_normal"], batch_size=32).schemes[0]
    model = build_mlp(load_spec(RELU20))
    assign.initialize(
        model, schemes.parse_scheme("kaiming_normal"), schemes.parse_scheme("zeros"), 0
    )
    x = batches.make_batch(batches.InputSpec((256,), None, ""), 32, 0)
    with torch.no_grad():
        h = torch.relu(model.fc1(x))
    assert sp.result.blocks[0].std == pytest.approx(float(h.double().std()), rel=1e-12)


def test_input_stream_differs_from_the_init_stream() -> None:
    # Drawn from the init's own stream, x·Wᵀ would pick up a diagonal that doubles the std.
    assert batches.input_seed(0) != 0
    x = batches.make_batch(batches.InputSpec((8,), None, ""), 4, 0)
    torch.manual_seed(0)
    assert not torch.equal(x, torch.randn(4, 8))


# --- verdict rules -------------------------------------------------------------------------------


def _ev(**kw: object) -> Evidence:
    base: dict[str, object] = {
        "first_std": 1.0, "last_std": 1.0, "max_zero_frac": 0.5, "max_saturated_frac": None,
        "symmetric_layer": None, "dead_layer": "b1", "saturated_layer": None,
        "nonfinite_layer": None,
    }  # fmt: skip
    base.update(kw)
    return Evidence(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "verdict"),
    [
        ({}, Verdict.STABLE),
        ({"last_std": VANISHING_RATIO * 0.99}, Verdict.VANISHING),
        ({"last_std": VANISHING_RATIO}, Verdict.STABLE),
        ({"last_std": EXPLODING_RATIO * 1.01}, Verdict.EXPLODING),
        ({"last_std": EXPLODING_RATIO}, Verdict.STABLE),
        ({"max_saturated_frac": SATURATED_FRAC, "saturated_layer": "x"}, Verdict.SATURATED),
        ({"max_saturated_frac": SATURATED_FRAC * 0.99}, Verdict.STABLE),
        ({"max_zero_frac": DEAD_FRAC}, Verdict.DEAD),
        ({"first_std": 0.0, "max_zero_frac": 0.1}, Verdict.DEAD),
        ({"symmetric_layer": "fc1", "max_zero_frac": 1.0}, Verdict.SYMMETRIC),
        ({"nonfinite_layer": "fc9", "symmetric_layer": "fc1"}, Verdict.EXPLODING),
    ],
)
def test_verdict_thresholds_and_order(kw: dict[str, object], verdict: Verdict) -> None:
    got, reason = decide(_ev(**kw))
    assert got is verdict, reason
    assert "\n" not in reason


def test_sigmoid_saturation_is_measured_on_its_own_range() -> None:
    r = report.probe_report(
        f"{MODELS}:saturating_sigmoid", ["normal:std=1", "xavier_normal:gain=sigmoid"]
    )
    large, xavier = (sp.result for sp in r.schemes)
    assert large.verdict is Verdict.SATURATED
    assert xavier.blocks[0].saturated_frac is not None and xavier.blocks[0].saturated_frac < 0.01


def test_exploding_relu20() -> None:
    result = report.probe_report(RELU20, ["normal:std=1"]).schemes[0].result
    assert result.verdict is Verdict.EXPLODING
    assert result.std_ratio is not None and result.std_ratio > 1e10


# --- input shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "shape", "kind", "source"),
    [
        ("sample_models/mlp.py:MLP", (256, 4), "float32 N(0, 1)", "in_features of fc1 (Linear)"),
        ("sample_models.lenet:LeNet5", (256, 3, 32, 32), "float32", "spatial size 32×32"),
        ("sample_models.lstm:LSTMClassifier", (256, 16), "token ids in [0, 500)", "token ids"),
        ("sample_models.tied_lm:TiedLM", (256, 16), "token ids", "embed (Embedding)"),
        ("sample_models/mlp.yaml", (256, 4), "float32", "the spec's input:"),
    ],
)
def test_input_shape_inferred(target: str, shape: tuple[int, ...], kind: str, source: str) -> None:
    r = report.probe_report(target, ["default"])
    assert r.input_shape == shape
    assert kind in r.input_kind and source in r.input_source


def test_input_shape_given_and_batch_size() -> None:
    r = report.probe_report(
        "sample_models.cnn_bn:SmallCNN", ["kaiming_normal"], input_shape=(3, 8, 8), batch_size=5
    )
    assert r.input_shape == (5, 3, 8, 8) and r.input_source == "--input-shape"
    assert r.schemes[0].result.layers[0].shape == (5, 16, 8, 8)


@pytest.mark.parametrize(
    ("text", "shape"), [("3,32,32", (3, 32, 32)), ("256", (256,)), ("3x32×32", (3, 32, 32))]
)
def test_parse_shape(text: str, shape: tuple[int, ...]) -> None:
    assert batches.parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "3,a", "0,4", "-1", "3;4", "3.5"])
def test_parse_shape_rejects(text: str) -> None:
    with pytest.raises(ArgError, match="--input-shape"):
        batches.parse_shape(text)


@pytest.mark.parametrize("target", [f"{MODELS}:lstm_first", "tests/models_for_tests.py:empty"])
def test_no_inferable_input_names_the_option(target: str) -> None:
    with pytest.raises(ProbeError, match="--input-shape"):
        report.probe_report(target, ["default"])


def test_failing_forward_names_the_layer() -> None:
    with pytest.raises(ProbeError, match=r"in layer '2' \(Linear\).*--input-shape") as info:
        report.probe_report(f"{MODELS}:mismatched", ["default"])
    assert "256×4" in str(info.value)
    with pytest.raises(ProbeError, match=r"in layer 'fc1' \(Linear\)"):
        report.probe_report("sample_models.lenet:LeNet5", ["default"], input_shape=(3, 28, 28))


@pytest.mark.parametrize(
    ("target", "verdicts"),
    [
        # Seeded, so each verdict is fixed; the std ratios (default, auto) are in the comments.
        ("sample_models.lstm:LSTMClassifier", (Verdict.VANISHING,) * 2),  # 0.052, 0.033
        ("sample_models.transformer:TinyTransformer", (Verdict.STABLE,) * 2),  # 0.58, 0.46
        ("sample_models.cnn_bn:SmallCNN", (Verdict.STABLE,) * 2),  # 0.31, 0.80
        ("sample_models.frozen:PartlyFrozen", (Verdict.STABLE,) * 2),  # 0.86, 1.57
        (f"{MODELS}:conv_bn", (Verdict.EXPLODING,) * 2),  # 4.13, 13.6
    ],
)
def test_probe_runs_on_sample_models(target: str, verdicts: tuple[Verdict, Verdict]) -> None:
    r = report.probe_report(target, ["default", "auto"], batch_size=16)
    assert tuple(sp.result.verdict for sp in r.schemes) == verdicts
    for sp in r.schemes:
        assert sp.result.blocks and sp.result.layers


def test_frozen_parameters_have_no_gradient() -> None:
    r = report.probe_report("sample_models.frozen:PartlyFrozen", ["kaiming_normal"])
    grads = {g.name: g.grad_norm for g in r.schemes[0].result.grads}
    frozen = [n for n, p in resolve.resolve(r.target).build().named_parameters()
              if not p.requires_grad]  # fmt: skip
    assert frozen and all(grads[n] is None for n in frozen)
    assert any(v is not None and v > 0 for v in grads.values())


def test_bad_probe_arguments() -> None:
    with pytest.raises(SchemeError, match="at least one --init"):
        report.probe_report(RELU20, [])
    with pytest.raises(SchemeError, match="twice"):
        report.probe_report(RELU20, ["kaiming", "kaiming_normal"])
    with pytest.raises(SchemeError, match="unknown scheme"):
        report.probe_report(RELU20, ["kaiming", "nope"])


# --- two moons -----------------------------------------------------------------------------------


def test_two_moons_matches_make_moons_layout() -> None:
    x, y = training.two_moons(500, 0.0, 0)
    assert x.shape == (500, 2) and y.shape == (500,) and int(y.sum()) == 250
    outer, inner = x[y == 0].double(), x[y == 1].double()
    # Noise-free: the outer moon is the upper unit half circle, the inner one is it shifted.
    assert torch.allclose(outer.norm(dim=1), torch.ones(250, dtype=torch.float64), atol=1e-6)
    shifted = inner - torch.tensor([1.0, 0.5], dtype=torch.float64)
    assert torch.allclose(shifted.norm(dim=1), torch.ones(250, dtype=torch.float64), atol=1e-6)
    assert float(outer[:, 1].min()) >= -1e-6 and float(inner[:, 1].max()) <= 0.5 + 1e-6
    noisy, _ = training.two_moons(500, 0.2, 0)
    assert float((noisy - training.two_moons(500, 0.0, 0)[0]).std()) == pytest.approx(0.2, rel=0.1)


@pytest.fixture(scope="module")
def moons() -> report.ProbeReport:
    setup = report.TrainSetup(steps=200, lr=0.01, points=500, noise=0.2)
    return report.probe_report(MOONS, ["kaiming_normal", "xavier_normal", "zeros"], train=setup)


def test_compare_train_moons(moons: report.ProbeReport) -> None:
    kaiming, xavier, zeros = (sp.training for sp in moons.schemes)
    assert kaiming is not None and xavier is not None and zeros is not None
    assert len(kaiming.losses) == 201
    # Zeros: every hidden unit is 0, so no weight ever gets a gradient, and the output bias has
    # none either on balanced classes: the loss stays at ln 2 (tolerance 1e-6) and the net
    # guesses one class.
    assert all(abs(loss - LN2) < 1e-6 for loss in zeros.losses)
    assert zeros.accuracy == 0.5
    # Kaiming and Xavier learn the moons: a tenth of ln 2 and better than 95% accuracy.
    for trained in (kaiming, xavier):
        assert trained.losses[-1] < 0.1 * LN2
        assert trained.accuracy > 0.95
        assert trained.losses[-1] < trained.losses[0]


def test_compare_train_is_identical_on_rerun(moons: report.ProbeReport) -> None:
    setup = report.TrainSetup(steps=200, lr=0.01, points=500, noise=0.2)
    again = report.probe_report(MOONS, ["kaiming_normal"], train=setup)
    assert again.schemes[0] == moons.schemes[0]


def test_train_needs_a_two_moons_model() -> None:
    setup = report.TrainSetup(steps=5, lr=0.01, points=50, noise=0.2)
    with pytest.raises(ProbeError, match="2 features to 2 logits"):
        report.probe_report(f"{MODELS}:wide_output", ["kaiming"], train=setup)
    with pytest.raises(ProbeError, match="takes 256 per sample"):
        report.probe_report(RELU20, ["kaiming"], train=setup)
    with pytest.raises(ArgError, match="--lr"):
        report.probe_report(MOONS, ["kaiming"], train=report.TrainSetup(5, 0.0, 50, 0.2))


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_linear_in_front_of_relu_is_a_sixth_of_he() -> None:
    d = report.defaults(RELU20)
    assert [t.type for t in d.types] == ["Linear"]
    assert d.types[0].modules[0] == "fc1" and len(d.types[0].modules) == 20
    weight_rule = d.types[0].rules[0]
    assert (weight_rule.param, weight_rule.variance) == ("weight", "1/(3·fan_in)")
    for c in d.checks:
        assert c.expected_var == pytest.approx(1 / (3 * 256), rel=1e-12)  # 1/(3·fan_in)
        assert c.recommended_var == pytest.approx(2 / 256, rel=1e-12)  # He: 2/fan_in
        assert c.ratio == pytest.approx(1 / 6, rel=1e-12)
        assert c.warning is not None and "1/6" in c.warning
    assert len(d.warnings) == 1
    assert "1/(3·fan_in) is 1/6 of kaiming_normal(relu)'s 2/fan_in" in d.warnings[0]
    assert "fc1 … fc20 (20)" in d.warnings[0] and "×0.41" in d.warnings[0]


def test_defaults_figures_match_the_built_tensors() -> None:
    # The formula's variance against the tensors PyTorch actually draws (20 × 65,536 values).
    torch.manual_seed(0)
    model = build_mlp(load_spec(RELU20))
    observed = float(torch.cat([p.detach().flatten() for p in model.parameters()]).double().var())
    assert observed == pytest.approx(1 / (3 * 256), rel=0.01)


def test_defaults_tanh_and_output_layers() -> None:
    d = report.defaults(TANH10)
    c = d.checks[0]
    # Xavier with tanh's gain: 2·(5/3)²/(fan_in + fan_out) = (50/9)/512.
    assert c.recommended_var == pytest.approx((50 / 9) / 512, rel=1e-12)
    assert c.ratio == pytest.approx((1 / 768) / ((50 / 9) / 512), rel=1e-12)
    assert "2·(5/3)²/(fan_in+fan_out)" in d.warnings[0]
    lenet = report.defaults("sample_models.lenet:LeNet5")
    checks = {c.name: c for c in lenet.checks}
    assert checks["conv1.weight"].expected_var == pytest.approx(1 / (3 * 75), rel=1e-12)
    assert checks["conv1.weight"].ratio == pytest.approx(1 / 6, rel=1e-12)
    assert checks["fc3.weight"].followed_by is None and checks["fc3.weight"].warning is None
    assert len(lenet.warnings) == 2  # Conv2d conv1, conv2 and Linear fc1, fc2


def test_defaults_other_module_types() -> None:
    d = report.defaults("sample_models.lstm:LSTMClassifier")
    rules = {t.type: t.rules for t in d.types}
    assert rules["Embedding"][0].variance == "1"
    assert all(r.variance == "1/(3·hidden_size)" for r in rules["LSTM"])
    checks = {c.name: c for c in d.checks}
    assert checks["embed.weight"].expected_var == 1.0
    assert checks["lstm.weight_hh_l0"].expected_var == pytest.approx(1 / (3 * 64), rel=1e-12)
    t = report.defaults("sample_models.transformer:TinyTransformer")
    types = {x.type: x for x in t.types}
    assert types["MultiheadAttention"].rules[0].init == "xavier_uniform_"
    assert types["LayerNorm"].rules[0].init == "ones_"


def test_defaults_without_a_trace_still_lists_types() -> None:
    d = report.defaults(f"{MODELS}:lstm_first")
    assert d.types[0].type == "LSTM" and d.warnings == ()
    assert "--input-shape" in d.notes[0]


# --- gain ----------------------------------------------------------------------------------------


def test_gains_are_the_closed_forms() -> None:
    rows = {r.nonlinearity: r for r in report.gains(slope=0.2)}
    assert rows["tanh"].gain == pytest.approx(5 / 3, rel=1e-15)
    assert rows["relu"].gain == pytest.approx(math.sqrt(2), rel=1e-15)
    assert rows["leaky_relu"].gain == pytest.approx(math.sqrt(2 / (1 + 0.2**2)), rel=1e-15)
    assert rows["selu"].gain == 0.75
    assert rows["sigmoid"].gain == rows["linear"].gain == rows["conv2d"].gain == 1.0
    assert rows["leaky_relu"].formula == "√(2/(1+slope²)), slope=0.2"
    assert {r.nonlinearity for r in report.gains()} == set(schemes.NONLINEARITIES)
    default = {r.nonlinearity: r for r in report.gains()}
    assert default["leaky_relu"].gain == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
