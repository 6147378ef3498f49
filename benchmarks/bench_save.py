"""Peak memory of saving a 1 GB model as safetensors: today's path against the streamed writer.

    python benchmarks/bench_save.py [--gib 1.0] [--json out.json]

Each variant runs in its own process: import torch (its RSS is "torch"), build an MLP of ~--gib
GiB of float32 weights (nn.Linear(4096, 4096) blocks, 64 MiB each), then save it:
  (a) `checkpoint.save_safetensors` as `--save` does today (safetensors.torch.save to bytes, then
      files.write_atomic);
  (b) `safetensors_writer.write_safetensors`: header first, then each tensor's bytes streamed
      into the temporary file.
Peak RSS is the child's own ru_maxrss, from wait4; the saved files are checked to read back equal.
Target (issue 13): (b) peaks at most torch + 1.3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

GIB = 1 << 30

CHILD = """\
import resource, sys
import torch
torch_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
from torch import nn
blocks = int(float(sys.argv[3]) * (1 << 30) // (4096 * 4096 * 4))
torch.manual_seed(0)
with torch.no_grad():
    model = nn.Sequential(*(nn.Linear(4096, 4096, bias=False) for _ in range(blocks)))
built_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if sys.argv[1] == "today":
    from initcli.weights import checkpoint
    checkpoint.save_safetensors(model, sys.argv[2], False, {"format": "pt"})
else:
    from initcli.weights.safetensors_writer import Slot, write_safetensors
    state = model.state_dict()
    slots = [Slot(k, v.dtype, tuple(v.shape)) for k, v in state.items()]
    write_safetensors(sys.argv[2], slots, iter(state.values()), {"format": "pt"})
print(torch_rss, built_rss, blocks * 4096 * 4096 * 4)
"""


def run(variant: str, path: Path, gib: float) -> dict[str, float]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, variant, str(path), str(gib)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out = proc.stdout.read()
    # wait4 rather than communicate(): it gives this child's own peak RSS.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{variant} failed with exit code {proc.returncode}")
    torch_rss, built_rss, model_bytes = (int(x) for x in out.split())
    return {
        "torch_gb": torch_rss / 1e9,
        "after_build_gb": built_rss / 1e9,
        "model_gb": model_bytes / 1e9,
        "peak_gb": usage.ru_maxrss * 1024 / 1e9,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for variant in ("today", "streamed"):
            path = Path(folder) / f"{variant}.safetensors"
            results[variant] = run(variant, path, options.gib)
        from safetensors.torch import load_file

        a, b = (
            load_file(Path(folder) / "today.safetensors"),
            load_file(Path(folder) / "streamed.safetensors"),
        )
        assert a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)
    for variant, r in results.items():
        over = r["peak_gb"] - r["torch_gb"]
        print(
            f"{variant:9} torch {r['torch_gb']:.2f} GB  model {r['model_gb']:.2f} GB  "
            f"after build {r['after_build_gb']:.2f} GB  peak {r['peak_gb']:.2f} GB  "
            f"(torch + {over:.2f} GB)"
        )
    if options.json:
        options.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
