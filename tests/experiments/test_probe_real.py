"""probe on transformers models (small configs, tests/probe_real_models.py): inputs, outputs,
repeated blocks, the model's own loss, and errors that name what is missing."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import run
from torch import nn

from initcli import report
from initcli.experiments import batches, probe
from initcli.experiments.verdict import depth_exponent

MODELS = "tests/probe_real_models.py"
OWN_LM = "the model's own loss (labels = input_ids)"

# model → (blocks, what was measured as the output, the loss taken)
CASES = {
    "gpt2": (
        [f"transformer.h.{i}" for i in range(3)], "logits", OWN_LM),
    "bert": (
        [f"bert.encoder.layer.{i}" for i in range(3)], "logits",
        "the model's own loss (random class labels in [0, 3))"),
    "t5": (
        ["encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"], "logits",
        OWN_LM),
    "t5_bare": (
        ["encoder.block.0", "encoder.block.1", "decoder.block.0", "decoder.block.1"],
        "last_hidden_state", "mean(output²) of last_hidden_state"),
    "llama": (
        [f"model.layers.{i}" for i in range(3)], "logits", OWN_LM),
    "vit": (
        [f"vit.layers.{i}" for i in range(3)], "logits",
        "the model's own loss (random class labels in [0, 5))"),
    "whisper": (
        ["model.encoder.layers.0", "model.encoder.layers.1", "model.decoder.layers.0",
         "model.decoder.layers.1"], "logits", "mean(output²) of logits"),
    "resnet": (
        [f"resnet.encoder.stages.{i}" for i in range(3)], "logits",
        "the model's own loss (random class labels in [0, 4))"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_probe_runs_with_one_row_per_repeated_block(name: str) -> None:
    blocks, output, loss = CASES[name]
    r = report.probe_report(f"{MODELS}:{name}", ["default"], batch_size=2)
    for sp in r.schemes:
        res = sp.result
        assert [b.name for b in res.blocks] == blocks
        assert (res.output, res.loss_kind) == (output, loss)
        assert res.loss is not None and math.isfinite(res.loss)
        for b in res.blocks:
            assert b.std is not None and b.std > 0 and b.grad_norm is not None and b.grad_norm > 0
        # Three blocks or more in a stack; an encoder-decoder here has two per stack.
        assert (res.depth_exponent is None) == (name in {"t5", "t5_bare", "whisper"})


def test_input_is_built_from_the_model() -> None:
    gpt2 = report.probe_report(f"{MODELS}:gpt2", ["default"], batch_size=4, input_shape=(12,))
    assert gpt2.input_shape == (4, 12) and gpt2.input_kind == "token ids in [0, 64)"
    vit = report.probe_report(f"{MODELS}:vit", ["default"], batch_size=2)
    # ViTConfig(image_size=16, num_channels=3): the shape comes from the config.
    assert vit.input_shape == (2, 3, 16, 16) and "(config)" in vit.input_source
    resnet = report.probe_report(
        f"{MODELS}:resnet", ["default"], batch_size=2, input_shape=(3, 24, 24)
    )
    assert resnet.input_shape == (2, 3, 24, 24)


def test_gpt2_block_rows_match_plain_pytorch() -> None:
    """Each block's output std and its parameters' gradient norm after backward of the model's own
    LM loss, against the same model built, fed and differentiated by hand (rel. 1e-9)."""
    r = report.probe_report(f"{MODELS}:gpt2", ["default"], seed=3, batch_size=4)
    torch.manual_seed(3)  # the seeding contract: seed, then build
    import probe_real_models

    model = probe_real_models.gpt2()
    model.train()
    ids = batches.make_batch(batches.InputSpec((16,), 64, ""), 4, 3)
    outs: dict[int, torch.Tensor] = {}
    for i, block in enumerate(model.transformer.h):
        block.register_forward_hook(
            lambda _m, _a, o, i=i: outs.setdefault(i, o[0] if isinstance(o, tuple) else o)
        )
    with probe.one_thread():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    assert r.schemes[0].result.loss == pytest.approx(float(loss.detach()), rel=1e-9)
    for i, row in enumerate(r.schemes[0].result.blocks):
        assert row.std == pytest.approx(float(outs[i].detach().double().std()), rel=1e-9)
        grads = [p.grad.double().pow(2).sum() for p in model.transformer.h[i].parameters()]
        assert row.grad_norm == pytest.approx(math.sqrt(float(sum(grads))), rel=1e-9)


def test_input_factory_gives_the_batch_and_its_labels() -> None:
    r = report.probe_report(
        f"{MODELS}:gpt2", ["default"], batch_size=5, input_fn=f"{MODELS}:make_batch"
    )
    assert r.input_shape == (5, 8) and r.input_kind == "int64"
    assert r.schemes[0].result.loss_kind == "the model's own loss (labels from --input)"
    bare = report.probe_report(
        f"{MODELS}:gpt2", ["default"], batch_size=3, input_fn=f"{MODELS}:ids_only"
    )
    assert bare.schemes[0].result.loss_kind == "mean(output²) of logits"


MAKE_BATCH = "--input file.py:make_batch"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([f"{MODELS}:Pairs"], ["missing 1 required positional argument", MAKE_BATCH]),
        ([f"{MODELS}:DictOut", "--input-shape", "4"], ["without a float tensor", MAKE_BATCH]),
        ([f"{MODELS}:gpt2", "--input", f"{MODELS}:not_a_batch"], ["returned a str", "keyword"]),
        ([f"{MODELS}:gpt2", "--input", f"{MODELS}:nothing"], ["has no attribute 'nothing'"]),
        ([f"{MODELS}:gpt2", "--input-shape", "3,4"], ["--input-shape is the sequence length"]),
    ],
)  # fmt: skip
def test_models_it_cannot_drive_say_what_is_missing(args: list[str], words: list[str]) -> None:
    code, out, err = run("probe", *args, "--init", "default", "-b", "2")
    assert code == 2 and out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith("Error: ") and all(w in line for w in words), line


def test_repeated_blocks_are_the_outermost_repeated_level() -> None:
    def block() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 4), nn.ReLU())

    # torchvision's ResNet: sibling Sequentials of residual blocks, each block made of layers.
    net = nn.Sequential(
        nn.Linear(4, 4), nn.Sequential(block(), block()), nn.Sequential(block(), block())
    )
    assert probe.repeated_blocks(net) == ("1.0", "1.1", "2.0", "2.1")
    nested = nn.ModuleList([nn.Sequential(block(), block()) for _ in range(3)])
    assert probe.repeated_blocks(nested) == ("0", "1", "2")
    # A plain stack of layers has none: its blocks stay "weighted layer → activation".
    assert probe.repeated_blocks(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))) == ()


def test_depth_exponent_is_the_log_log_slope() -> None:
    assert depth_exponent([math.sqrt(n) for n in range(1, 9)]) == pytest.approx(0.5, abs=1e-12)
    assert depth_exponent([3.0, 3.0, 3.0]) == pytest.approx(0.0, abs=1e-12)
    assert depth_exponent([1.0, 2.0]) is None  # two points fit any power law
    assert depth_exponent([1.0, None, 2.0]) is None
    assert depth_exponent([1.0, 0.0, 2.0]) is None


# --- the GPT-2 residual case (sample_models/gpt2_residual.py, docs/probe-real-models.md) ----------

GPT2_RESIDUAL = "sample_models/gpt2_residual.py:gpt2"
UNSCALED = "*.c_proj.weight=normal:std=0.02"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gpt2_residual_stream_grows_faster_without_the_c_proj_scaling(seed: int) -> None:
    """12 blocks, width 64 (128 in the docs: the effect is the same, the test 4× cheaper)."""
    r = report.probe_report(
        GPT2_RESIDUAL, ["default", UNSCALED], seed=seed, args={"n_embd": 64}, batch_size=32
    )
    scaled, unscaled = (sp.result for sp in r.schemes)
    assert len(scaled.blocks) == len(unscaled.blocks) == 12
    assert scaled.depth_exponent is not None and unscaled.depth_exponent is not None
    # Measured at width 64, seeds 0-2: k ≈ 0.08 with GPT-2's 0.02/√(2·12), ≈ 0.44 without.
    assert scaled.depth_exponent < 0.2
    assert unscaled.depth_exponent > 0.35
    assert unscaled.depth_exponent - scaled.depth_exponent > 0.25
    # Block by block, the unscaled stream is the larger one.
    assert all(
        (u.std or 0) > (s.std or 0) for s, u in zip(scaled.blocks, unscaled.blocks, strict=True)
    )


def test_an_encoder_and_a_decoder_are_two_depths() -> None:
    """Whisper's encoder stream (std ~0.5 from N(0, 1) features) and its decoder's (~0.03 from
    token embeddings) are not one depth: the verdict compares each stack's first and last block,
    so the decoder's 0.03 is not read as the encoder's signal vanishing."""
    r = report.probe_report(f"{MODELS}:whisper", ["default"], batch_size=2)
    res = r.schemes[0].result
    dec = [b.std for b in res.blocks[2:]]
    assert res.verdict.value == "stable"
    assert res.reason.startswith("model.decoder.layers: last/first std")
    assert dec[0] is not None and dec[1] is not None
    assert res.std_ratio == pytest.approx(dec[1] / dec[0], rel=1e-12)
    assert res.depth_exponent is None  # two blocks per stack
