"""Specs are bounded before the work: file size, number of layers, widths and repeats."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from initcli.errors import SpecError
from initcli.model.spec import MAX_LAYERS, load_spec, parse_spec


def test_a_spec_file_over_the_size_limit_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as handle:
        handle.write(b"input: 4\nlayers: [{units: 2}]\n")
        handle.truncate(100_000_000)  # 100 MB, sparse: NUL bytes are never parsed
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.perf_counter() - start < 1.0
    assert str(info.value) == (
        f"{path} is larger than 1,000,000 bytes, the most a spec may be (10,000 layers written "
        "out fit in less): use repeat: for stacked layers"
    )


def test_whitespace_text_over_the_limit_is_refused() -> None:
    with pytest.raises(SpecError, match="is larger than 1,000,000 bytes"):
        parse_spec(" " * 1_000_001, "s.yaml")


def test_too_many_layers_are_refused_while_parsing() -> None:
    text = "input: 4\nlayers:\n" + "  - {units: 1}\n" * 100_000
    start = time.perf_counter()
    with pytest.raises(SpecError) as info:
        parse_spec(text[:999_000], "s.yaml")
    elapsed = time.perf_counter() - start
    assert str(info.value) == (
        f"s.yaml, line {MAX_LAYERS + 3}: layers: more than 10,000 entries; initcli handles at "
        "most 10,000 layers: make the model smaller"
    )
    assert elapsed < 10  # ~1 s idle: the event scan stops at entry 10,001


def test_exactly_the_limit_of_layers_parses() -> None:
    spec = parse_spec("input: 4\nlayers:\n" + "  - {units: 1}\n" * MAX_LAYERS)
    assert len(spec.layers) == MAX_LAYERS


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("units: 4611686018427387904",
         "units in layer 1 is 4,611,686,018,427,387,904, more than initcli's limit of "
         "2,147,483,647; lower it"),
        ("units: 9223372036854775808", "units in layer 1 is 9,223,372,036,854,775,808, more"),
        ("units: 100000000000000000000000000000", "limit of 2,147,483,647; lower it"),
    ],
)  # fmt: skip
def test_sizes_beyond_the_limits_say_the_limit(layer: str, message: str) -> None:
    with pytest.raises(SpecError, match=r"^s\.yaml, line 2: ") as info:
        parse_spec(f"input: 4\nlayers: [{{{layer}}}]\n", "s.yaml")
    assert message in str(info.value)


def test_input_beyond_the_limit() -> None:
    with pytest.raises(SpecError, match="input is 2,147,483,648, more than initcli's limit"):
        parse_spec("input: 2147483648\nlayers: [{units: 1}]\n", "s.yaml")
