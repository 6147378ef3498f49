"""Counting by identity, hand-count formulas, torchinfo's totals and why they differ."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import run
from torch import nn

from initcli import report
from initcli.measure.counting import count_model, formula

ODD = "tests/models_for_tests.py"


def test_tutorial_mlp_counts_51_and_agrees_with_torchinfo() -> None:
    result = report.count("sample_models/mlp.yaml")
    c = result.counts
    assert (c.total, c.trainable, c.frozen, c.buffers) == (51, 51, 0, 0)
    assert c.torchinfo is not None and (c.torchinfo.total, c.torchinfo.trainable) == (51, 51)
    assert c.agree and c.notes == ()
    assert [(m.name, m.type, m.params, m.formula) for m in c.modules] == [
        ("fc1", "Linear", 25, "4×5 + 5"),
        ("fc2", "Linear", 18, "5×3 + 3"),
        ("fc3", "Linear", 8, "3×2 + 2"),
    ]


def test_tied_embedding_counts_once_and_names_both_tensors() -> None:
    c = report.count("sample_models.tied_lm:TiedLM").counts
    assert c.total == 68160
    assert c.torchinfo is not None and c.torchinfo.total == 132160
    assert not c.agree
    assert len(c.notes) == 1
    note = c.notes[0]
    assert "embed.weight" in note and "head.weight" in note and "64,000" in note
    # Each holder is listed with its own hand count.
    assert [(m.name, m.params) for m in c.modules] == [
        ("embed", 64000),
        ("hidden", 4160),
        ("head", 64000),
    ]


class _TiedThreeWays(nn.Module):
    """One 8×8 weight held by three Linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)
        self.c = nn.Linear(8, 8, bias=False)
        self.b.weight = self.a.weight
        self.c.weight = self.a.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(self.b(self.a(x)))


def test_a_tensor_tied_three_ways_is_explained_as_size_times_k_minus_one() -> None:
    # torchinfo counts the 64 elements once per holder (192): +64·(3−1), not +64; a prediction of
    # +64 would add a note that the difference is unexplained.
    c = count_model(_TiedThreeWays())
    assert (c.total, c.torchinfo and c.torchinfo.total, c.agree) == (64, 192, False)
    assert c.notes == (
        "tied weights: a.weight, b.weight, c.weight are one tensor of 64 elements; initcli "
        "counts it once, torchinfo once per module that holds it (+128).",
    )
    assert [(m.name, m.params) for m in c.modules] == [("a", 64), ("b", 64), ("c", 64)]


def test_frozen_and_buffers() -> None:
    c = report.count("sample_models.frozen:PartlyFrozen").counts
    assert (c.total, c.trainable, c.frozen) == (90, 18, 72)
    c = report.count("sample_models.cnn_bn:SmallCNN").counts
    assert (c.total, c.buffers) == (5466, 98)
    assert c.agree


def test_lenet_formulas() -> None:
    c = report.count("sample_models.lenet:LeNet5").counts
    assert c.total == 62006
    assert {m.name: m.formula for m in c.modules} == {
        "conv1": "6×3×5×5 + 6", "conv2": "16×6×5×5 + 16",
        "fc1": "400×120 + 120", "fc2": "120×84 + 84", "fc3": "84×10 + 10",
    }  # fmt: skip


def test_formulas_for_other_layer_types() -> None:
    assert formula(nn.Linear(4, 5, bias=False)) == "4×5"
    assert formula(nn.LayerNorm(8)) == "8 + 8"
    assert formula(nn.Embedding(10, 3)) == "10×3"
    assert formula(nn.LSTM(4, 2)) == "8×4 + 8×2 + 8 + 8"


def test_pruned_weights_note_the_mask() -> None:
    c = report.count(f"{ODD}:pruned").counts
    assert c.total == 55  # weight_orig (50) + bias (5)
    assert c.buffers == 50  # the mask
    assert c.torchinfo is not None and c.torchinfo.total == 35
    assert not c.agree
    assert len(c.notes) == 1
    assert "0.weight_orig" in c.notes[0] and "0.weight_mask" in c.notes[0]
    assert "30" in c.notes[0] and "−20" in c.notes[0]


def test_lazy_parameters_are_noted_not_crashed() -> None:
    c = report.count(f"{ODD}:lazy").counts
    assert c.total == 18
    assert c.uninitialized == ("0.weight", "0.bias")
    assert c.agree  # torchinfo cannot count them either
    assert any("0.weight, 0.bias" in note and "lazy" in note for note in c.notes)
    lazy_module = next(m for m in c.modules if m.name == "0")
    assert lazy_module.params == 0 and "uninitialized" in lazy_module.formula


def test_shared_module_counts_once_everywhere() -> None:
    c = report.count(f"{ODD}:shared").counts
    assert c.total == 12 and c.agree and c.notes == ()


def test_no_parameters_is_a_clean_zero() -> None:
    c = report.count(f"{ODD}:empty").counts
    assert (c.total, c.trainable, c.frozen, c.buffers, c.modules) == (0, 0, 0, 0, ())
    assert c.agree


def test_parameters_on_the_root_and_in_containers() -> None:
    class Root(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.tensor(1.0))
            self.plist = nn.ParameterList(
                [nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(2, 2))]
            )

    c = count_model(Root())
    assert c.total == 8 and c.agree
    assert [(m.name, m.formula) for m in c.modules] == [("(root)", "1"), ("plist", "3 + 2×2")]


@pytest.mark.parametrize(
    ("parents", "container", "paths", "held"),
    [
        (2, False, "a.0 and b.0", "of its own"),
        (3, False, "a.0, b.0, c.0", "of its own"),
        (2, True, "a.0 and b.0", "in it and its submodules"),
        (3, True, "a.0, b.0, c.0", "in it and its submodules"),
    ],
)
def test_shared_module_is_named_with_every_path_and_torchinfos_extra_count(
    parents: int, container: bool, paths: str, held: str
) -> None:
    args = {"parents": parents, "container": container}
    c = report.count(f"{ODD}:SharedModule", args).counts
    # torchinfo 1.8.0 counts the module's 1,056 parameters once per parent: 2,112 and 3,168.
    assert (c.total, c.torchinfo and c.torchinfo.total, c.agree) == (1056, 1056 * parents, False)
    assert c.notes == (
        f"shared module: {paths} are one module with 1,056 parameters {held}, registered under "
        f"{parents} parents; initcli counts it once, torchinfo once per parent "
        f"(+{1056 * (parents - 1):,}).",
    )


def test_a_pruning_mask_registered_as_a_parameter_is_explained_from_a_real_build() -> None:
    # torchinfo sums a `weight_mask` attribute whatever it is registered as; on the meta build
    # it cannot (it failed there with "Tensor.item() cannot be called on meta tensors").
    result = report.count(f"{ODD}:MaskParameter")
    c = result.counts
    assert (result.method, c.total, c.torchinfo and c.torchinfo.total) == ("real", 52, 48)
    assert result.remarks == (
        "tests/models_for_tests.py:MaskParameter was built for real, in memory, not on the meta "
        "device: the pruning mask of fc.weight_orig depends on the weights' values",
    )
    assert c.notes == (
        "pruning: fc.weight_orig holds all 16 elements of fc.weight; torchinfo counts only the "
        "12 that fc.weight_mask keeps (−4); the mask is a parameter, counted in full by both.",
    )


def test_input_shape_goes_to_torchinfo_and_says_so() -> None:
    with_input = report.count("sample_models/mlp.yaml", input_shape=(4,)).counts
    without = report.count("sample_models/mlp.yaml").counts
    assert (with_input.torchinfo_input, without.torchinfo_input) == ((2, 4), None)
    assert with_input.torchinfo == without.torchinfo and with_input.agree


def test_torchinfos_total_with_an_input_on_a_shared_module_is_explained() -> None:
    c = report.count(f"{ODD}:SharedModule", input_shape=(32,)).counts
    # Given an input, torchinfo 1.8.0 counts the shared Linear three times under two parents.
    assert (c.total, c.torchinfo and c.torchinfo.total, c.torchinfo_input) == (1056, 3168, (2, 32))
    assert c.notes[1] == (
        "given the 2×32 input, torchinfo reports 2,112 more parameters than initcli: it then "
        "counts the modules its forward pass calls, which for a module called more than once, "
        "under several parents, or not at all can differ from their parameters; without an "
        "input it reports a total of 2,112, as the notes above explain."
    )


def test_a_module_called_twice_under_one_parent_agrees_with_an_input() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.fc(x))

    c = count_model(Twice(), torch.zeros(2, 8))
    assert (c.total, c.torchinfo and c.torchinfo.total, c.notes) == (72, 72, ())


def test_an_input_torchinfo_cannot_run_falls_back_to_no_input_with_a_note() -> None:
    c = report.count("sample_models/mlp.yaml", input_shape=(5,)).counts
    assert (c.torchinfo and c.torchinfo.total, c.torchinfo_input, c.agree) == (51, None, True)
    assert c.notes == (
        # A spec is counted on its meta build: the error is the meta kernel's.
        "torchinfo.summary failed on the 2×5 input (RuntimeError: a and b must have same "
        "reduction dim, but got [2, 5] X [4, 5].), so its count here is without an input.",
    )


def test_an_input_that_fails_on_the_meta_build_is_run_on_a_real_one() -> None:
    result = report.count("sample_models/lenet.py:LeNet5", input_shape=(1, 32, 32))
    assert result.method == "real"
    assert result.remarks == (
        "sample_models/lenet.py:LeNet5 was built for real, in memory, not on the meta device: "
        "torchinfo.summary failed on the meta build with the 2×1×32×32 input (RuntimeError: "
        "Invalid channel dimensions)",
    )
    # The real build's error is the one that names the cause.
    assert result.counts.notes == (
        "torchinfo.summary failed on the 2×1×32×32 input (RuntimeError: Given groups=1, weight "
        "of size [6, 3, 5, 5], expected input[2, 1, 32, 32] to have 3 channels, but got 1 "
        "channels instead), so its count here is without an input.",
    )
    good = report.count("sample_models/lenet.py:LeNet5", input_shape=(3, 32, 32))
    assert (good.method, good.counts.torchinfo_input, good.counts.agree) == (
        "meta",
        (2, 3, 32, 32),
        True,
    )


def test_inspect_gives_torchinfo_its_input_shape_too() -> None:
    r = report.inspect("sample_models/mlp.yaml", "kaiming_normal", input_shape=(4,))
    assert r.counts.counts.torchinfo_input == (2, 4)
    assert report.inspect("sample_models/mlp.yaml").counts.counts.torchinfo_input is None


def test_count_cli_names_the_input_torchinfo_ran_on() -> None:
    from conftest import run

    code, out, _ = run("count", "sample_models/mlp.yaml", "--input-shape", "4")
    assert code == 0 and "torchinfo  51  agrees (forward pass on a 2×4 input)" in out
    code, out, _ = run("count", "sample_models/mlp.yaml", "--format", "json")
    assert code == 0 and json.loads(out)["torchinfo_input"] is None
    code, out, _ = run("count", "sample_models/mlp.yaml", "--input-shape", "4", "--format", "json")
    assert code == 0 and json.loads(out)["torchinfo_input"] == [2, 4]


# In-process checks of each note's exact text and of the walks behind them (mutation testing
# showed these were reached only through looser assertions).


def test_a_one_element_tensor_tied_at_the_root_is_singular_and_unprefixed() -> None:
    model = nn.Module()
    model.p = nn.Parameter(torch.ones(1))
    model.sub = nn.Module()
    model.sub.p = model.p
    c = count_model(model)
    assert c.total == 1
    assert c.notes[0] == (
        "tied weights: p and sub.p are one tensor of 1 element; initcli counts it once, "
        "torchinfo once per module that holds it (+1)."
    )


def test_a_lazy_parameter_before_a_tied_one_does_not_hide_it() -> None:
    model = nn.Module()
    model.a = nn.Module()
    model.a.lazy = nn.parameter.UninitializedParameter()
    model.a.w = nn.Parameter(torch.ones(2))
    model.b = nn.Module()
    model.b.w = model.a.w
    c = count_model(model)
    assert c.uninitialized == ("a.lazy",)
    assert c.notes[0] == (
        "tied weights: a.w and b.w are one tensor of 2 elements; initcli counts it once, "
        "torchinfo once per module that holds it (+2)."
    )
    assert c.notes[1] == (
        "uninitialized lazy parameters: a.lazy have no shape until a forward pass, so neither "
        "initcli nor torchinfo counts them."
    )


def test_a_shared_module_with_a_lazy_parameter_counts_only_shaped_ones() -> None:
    shared = nn.Module()
    shared.w = nn.Parameter(torch.ones(3))
    shared.lazy = nn.parameter.UninitializedParameter()
    model = nn.Module()
    model.x, model.y = nn.Module(), nn.Module()
    model.x.s = shared
    model.y.s = shared
    c = count_model(model)
    assert c.notes[0] == (
        "shared module: x.s and y.s are one module with 3 parameters of its own, registered under "
        "2 parents; initcli counts it once, torchinfo once per parent (+3)."
    )


def test_a_pruned_root_module_names_its_parameter_once_with_a_buffer_mask() -> None:
    from torch.nn.utils import prune

    layer = prune.l1_unstructured(nn.Linear(4, 2), "weight", amount=0.5)
    c = count_model(layer)
    assert c.buffers == 8
    assert c.notes == (
        "pruning: weight_orig holds all 8 elements of weight; torchinfo counts only the 4 that "
        "weight_mask keeps (−4); the mask is a buffer.",
    )
    nested = nn.Sequential(nn.Sequential(prune.l1_unstructured(nn.Linear(4, 2), "weight", 0.5)))
    (note,) = count_model(nested).notes  # one note, not one per enclosing module
    assert note.startswith("pruning: 0.0.weight_orig holds all 8 elements of 0.0.weight;")


def test_lazy_buffers_are_not_counted() -> None:
    c = count_model(nn.LazyBatchNorm1d())
    assert c.buffers == 1  # num_batches_tracked; running_mean and running_var have no shape yet
    code, out, err = run("count", f"{ODD}:lazy_norm", "-f", "json")
    assert code == 0, err
    assert json.loads(out)["buffers"] == 1


def test_torchinfo_differing_from_the_notes_is_worded_by_its_sign() -> None:
    from initcli.measure import counting

    model = nn.Linear(2, 2)
    assert counting._unexplained(3, model, None, 0) == (
        "torchinfo reports 3 more parameters than initcli for a reason initcli does not recognize."
    )
    assert counting._unexplained(-1, model, None, 0) == (
        "torchinfo reports 1 fewer parameter than initcli for a reason initcli does not recognize."
    )
    assert counting._unexplained(1, model, None, 0) == (
        "torchinfo reports 1 more parameter than initcli for a reason initcli does not recognize."
    )
    assert counting._unexplained(0, model, None, 5).startswith(
        "torchinfo reports the same total as initcli for a reason"
    )


def test_torchinfo_with_an_input_names_what_it_reports_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from initcli.measure import counting

    model = nn.Linear(2, 2)  # torchinfo walks it to 6 parameters without an input
    common = (
        "given the 1×2 input, torchinfo reports 2 more parameters than initcli: it then counts "
        "the modules its forward pass calls, which for a module called more than once, under "
        "several parents, or not at all can differ from their parameters; "
    )
    assert counting._unexplained(2, model, (1, 2), 6) == (
        common + "without an input it reports a total of 6, as the notes above explain."
    )
    assert counting._unexplained(2, model, (1, 2), 4) == (
        common + "without an input it reports a total of 6."
    )
    monkeypatch.setattr(counting, "_torchinfo", lambda *_: "ValueError: no walk")
    assert counting._unexplained(2, model, (1, 2), 4) == (
        common + "without an input it fails (ValueError: no walk)."
    )


def test_a_spec_with_norms_and_no_bias_is_counted_by_arithmetic_as_its_real_build() -> None:
    from initcli.measure.counting import count_spec
    from initcli.model.spec import build_mlp, parse_spec

    spec = parse_spec(
        "input: 4\nlayers:\n  - {units: 6, norm: batchnorm, bias: false}\n"
        "  - {units: 5, norm: layernorm}\n  - {units: 3, norm: batchnorm}\n  - {units: 2}\n"
    )
    real = build_mlp(spec)
    c = count_spec(spec, real)
    assert [(m.name, m.type, m.params, m.formula) for m in c.modules] == [
        ("fc1", "Linear", 24, "4×6"),
        ("norm1", "BatchNorm1d", 12, "6 + 6"),
        ("fc2", "Linear", 35, "6×5 + 5"),
        ("norm2", "LayerNorm", 10, "5 + 5"),
        ("fc3", "Linear", 18, "5×3 + 3"),
        ("norm3", "BatchNorm1d", 6, "3 + 3"),
        ("fc4", "Linear", 8, "3×2 + 2"),
    ]
    # BatchNorm1d keeps running_mean and running_var per unit and one num_batches_tracked.
    assert (c.total, c.trainable, c.frozen, c.buffers) == (113, 113, 0, 6 * 2 + 1 + 3 * 2 + 1)
    assert c.torchinfo is not None and (c.torchinfo.total, c.agree, c.notes) == (113, True, ())
    assert c.uninitialized == () and c.torchinfo_input is None
    whole = count_model(real)
    assert (whole.total, whole.trainable, whole.buffers) == (c.total, c.trainable, c.buffers)


def test_a_failing_torchinfo_leaves_initcli_s_own_count_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from initcli.measure import counting

    monkeypatch.setattr(counting, "_torchinfo", lambda *args: "RuntimeError: no")
    frozen = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    frozen[0].bias.requires_grad_(False)
    c = count_model(frozen)
    assert (c.total, c.trainable, c.frozen, c.buffers) == (24, 20, 4, 9)
    assert (c.torchinfo, c.agree, c.torchinfo_input) == (None, False, None)
    assert c.notes == (
        "torchinfo.summary failed (RuntimeError: no), so there is nothing to compare with.",
    )
    assert [(m.name, m.params) for m in c.modules] == [("0", 16), ("1", 8)]
    assert c.uninitialized == ()
    lazy = count_model(nn.Sequential(nn.Linear(3, 4), nn.LazyLinear(2)))
    assert (lazy.total, lazy.torchinfo, lazy.uninitialized) == (16, None, ("1.weight", "1.bias"))


def test_torchinfo_s_own_failure_without_a_cause_is_named_by_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torchinfo

    from initcli.measure import counting

    def refuse(*args: object, **kwargs: object) -> None:
        raise ValueError("no summary today\nsecond line")

    monkeypatch.setattr(torchinfo, "summary", refuse)
    assert counting._torchinfo(nn.Linear(2, 2)) == "ValueError: no summary today"


def test_formulas_of_lazy_layers_and_at_the_term_limit() -> None:
    from initcli.limits import MAX_FORMULA_TERMS
    from initcli.measure.counting import shapes_formula

    assert formula(nn.LazyLinear(3)) == "? (uninitialized lazy parameters)"
    at_limit = [(2,)] * MAX_FORMULA_TERMS
    assert shapes_formula(at_limit) == " + ".join(["2"] * MAX_FORMULA_TERMS)
    over = [(2,)] * (MAX_FORMULA_TERMS + 1)
    assert (
        shapes_formula(over)
        == " + ".join(["2"] * 10) + f" + … {MAX_FORMULA_TERMS - 9:,} more tensors"
    )
