"""initcli.measure.identify on fresh draws of named schemes, torch's defaults, empty memory."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from initcli.init import schemes, torch_defaults
from initcli.measure import identify, naming, stats
from initcli.measure.default_status import default_status
from initcli.measure.identify import Fit


def _identify(
    t: torch.Tensor, default: schemes.Expectation | None = None, depth: int | None = None
):  # type: ignore[no-untyped-def]
    st = stats.tensor_stats(t)
    return identify.identify(
        st,
        ndim=t.dim(),
        fans=schemes.fans(t),
        dtype=t.dtype,
        values=t,
        default=default,
        depth=depth,
    )


SCHEMES = [
    ("kaiming_uniform(a=√5)", lambda w: nn.init.kaiming_uniform_(w, a=math.sqrt(5))),
    ("xavier_uniform", nn.init.xavier_uniform_),
    ("xavier_normal", nn.init.xavier_normal_),
    ("kaiming_normal(fan_in, relu)", lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
    ("kaiming_uniform(fan_out, tanh)",
     lambda w: nn.init.kaiming_uniform_(w, mode="fan_out", nonlinearity="tanh")),
    ("normal(std=0.02)", lambda w: nn.init.normal_(w, std=0.02)),
    ("normal(std=0.02/√(2·12))", lambda w: nn.init.normal_(w, std=0.02 / math.sqrt(24))),
    ("trunc_normal(std=0.02, ±2σ)", lambda w: nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04)),
    ("uniform(±0.1)", lambda w: nn.init.uniform_(w, -0.1, 0.1)),
    ("orthogonal(gain=1)", nn.init.orthogonal_),
]  # fmt: skip


# ASCII ids: mutmut reruns tests by id in one process, where pytest 9 misses escaped explicit ids.
_ASCII = str.maketrans({"√": "sqrt", "±": "+-", "σ": "sigma", "·": "*"})


@pytest.mark.parametrize(("label", "init"), SCHEMES, ids=[s[0].translate(_ASCII) for s in SCHEMES])
@pytest.mark.parametrize("shape", [(8, 8), (96, 64), (32, 16, 3, 3)])
def test_true_scheme_among_matches(label: str, init, shape: tuple[int, ...]) -> None:  # type: ignore[no-untyped-def]
    # 20 seeds each here; benchmarks/bench_identify.py measures 200 (docs/guide/inspecting.md:
    # measured rates).
    for seed in range(20):
        torch.manual_seed(seed)
        w = torch.empty(shape)
        init(w)
        assert label in _identify(w, depth=12).fit.matches, (seed, _identify(w, depth=12))


@pytest.mark.parametrize(
    ("init", "looks_like", "family"),
    [
        (lambda w: nn.init.normal_(w, std=0.02), "normal(std=0.02)", "normal"),
        (lambda w: nn.init.trunc_normal_(w, std=0.02, a=-0.04, b=0.04),
         "trunc_normal(std=0.02, ±2σ)", "trunc_normal"),
        (lambda w: nn.init.normal_(w, std=0.02 / math.sqrt(24)),
         "normal(std=0.02/√(2·12))", "normal"),
        (nn.init.orthogonal_, "orthogonal(gain=1)", "orthogonal"),
        (lambda w: nn.init.orthogonal_(w, gain=math.sqrt(2)),
         "orthogonal(gain=relu)", "orthogonal"),
        (lambda w: nn.init.constant_(w, 0.5), "constant(0.5)", "constant"),
        (lambda w: nn.init.normal_(w, mean=1.0, std=0.3), "normal(mean=0.999, std=0.3)", "normal"),
    ],
)  # fmt: skip
def test_looks_like_on_a_large_tensor(init, looks_like: str, family: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    w = torch.empty(512, 768)
    init(w)
    found = _identify(w, depth=12)
    assert (found.looks_like, found.fit.family) == (looks_like, family)


def test_sparse() -> None:
    torch.manual_seed(0)
    w = torch.empty(256, 128)
    nn.init.sparse_(w, sparsity=0.1, std=0.01)
    found = _identify(w)
    assert found.fit.family == "sparse" and found.looks_like == "sparse(sparsity=0.1, std=0.01)"


def test_torch_default_is_ok_and_named() -> None:
    for seed in range(20):
        torch.manual_seed(seed)
        layer = nn.Linear(64, 32)
        exps = torch_defaults.default_expectations(layer)
        for name, p in layer.named_parameters():
            t = p.detach()
            st = stats.tensor_stats(t)
            found = _identify(t, exps[name])
            judged = stats.judge(st, t.dim(), exps[name].mean, exps[name].var, exps[name].kurtosis)
            status = default_status(judged, found, ndim=t.dim(), module="Linear")
            assert status is stats.Status.OK
            assert found.looks_like == f"{exps[name].init} — torch default"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: torch.randint(-(2**31), 2**31 - 1, (64, 64), dtype=torch.int32)
         .view(torch.float32),
         "torch.empty leftovers?"),
        (lambda: torch.full((64, 64), 1e37), "torch.empty leftovers? max |x| = 1.0e+37"),
        (lambda: torch.full((64, 64), math.nan), "torch.empty leftovers? 4096 NaN/Inf values"),
        (lambda: torch.randn(64, 64) * 1e-39,
         "torch.empty leftovers? 4096 denormal values in 4096 sampled"),
    ],
)  # fmt: skip
def test_uninitialized(make, reason: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    found = _identify(make())
    assert found.uninitialized is not None and found.uninitialized.startswith(reason)
    assert found.fit == Fit("uninitialized", None, None, ())
    assert default_status(stats.Status.OFF, found, ndim=2, module="Linear") == "uninitialized"


def test_zero_weight_of_a_random_default_is_uninitialized() -> None:
    layer = nn.Linear(8, 8)
    nn.init.zeros_(layer.weight)
    exp = torch_defaults.default_expectations(layer)["weight"]
    found = _identify(layer.weight.detach(), exp)
    assert (
        found.uninitialized
        == "all zeros where the module's default (kaiming_uniform(a=√5)) is random"
    )


def test_stats_sample_and_its_moments() -> None:
    torch.manual_seed(0)
    x = torch.randn(1_200_000) * 0.3 + 2.0  # three chunks
    x[:777] = 0.0
    st = stats.tensor_stats(x)
    assert st.sample is not None and st.sample.numel() == 20_000
    assert torch.equal(st.sample, x[::60].double())
    # The moments are about the reported mean; a float32 tensor of several blocks has it from
    # float32 block sums (stats._blocked_stats), within 1e-7 of the float64 one here.
    assert st.mean == pytest.approx(float(x.double().mean()), rel=1e-7)
    d = x[::60].double() - st.mean
    assert st.m3 == pytest.approx(float((d**3).mean()), rel=1e-9, abs=1e-12)
    assert st.m4 == pytest.approx(float((d**4).mean()), rel=1e-9)
    assert st.zeros == 13  # sampled zeros: every 60th of the first 777 values
    small = stats.tensor_stats(torch.tensor([0.0, 1.0, 2.0, 5.0]))
    assert (small.m3, small.m4, small.zeros) == (pytest.approx(4.5), pytest.approx(24.5), 1)


def test_depth_hint() -> None:
    class Blocks(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleList(nn.Linear(2, 2) for _ in range(5))

    assert naming.depth_hint(Blocks()) == 5
    assert naming.depth_hint(nn.Linear(2, 2)) is None


@pytest.mark.parametrize("family", ["normal", "uniform", "trunc2"])
@pytest.mark.parametrize("n", [8, 500, 20_000])
@pytest.mark.parametrize("scale", [0.5, 0.55, 0.62])
def test_ks_pvalue_is_scipys_kstest_where_a_decision_depends_on_it(
    family: str, n: int, scale: float
) -> None:
    """identify's KS p-value gives kstest's decision at KS_ALPHA; it equals kstest's exact p to
    1e-4 relative near the threshold (twice scipy.special's exact one-sided tail), and to 10%
    far from it on large samples (Kolmogorov's limit)."""
    from scipy import stats as sps  # type: ignore[import-untyped]

    gen = torch.Generator().manual_seed(n)
    x = torch.randn(n, generator=gen, dtype=torch.float64) * 0.5 + 0.1
    center = 0.1
    if family == "normal":
        ref = sps.kstest(x.numpy(), "norm", args=(center, scale)).pvalue
    elif family == "uniform":
        ref = sps.kstest(x.numpy(), "uniform", args=(center - scale, 2 * scale)).pvalue
    else:
        ref = sps.kstest(x.numpy(), "truncnorm", args=(-2.0, 2.0, center, scale)).pvalue
    got = identify.ks_pvalue(x, family, center, scale)
    assert (got >= identify.KS_ALPHA) == (ref >= identify.KS_ALPHA)
    if ref <= 0.01 and (n < 1000 or identify.KS_ALPHA / 10 <= got <= identify.KS_ALPHA * 10):
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-300)
    else:  # far from the threshold: Kolmogorov's limit for large samples
        assert got == pytest.approx(ref, rel=0.1, abs=1e-3)


def test_truncated_normal_moments_are_scipys() -> None:
    from scipy import stats as sps

    d = sps.truncnorm(-2.0, 2.0)
    var = float(d.moment(2))
    ref = (var**0.5, d.moment(4) / var**2, d.moment(6) / var**3, d.moment(8) / var**4)
    assert identify._trunc2() == pytest.approx(ref, rel=1e-12)
