"""Repeated blocks grouped (initcli.report.grouping): patterns, the odd-block rule, the figures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from initcli.measure.counting import ModuleCount
from initcli.measure.identify import Fit
from initcli.report.grouping import (
    MIN_GROUP,
    STATUS_ORDER,
    group_modules,
    group_params,
    worst_status,
)
from initcli.report.measuring import ParamReport
from initcli.text import block_pattern

N = 64 * 64  # elements of each block's weight in these tests
BLOCKS = 24


def block(
    i: int,
    std: float,
    mean: float = 0.0,
    *,
    numel: int = N,
    status: str = "ok",
    looks_like: str | None = "normal(std=0.02)",
    matches: tuple[str, ...] = ("normal(std=0.02)",),
    shape: tuple[int, ...] = (64, 64),
    leaf: str = "mlp.weight",
) -> ParamReport:
    """Block i's weight as inspect reports it, with the given moments."""
    return ParamReport(
        f"h.{i}.{leaf}", "Linear", shape, numel, shape[-1], shape[0], mean, std**2, std,
        mean - 3 * std, mean + 3 * std, 0.0, 0.0004, "normal(std=0.02)", True, "float32", status,
        looks_like=looks_like, fit=Fit("normal", std, None, matches),
    )  # fmt: skip


def drawn(stds: list[float], seed: int = 0, numel: int = N) -> list[ParamReport]:
    """Blocks whose moments are those of `numel` values actually drawn from N(0, std²)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, std in enumerate(stds):
        values = rng.normal(0.0, std, numel)
        rows.append(block(i, float(values.std(ddof=1)), float(values.mean()), numel=numel))
    return rows


def trained_stds(seed: int, blocks: int = BLOCKS) -> list[float]:
    """Per-block stds as training leaves them: spread ±15% around 0.05 (no two blocks alike)."""
    rng = np.random.default_rng(seed)
    return list(0.05 * np.exp(rng.normal(0.0, 0.15, blocks)))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("transformer.h.3.attn.c_proj.weight", "transformer.h.*.attn.c_proj.weight"),
        ("model.layers.79.mlp.down_proj.weight", "model.layers.*.mlp.down_proj.weight"),
        ("encoder.layer.11.output.dense.bias", "encoder.layer.*.output.dense.bias"),
        ("decoder.block.2.layer.1.EncDecAttention.q.weight",
         "decoder.block.*.layer.*.EncDecAttention.q.weight"),
        ("0.weight", "*.weight"),
        ("features.12", "features.*"),
        ("fc10.weight", "fc10.weight"),  # a number inside a name is no block index
        ("bn1.running_mean", "bn1.running_mean"),
    ],
)  # fmt: skip
def test_pattern_stars_each_block_index(name: str, expected: str) -> None:
    assert block_pattern(name) == expected


def test_worst_status_follows_the_documented_order() -> None:
    assert STATUS_ORDER == ("ok", "custom", "unknown", "off", "symmetric", "uninitialized")
    assert worst_status(["ok", "custom", "ok"]) == "custom"
    assert worst_status(["off", "symmetric", "unknown"]) == "symmetric"
    assert worst_status(["ok", "uninitialized", "off"]) == "uninitialized"
    assert worst_status(["ok", "something new"]) == "something new"  # ranked as unknown


def test_a_clean_set_collapses_into_one_group_with_its_ranges() -> None:
    rows = drawn([0.02] * BLOCKS)
    (group,) = group_params(rows)
    assert group.pattern == "h.*.mlp.weight"
    assert group.members == tuple(range(BLOCKS)) and group.apart == ()
    assert group.std == (min(r.std for r in rows), max(r.std for r in rows))  # type: ignore[type-var]
    assert group.mean == (min(r.mean for r in rows), max(r.mean for r in rows))  # type: ignore[type-var]
    assert group.status == "ok" and group.looks_like == "normal(std=0.02)"


def test_clean_sets_are_not_split_by_sampling_noise() -> None:
    # 2,000 sets of 24 same-init blocks of 64 to 4,096 elements: each block's std and mean drawn
    # from their exact sampling distributions (std: σ·√(χ²(n-1)/(n-1)); mean: N(0, σ²/n)).
    rng = np.random.default_rng(1)
    split = 0
    for _ in range(2_000):
        n = int(rng.choice([64, 256, 1024, 4096]))
        stds = 0.02 * np.sqrt(rng.chisquare(n - 1, BLOCKS) / (n - 1))
        means = rng.normal(0.0, 0.02 / math.sqrt(n), BLOCKS)
        moments = zip(stds, means, strict=True)
        rows = [block(i, float(s), float(m), numel=n) for i, (s, m) in enumerate(moments)]
        groups = group_params(rows)
        split += len(groups) != 1 or len(groups[0].apart) != 0
    assert split == 0


@pytest.mark.parametrize("factor", [1.1, 0.9, 3.0])
def test_one_same_init_block_at_another_scale_stands_alone(factor: float) -> None:
    stds = [0.02] * BLOCKS
    stds[7] *= factor  # 10% off: 9 sampling sds at 4,096 elements
    (group,) = group_params(drawn(stds))
    assert group.apart == (7,)
    assert 7 not in group.members and len(group.members) == BLOCKS - 1


def test_trained_blocks_share_a_row_and_one_left_at_init_stands_alone() -> None:
    stds = trained_stds(2)
    (group,) = group_params(drawn(stds))
    assert group.apart == ()  # blocks that training spread apart still read as one row
    stds[11] = 0.02  # the block the checkpoint never loaded: its init's scale
    (group,) = group_params(drawn(stds))
    assert group.apart == (11,)


@pytest.mark.parametrize("factor", [3.0, 0.3])
def test_one_trained_block_at_another_scale_stands_alone(factor: float) -> None:
    stds = trained_stds(3)
    stds[5] *= factor
    (group,) = group_params(drawn(stds))
    assert group.apart == (5,)


def test_a_depth_scaled_init_is_one_group_with_its_range() -> None:
    # std ∝ 1/√(layer + 1) (depth-scaled inits): every block differs, none stands out.
    stds = [0.02 / math.sqrt(i + 1) for i in range(BLOCKS)]
    (group,) = group_params(drawn(stds))
    assert group.apart == ()
    assert group.std is not None and group.std[1] / group.std[0] > 4


def test_a_block_with_a_shifted_mean_stands_alone() -> None:
    rows = drawn([0.02] * BLOCKS)
    rows[3] = block(3, rows[3].std or 0.0, 0.01)  # 0.5σ: 32 standard errors at 4,096 elements
    (group,) = group_params(rows)
    assert group.apart == (3,)


@pytest.mark.parametrize(
    "odd",
    [
        {"status": "off"},
        {"shape": (64, 32), "numel": 2048},
        # A label its values do not fit: not one of its peers' init.
        {"looks_like": "kaiming_uniform(a=√5) — torch default",
         "matches": ("kaiming_uniform(a=√5) — torch default",)},
    ],
)  # fmt: skip
def test_a_block_of_another_shape_status_or_identification_stands_alone(
    odd: dict[str, object],
) -> None:
    rows = drawn([0.02] * BLOCKS)
    rows[9] = block(9, rows[9].std or 0.0, rows[9].mean or 0.0, **odd)  # type: ignore[arg-type]
    (group,) = group_params(rows)
    assert group.apart == (9,)


def test_a_label_picked_by_noise_among_fitting_ones_stays_with_its_peers() -> None:
    # identify names the candidate nearest in variance: between normal and its ±2σ truncation at
    # one std, a block's noise decides; both fit every block, so the block is no odd one.
    rows = drawn([0.02] * BLOCKS)
    both = ("normal(std=0.02)", "trunc_normal(std=0.02, ±2σ)")
    rows[4] = block(4, rows[4].std or 0.0, looks_like=both[1], matches=both)
    (group,) = group_params(rows)
    assert group.apart == () and group.looks_like == "normal(std=0.02)"


def test_generic_labels_group_by_family_and_show_no_shared_label() -> None:
    rows = [
        block(i, s, looks_like=f"normal(std={s:.3g})", matches=())
        for i, s in enumerate(trained_stds(4))
    ]
    (group,) = group_params(rows)
    assert group.apart == () and group.looks_like is None


def test_fewer_than_three_alike_blocks_stay_rows_of_their_own() -> None:
    assert MIN_GROUP == 3
    assert group_params(drawn([0.02, 0.02])) == ()
    (group,) = group_params(drawn([0.02] * 3))
    assert len(group.members) == 3


def test_each_stack_of_an_encoder_decoder_is_its_own_group() -> None:
    rows = [block(i, 0.02, leaf=f"layer.{j}.norm.weight") for i in range(3) for j in range(2)]
    named = [
        ParamReport(**{**vars(r), "name": f"{side}.block.{r.name[2:]}"})
        for side in ("encoder", "decoder")
        for r in rows
    ]
    groups = group_params(named)
    assert [g.pattern for g in groups] == [
        "encoder.block.*.layer.*.norm.weight",
        "decoder.block.*.layer.*.norm.weight",
    ]
    assert [len(g.members) for g in groups] == [6, 6]


def test_modules_group_by_pattern_type_and_hand_count() -> None:
    modules = [ModuleCount("wte", "Embedding", 2048, "64×32")]
    modules += [ModuleCount(f"h.{i}.mlp", "Linear", 1056, "32×32 + 32") for i in range(4)]
    modules.append(ModuleCount("h.4.mlp", "Linear", 2112, "32×64 + 64"))  # a wider last block
    (group,) = group_modules(modules)
    assert group.pattern == "h.*.mlp"
    assert group.members == (1, 2, 3, 4) and group.apart == (5,)
    assert group.mean is None and group.status is None


def test_blocks_that_alternate_two_inits_make_two_groups() -> None:
    rows = drawn([0.02] * BLOCKS)
    other = "kaiming_uniform(a=√5) — torch default"
    rows = [
        block(i, r.std or 0.0, r.mean or 0.0, looks_like=other, matches=(other,)) if i % 2 else r
        for i, r in enumerate(rows)
    ]
    groups = group_params(rows)
    assert [g.members for g in groups] == [tuple(range(0, BLOCKS, 2)), tuple(range(1, BLOCKS, 2))]
    assert [g.looks_like for g in groups] == ["normal(std=0.02)", other]
