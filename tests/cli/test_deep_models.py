"""Deep models at a glance: grouped rows in inspect, weights files and count; --all; the figures."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from pathlib import Path

import pytest
from conftest import run

from initcli.render import OutputFormat, View
from initcli.render.inspection import inspect_view
from initcli.render.weights import checkpoint_view
from initcli.render.writer import file_console, write
from initcli.report import CheckpointReport, InspectReport, inspect, inspect_checkpoint

GPT2 = "tests/deep_models.py:gpt2_24"
GPT2_ODD = "tests/deep_models.py:gpt2_odd"
LLAMA = "tests/deep_models.py:llama_80"
MAX_ROWS = 30  # issue 20's figure for a 24-block GPT-2 and an 80-block Llama
ODD = "transformer.h.7.mlp.c_fc.weight"  # tests/deep_models.py:ODD_BLOCK
ALL_PARAMS = 2 + 24 * 12 + 2  # wte, wpe, 12 per block, ln_f


@pytest.fixture(autouse=True)
def _wide(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names on one line each, so a row is a line that starts with its name.
    monkeypatch.setenv("COLUMNS", "240")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture(scope="module")
def gpt2() -> InspectReport:
    return inspect(GPT2)


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import deep_models

    folder = tmp_path_factory.mktemp("gpt2_odd")
    deep_models.gpt2_odd().save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def odd_weights(odd_folder: Path) -> CheckpointReport:
    return inspect_checkpoint(odd_folder)


def render(view: View, fmt: OutputFormat = OutputFormat.table) -> str:
    buffer = io.StringIO()
    console = file_console(buffer)
    console.width = 240
    write(view, fmt, console)
    return buffer.getvalue()


def table_rows(out: str) -> list[str]:
    """The names in a rich table's rows: the first cell of each row's first line (with ×N)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"}) + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    rows = []
    for line in lines[start:end]:
        if re.match(r"^ {1,2}\S", line):  # a continuation line starts further right
            name, _, rest = line.strip().partition(" ")
            times = re.match(r"×\d+", rest)
            rows.append(name + (f" {times.group()}" if times else ""))
    return rows


def markdown_rows(out: str) -> list[str]:
    return [
        line.split(" | ")[0].removeprefix("| ") for line in out.splitlines()[2:] if line[:1] == "|"
    ]


def ok(*args: str) -> str:
    code, out, err = run(*args)
    assert code == 0, err
    return out


def test_a_24_block_gpt2_fits_in_30_rows_and_json_csv_keep_every_one(
    gpt2: InspectReport,
) -> None:
    rows = table_rows(render(inspect_view(gpt2)))
    assert len(rows) <= MAX_ROWS
    assert "transformer.h.*.attn.c_proj.weight ×24" in rows
    assert markdown_rows(render(inspect_view(gpt2), OutputFormat.markdown)) == rows
    data = json.loads(render(inspect_view(gpt2), OutputFormat.json))
    assert len(data["params"]) == ALL_PARAMS
    by_pattern = {g["pattern"]: g for g in data["groups"]}
    proj = by_pattern["transformer.h.*.attn.c_proj.weight"]
    assert proj["count"] == 24 and proj["apart"] == []
    assert proj["names"] == [f"transformer.h.{i}.attn.c_proj.weight" for i in range(24)]
    stds = [p["std"] for p in data["params"] if p["name"] in proj["names"]]
    assert proj["std"] == [min(stds), max(stds)]
    assert proj["status"] == "custom" and proj["looks_like"] == "normal(std=0.02/√(2·24))"
    table = list(csv.DictReader(io.StringIO(render(inspect_view(gpt2), OutputFormat.csv))))
    assert len(table) == ALL_PARAMS
    assert {r["group"] for r in table if r["name"] in proj["names"]} == {proj["pattern"]}
    assert table[0]["group"] == ""  # transformer.wte.weight: a row of its own


def test_all_and_expand_print_every_row(gpt2: InspectReport) -> None:
    rows = table_rows(render(inspect_view(gpt2, expand=True)))
    assert len(rows) == ALL_PARAMS and rows[2] == "transformer.h.0.ln_1.weight"
    assert len(markdown_rows(render(inspect_view(gpt2, True), OutputFormat.markdown))) == ALL_PARAMS
    for flag in ("--all", "--expand"):
        assert len(table_rows(ok("inspect", GPT2, "-q", flag))) == ALL_PARAMS


def test_an_80_block_llama_fits_in_30_rows() -> None:
    rows = table_rows(ok("inspect", LLAMA, "-q"))
    assert len(rows) <= MAX_ROWS
    assert "model.layers.*.mlp.down_proj.weight ×80" in rows


def test_one_block_at_3x_its_peers_scale_gets_a_row_of_its_own() -> None:
    rows = table_rows(ok("inspect", GPT2_ODD, "-q"))
    at = rows.index("transformer.h.*.mlp.c_fc.weight ×23")
    assert rows[at + 1] == ODD  # right after its peers' row
    data = json.loads(ok("inspect", GPT2_ODD, "-q", "-f", "json"))
    group = next(g for g in data["groups"] if g["pattern"] == "transformer.h.*.mlp.c_fc.weight")
    assert group["apart"] == [ODD] and ODD not in group["names"]


def test_count_groups_the_module_table() -> None:
    rows = table_rows(ok("count", GPT2))
    assert len(rows) <= MAX_ROWS
    assert "transformer.h.*.attn.c_attn ×24" in rows
    assert len(table_rows(ok("count", GPT2, "--all"))) == 2 + 24 * 6 + 2
    data = json.loads(ok("count", GPT2, "-f", "json"))
    assert len(data["modules"]) == 2 + 24 * 6 + 2
    (attn,) = [g for g in data["groups"] if g["pattern"] == "transformer.h.*.attn.c_attn"]
    assert attn["count"] == 24 and set(attn) == {"pattern", "count", "names", "apart"}


def test_a_weights_folder_groups_and_shows_the_odd_block_apart(
    odd_weights: CheckpointReport,
) -> None:
    rows = table_rows(render(checkpoint_view(odd_weights)))
    assert len(rows) <= MAX_ROWS
    assert rows[rows.index("transformer.h.*.mlp.c_fc.weight ×23") + 1] == ODD
    data = json.loads(render(checkpoint_view(odd_weights), OutputFormat.json))
    assert any(g["apart"] == [ODD] for g in data["groups"])
    assert len(data["params"]) == ALL_PARAMS


@pytest.mark.slow  # its fast smoke: test_a_weights_folder_groups_and_shows_the_odd_block_apart
def test_a_weights_file_against_a_scheme_groups_the_same_way(odd_folder: Path) -> None:
    file = str(odd_folder / "model.safetensors")
    against = ok("inspect", file, "-q", "--against", "normal:std=0.02")
    rows = table_rows(against)
    assert rows[rows.index("transformer.h.*.mlp.c_fc.weight ×23") + 1] == ODD
    odd_line = next(line for line in against.splitlines() if line.startswith(f" {ODD}"))
    assert odd_line.rstrip().endswith("off")  # 9x the variance normal(std=0.02) draws


def test_nested_encoder_and_decoder_stacks_group_apart() -> None:
    data = json.loads(ok("inspect", "tests/deep_models.py:t5_6", "-q", "-f", "json"))
    counts = {g["pattern"]: g["count"] for g in data["groups"]}
    # Every decoder block has 3 layers (self-attention, cross-attention, feed-forward).
    assert counts["decoder.block.*.layer.*.layer_norm.weight"] == 18
    assert counts["encoder.block.*.layer.*.layer_norm.weight"] == 12
    assert counts["encoder.block.*.layer.*.SelfAttention.q.weight"] == 6


def test_autos_table_groups_as_the_main_table_does() -> None:
    out = ok("inspect", GPT2, "-q", "-i", "auto")
    auto = out.split("auto: what each weight got, and why", 1)[1]
    rows = table_rows(auto)
    assert "transformer.h.*.attn.c_attn.weight ×24" in rows
    # The last block's c_proj is followed by lm_head, not a next block: a reason of its own.
    assert rows[-2:] == [
        "transformer.h.*.mlp.c_proj.weight ×23",
        "transformer.h.23.mlp.c_proj.weight",
    ]


def test_count_of_llama_70b_at_its_real_shape_fits_in_30_rows() -> None:
    # Built on the meta device: nothing allocated. 68,976,648,192 is Llama-2-70B's published count.
    out = ok("count", "tests/deep_models.py:llama_70b", "--expect", "68,976,648,192")
    rows = table_rows(out)
    assert len(rows) == 12  # embed_tokens, 9 groups of 80, norm, lm_head
    assert "model.layers.*.mlp.gate_proj ×80" in rows
