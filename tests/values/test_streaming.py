"""Models larger than memory: meta-device counts, arithmetic spec counts, streamed inspection."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from sample_targets import SAMPLES
from torch import nn
from typer.testing import CliRunner

from benchmarks.models.llama import Llama, llama_params
from benchmarks.models.transformer import Encoder405M, encoder_params
from initcli import memory, report
from initcli.cli import app
from initcli.errors import DeviceError, MemoryLimitError, TargetError
from initcli.measure.counting import count_model, count_spec
from initcli.model import building, resolve
from initcli.model.spec import MLPSpec, build_mlp
from initcli.render.progress import ProgressBar
from initcli.values import streaming

ODD = "tests/models_for_tests.py"
HUGE = "tests/models_for_huge.py"
SMALL_LLAMA = {"vocab": 100, "dim": 32, "layers": 2, "heads": 4, "hidden": 48}


# --- counting without memory ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "target", [*SAMPLES, f"{ODD}:lazy", f"{ODD}:shared", f"{ODD}:empty", f"{HUGE}:zoo"]
)
def test_meta_count_equals_real_count(target: str) -> None:
    result = report.count(target)
    assert result.method == ("spec" if target.endswith(".yaml") else "meta")
    assert result.remarks == ()
    assert result.counts == count_model(resolve.resolve(target).build())


def test_meta_build_allocates_nothing_and_patches_nothing() -> None:
    model = building.build_meta(resolve.resolve("sample_models.lenet:LeNet5"))
    assert {p.device.type for p in model.parameters()} == {"meta"}
    originals = dict(vars(nn.init))
    with building.on_meta():
        assert dict(vars(nn.init)) == originals
        real = torch.zeros(3, device="cpu")
        nn.init.ones_(real)  # real tensors are filled as usual inside
    assert real.tolist() == [1.0, 1.0, 1.0]


def test_constructor_that_needs_data_falls_back_with_a_note() -> None:
    result = report.count(f"{HUGE}:NeedsData")
    assert (result.method, result.counts.total) == ("real", 7 * 2 + 2)
    assert "built for real" in result.remarks[0] and "meta device" in result.remarks[0]
    pruned = report.count(f"{ODD}:pruned")
    assert pruned.method == "real" and "pruning mask of 0.weight_orig" in pruned.remarks[0]
    assert pruned.counts.torchinfo is not None and pruned.counts.torchinfo.total == 35


def test_fallback_note_goes_to_stderr_unless_quiet() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["count", f"{HUGE}:NeedsData", "-f", "json"])
    assert result.exit_code == 0
    assert result.stderr.startswith("Note: tests/models_for_huge.py:NeedsData was built for real")
    assert '"total": 16' in result.stdout
    quiet = runner.invoke(app, ["count", f"{HUGE}:NeedsData", "-f", "json", "--quiet"])
    assert (quiet.exit_code, quiet.stderr) == (0, "")


def test_llama_7b_shape_counts_by_arithmetic_on_meta() -> None:
    with building.on_meta():
        model = Llama()
    assert llama_params(32000, 4096, 32, 11008) == 6_738_415_616
    assert sum(p.numel() for p in model.parameters()) == 6_738_415_616
    start = time.perf_counter()
    result = report.count("benchmarks/models/llama.py:Llama")
    assert time.perf_counter() - start < 5
    c = result.counts
    assert (result.method, c.total, c.trainable, c.buffers) == ("meta", 6_738_415_616, c.total, 0)
    assert c.torchinfo is not None and c.torchinfo.total == 6_738_415_616 and c.agree
    assert (c.modules[0].formula, c.modules[-1].formula) == ("32000×4096", "4096×32000")
    assert len(c.modules) == 1 + 32 * 9 + 2


def test_405m_encoder_counts() -> None:
    assert encoder_params(50257, 1024, 24, 4096) == 405_285_969
    with building.on_meta():
        model = Encoder405M()
    assert sum(p.numel() for p in model.parameters()) == 405_285_969
    c = report.count("benchmarks/models/transformer.py:Encoder405M").counts
    assert (c.total, c.agree) == (405_285_969, True)


# --- specs by arithmetic -------------------------------------------------------------------------


_layers = st.lists(
    st.fixed_dictionaries(
        {"units": st.integers(1, 9)},
        optional={
            "bias": st.booleans(),
            "norm": st.sampled_from(["batchnorm", "layernorm"]),
            "activation": st.sampled_from(["relu", "tanh"]),
            "dropout": st.sampled_from([0.0, 0.5]),
            "repeat": st.integers(1, 3),
        },
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inputs=st.integers(1, 9), bias=st.booleans(), layers=_layers)
def test_spec_arithmetic_equals_counting_the_built_model(
    inputs: int, bias: bool, layers: list[dict[str, object]]
) -> None:
    spec = MLPSpec.model_validate({"input": inputs, "bias": bias, "layers": layers})
    model = build_mlp(spec)
    assert count_spec(spec, model) == count_model(model)


def test_huge_spec_is_counted_instantly_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("input: 1000000\nlayers:\n  - {units: 1000000, norm: batchnorm, repeat: 100}\n")
    start = time.perf_counter()
    result = report.count(str(path))
    elapsed = time.perf_counter() - start
    # 400 TB of float32: had anything been allocated, this would have failed, not been slow.
    per_layer = 10**12 + 10**6 + 2 * 10**6
    c = result.counts
    assert (result.method, c.total, c.buffers) == ("spec", 100 * per_layer, 100 * (2 * 10**6 + 1))
    assert c.torchinfo is not None and c.torchinfo.total == c.total and c.agree
    assert c.modules[0].formula == "1000000×1000000 + 1000000"
    assert elapsed < 3


def test_spec_too_deep_to_list_is_refused_by_arithmetic(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("input: 4\nlayers:\n  - {units: 4, repeat: 100000000}\n")
    start = time.perf_counter()
    for command in (report.count, report.inspect):
        with pytest.raises(TargetError, match="expands to 100,000,000 layers"):
            command(str(path))
    assert time.perf_counter() - start < 2


# --- streaming inspection ------------------------------------------------------------------------


def _rows(result: report.InspectReport) -> list[report.ParamReport]:
    return list(result.params)


@pytest.mark.parametrize("target", [*SAMPLES, f"{ODD}:lazy", f"{ODD}:shared", f"{HUGE}:zoo"])
@pytest.mark.parametrize(
    ("init", "bias_init"),
    [
        ("kaiming_normal", None),
        ("xavier_uniform:gain=relu", "normal:std=0.1"),
        ("orthogonal", "uniform"),
        ("trunc_normal:std=0.02", "constant:val=0.1"),
    ],
)
def test_streaming_equals_in_memory(target: str, init: str, bias_init: str | None) -> None:
    """Streaming consumes the random stream exactly like the in-memory path: equal values."""
    streamed = report.inspect(target, init, bias_init, seed=11)
    in_memory = report.inspect(target, init, bias_init, seed=11, stream=False)
    assert (streamed.method, in_memory.method) == ("stream", "real")
    assert _rows(streamed) == _rows(in_memory)  # min, max, mean, var: all exactly equal
    assert streamed.counts.counts == in_memory.counts.counts


@pytest.mark.parametrize("target", ["sample_models/mlp.yaml", "sample_models/relu20.yaml"])
def test_auto_streams_a_spec_and_equals_in_memory(target: str) -> None:
    """auto reads each weight's activation from the spec, so a spec needs no build to stream."""
    streamed = report.inspect(target, "auto", seed=3)
    in_memory = report.inspect(target, "auto", seed=3, stream=False)
    assert (streamed.method, in_memory.method) == ("stream", "real")
    assert _rows(streamed) == _rows(in_memory)
    assert streamed.params[0].init.startswith("kaiming_normal(relu) ← act1")


def test_auto_on_a_python_model_builds_it_to_trace_the_activations() -> None:
    result = report.inspect("sample_models.lenet:LeNet5", "auto")
    assert result.method == "real"
    assert result.params[0].init.startswith("kaiming_normal(relu)")


def test_save_builds_the_model_whole_with_the_streamed_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = report.inspect(
        "sample_models.lenet:LeNet5", "he", seed=5, save=tmp_path / "lenet.safetensors"
    )
    streamed = report.inspect("sample_models.lenet:LeNet5", "he", seed=5)
    assert (saved.method, streamed.method) == ("real", "stream")
    assert _rows(saved) == _rows(streamed)
    monkeypatch.setattr(memory, "available_bytes", lambda device: 300_000)
    with pytest.raises(MemoryLimitError, match="--save writes the whole state dict"):
        report.inspect("sample_models.lenet:LeNet5", "he", save=tmp_path / "big.safetensors")


def test_streaming_a_transposed_parameter_keeps_its_layout() -> None:
    streamed = report.inspect(f"{HUGE}:transposed", "kaiming_uniform", seed=2)
    assert _rows(streamed) == _rows(
        report.inspect(f"{HUGE}:transposed", "kaiming_uniform", seed=2, stream=False)
    )


@pytest.mark.parametrize(
    "target", [*SAMPLES, f"{ODD}:lazy", f"{ODD}:shared", f"{HUGE}:zoo", f"{HUGE}:full_transformer"]
)
def test_streamed_default_reproduces_a_real_build(target: str) -> None:
    """Each module's reset, children first, after the seed: what torch's constructors do."""
    streamed = report.inspect(target, seed=4, stream=True)
    real = report.inspect(target, seed=4, stream=False)
    assert (streamed.method, real.method) == ("stream", "real")
    assert _rows(streamed) == _rows(real)
    assert "streamed" in streamed.remarks[0]


def test_streamed_default_says_what_it_cannot_reproduce() -> None:
    streamed = report.inspect(f"{HUGE}:WithScale", seed=0, stream=True)
    real = report.inspect(f"{HUGE}:WithScale", seed=0, stream=False)
    scale = next(p for p in streamed.params if p.name == "scale")
    # No values rather than uninitialized memory; the module is named in the remark.
    assert (scale.mean, scale.status, scale.shape) == (None, "unknown", (4,))
    assert scale.init.startswith("not reproduced (WithScale")
    assert "(root) hold parameters but have no reset_parameters" in streamed.remarks[0]
    # torch.ones draws nothing, so the layers after it are still exact.
    assert [p for p in streamed.params if p.name != "scale"] == [
        p for p in real.params if p.name != "scale"
    ]
    # A constructor that rescales after its init: the recorded build is replayed instead
    # (tests/values/test_replay.py), so the values are the real build's, a clean uniform that is
    # not torch's: `custom` (docs/contract/statuses.md), never `ok`.
    scaled = report.inspect(f"{ODD}:ScaledLinear", stream=True)
    assert scaled.params[0].status == "custom"
    assert scaled.params == report.inspect(f"{ODD}:ScaledLinear", stream=False).params


def test_default_streams_only_when_memory_is_short(monkeypatch: pytest.MonkeyPatch) -> None:
    assert report.inspect("sample_models.lenet:LeNet5").method == "real"
    # LeNet5 needs 248 KB in all, 192 KB for fc1.weight, its largest tensor.
    monkeypatch.setattr(memory, "available_bytes", lambda device: 300_000)
    result = report.inspect("sample_models.lenet:LeNet5")
    assert result.method == "stream"
    assert "needs 248.0 KB, more than half the free memory" in result.remarks[0]
    with pytest.raises(MemoryLimitError, match="--bias-init default needs a real build"):
        report.inspect("sample_models.lenet:LeNet5", init="xavier", bias_init="default")
    monkeypatch.setattr(memory, "available_bytes", lambda device: 200_000)
    with pytest.raises(MemoryLimitError, match=r"62,006 parameters and its largest tensor, fc1"):
        report.inspect("sample_models.lenet:LeNet5", init="xavier")


def test_streaming_peak_is_one_block_the_size_of_the_largest_parameter() -> None:
    with building.on_meta():
        model = Llama(**SMALL_LLAMA)  # type: ignore[arg-type]
    largest = max(p.numel() * p.element_size() for p in model.parameters())
    assert streaming._contiguous_bytes(model.parameters()) == largest
    items = streaming.named(
        model, *report.resolve_schemes("kaiming_normal", None, None), 0, torch.device("cpu")
    )
    blocks = set()
    for item in items:
        assert item.tensor is not None and item.release is not None
        blocks.add(item.tensor.untyped_storage().data_ptr())
        item.release()
    assert len(blocks) == 1  # every parameter lives in the same block


# --- progress and device -------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def start(self, params: int, elements: int) -> None:
        self.calls.append(("start", str(params), str(elements)))

    def advance(self, name: str, elements: int) -> None:
        self.calls.append(("advance", name, str(elements)))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_progress_callback_sees_every_parameter_once() -> None:
    rec = Recorder()
    report.inspect("sample_models.tied_lm:TiedLM", "kaiming_normal", progress=rec)
    assert rec.calls[0] == ("start", "3", "68160")
    assert [c[1] for c in rec.calls[1:-1]] == ["embed.weight", "hidden.weight", "hidden.bias"]
    assert rec.calls[-1] == ("finish",)


def test_progress_is_silent_when_stderr_is_not_a_terminal() -> None:
    result = CliRunner().invoke(
        app,
        ["inspect", "benchmarks/models/llama.py:Llama", "--init", "he", "-f", "json"]
        + [arg for key, value in SMALL_LLAMA.items() for arg in ("--arg", f"{key}={value}")],
    )
    assert (result.exit_code, result.stderr) == (0, "")


def test_progress_bar_draws_on_a_terminal_after_its_delay() -> None:
    out = io.StringIO()
    bar = ProgressBar(Console(file=out, force_terminal=True, width=120), delay=0.0)
    bar.start(2, 3_000_000)
    bar.advance("blocks.0.weight", 1_000_000)
    time.sleep(0.15)
    bar.finish()
    text = out.getvalue()
    assert "1/2 params" in text and "1M/3M elements" in text
    quiet = io.StringIO()
    later = ProgressBar(Console(file=quiet, force_terminal=True), delay=60.0)
    later.start(1, 10)
    later.advance("w", 10)
    later.finish()
    assert "params" not in quiet.getvalue()


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="CUDA is available here; the test is of the error without it"
)
def test_cuda_unavailable_is_a_clean_error() -> None:
    result = CliRunner().invoke(app, ["inspect", "sample_models/mlp.yaml", "--device", "cuda"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --device cuda: CUDA is not available (")
    assert result.stderr.rstrip().endswith("use --device cpu")
    with pytest.raises(DeviceError, match="CUDA is not available"):
        building.resolve_device("cuda:1")


def test_device_cpu_and_bad_device_names() -> None:
    assert report.inspect("sample_models/mlp.yaml", "he", device="cpu").device == "cpu"
    result = CliRunner().invoke(app, ["inspect", "sample_models/mlp.yaml", "--device", "tpu"])
    assert result.exit_code == 2 and "Error: Invalid value for '--device'" in result.stderr
    with pytest.raises(DeviceError, match="meta"):
        building.resolve_device("meta")


def test_human_bytes() -> None:
    assert memory.human_bytes(204) == "204 B"
    assert memory.human_bytes(26_953_662_464) == "27.0 GB"
    assert math.isclose(memory.MEMORY_SHARE, 0.5)
