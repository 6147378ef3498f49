"""inspect under `default` reports the values a seeded plain-Python build of the factory has."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from initcli.model import building, resolve

MODELS = "tests/models_for_build.py"
LAZY = "tests/models_lazy_import.py:tiny"

# The lazy factory first: a meta build of it is the process's first import of transformers.
FACTORIES = (LAZY, f"{MODELS}:eager_bert", f"{MODELS}:gpt2", f"{MODELS}:Applied")

# Each child prints {factory: {name: [min, max, mean]}}; means are float64 sums of float32 values.
# The plain build: torch.manual_seed(0); factory(), transformers imported by the factory itself.
PLAIN = """
import json, sys, torch
sys.path.insert(0, ".")
from initcli.model import resolve
out = {{}}
for factory in {factories!r}:
    source = resolve.resolve(factory)
    torch.manual_seed(0)
    model = source.build()
    out[factory] = {{n: [p.min().item(), p.max().item(), p.double().mean().item()]
                    for n, p in model.named_parameters()}}
print(json.dumps(out))
"""
# initcli: a meta build of every factory first (count), so that a library first imported there
# would keep anything it was handed then (the no-op nn.init functions it kept before).
INITCLI = """
import json
from initcli import report
targets = {factories!r}
for t in targets:
    report.count(t)
out = {{}}
for f, t in zip({factories!r}, targets):
    out[f] = {{p.name: [p.min, p.max, p.mean, p.std] for p in report.inspect(t).params}}
print(json.dumps(out))
"""


def _child(code: str) -> dict[str, dict[str, list[float]]]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.splitlines()[-1]))


@pytest.fixture(scope="module")
def both() -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    plain = _child(PLAIN.format(models=MODELS, factories=FACTORIES))
    measured = _child(INITCLI.format(models=MODELS, factories=FACTORIES))
    return plain, measured


@pytest.mark.parametrize("factory", FACTORIES)
def test_default_values_equal_a_seeded_plain_build(
    both: tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]],
    factory: str,
) -> None:
    plain, measured = both[0][factory], both[1][factory]
    assert measured.keys() == plain.keys()
    for name, (lo, hi, mean) in plain.items():
        got = measured[name]
        assert (got[0], got[1]) == (lo, hi), name
        assert got[2] == pytest.approx(mean, rel=1e-9, abs=1e-12), name


def test_bert_weights_are_berts_own_normal_not_torchs_uniform(
    both: tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]],
) -> None:
    # The numbers: query.weight is N(0, 0.02²) (std ≈ 0.0202), not U(±1/√128) (0.0511).
    std = both[1][FACTORIES[0]]["encoder.layer.0.attention.self.query.weight"][3]
    assert std == pytest.approx(0.02, rel=0.02)


def test_meta_build_leaves_a_lazily_imported_library_real_init_functions() -> None:
    code = (
        "import torch\nfrom initcli.model import building, resolve\n"
        f"building.build_meta(resolve.resolve({LAZY!r}))\n"
        "import transformers.initialization as i\n"
        "print(i.TORCH_INIT_FUNCTIONS['normal_'] is torch.nn.init.normal_)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "True"


def test_meta_build_of_a_model_with_post_init_draws_nothing() -> None:
    model = building.build_meta(resolve.resolve(f"{MODELS}:gpt2"))
    assert {p.device.type for p in model.parameters()} == {"meta"}
