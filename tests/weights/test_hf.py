"""HF model folders and shard indexes as hostile data: no folder code runs, configs are bounded."""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import transformers
from conftest import ROOT, run
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from initcli.cli import app

INITCLI = Path(sys.executable).parent / "initcli"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GPT-2 folder as save_pretrained writes it (bos/eos inside the vocabulary)."""
    folder = tmp_path_factory.mktemp("gpt2")
    cfg = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=32,
        bos_token_id=0, eos_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers.GPT2LMHeadModel(cfg).save_pretrained(folder)
    return folder


def _copy(saved: Path, to: Path, **config: object) -> Path:
    folder = to / "model"
    shutil.copytree(saved, folder)
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **config}))
    return folder


def _fails(target: Path, *expected: str, commands: tuple[str, ...] = ("count",)) -> str:
    for command in commands:
        code, out, err = run(command, str(target))
        assert code == 2, (command, out, err)
        assert out == ""
        assert err.startswith("Error: ") and err.count("\n") == 1, err
        for text in expected:
            assert text in err, err
    return err


# --- 1. A folder's own code never runs --------------------------------------------------------


def _remote(saved: Path, to: Path) -> tuple[Path, Path]:
    """A folder whose config.json names its own code (auto_map) for a model_type transformers has
    a config for but no AutoModel: transformers would ask on stdin whether to run evil.py."""
    marker = to / "MARKER"
    folder = _copy(saved, to)
    config = {
        "model_type": "blip_text_model",
        "architectures": ["EvilModel"],
        "auto_map": {"AutoModel": "evil.EvilModel"},
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "import torch\n"
        "class EvilModel(torch.nn.Module):\n"
        "    def __init__(self, config):\n"
        "        super().__init__()\n"
    )
    return folder, marker


def _one_code_error(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "never runs code" in err and "initcli inspect build.py:build" in err, err
    assert "[y/N]" not in err


def test_a_folder_that_needs_its_own_code_is_refused_with_y_on_stdin(
    saved: Path, tmp_path: Path
) -> None:
    folder, marker = _remote(saved, tmp_path)
    done = subprocess.run(
        [str(INITCLI), "count", str(folder)],
        input="y\ny\ny\n", capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    _one_code_error(done.stderr)
    # The same in-process, where `y` is sys.stdin (CliRunner's input).
    result = CliRunner().invoke(app, ["inspect", str(folder)], input="y\ny\n")
    assert result.exit_code == 2 and result.stdout == "", result.stderr
    _one_code_error(result.stderr)
    assert not marker.exists()


def test_a_folder_that_needs_its_own_code_is_refused_on_a_terminal(
    saved: Path, tmp_path: Path
) -> None:
    folder, marker = _remote(saved, tmp_path)
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the pseudo-terminal
        os.chdir(ROOT)
        os.execv(str(INITCLI), [str(INITCLI), "count", str(folder)])
    seen = b""
    deadline = time.monotonic() + 300
    os.write(fd, b"y\n")
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
        if b"[y/N]" in seen:
            os.write(fd, b"y\n")  # what a user who pressed y would answer
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = seen.decode(errors="replace").replace("\r\n", "\n").replace("y\n", "", 1)
    assert os.waitstatus_to_exitcode(status) == 2, text
    _one_code_error(text)
    assert not marker.exists()


def test_a_native_model_whose_config_also_names_code_is_built_without_it(
    saved: Path, tmp_path: Path
) -> None:
    # Hub repos keep auto_map after transformers adds the model: transformers' own class is used.
    folder = _copy(saved, tmp_path, auto_map={"AutoModelForCausalLM": "evil.EvilModel"})
    (folder / "evil.py").write_text(f"open({str(tmp_path / 'MARKER')!r}, 'w')\n")
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    assert any("GPT2LMHeadModel, built on the meta device" in n for n in json.loads(out)["notes"])
    assert not (tmp_path / "MARKER").exists()


def test_an_unknown_model_type_with_its_own_code_is_refused(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path, model_type="evil_model", auto_map={"AutoConfig": "evil.C"})
    _fails(folder, "never runs code", commands=("count", "inspect"))


def test_sub_configs_lose_their_auto_map_before_the_build() -> None:
    # transformers asks on stdin only where a config (or a sub-config a composite model hands to
    # AutoModel) has an auto_map: after the drop, no config in the tree has one.
    from initcli.weights import hf

    code = {"AutoModel": "evil.EvilModel"}
    config = transformers.LlavaConfig(
        text_config={"model_type": "llama", "auto_map": code}, auto_map=code
    )
    assert hasattr(config, "auto_map") and hasattr(config.text_config, "auto_map")
    hf._drop_auto_maps(config)
    assert not hasattr(config, "auto_map") and not hasattr(config.text_config, "auto_map")


def test_architectures_naming_a_function_is_never_called(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path, architectures=["pipeline"])
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    assert any("GPT2Model, built on the meta device" in n for n in json.loads(out)["notes"])


# --- 2. Memory and time are bounded by what the weights hold ----------------------------------


@pytest.mark.parametrize("layers", [10_000, 1_000_000])
def test_a_config_with_far_more_layers_than_stored_is_not_built(
    saved: Path, tmp_path: Path, layers: int
) -> None:
    folder = _copy(saved, tmp_path, n_layer=layers)
    start = time.perf_counter()
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    assert time.perf_counter() - start < 30
    notes = json.loads(out)["notes"]
    assert any(f"n_layer = {layers:,}" in n and "was not built" in n for n in notes), notes
    assert json.loads(out)["total"] == sum(t.numel() for t in _stored(saved).values())


def test_a_build_that_registers_past_its_limit_is_stopped(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from initcli.weights import hf

    monkeypatch.setattr(hf, "build_limit", lambda stored: 20)
    code, out, err = run("count", str(_copy(saved, tmp_path)), "--format", "json")
    assert code == 0, err
    assert any("its build was stopped" in n for n in json.loads(out)["notes"])


def test_the_registration_guard_is_removed_after_the_build() -> None:
    from torch.nn.modules import module as torch_module

    from initcli.weights import hf

    before = len(torch_module._global_parameter_registration_hooks)
    with hf._bounded(5) as over, pytest.raises(hf._TooLargeError):
        torch.nn.Sequential(*[torch.nn.Linear(2, 2, device="meta") for _ in range(10)])
    assert over == [True]
    assert len(torch_module._global_parameter_registration_hooks) == before


def test_config_json_over_its_cap_is_refused(saved: Path, tmp_path: Path) -> None:
    from initcli.weights.hf import MAX_CONFIG_BYTES

    folder = _copy(saved, tmp_path)
    (folder / "config.json").write_text(json.dumps({"pad": "x" * MAX_CONFIG_BYTES}))
    _fails(folder, "config.json", f"over the {MAX_CONFIG_BYTES:,}-byte cap")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a":' * 100 + "1" + "}" * 100, "nests deeper than 64 levels"),
        ("[1, 2]", "its JSON is not an object"),
        ("{not json", "is not a readable model config"),
    ],
    ids=["deep-list", "deep-object", "list", "broken"],
)
def test_a_config_json_that_is_not_a_config(
    saved: Path, tmp_path: Path, text: str, expected: str
) -> None:
    folder = _copy(saved, tmp_path)
    (folder / "config.json").write_text(text)
    _fails(folder, "config.json", expected)


# --- 3. Stored tensors must fit the config ------------------------------------------------------


def _stored(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def test_stored_tensors_narrower_than_the_config_are_an_error(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path, n_embd=64)
    code, out, err = run("inspect", str(folder), "--against", "default")
    assert code == 2 and out == "", err
    assert "does not fit the stored tensors" in err
    assert "transformer.h.0.attn.c_attn.bias is [96] in the file, [192] in the model" in err


def test_transposed_matrices_are_an_error(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    tensors = {k: v.t().contiguous() if v.dim() == 2 else v for k, v in _stored(folder).items()}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    err = _fails(folder, "does not fit", "[96, 32] in the file, [32, 96] in the model")
    assert "and 4 more" in err  # c_attn, c_fc, c_proj of 2 blocks, wte; square ones fit


def test_bf16_weights_of_a_float32_config_fit(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path)
    tensors = {k: v.to(torch.bfloat16) for k, v in _stored(folder).items()}
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    code, _, err = run("inspect", str(folder), "--against", "default")
    assert code == 0, err


def test_integer_weights_where_the_model_has_floats_are_an_error(
    saved: Path, tmp_path: Path
) -> None:
    folder = _copy(saved, tmp_path)
    tensors = _stored(folder)
    tensors["transformer.wte.weight"] = tensors["transformer.wte.weight"].to(torch.int8)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    _fails(folder, "transformer.wte.weight is int8 [100, 32] in the file, float32 [100, 32]")


def test_a_quantized_folder_falls_back_to_its_stored_layout(saved: Path, tmp_path: Path) -> None:
    folder = _copy(saved, tmp_path, quantization_config={"quant_method": "bitsandbytes"})
    tensors = _stored(folder)
    tensors["transformer.wte.weight"] = tensors["transformer.wte.weight"].to(torch.int8)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    code, out, err = run("count", str(folder), "--format", "json")
    assert code == 0, err
    assert any("before quantization" in n for n in json.loads(out)["notes"])


# --- 4. Index files ----------------------------------------------------------------------------


def _indexed(tmp_path: Path) -> tuple[Path, dict[str, object]]:
    save_file({"a.weight": torch.ones(3, 4)}, tmp_path / "model-00001-of-00002.safetensors")
    save_file({"b.weight": torch.zeros(5, 2)}, tmp_path / "model-00002-of-00002.safetensors")
    index = {
        "metadata": {"total_size": (12 + 10) * 4},
        "weight_map": {
            "a.weight": "model-00001-of-00002.safetensors",
            "b.weight": "model-00002-of-00002.safetensors",
        },
    }
    return tmp_path / "model.safetensors.index.json", index


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"metadata": ["total_size", 88]}, "its metadata is a list"),
        ({"metadata": "x"}, "its metadata is a string"),
        ({"metadata": {"total_size": "88"}}, "metadata.total_size is a string"),
        ({"metadata": {"total_size": True}}, "metadata.total_size is true/false"),
        ({"weight_map": ["a.weight"]}, "has no weight_map"),
        ({"weight_map": {"a.weight": {"file": "x"}}}, "has no weight_map"),
    ],
    ids=["metadata-list", "metadata-str", "size-str", "size-bool", "map-list", "map-nested"],
)
def test_an_index_of_the_wrong_structure(
    tmp_path: Path, change: dict[str, object], expected: str
) -> None:
    path, index = _indexed(tmp_path)
    path.write_text(json.dumps({**index, **change}))
    _fails(tmp_path, str(path), expected, commands=("count", "inspect"))


def test_an_index_that_is_not_an_object(tmp_path: Path) -> None:
    path, _ = _indexed(tmp_path)
    path.write_text("[]")
    _fails(tmp_path, str(path), "its JSON is not an object")


def test_a_weight_map_nested_100k_deep(tmp_path: Path) -> None:
    path, _ = _indexed(tmp_path)
    path.write_text('{"weight_map": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001)
    _fails(tmp_path, str(path), "nested too deeply")


def test_an_index_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    path, _ = _indexed(tmp_path)
    os.mkfifo(path)
    start = time.perf_counter()
    _fails(tmp_path, str(path), "is a FIFO (named pipe), not a regular file")
    assert time.perf_counter() - start < 10


def test_an_index_over_its_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from initcli.weights import safetensors_files

    monkeypatch.setattr(safetensors_files, "MAX_INDEX_BYTES", 100)
    path, index = _indexed(tmp_path)
    path.write_text(json.dumps(index) + " " * 100)
    _fails(tmp_path, str(path), "over the 100-byte cap on a safetensors index")


@pytest.mark.parametrize(
    "name",
    ["../model-00001-of-00002.safetensors", "/etc/passwd", "sub/x.safetensors", "..", "", "."],
)
def test_a_weight_map_naming_a_file_outside_the_folder(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    path, index = _indexed(folder)
    (folder / "sub").mkdir()
    save_file({"a.weight": torch.ones(3, 4)}, folder / "sub" / "x.safetensors")
    index["weight_map"] = {"a.weight": name}
    path.write_text(json.dumps(index))
    _fails(folder, "names shard", "which is not in")


def test_a_shard_linked_outside_the_folder_is_refused_without_its_facts(tmp_path: Path) -> None:
    outside = tmp_path / "secret.bin"
    outside.write_bytes(b"\x00" * 12345)
    folder = tmp_path / "model"
    folder.mkdir()
    path, index = _indexed(folder)
    (folder / "model-00002-of-00002.safetensors").unlink()
    (folder / "model-00002-of-00002.safetensors").symlink_to(outside)
    path.write_text(json.dumps(index))
    err = _fails(folder, "links to a file outside", commands=("count", "inspect"))
    assert "12,345" not in err and "12345" not in err and "secret" not in err
    path.unlink()  # the folder scan, without an index, is held to the same rule
    _fails(folder, "links to a file outside")


def test_a_hub_cache_snapshot_linking_its_blobs_reads(saved: Path, tmp_path: Path) -> None:
    repo = tmp_path / "models--x--gpt2"
    snapshot = repo / "snapshots" / "abc123"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in saved.iterdir():
        shutil.copy(file, repo / "blobs" / f"blob-{file.name}")
        (snapshot / file.name).symlink_to(Path("../../blobs") / f"blob-{file.name}")
    code, out, err = run("count", str(snapshot), "--format", "json")
    assert code == 0, err
    assert any("GPT2LMHeadModel" in n for n in json.loads(out)["notes"])


# --- 5. Library messages are Notes --------------------------------------------------------------


@pytest.mark.usefixtures("library_says_again")
def test_transformers_messages_are_one_note_each_and_quiet_hides_them(
    saved: Path, tmp_path: Path
) -> None:
    # bos_token_id outside the vocabulary: transformers logs "Model config: bos_token_id must be".
    # A value no other test uses, as transformers logs each message once per process.
    folder = _copy(saved, tmp_path, bos_token_id=4321)
    code, _, err = run("inspect", str(folder), "--against", "default")
    assert code == 0, err
    mentions = [line for line in err.splitlines() if "bos_token_id" in line]
    assert len(mentions) == 1, err
    assert mentions[0].startswith("Note: transformers: Model config: bos_token_id")
    assert "got 4321" in mentions[0]
    done = subprocess.run(
        [str(INITCLI), "count", str(folder), "-q"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
