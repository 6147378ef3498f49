"""`count FILE.safetensors` from the header alone: the full reader's report, in linear time."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from conftest import run
from safetensors.torch import save_file
from torch import nn

from benchmarks.bench_checkpoints import tiny_entries, write_header_file
from initcli import limits
from initcli.errors import CheckpointError
from initcli.report import weights
from initcli.weights import checkpoint


def _full(path: Path) -> object:
    """What count reported before the header path: every tensor through `load`."""
    ckpt = checkpoint.open_weights(path)
    return weights._checkpoint_counts(ckpt, weights._layout(ckpt))


class _Zoo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.tok_emb = nn.Embedding(11, 4)
        self.layers = nn.ModuleList(nn.Linear(4, 4, bias=i % 2 == 0) for i in range(12))
        self.conv = nn.Conv2d(3, 5, 3)
        self.bn = nn.BatchNorm2d(5)
        self.norm = nn.LayerNorm(4)
        self.lstm = nn.LSTM(4, 3, num_layers=2, bidirectional=True)
        self.gru = nn.GRU(4, 3)
        self.attn = nn.MultiheadAttention(4, 2)
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.head_mask = nn.Parameter(torch.ones(3), requires_grad=False)
        self.register_buffer("steps", torch.zeros(2, dtype=torch.int64))


def _zoo_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in _Zoo().state_dict().items()}
    state["extra.bf16.weight"] = torch.zeros(6, 2, dtype=torch.bfloat16)
    state["extra.f8.weight"] = torch.zeros(2, 2, dtype=torch.float8_e4m3fn)
    state["extra.01x"] = torch.zeros(3)  # a leading zero, in a group of its own
    return state


def test_header_count_equals_full_reader_on_many_module_types(tmp_path: Path) -> None:
    path = tmp_path / "zoo.safetensors"
    save_file(_zoo_state(), path, metadata={"initcli.target": "x.py:M", "initcli.seed": "3"})
    full = _full(path)
    assert weights._header_counts(path) == full
    assert {m.type for m in full.modules} == {
        "-",
        "BatchNorm?",
        "Conv2d?",
        "Embedding?",
        "GRU?",
        "LSTM?",
        "LayerNorm?",
        "Linear?",
        "MultiheadAttention?",
    }
    # layers.2 after layers.1, layers.10 after layers.9: natural order, as `load` gives.
    names = [m.name for m in full.modules]
    assert names.index("layers.9") + 1 == names.index("layers.10")
    assert any(n.startswith("written by initcli inspect --save: x.py:M") for n in full.notes)


def test_header_count_reads_whitespace_and_metadata_anywhere(tmp_path: Path) -> None:
    path = tmp_path / "spaced.safetensors"
    header = {
        "b.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]},
        "a.bias": {"dtype": "F32", "shape": [3], "data_offsets": [24, 36]},
        "a.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [36, 60]},
        "__metadata__": {"initcli.target": "m.py:N", "initcli.scheme": "he"},
    }
    raw = json.dumps(header, indent=1).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(60))
    assert weights._header_counts(path) == _full(path)
    assert [(m.name, m.type, m.formula) for m in _full(path).modules] == [
        ("a", "Linear?", "2×3 + 3"),
        ("b", "Linear?", "2×3"),
    ]


@pytest.mark.parametrize(
    "names",
    [
        ["layers.01.w", "layers.1.w"],  # equal in natural order: `load` keeps file order
        ["слой.0.weight", "слой.1.weight"],  # not ASCII: \d covers other scripts' digits
    ],
)
def test_names_the_header_path_leaves_to_load(tmp_path: Path, names: list[str]) -> None:
    path = tmp_path / "odd.safetensors"
    write_header_file(path, [(n, (2,)) for n in names])
    with pytest.raises(CheckpointError):
        checkpoint.header_layout(path)
    report = weights.count_file(path)
    assert report.counts == _full(path)
    assert report.counts.total == 4


def test_a_name_given_twice_is_read_as_json_loads_reads_it(tmp_path: Path) -> None:
    path = tmp_path / "twice.safetensors"
    entry = '"a.w":{"dtype":"F32","shape":[%d],"data_offsets":[0,%d]}'
    raw = ("{" + entry % (1, 4) + "," + entry % (2, 8) + "}").encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    with pytest.raises(CheckpointError, match="twice"):
        checkpoint.header_layout(path)
    assert weights.count_file(path).counts.total == 2  # the last entry, as json.loads keeps


def test_a_bad_header_gets_the_full_readers_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    raw = b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32"'
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + bytes(8))
    code, out, err = run("count", str(path))
    assert code == 2 and out == ""
    assert err.startswith(
        f"Error: {path} is not a readable safetensors file: its header is not JSON"
    )
    assert "Traceback" not in err


def test_flat_key_sorts_as_natural_order() -> None:
    rng = random.Random(0)
    alphabet = "ab._0123456789"
    for _ in range(20_000):
        a, b = ("".join(rng.choices(alphabet, k=rng.randint(0, 8))) for _ in range(2))
        natural = checkpoint._natural(a), checkpoint._natural(b)
        flat = checkpoint._flat_key(a), checkpoint._flat_key(b)
        assert (natural[0] < natural[1]) == (flat[0] < flat[1]), (a, b)
        assert (natural[0] == natural[1]) == (flat[0] == flat[1]), (a, b)


def test_hand_count_of_a_module_with_many_tensors_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "root.safetensors"
    write_header_file(path, tiny_entries(limits.MAX_FORMULA_TERMS + 1, "root"))
    (module,) = weights.count_file(path).counts.modules
    assert module.formula == "2 + 2 + 2 + 2 + 2 + 2 + 2 + 2 + 2 + 2 + … 91 more tensors"
    assert module.params == 2 * (limits.MAX_FORMULA_TERMS + 1)


def test_count_of_100k_tiny_tensors_is_exact_and_says_what_was_not_guessed(
    tmp_path: Path,
) -> None:
    # 10⁵ one-tensor modules with 15,000 distinct layouts (leaf names p0..p14999), plus a Linear
    # that sorts first: types are guessed for the first 10,000 layouts in module order.
    path = tmp_path / "tiny.safetensors"
    head = [("a_head.weight", (3, 2)), ("a_head.bias", (3,))]
    entries = [*tiny_entries(100_000, "distinct"), *head]
    assert write_header_file(path, entries) == 200_009
    code, out, err = run("count", str(path), "-f", "json", "--expect", "200,009")
    assert code == 0, err
    data = json.loads(out)
    assert (data["total"], data["trainable"], data["frozen"], data["buffers"]) == (
        200_009,
        200_009,
        0,
        0,
    )
    assert len(data["modules"]) == 100_001
    assert data["modules"][:2] == [
        {"name": "a_head", "type": "Linear?", "params": 9, "formula": "2×3 + 3"},
        {"name": "blocks.0", "type": "-", "params": 2, "formula": "2"},
    ]
    assert data["modules"][-1]["name"] == "blocks.99999"
    # blocks.i has layout i mod 15,000; with a_head's, the first 10,000 layouts are a_head's and
    # p0..p9998: unguessed are the blocks whose layout is p9999..p14999, 5,001 of every 15,000.
    unguessed = sum(1 for i in range(100_000) if i % 15_000 >= 9_999)
    assert unguessed == 30_007
    assert data["notes"][-1] == (
        f"module types are guessed for {limits.MAX_GUESSED_LAYOUTS:,} distinct layouts (tensor "
        f"names and shapes) only: the {unguessed:,} modules of other layouts show type -; their "
        "counts, read from the header, are exact."
    )


def test_count_of_3000_tiny_tensors_says_how_many_modules_are_not_shown(tmp_path: Path) -> None:
    # The fast smoke of the million-tensor test below: past the table's 1,000 rows, one line.
    path = tmp_path / "three_thousand.safetensors"
    assert write_header_file(path, tiny_entries(3_000, "modules")) == 6_000
    code, out, err = run("count", str(path), "--expect", "6,000")
    assert code == 0, err
    assert "total  6,000" in out
    assert "layers.* ×3000" in out  # alike blocks: one row (docs/deep-models.md)
    code, out, err = run("count", str(path), "--all")
    assert code == 0, err
    assert (
        "… and 2,000 more modules not shown: the table lists the first 1,000; -f json or -f csv "
        "lists them all"
    ) in " ".join(out.split())
    code, out, err = run("count", str(path), "-f", "json")
    assert code == 0, err
    assert len(json.loads(out)["modules"]) == 3_000


@pytest.mark.slow
def test_count_of_a_million_tiny_tensors(tmp_path: Path) -> None:
    path = tmp_path / "million.safetensors"
    assert write_header_file(path, tiny_entries(1_000_000, "modules")) == 2_000_000
    code, out, err = run("count", str(path), "--expect", "2,000,000", "--all")
    assert code == 0, err
    assert "total  2,000,000" in out
    assert "… and 999,000 more modules not shown" in out
    found = checkpoint.header_layout(path)
    assert (found.params, len(found.modules), found.unguessed) == (2_000_000, 1_000_000, 0)
    assert found.modules[10].name == "layers.10"
    assert {m.type for m in found.modules} == {"LayerNorm?"}
