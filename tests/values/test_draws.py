"""Which parameters a build sets without a random draw (initcli.values.draws), from its record."""

from __future__ import annotations

from benchmarks.models.hf_architectures import ARCHITECTURES
from initcli.model import building, resolve


def _undrawn(target: str) -> frozenset[str]:
    from initcli.values import draws

    return draws.undrawn(building.build_meta(resolve.resolve(target), quiet=True))


def test_copies_take_their_sources_answer() -> None:
    assert _undrawn("tests/models_for_tables.py:Copies") == {"table"}


def test_mamba_and_whisper_tables_and_nothing_drawn() -> None:
    assert "mamba" in ARCHITECTURES
    mamba = _undrawn("benchmarks/models/hf_architectures.py:mamba")
    assert {"backbone.layers.0.mixer.A_log", "backbone.layers.0.mixer.D"} <= mamba
    # dt_proj.bias is copied from exp(rand·…): a draw, though its last write is a copy.
    assert not {n for n in mamba if "dt_proj" in n or n.endswith("proj.weight")}
    whisper = _undrawn("benchmarks/models/hf_architectures.py:whisper")
    assert "model.encoder.embed_positions.weight" in whisper
    assert not {n for n in whisper if n.endswith(("proj.weight", "fc1.weight", "fc2.weight"))}


def test_without_a_record_nothing_is_claimed() -> None:
    from initcli.values import draws

    assert draws.undrawn(ARCHITECTURES["gpt2"]()) == frozenset()
