"""Issue 17 (items 5, 7, 8): `method:`/`fn:` that rebuild the model, hostile `--data`, sweeps
that cannot fit: each is one `Error:` line and exit 2, before anything large is allocated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, run

from initcli.experiments import sweep

MOONS = "sample_models/moons.yaml"
HOSTILE = "tests/data_fns_hostile.py"
INITCLI = str(Path(sys.executable).with_name("initcli"))
# Subprocesses run under this address-space limit, so an allocation the checks miss fails
# there (as torch's RuntimeError) instead of swapping the machine; ~650 MB is torch itself.
ADDRESS_LIMIT = 4 * 2**30


def _error(code: int, err: str, *words: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert "unexpected" not in err and "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# --- method: / fn: --------------------------------------------------------------------------

INIT_MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))

    def drop_layer(self) -> None:
        del self.fc2

    def widen(self) -> None:
        self.fc1 = nn.Linear(4, 50)

    def grow(self) -> None:
        self.extra = nn.Linear(2, 2)

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.fc1.weight)


def no_bias(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        module.bias = None
"""


@pytest.fixture
def init_models(tmp_path: Path) -> Path:
    path = tmp_path / "init_models.py"
    path.write_text(textwrap.dedent(INIT_MODELS))
    return path


@pytest.mark.parametrize("name", ["__init__", "_apply", "_private", "__call__"])
def test_private_method_is_refused_before_anything_runs(name: str) -> None:
    code, out, err = run("inspect", "sample_models/mlp.py:mlp", "--init", f"method:{name}")
    line = _error(code, err, f"method:{name}", "public method", "method:reset_parameters")
    assert out == "" and "init_weights" in line


@pytest.mark.parametrize(
    ("init", "words"),
    [
        (
            "method:drop_layer",
            ["Net.drop_layer", "removed fc2.weight, fc2.bias", "37 before, 25 after"],
        ),
        ("method:widen", ["reshaped fc1.weight from 5×4 to 50×4"]),
        ("method:grow", ["added extra.weight, extra.bias"]),
        ("fn:{path}:no_bias", ["no_bias", "removed fc1.bias, fc2.bias", "rebuild the model"]),
    ],
)
def test_init_code_that_changes_the_parameters_is_an_error(
    init_models: Path, init: str, words: list[str]
) -> None:
    for command in ("inspect", "probe"):
        code, _, err = run(command, f"{init_models}:Net", "--init", init.format(path=init_models))
        _error(code, err, *words)


def test_init_code_that_only_sets_values_still_works(init_models: Path) -> None:
    code, out, err = run("inspect", f"{init_models}:Net", "--init", "method:reset_parameters")
    assert code == 0, err
    assert "fc1.weight" in out


# --- --data -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "words"),
    [
        ("nan_features", ["X[7, 1] is nan", "finite"]),
        ("inf_features", ["X[3, 0] is -inf"]),
        ("numpy_nan", ["X[11, 1] is nan"]),
        ("float64_overflow", ["X[6, 1] is 1e+300", "float32"]),
        ("nan_val_features", ["validation X[4, 0] is nan"]),
        ("complex_features", ["X is complex (complex64)", "imaginary", "X[0, 0]"]),
        ("complex_real_only", ["X is complex", "first nonzero at X[2, 1]"]),
        ("nan_labels", ["y[5] is nan"]),
        ("inf_regression", ["y[9] is inf"]),
        ("negative_labels", ["y[2] is -1", "≥ 0"]),
        ("length_mismatch", ["X has 20 samples and y 19"]),
        ("val_length_mismatch", ["validation X has 10 samples and validation y 9"]),
        ("empty_validation", ["validation split has no samples"]),
        ("sparse_features", ["X is a sparse_coo tensor", "x.to_dense()"]),
        ("sparse_labels", ["y is a sparse_coo tensor", "y.to_dense()"]),
        ("nested_tensor", ["X is a nested tensor", "to_padded_tensor"]),
        ("quantized", ["X is a quantized tensor", "dequantize"]),
        ("meta_tensors", ["X is on device meta", "x.cpu()"]),
        ("object_array", ["X is an array of dtype object", "give numbers"]),
        ("string_features", ["X, y are not tensors"]),
        ("zero_rows", ["0 sample(s)"]),
        ("scalar_features", ["X is a scalar"]),
        ("huge_lazy", ["1,000,000,000 samples of 1,000 values", "free", "smaller data set"]),
        ("huge_dataset", ["1,000,000,000 items", "1,000,000", "(X, y)"]),
        ("big_items", ["1,000 samples of 1,000,000,000 values", "free"]),
        ("raises_system_exit", ["sys.exit(3)"]),
        ("raises_keyboard_interrupt", ["KeyboardInterrupt", "not a Ctrl-C"]),
        ("raises_base_exception", ["BaseException: weird"]),
        ("returns_none", ["gave a NoneType"]),
        ("triple", ["gave a tuple"]),
    ],
)
def test_hostile_data_is_refused_before_training(factory: str, words: list[str]) -> None:
    start = time.perf_counter()
    code, out, err = run(
        "compare", MOONS, "-i", "kaiming_normal", "--train", "5", "--data", f"{HOSTILE}:{factory}"
    )
    _error(code, err, f"--data {HOSTILE}:{factory}" if "raises" not in factory else factory, *words)
    assert "accuracy" not in out and "nan" not in out
    assert time.perf_counter() - start < 10


def test_good_numpy_and_bool_labels_still_train() -> None:
    for factory in ("numpy_ok", "bool_labels"):
        code, out, err = run(
            "compare",
            MOONS,
            "-i",
            "kaiming_normal",
            "--train",
            "3",
            "--data",
            f"{HOSTILE}:{factory}",
        )
        assert code == 0, err
        assert "accuracy" in out


# --- --sweep ----------------------------------------------------------------------------------


def test_sweep_point_count_is_bounded_before_parsing() -> None:
    widths = ",".join(str(w) for w in range(1, 10**6 + 1))
    start = time.perf_counter()
    code, _, err = run("probe", MOONS, "-i", "kaiming_normal", "--sweep", f"layers.units={widths}")
    _error(code, err, "1,000,000 widths", f"{sweep.MAX_WIDTHS}")
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("sweep_text", "words"),
    [
        ("width=0,8,16", ["≥ 1, got 0"]),
        ("width=-8,8,16", ["≥ 1, got -8"]),
        ("width=8,8,16", ["strictly increasing"]),
        ("nosuch=8,16,32", ["does not accept --sweep nosuch", "width"]),
        ("width=8,x,32", ["integers"]),
        ("width=8,16,99999999999999999999999999999999", ["at most 2**40", "1e+32"]),
    ],
)
def test_bad_sweeps_are_one_line(sweep_text: str, words: list[str]) -> None:
    code, _, err = run(
        "probe", "sample_models/width_mlp.py:MLP", "-i", "default", "--sweep", sweep_text
    )
    _error(code, err, *words)


@pytest.mark.parametrize(
    ("target", "key", "step"),
    [
        (MOONS, "layers.units", False),
        ("sample_models/width_mlp.py:MLP", "width", False),
        ("sample_models/width_mlp.py:MLP", "width", True),
    ],
)
def test_sweep_that_cannot_fit_is_refused_before_anything_is_built(
    target: str, key: str, step: bool
) -> None:
    args = ["probe", target, "-i", "kaiming_normal", "--sweep", f"{key}=8,16,1000000000"]
    start = time.perf_counter()
    code, out, err = run(*args, *(["--step"] if step else []))
    line = _error(code, err, f"--sweep {key}=1000000000", "parameters", "free", "smaller widths")
    assert ("Adam" in line) == step
    assert out == ""
    assert time.perf_counter() - start < 5


# Sets the limit, then becomes the initcli script (exec keeps the pid, so wait4's usage is its).
# The child reports its own peak (VmHWM of its memory map) at exit: ru_maxrss of a child would
# include the parent's pages at fork time, which in a long pytest run exceed the bound itself.
_UNDER_LIMIT = """
import atexit, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
_OUT = sys.argv[2]
def _peak():
    with open("/proc/self/status") as status, open(_OUT, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM")).split()[1])
atexit.register(_peak)
sys.argv = ["initcli", *sys.argv[3:]]
from initcli.cli import main
main()
"""


def _measured(args: list[str], tmp_path: Path) -> tuple[int, str, float]:
    """Run initcli under ADDRESS_LIMIT: (exit code, stderr, its own peak RSS in bytes)."""
    err_path, peak_path = tmp_path / "stderr", tmp_path / "peak"
    with open(os.devnull, "wb") as out, err_path.open("wb") as err:
        code = subprocess.run(
            [sys.executable, "-c", _UNDER_LIMIT, str(ADDRESS_LIMIT), str(peak_path), *args],
            stdout=out,
            stderr=err,
            cwd=ROOT,
            check=False,
        ).returncode
    return code, err_path.read_text(), int(peak_path.read_text()) * 1024


@pytest.mark.parametrize(
    "args",
    [
        # The case: 4 GB in 9 s before; now refused by arithmetic on the spec.
        [MOONS, "--sweep", "layers.units=8,16,1000000000"],
        # A Python target: the point is measured on the meta device.
        ["sample_models/width_mlp.py:MLP", "--sweep", "width=8,16,100000"],
    ],
)
def test_refused_sweep_stays_small(args: list[str], tmp_path: Path) -> None:
    code, err, peak = _measured(["probe", *args, "-i", "kaiming_normal"], tmp_path)
    _error(code, err, "--sweep", "free; sweep smaller widths")
    assert peak < 2**30


WIDE = """
import torch
from torch import nn


class WideOutput(nn.Module):
    '''Few parameters, an output of batch × 8 × width: the parameter check cannot see it.'''

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)
        self.width = width

    def forward(self, x):
        return self.fc(x).repeat(1, self.width)


class Hoarder(nn.Module):
    '''Allocates on the CPU whatever the default device: a meta build cannot size it.'''

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)
        self.cache = torch.ones(width, 1024, device="cpu")

    def forward(self, x):
        return self.fc(x)
"""


@pytest.mark.parametrize(
    ("name", "doing"),
    [
        ("WideOutput", "running the forward pass on 256×16"),
        ("Hoarder", "building"),
    ],
)
def test_allocation_the_estimate_misses_ends_as_out_of_memory(
    tmp_path: Path, name: str, doing: str
) -> None:
    model = tmp_path / "wide.py"
    model.write_text(textwrap.dedent(WIDE))
    args = ["probe", f"{model}:{name}", "-i", "kaiming_normal", "--sweep", "width=8,16,10000000"]
    code, err, peak = _measured(args, tmp_path)
    _error(code, err, "at --sweep width=10000000: ran out of memory while", doing, "ulimit -v")
    assert peak < ADDRESS_LIMIT


def test_full_batch_training_out_of_memory_is_the_documented_message(tmp_path: Path) -> None:
    model = tmp_path / "widenet.py"
    model.write_text(
        "from torch import nn\n\n\ndef net():\n"
        "    return nn.Sequential(nn.Linear(2, 100_000), nn.ReLU(), nn.Linear(100_000, 2))\n"
    )
    args = ["compare", f"{model}:net", "-i", "kaiming_normal", "--train", "2"]
    code, err, _ = _measured([*args, "--data", f"{HOSTILE}:wide_rows"], tmp_path)
    _error(code, err, "ran out of memory while training on --data", "160,000 samples per pass")


def test_probe_of_a_layer_output_past_2_to_the_24_values() -> None:
    # 256 × 65,537 values: float32 linspace rounded the histogram's last index out of range.
    code, out, err = run(
        "probe",
        "sample_models/mlp.py:mlp",
        "--arg",
        "depth=1",
        "--arg",
        "width=65537",
        "-i",
        "kaiming_normal",
    )
    assert code == 0, err
    assert "256×4" in out


def test_sweep_within_memory_still_runs() -> None:
    code, out, err = run(
        "probe", "sample_models/width_mlp.py:MLP", "-i", "default", "--sweep", "width=8,16,32"
    )
    assert code == 0, err
    assert "width" in out


def test_out_of_memory_words_cover_torch_errors() -> None:
    from initcli import memory

    assert memory.is_out_of_memory(MemoryError())
    assert memory.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory. Tried ..."))
    assert memory.is_out_of_memory(
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")
    )
    assert not memory.is_out_of_memory(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
