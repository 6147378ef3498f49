"""compare --train with --data, minibatches, optimizers and --seeds (issue 11)."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import run
from scipy import stats

from initcli.cli._app import fill_bare_values

MOONS = "sample_models/moons.yaml"
DIGITS = "sample_models/digits_mlp.yaml"


def _json(*args: str) -> dict:
    code, out, err = run(*args, "-f", "json")
    assert code == 0, err
    return json.loads(out)


def test_seeds_one_is_todays_run_and_seed_zero_of_many() -> None:
    one = _json("compare", MOONS, "-i", "kaiming", "--train", "15")
    three = _json("compare", MOONS, "-i", "kaiming", "--train", "15", "--seeds", "3")
    a, b = one["schemes"][0], three["schemes"][0]
    assert a["losses"] == b["losses"] == b["runs"][0]["losses"]
    assert a["accuracy"] == b["runs"][0]["accuracy"]
    assert len(b["runs"]) == 3 and b["runs"][1]["losses"] != b["runs"][0]["losses"]
    finals = [r["final_loss"] for r in b["runs"]]
    iv = b["seeds_summary"]["final_loss"]
    assert iv["mean"] == pytest.approx(sum(finals) / 3)
    half = stats.t.ppf(0.975, 2) * stats.tstd(finals) / math.sqrt(3)
    assert iv["high"] - iv["mean"] == pytest.approx(half)


def test_digits_two_schemes_seeds_verdict_matches_numbers() -> None:
    args = ("compare", DIGITS, "-i", "kaiming_normal", "-i", "default", "--train", "40",
            "--data", "digits", "--train-batch", "64", "--seeds", "3")  # fmt: skip
    data = _json(*args)
    k, d = data["schemes"]
    assert data["train"]["data_option"] == "digits" and data["train"]["seeds"] == 3
    kv = [r["val_loss"] for r in k["runs"]]
    dv = [r["val_loss"] for r in d["runs"]]
    (cmp,) = data["train_outcome"]["comparisons"]
    assert cmp["mean_diff"] == pytest.approx(sum(kv) / 3 - sum(dv) / 3)
    assert cmp["p_value"] == pytest.approx(stats.ttest_rel(kv, dv).pvalue, abs=0)
    assert cmp["clear"] == (cmp["p_value"] < 0.05)
    assert all(0 <= r["accuracy"] <= 1 for r in k["runs"])
    # Seeded: the same command gives the same bytes.
    assert run(*args)[1] == run(*args)[1]


def test_bare_train_is_300_steps_and_digits_minibatch_64() -> None:
    bare = _json("compare", MOONS, "-i", "kaiming", "--train", "--seed", "1")
    assert bare["train"]["steps"] == 300 and len(bare["schemes"][0]["losses"]) == 301
    assert bare["train"]["batch"] is None  # two moons stay full batch
    assert bare == _json("compare", MOONS, "-i", "kaiming", "--steps", "300", "--seed", "1")
    digits = _json("compare", DIGITS, "-i", "kaiming", "--train", "2", "--data", "digits")
    assert digits["train"]["batch"] == 64
    full = _json("compare", DIGITS, "-i", "kaiming", "--train", "2", "--data", "digits",
                 "--train-batch", "1438")  # fmt: skip
    assert full["train"]["batch"] == 1438
    assert full["schemes"][0]["losses"] != digits["schemes"][0]["losses"]


@pytest.mark.parametrize(
    ("args", "filled"),
    [
        (["compare", "m", "--train"], ["compare", "m", "--train", "300"]),
        (["compare", "m", "--steps", "-i", "x"], ["compare", "m", "--steps", "300", "-i", "x"]),
        (["compare", "m", "--train", "5"], ["compare", "m", "--train", "5"]),
        (["compare", "m", "--train", "-5"], ["compare", "m", "--train", "-5"]),
        (["compare", "m", "--", "--train"], ["compare", "m", "--", "--train"]),
        (["probe", "m", "--train"], ["probe", "m", "--train"]),
    ],
)
def test_fill_bare_values(args: list[str], filled: list[str]) -> None:
    assert fill_bare_values(args) == filled


def test_user_regression_and_classification_and_dataset() -> None:
    reg = _json("compare", "tests/data_models.py:regressor", "-i", "kaiming", "--train", "30",
                "--data", "tests/data_fns.py:regression", "--lr", "0.01")  # fmt: skip
    run0 = reg["schemes"][0]["runs"][0]
    assert run0["accuracy"] is None and run0["val_loss"] < run0["losses"][0]
    assert reg["train_outcome"]["task"] == "regression"
    cls = _json("compare", "tests/data_models.py:classifier", "-i", "kaiming", "--train", "30",
                "--data", "tests/data_fns.py:classification", "--optimizer", "sgd",
                "--lr", "0.1", "--train-batch", "32")  # fmt: skip
    assert cls["train_outcome"]["task"] == "classification"
    assert cls["train"]["optimizer"] == "SGD"
    ds = _json("compare", "tests/data_models.py:classifier", "-i", "kaiming", "--epochs", "2",
               "--data", "tests/data_fns.py:dataset", "--train-batch", "20")  # fmt: skip
    # 100 samples, 20 held out, 80 // 20 = 4 batches per epoch.
    assert len(ds["schemes"][0]["losses"]) == 2 * 4 + 1


def test_fit_matches_a_plain_pytorch_loop() -> None:
    from initcli.experiments import data as datasets
    from initcli.experiments import training

    d = datasets.load_data("tests/data_fns.py:classification", 0, 0, 0.0, None)
    torch.manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    twin = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    twin.load_state_dict(model.state_dict())
    got = training.fit(model, d, training.Schedule(5, 0.1, "sgd", None), seed=0)
    opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(twin(d.x_train), d.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        want = torch.nn.functional.cross_entropy(twin(d.x_val), d.y_val)
    assert got.val_loss == pytest.approx(float(want), rel=1e-6)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--data", "digits"],
            "Error: --data digits gives inputs of shape 64 per sample, and "
            "the model cannot take them",
        ),
        (
            ["--data", "tests/data_fns.py:regression"],
            "Error: --data tests/data_fns.py:regression gives inputs of shape 3 per sample",
        ),
        (["--seeds", "0"], "Error: --seeds 0 is out of range; give 1 to 100"),
        (["--optimizer", "lbfgs"], "Error: --optimizer must be adam or sgd, got 'lbfgs'"),
        (["--lr", "0"], "Error: --lr 0 is out of range"),
        (["--lr", "nan"], "Error: --lr nan is out of range"),
        (["--train-batch", "0"], "Error: --train-batch 0 is out of range"),
        (["--epochs", "2"], "Error: give --train STEPS or --epochs N, not both"),
        (["--data", "nope"], "Error: --data nope: give moons, digits, pkg.mod:name"),
    ],
)
def test_bad_values_exit_2(args: list[str], message: str) -> None:
    code, out, err = run("compare", MOONS, "-i", "kaiming", "--train", "5", *args)
    assert code == 2 and out == "", err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_steps_zero_exit_2() -> None:
    code, _, err = run("compare", MOONS, "-i", "kaiming", "--steps", "0")
    assert code == 2 and err == "Error: --train must be ≥ 1 step, got 0\n"


def test_output_count_mismatch_names_the_expected_shape() -> None:
    code, _, err = run("compare", "tests/data_models.py:regressor", "-i", "kaiming",
                       "--train", "5", "--data", "tests/data_fns.py:classification")  # fmt: skip
    assert code == 2
    assert err == (
        "Error: --data tests/data_fns.py:classification needs the model to give 2 logits per "
        "sample (one per class), i.e. (2, 2) on 2 samples; it gave (2, 1)\n"
    )


def test_digits_without_scikit_learn_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from initcli.cli import main\n"
        "sys.argv = ['initcli', 'compare', 'sample_models/digits_mlp.yaml', '-i', 'kaiming',"
        " '--train', '3', '--data', 'digits']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "Error: --data digits needs scikit-learn: pip install 'initcli[data]'\n"


def test_probe_seeds_spread_and_verdict_only_where_it_holds() -> None:
    data = _json("probe", "sample_models/relu20.yaml", "-i", "kaiming", "-i", "default",
                 "--seeds", "3")  # fmt: skip
    kaiming, default = data["schemes"]
    single = [
        _json("probe", "sample_models/relu20.yaml", "-i", "kaiming", "--seed", str(s))
        for s in range(3)
    ]
    assert kaiming["seeds_probe"]["std_ratios"] == [d["schemes"][0]["std_ratio"] for d in single]
    verdicts = [d["schemes"][0]["verdict"] for d in single]
    assert kaiming["seeds_probe"]["verdicts"] == verdicts
    expected = verdicts[0] if len(set(verdicts)) == 1 else None
    assert kaiming["seeds_probe"]["holds"] == expected
    assert default["seeds_probe"]["holds"] == "vanishing"
    ratios = kaiming["seeds_probe"]["std_ratios"]
    iv = kaiming["seeds_probe"]["std_ratio_interval"]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(ratios), scale=stats.sem(ratios))
    assert iv["n"] == 3 and iv["mean"] == pytest.approx(np.mean(ratios))
    assert (iv["low"], iv["high"]) == pytest.approx((low, high))
    assert kaiming["seeds_probe"]["std_ratio_min"] == min(ratios)


def test_probe_seeds_zero_exit_2() -> None:
    code, out, err = run("probe", MOONS, "-i", "kaiming", "--seeds", "0")
    assert code == 2 and out == "" and err == "Error: --seeds 0 is out of range; give 1 to 100\n"
