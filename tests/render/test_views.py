"""Every command's view on hand-built reports: exact JSON, CSV, Markdown and table text."""

from __future__ import annotations

import dataclasses
import json

from initcli.experiments.probe import BlockStats, Histogram, LayerStats, ParamGrad, ProbeResult
from initcli.experiments.verdict import Verdict
from initcli.render import OutputFormat
from initcli.render.baseline import check_view
from initcli.render.counts import count_view
from initcli.render.formulas import gains_view, schemes_view
from initcli.render.inspection import inspect_view
from initcli.render.probing import probe_view
from initcli.report import CountReport, GainRow, InspectReport, ProbeReport, SchemeProbe, SchemeRow
from initcli.report.baseline import Change, CheckReport, TargetCheck

from .conftest import param, render


def test_count_json_is_the_contract_object(counts: CountReport) -> None:
    data = json.loads(render(count_view(counts), OutputFormat.json))
    assert data == {
        "target": "net.py:Net", "total": 51, "trainable": 43, "frozen": 8, "buffers": 4,
        "torchinfo": {"total": 59, "trainable": 51}, "agree": False,
        "notes": [
            "tied weights: a.weight and b.weight are one tensor of 8 elements; counted once."
        ],
        "modules": [
            {"name": "fc1", "type": "Linear", "params": 25, "formula": "4×5 + 5"},
            {"name": "fc2", "type": "Linear", "params": 26, "formula": "5×5 + 1"},
        ],
        "torchinfo_input": None,
        "groups": [],
    }  # fmt: skip


def test_count_views_name_the_input_torchinfo_ran_on(counts: CountReport) -> None:
    given = dataclasses.replace(counts.counts, torchinfo_input=(2, 4))
    view = count_view(dataclasses.replace(counts, counts=given))
    assert json.loads(render(view, OutputFormat.json))["torchinfo_input"] == [2, 4]
    assert "· torchinfo 59 (differ, input 2×4)\n" in render(view, OutputFormat.markdown)
    assert "│ torchinfo  59  differs (forward pass on a 2×4 input)" in render(
        view, OutputFormat.table
    )


def test_count_csv_and_markdown(counts: CountReport) -> None:
    assert render(count_view(counts), OutputFormat.csv) == (
        "name,type,params,formula,group\nfc1,Linear,25,4×5 + 5,\nfc2,Linear,26,5×5 + 1,\n"
    )
    assert render(count_view(counts), OutputFormat.markdown) == (
        "| name | type | params | formula |\n|---|---|---|---|\n"
        "| fc1 | Linear | 25 | 4×5 + 5 |\n| fc2 | Linear | 26 | 5×5 + 1 |\n"
        "\ntotal 51 · trainable 43 · frozen 8 · buffers 4 · torchinfo 59 (differ)\n"
        "\ntied weights: a.weight and b.weight are one tensor of 8 elements; counted once.\n"
    )


def test_count_table_says_torchinfo_differs(counts: CountReport) -> None:
    text = render(count_view(counts), OutputFormat.table)
    assert "  fc1      Linear   4×5 + 5          25  " in text
    assert "│ torchinfo  59  differs" in text
    assert "• tied weights: a.weight and b.weight" in text


def test_inspect_json_nulls_nan_and_keeps_key_order(inspected: InspectReport) -> None:
    data = json.loads(render(inspect_view(inspected), OutputFormat.json))
    assert list(data) == ["target", "scheme", "seed", "params", "counts", "groups"]
    assert data["seed"] == 7
    first = data["params"][0]
    assert list(first)[:6] == ["name", "module", "shape", "numel", "fan_in", "fan_out"]
    assert first["shape"] == [5, 4] and first["status"] == "ok"
    assert data["params"][2]["var"] is None  # NaN has no JSON spelling
    assert data["params"][1]["fan_in"] is None


def test_inspect_table_shows_fans_status_and_frozen(inspected: InspectReport) -> None:
    lines = render(inspect_view(inspected), OutputFormat.table).splitlines()
    assert lines[0].rstrip() == "net.py:Net · kaiming_normal(mode=fan_in) · seed 7"
    row = next(line for line in lines if line.startswith(" fc1.weight"))
    assert row.split() == [
        "fc1.weight",
        "5×4",
        "4→5",
        "0.25",
        "0.5",
        "0.5",
        "kaiming_normal",
        "ok",
        "yes",
    ]
    frozen = next(line for line in lines if line.startswith(" fc2.weight"))
    assert frozen.split()[-3:] == ["kaiming_normal", "off", "frozen"] and " nan " in frozen
    bias = next(line for line in lines if line.startswith(" fc1.bias"))
    assert bias.split()[:3] == ["fc1.bias", "5", "–"]


def test_inspect_marks_fans_the_forward_pass_does_not_have(inspected: InspectReport) -> None:
    conv1d = param("c_attn.weight", shape=(4, 12), fan_in=12, fan_out=4, forward_fan_in=4,
                   forward_fan_out=12)  # fmt: skip
    same = param("fc.weight", forward_fan_in=4, forward_fan_out=5)
    report = dataclasses.replace(inspected, params=(conv1d, same, *inspected.params))
    data = json.loads(render(inspect_view(report), OutputFormat.json))
    assert list(data["params"][0])[-2:] == ["forward_fan_in", "forward_fan_out"]
    assert [(p["forward_fan_in"], p["forward_fan_out"]) for p in data["params"]] == [
        (4, 12),
        (4, 5),
        (None, None),
        (None, None),
        (None, None),
    ]
    lines = render(inspect_view(report), OutputFormat.table).splitlines()
    assert next(ln for ln in lines if ln.startswith(" c_attn.weight")).split()[2] == "12→4*"
    assert next(ln for ln in lines if ln.startswith(" fc.weight")).split()[2] == "4→5"
    assert (
        "* torch's fans; the forward pass has: c_attn.weight 4→12 (JSON forward_fan_in/out)"
        in lines
    )


def test_inspect_csv_has_one_row_per_parameter(inspected: InspectReport) -> None:
    rows = render(inspect_view(inspected), OutputFormat.csv).splitlines()
    assert rows[0].startswith("name,module,shape,numel,fan_in,fan_out,mean,var,std,min,max")
    assert rows[1].startswith("fc1.weight,Linear,5 4,20,4,5,0.25,0.5,")
    assert len(rows) == 4


def test_long_names_break_at_dots_in_a_narrow_table(inspected: InspectReport) -> None:
    long = InspectReport(
        inspected.target, inspected.scheme, 0,
        (inspected.params[0].__class__(**{**inspected.params[0].__dict__,
                                          "name": "encoder.layers.11.self_attn.out_proj.weight"}),),
        inspected.counts,
    )  # fmt: skip
    lines = render(inspect_view(long), OutputFormat.table, width=90).splitlines()
    # rich breaks only at spaces: the view breaks the name after its dots to fit 16 columns.
    assert [line[:17] for line in lines[4:7]] == [
        " encoder.layers. ",
        " 11.self_attn.   ",
        " out_proj.weight ",
    ]


def test_schemes_and_gain_views() -> None:
    rows = (SchemeRow("normal", ("gaussian",), ("mean=0", "std=1"), "N(mean, std²)", "std²"),)
    assert render(schemes_view(rows), OutputFormat.csv) == (
        "name,aliases,params,values,expected_var\n"
        'normal,gaussian,mean=0 std=1,"N(mean, std²)",std²\n'
    )
    gains = (GainRow("relu", "√2", 2**0.5),)
    assert json.loads(render(gains_view(gains), OutputFormat.json)) == [
        {"nonlinearity": "relu", "formula": "√2", "gain": 2**0.5}
    ]
    table = render(gains_view(gains), OutputFormat.table)
    assert "relu           √2        1.41421       2" in table


def _probe() -> ProbeReport:
    hist = Histogram(-1.0, 1.0, (1, 2, 1))
    blocks = tuple(
        BlockStats(f"fc{i} → act{i}", f"fc{i}", 0.0, std, 0.5, None, 0.1, hist)
        for i, std in ((1, 1.0), (2, 0.001))
    )
    layers = (LayerStats("fc1", "Linear", (8, 4), 0.0, 1.0, 0.0, None, 0.1, False),)
    result = ProbeResult(layers, blocks, (ParamGrad("fc1.weight", 0.1),), Verdict.VANISHING,
                         "std fell 1000×", 0.001, 0.5)  # fmt: skip
    return ProbeReport("mlp.yaml", 0, (8, 4), "float32 N(0, 1)", "the spec's input: 4",
                       (SchemeProbe("zeros", result),))  # fmt: skip


def test_probe_views() -> None:
    report = _probe()
    data = json.loads(render(probe_view(report), OutputFormat.json))
    assert [s["verdict"] for s in data["schemes"]] == ["vanishing"]
    assert data["schemes"][0]["blocks"][1]["std"] == 0.001
    table = render(probe_view(report), OutputFormat.table)
    assert "mlp.yaml · zeros · vanishing" in table
    assert "zeros: std fell 1000×" in table
    assert "input 8×4 (float32 N(0, 1); shape from the spec's input: 4), seed 0" in table
    markdown = render(probe_view(report), OutputFormat.markdown)
    assert "**zeros**: vanishing\n" in markdown
    side = render(probe_view(report, compare=True), OutputFormat.markdown)
    assert "| block | std zeros |" in side
    assert (
        render(probe_view(report), OutputFormat.csv)
        .splitlines()[0]
        .startswith("scheme,verdict,name,type,shape,mean,std")
    )


def test_check_view_lists_each_change() -> None:
    change = Change("params", "fc1", "Linear", 25, 30)
    target = TargetCheck("net.py:Net", {"width": 5}, 51, 56, (change,))
    report = CheckReport("counts.json", (target,), current=None)  # type: ignore[arg-type]
    assert render(check_view(report), OutputFormat.csv) == (
        "target,args,field,name,type,baseline,now,change\n"
        "net.py:Net,width=5,params,fc1,Linear,25,30,+5\n"
    )
    table = render(check_view(report), OutputFormat.table)
    assert "✗ net.py:Net (width=5): total 51 → 56 (+5)" in table
    assert "1 of 1 targets changed since counts.json" in table
