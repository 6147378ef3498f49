"""Streamed `default` on transformers models: the model-level init (`_init_weights`) counts."""

from __future__ import annotations

import pytest

from initcli import report

HF = "tests/hf_models.py"


@pytest.mark.parametrize("factory", ["gpt2", "bert", "llama", "t5"])
def test_streamed_default_is_never_ok_on_values_the_model_does_not_have(factory: str) -> None:
    streamed = report.inspect(f"{HF}:{factory}", seed=0, stream=True)
    real = report.inspect(f"{HF}:{factory}", seed=0, stream=False)
    assert streamed.method == "stream"
    assert [p.name for p in streamed.params] == [p.name for p in real.params]
    for s, r in zip(streamed.params, real.params, strict=True):
        # Either the model's own values, or no values at all (never torch's layer defaults).
        assert s.status == "unknown" or (s.min, s.max, s.mean, s.var) == (
            r.min,
            r.max,
            r.mean,
            r.var,
        )
    assert "_init_weights" in streamed.remarks[0]
