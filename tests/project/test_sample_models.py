"""Hand-counted parameters, forward shapes, torchinfo totals and loadability of sample_models/."""

import ast
import importlib
import importlib.util
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
import torchinfo
import yaml
from torch import nn

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_models"
BATCH, SEQ = 3, 7


def _floats(*shape: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randn(*shape, generator=torch.Generator().manual_seed(0))


def _ids(vocab: int) -> Callable[[], torch.Tensor]:
    return lambda: torch.randint(0, vocab, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))


def _lstm_layer(in_features: int, hidden: int) -> int:
    # weight_ih (4H×in) + weight_hh (4H×H) + bias_ih and bias_hh (4H each): four gates stacked.
    return 4 * hidden * in_features + 4 * hidden * hidden + 8 * hidden


def _encoder_layer(d: int, ff: int) -> int:
    attention = (3 * d * d + 3 * d) + (d * d + d)  # in_proj (q, k, v stacked) + out_proj
    return attention + (d * ff + ff) + (ff * d + d) + 2 * (2 * d)  # linear1, linear2, norm1, norm2


@dataclass(frozen=True)
class Sample:
    """One sample model and everything about it that was worked out by hand."""

    stem: str
    name: str
    modules: dict[str, int]  # named module -> its parameters, submodules included
    total: int
    frozen: int
    buffers: int
    torchinfo_total: int
    make_input: Callable[[], torch.Tensor]
    output_shape: tuple[int, ...]
    module_buffers: dict[str, int] = field(default_factory=dict)

    @property
    def trainable(self) -> int:
        return self.total - self.frozen

    @property
    def module_target(self) -> str:
        return f"sample_models.{self.stem}:{self.name}"

    @property
    def file_target(self) -> str:
        return f"sample_models/{self.stem}.py:{self.name}"


LENET = {
    "conv1": 6 * 3 * 5 * 5 + 6,
    "conv2": 16 * 6 * 5 * 5 + 16,
    "fc1": 16 * 5 * 5 * 120 + 120,
    "fc2": 120 * 84 + 84,
    "fc3": 84 * 10 + 10,
}
CNN_BN = {
    "conv1": 16 * 3 * 3 * 3,
    "bn1": 2 * 16,
    "conv2": 32 * 16 * 3 * 3,
    "bn2": 2 * 32,
    "fc": 32 * 10 + 10,
}
LSTM = {
    "embed": 500 * 32,
    "lstm": _lstm_layer(32, 64) + _lstm_layer(64, 64),
    "fc": 64 * 5 + 5,
}
TRANSFORMER = {
    "embed": 256 * 32,
    "encoder.layers.0.self_attn": (3 * 32 * 32 + 3 * 32) + (32 * 32 + 32),
    "encoder.layers.0.self_attn.out_proj": 32 * 32 + 32,
    "encoder.layers.1": _encoder_layer(32, 64),
    "encoder": 2 * _encoder_layer(32, 64),
    "norm": 2 * 32,
    "head": 32 * 256 + 256,
}

SAMPLE_LIST = [
    Sample(
        stem="mlp",
        name="MLP",
        modules={"fc1": 4 * 5 + 5, "fc2": 5 * 3 + 3, "fc3": 3 * 2 + 2},
        total=51,
        frozen=0,
        buffers=0,
        torchinfo_total=51,
        make_input=_floats(BATCH, 4),
        output_shape=(BATCH, 2),
    ),
    Sample(
        stem="lenet",
        name="LeNet5",
        modules=LENET,
        total=62006,
        frozen=0,
        buffers=0,
        torchinfo_total=62006,
        make_input=_floats(BATCH, 3, 32, 32),
        output_shape=(BATCH, 10),
    ),
    Sample(
        stem="tied_lm",
        name="TiedLM",
        # head's only parameter is embed's weight, so both modules own the same 64000.
        modules={"embed": 1000 * 64, "hidden": 64 * 64 + 64, "head": 1000 * 64},
        total=68160,
        frozen=0,
        buffers=0,
        # torchinfo 1.8.0 sums each module's own parameters without checking identity, so
        # the tied tensor is counted under embed and again under head: 68160 + 64000.
        torchinfo_total=132160,
        make_input=_ids(1000),
        output_shape=(BATCH, SEQ, 1000),
    ),
    Sample(
        stem="cnn_bn",
        name="SmallCNN",
        modules=CNN_BN,
        total=5466,
        frozen=0,
        buffers=98,
        torchinfo_total=5466,
        make_input=_floats(BATCH, 3, 32, 32),
        output_shape=(BATCH, 10),
        # running_mean + running_var + num_batches_tracked (one int64 element).
        module_buffers={"bn1": 16 + 16 + 1, "bn2": 32 + 32 + 1},
    ),
    Sample(
        stem="lstm",
        name="LSTMClassifier",
        modules=LSTM,
        total=74693,
        frozen=0,
        buffers=0,
        torchinfo_total=74693,
        make_input=_ids(500),
        output_shape=(BATCH, 5),
    ),
    Sample(
        stem="transformer",
        name="TinyTransformer",
        modules=TRANSFORMER,
        total=33792,
        frozen=0,
        buffers=0,
        torchinfo_total=33792,
        make_input=_ids(256),
        output_shape=(BATCH, SEQ, 256),
    ),
    Sample(
        stem="lenet5_init",
        name="LeNet5Init",
        # LeNet-5 with a BatchNorm2d (weight + bias per channel) after each convolution.
        modules={**LENET, "bn1": 2 * 6, "bn2": 2 * 16},
        total=62006 + 2 * 6 + 2 * 16,
        frozen=0,
        buffers=6 + 6 + 1 + 16 + 16 + 1,
        torchinfo_total=62050,
        make_input=_floats(BATCH, 3, 32, 32),
        output_shape=(BATCH, 10),
        module_buffers={"bn1": 6 + 6 + 1, "bn2": 16 + 16 + 1},
    ),
    Sample(
        stem="width_mlp",
        name="MLP",
        # 16 → 64 → 64 → 64 → 8 at the default width.
        modules={
            "net": 9928,
            "net.0": 16 * 64 + 64,
            "net.2": 64 * 64 + 64,
            "net.4": 64 * 64 + 64,
            "net.6": 64 * 8 + 8,
        },
        total=9928,
        frozen=0,
        buffers=0,
        torchinfo_total=9928,
        make_input=_floats(BATCH, 16),
        output_shape=(BATCH, 8),
    ),
    Sample(
        stem="frozen",
        name="PartlyFrozen",
        modules={"backbone": 8 * 8 + 8, "head": 8 * 2 + 2},
        total=90,
        frozen=8 * 8 + 8,
        buffers=0,
        torchinfo_total=90,
        make_input=_floats(BATCH, 8),
        output_shape=(BATCH, 2),
    ),
]
SAMPLES_BY_STEM = {s.stem: s for s in SAMPLE_LIST}
each_sample = pytest.mark.parametrize("sample", SAMPLE_LIST, ids=lambda s: s.stem)


@cache
def load_file(stem: str) -> ModuleType:
    """Load sample_models/<stem>.py by file path, as a `file.py:Name` target is loaded."""
    path = SAMPLES / f"{stem}.py"
    spec = importlib.util.spec_from_file_location(f"_sample_models_{stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(sample: Sample) -> nn.Module:
    model = getattr(load_file(sample.stem), sample.name)()
    assert isinstance(model, nn.Module)
    return model


def numel(tensors: Any) -> int:
    return sum(t.numel() for t in tensors)


# Real architectures built from transformers config classes (the hf extra), for probe and compare
# on real models (docs/probe-real-models.md): their counts are transformers', guarded by the
# baseline (`initcli check`), their behaviour by tests/experiments/test_probe_real.py.
HF_SAMPLES = {"gpt2_residual", "small_vit"}


def test_every_sample_file_is_covered() -> None:
    stems = {p.stem for p in SAMPLES.glob("*.py")} - {"__init__"}
    assert stems == set(SAMPLES_BY_STEM) | HF_SAMPLES
    baseline = (ROOT / "baselines/sample_models.json").read_text(encoding="utf-8")
    for stem in HF_SAMPLES:
        assert f"sample_models.{stem}:" in baseline, stem


def test_hand_counts_add_up() -> None:
    for sample in SAMPLE_LIST:
        top_level = {k: v for k, v in sample.modules.items() if "." not in k}
        if sample.stem != "tied_lm":
            assert sum(top_level.values()) == sample.total, sample.stem
    assert sum(LENET.values()) == 62006
    assert SAMPLES_BY_STEM["tied_lm"].total == 1000 * 64 + 64 * 64 + 64


@each_sample
def test_counts(sample: Sample) -> None:
    model = build(sample)
    # parameters() yields each tensor once (by identity), so tied weights count once.
    assert numel(model.parameters()) == sample.total
    assert numel(p for p in model.parameters() if p.requires_grad) == sample.trainable
    assert numel(p for p in model.parameters() if not p.requires_grad) == sample.frozen
    assert numel(model.buffers()) == sample.buffers


@each_sample
def test_module_counts(sample: Sample) -> None:
    named = dict(build(sample).named_modules())
    for name, expected in sample.modules.items():
        assert numel(named[name].parameters()) == expected, name
    for name, expected in sample.module_buffers.items():
        assert numel(named[name].buffers()) == expected, name


@each_sample
def test_forward_shape(sample: Sample) -> None:
    model = build(sample)
    out = model(sample.make_input())
    assert tuple(out.shape) == sample.output_shape
    assert torch.isfinite(out).all()


@each_sample
def test_torchinfo_total(sample: Sample) -> None:
    model = build(sample)
    stats = torchinfo.summary(model, verbose=0)
    assert stats.total_params == sample.torchinfo_total
    # With a forward pass torchinfo reports the same totals as without one.
    stats = torchinfo.summary(model, input_data=sample.make_input(), verbose=0)
    assert stats.total_params == sample.torchinfo_total


@each_sample
def test_import_by_module_path(sample: Sample, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))
    module_name, _, attr = sample.module_target.partition(":")
    module = importlib.import_module(module_name)
    assert Path(str(module.__file__)).resolve() == SAMPLES / f"{sample.stem}.py"
    model = getattr(module, attr)()
    assert numel(model.parameters()) == sample.total


@each_sample
def test_import_by_file_path(sample: Sample) -> None:
    path, _, attr = sample.file_target.partition(":")
    spec = importlib.util.spec_from_file_location(f"_by_path_{sample.stem}", ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, attr)()
    assert numel(model.parameters()) == sample.total


@each_sample
def test_constructor_needs_no_arguments(sample: Sample) -> None:
    cls = getattr(load_file(sample.stem), sample.name)
    assert issubclass(cls, nn.Module)
    params = inspect.signature(cls).parameters.values()
    assert all(p.default is not inspect.Parameter.empty for p in params)


@each_sample
def test_default_init_is_seeded(sample: Sample) -> None:
    # The `default` scheme seeds before the build, so the same seed must give the same weights.
    torch.manual_seed(0)
    first = build(sample).state_dict()
    torch.manual_seed(0)
    second = build(sample).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_source_imports_only_torch(path: Path) -> None:
    # Targets are loaded by file path too, where neither relative imports nor sibling
    # imports resolve; torch is the only dependency a sample may have.
    allowed = {"torch", "transformers"} if path.stem in HF_SAMPLES else {"torch"}
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name.split(".")[0] in allowed for a in node.names), ast.dump(node)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            assert (node.module or "").split(".")[0] in allowed, node.module
    docstring = ast.get_docstring(tree)
    assert docstring and "\n" not in docstring


@each_sample
def test_class_docstring_states_count(sample: Sample) -> None:
    cls = getattr(load_file(sample.stem), sample.name)
    assert str(sample.total) in (cls.__doc__ or "")


def test_tied_weight_is_one_tensor() -> None:
    model = build(SAMPLES_BY_STEM["tied_lm"])
    assert model.get_parameter("head.weight") is model.get_parameter("embed.weight")
    assert len(list(model.named_parameters())) == 3
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4
    # state_dict keeps both names, so a checkpoint stores the tied tensor under two keys.
    assert {"embed.weight", "head.weight"} <= model.state_dict().keys()


def test_frozen_backbone_gets_no_gradient() -> None:
    sample = SAMPLES_BY_STEM["frozen"]
    model = build(sample)
    model(sample.make_input()).sum().backward()
    grads = {name: p.grad for name, p in model.named_parameters()}
    assert grads["backbone.weight"] is None and grads["backbone.bias"] is None
    assert grads["head.weight"] is not None and grads["head.bias"] is not None


def test_lenet_conv1_count() -> None:
    model = build(SAMPLES_BY_STEM["lenet"])
    assert numel(model.get_submodule("conv1").parameters()) == 6 * 3 * 5 * 5 + 6 == 456


# The `mlp` factory: depth hidden Linear+act layers of `width` units, then Linear(width, 2).
def _mlp_count(depth: int, width: int) -> int:
    return (4 * width + width) + (depth - 1) * (width * width + width) + (2 * width + 2)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 67),
        ({"depth": 3, "width": 8}, 202),
        ({"depth": 1, "width": 5}, 37),
        ({"act": "tanh"}, 67),
    ],
)
def test_mlp_factory(kwargs: dict[str, Any], expected: int) -> None:
    model = load_file("mlp").mlp(**kwargs)
    assert isinstance(model, nn.Sequential)
    assert numel(model.parameters()) == expected
    assert expected == _mlp_count(kwargs.get("depth", 2), kwargs.get("width", 5))
    assert torchinfo.summary(model, verbose=0).total_params == expected
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert len(linears) == kwargs.get("depth", 2) + 1
    act = nn.Tanh if kwargs.get("act") == "tanh" else nn.ReLU
    assert sum(isinstance(m, act) for m in model) == kwargs.get("depth", 2)
    assert tuple(model(torch.zeros(BATCH, 4)).shape) == (BATCH, 2)


@pytest.mark.parametrize(
    "kwargs", [{"depth": 0}, {"width": 0}, {"act": "gelu"}], ids=["depth", "width", "act"]
)
def test_mlp_factory_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        load_file("mlp").mlp(**kwargs)


def test_mlp_factory_defaults() -> None:
    params = inspect.signature(load_file("mlp").mlp).parameters.values()
    assert all(p.default is not inspect.Parameter.empty for p in params)


# YAML specs: parsed with yaml.safe_load only (initcli.model.spec is tested on its own).
SPEC_KEYS = {"name", "input", "bias", "layers", "init"}
LAYER_KEYS = {"units", "activation", "bias", "norm", "dropout", "repeat"}
ACTIVATIONS = {"relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "selu", "elu", "identity"}

YAML_SPECS: dict[str, tuple[dict[str, Any], int]] = {
    "mlp.yaml": (
        {
            "name": "TutorialMLP",
            "input": 4,
            "layers": [
                {"units": 5, "activation": "relu"},
                {"units": 3, "activation": "relu"},
                {"units": 2},
            ],
        },
        51,
    ),
    "digits_mlp.yaml": (
        {
            "name": "DigitsMLP",
            "input": 64,
            "layers": [{"units": 64, "activation": "relu", "repeat": 9}, {"units": 10}],
        },
        9 * (64 * 64 + 64) + 64 * 10 + 10,
    ),
    "moons.yaml": (
        {
            "name": "Moons",
            "input": 2,
            "layers": [{"units": 64, "activation": "relu", "repeat": 2}, {"units": 2}],
        },
        2 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2,
    ),
    "relu20.yaml": (
        {
            "name": "ReLU20",
            "input": 256,
            "bias": False,
            "layers": [{"units": 256, "activation": "relu", "repeat": 20}],
        },
        20 * 256 * 256,
    ),
    "tanh10.yaml": (
        {
            "name": "Tanh10",
            "input": 256,
            "bias": False,
            "layers": [{"units": 256, "activation": "tanh", "repeat": 10}],
        },
        10 * 256 * 256,
    ),
}


def _linear_shapes(spec: dict[str, Any]) -> list[tuple[int, int, bool]]:
    """(in_features, out_features, bias) of every Linear the spec describes, repeats unrolled."""
    shapes = []
    in_features = spec["input"]
    for layer in spec["layers"]:
        for _ in range(layer.get("repeat", 1)):
            bias = layer.get("bias", spec.get("bias", True))
            shapes.append((in_features, layer["units"], bias))
            in_features = layer["units"]
    return shapes


def _spec_count(spec: dict[str, Any]) -> int:
    return sum(i * o + (o if bias else 0) for i, o, bias in _linear_shapes(spec))


def test_every_yaml_file_is_covered() -> None:
    assert {p.name for p in SAMPLES.glob("*.y*ml")} == set(YAML_SPECS)


@pytest.mark.parametrize("filename", sorted(YAML_SPECS))
def test_yaml_spec(filename: str) -> None:
    expected, count = YAML_SPECS[filename]
    text = (SAMPLES / filename).read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    assert spec == expected
    assert set(spec) <= SPEC_KEYS
    for layer in spec["layers"]:
        assert set(layer) <= LAYER_KEYS
        assert layer.get("activation", "identity") in ACTIVATIONS
    assert _spec_count(spec) == count
    assert str(count) in text  # the header comment states the count


def test_mlp_yaml_matches_mlp_class() -> None:
    spec = yaml.safe_load((SAMPLES / "mlp.yaml").read_text(encoding="utf-8"))
    model = build(SAMPLES_BY_STEM["mlp"])
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    shapes = [(m.in_features, m.out_features, m.bias is not None) for m in linears]
    assert _linear_shapes(spec) == shapes
    assert _spec_count(spec) == numel(model.parameters()) == 51
