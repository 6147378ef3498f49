"""initcli on big weights folders against the usual ways, each in its own process (run by hand).

    python benchmarks/bench_checkpoints.py [--size 7B|1B] [--dcp-size 1B|none] [--json out.json]
    python benchmarks/bench_checkpoints.py --tiny 100000,1000000 [--before SRC] [--json out.json]

(--tiny: files of many tiny F32 tensors, written from the header alone, and the wall time and
peak RSS of `count`, `count -f json` and `inspect -f json` on them; see `tiny_main`.)

Generates (nothing downloaded) a Llama-shaped bf16 checkpoint as sharded safetensors with a
`model.safetensors.index.json` (one shard per decoder layer: memory stays near one layer while
writing), and a Llama-shaped DCP folder (torch.distributed.checkpoint.save, single process), in a
temporary folder that is deleted at the end, whatever happens. Then, each in its own process,
wall time and peak RSS (the child's ru_maxrss, from wait4) of:
  `python -c "import torch"` (the floor), `initcli count`, `initcli inspect`, a plain
  `safe_open` loop reading every tensor and calling `torch.var_mean` (the streaming floor), the
  naive `safetensors.torch.load_file` + var_mean (skipped when the files exceed 60 % of the
  memory available),
  and `cat` of the files to /dev/null (the disk's or page cache's own rate, in GB/s).
The files are read once before timing, so every reader sees the same (warm) page cache.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (hidden, intermediate, layers, heads, vocab)
SHAPES = {
    "7B": (4096, 11008, 32, 32, 32000),
    "1B": (2048, 5632, 22, 32, 32000),
    "tiny": (256, 512, 2, 4, 1000),
}


def _layer(hidden: int, inter: int, i: int) -> dict[str, tuple[int, ...]]:
    p = f"model.layers.{i}."
    return {
        p + "self_attn.q_proj.weight": (hidden, hidden),
        p + "self_attn.k_proj.weight": (hidden, hidden),
        p + "self_attn.v_proj.weight": (hidden, hidden),
        p + "self_attn.o_proj.weight": (hidden, hidden),
        p + "mlp.gate_proj.weight": (inter, hidden),
        p + "mlp.up_proj.weight": (inter, hidden),
        p + "mlp.down_proj.weight": (hidden, inter),
        p + "input_layernorm.weight": (hidden,),
        p + "post_attention_layernorm.weight": (hidden,),
    }


def _groups(size: str) -> list[dict[str, tuple[int, ...]]]:
    hidden, inter, layers, _heads, vocab = SHAPES[size]
    groups = [{"model.embed_tokens.weight": (vocab, hidden)}]
    groups += [_layer(hidden, inter, i) for i in range(layers)]
    groups.append({"model.norm.weight": (hidden,), "lm_head.weight": (vocab, hidden)})
    return groups


@functools.cache
def _tensor(shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """Random bf16 values, drawn once per shape and reused by every layer (drawing 7B normals
    would take minutes; what is timed is reading them)."""
    import torch

    if len(shape) == 1:
        return torch.ones(shape, dtype=torch.bfloat16)
    return torch.empty(shape, dtype=torch.bfloat16).normal_(0.0, 0.02)


def write_safetensors(folder: Path, size: str) -> int:
    from safetensors.torch import save_file

    groups = _groups(size)
    weight_map, total, params = {}, 0, 0
    for i, group in enumerate(groups):
        name = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        # Copies: safetensors refuses tensors that share memory.
        tensors = {k: _tensor(s).clone() for k, s in group.items()}
        save_file(tensors, folder / name, metadata={"format": "pt"})
        for k, t in tensors.items():
            weight_map[k] = name
            total += t.numel() * t.element_size()
            params += t.numel()
        del tensors
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return params


def write_dcp(folder: Path, size: str) -> int:
    import warnings

    import torch.distributed.checkpoint as dcp

    state = {k: _tensor(s).clone() for g in _groups(size) for k, s in g.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dcp.save({"model": state}, checkpoint_id=folder, no_dist=True)
    return sum(t.numel() for t in state.values())


def run(
    argv: list[str],
    env: dict[str, str] | None = None,
    timeout: float | None = None,
    cwd: Path = ROOT,
) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS in MB, exit code and the stderr tail of one child process (its
    stdout goes to /dev/null); past `timeout` seconds it is killed (exit code -9)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, cwd=cwd, env=env)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if timeout is not None and time.perf_counter() - start > timeout:
                proc.kill()
                _pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        wall = time.perf_counter() - start
        err.seek(0)
        text = err.read().decode(errors="replace")
    return wall, usage.ru_maxrss / 1024, proc.returncode, text[-400:]


PLAIN_LOOP = """
import sys, torch
from pathlib import Path
from safetensors import safe_open
for f in sorted(Path(sys.argv[1]).glob("*.safetensors")):
    with safe_open(str(f), framework="pt") as h:
        for k in h.keys():
            t = h.get_tensor(k)
            torch.var_mean(t.float() if t.dtype == torch.bfloat16 else t)
"""

NAIVE = """
import sys, torch
from pathlib import Path
from safetensors.torch import load_file
state = {}
for f in sorted(Path(sys.argv[1]).glob("*.safetensors")):
    state.update(load_file(str(f)))
for t in state.values():
    torch.var_mean(t.float() if t.dtype == torch.bfloat16 else t)
"""


# --- many tiny tensors: `count` from the header alone ------------------------------------------

# How the tiny tensors are named: one module per tensor (`layers.7.weight`), all at the root
# (`t7`: one module holding them all), or 15,000 distinct layouts (`blocks.7.p7`).
TINY_LAYOUTS = ("modules", "root", "distinct")


def tiny_entries(n: int, layout: str) -> list[tuple[str, tuple[int, ...]]]:
    """`n` tensors of shape (2,), named as TINY_LAYOUTS says."""
    name = {
        "modules": "layers.{i}.weight",
        "root": "t{i}",
        "distinct": "blocks.{i}.p{j}",
    }[layout]
    return [(name.format(i=i, j=i % 15_000), (2,)) for i in range(n)]


def write_header_file(path: Path, entries: list[tuple[str, tuple[int, ...]]]) -> int:
    """A safetensors file of F32 zeros as safetensors.torch.save_file lays it out (names sorted,
    no whitespace), written from its header alone: 10⁶ entries in seconds, where save_file needs
    10⁶ torch tensors first. The data is a hole (sparse). Returns the element count."""
    header, offset, elements = {}, 0, 0
    for name, shape in sorted(entries):
        numel = 1
        for d in shape:
            numel *= d
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [offset, offset + 4 * numel],
        }
        offset += 4 * numel
        elements += numel
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as out:
        out.write(len(raw).to_bytes(8, "little") + raw)
        out.truncate(8 + len(raw) + offset)
    return elements


def tiny_main(args: argparse.Namespace) -> list[dict[str, object]]:
    """`count` (table and JSON) and `inspect` (JSON) of files of many tiny tensors, with this
    checkout's initcli and, with --before, another source tree's (e.g. `git archive main`)."""
    rows: list[dict[str, object]] = []
    trees = [("now", None)] + ([("before", str(args.before))] if args.before else [])
    work = Path(tempfile.mkdtemp(prefix="initcli-tiny-", dir=args.dir))
    try:
        for n in args.tiny:
            for layout in args.layouts:
                file = work / f"{layout}-{n}.safetensors"
                t0 = time.perf_counter()
                elements = write_header_file(file, tiny_entries(n, layout))
                print(f"# {file.name}: {elements:,} elements, {time.perf_counter() - t0:.1f} s")
                out = str(work / "out")
                commands = {
                    "count": ["count", str(file), "-q"],
                    "count -f json": ["count", str(file), "-q", "-f", "json", "-o", out, "--force"],
                }
                if n <= args.inspect_max:
                    commands["inspect -f json"] = [
                        "inspect",
                        str(file),
                        "-q",
                        "-f",
                        "json",
                        "-o",
                        out,
                        "--force",
                    ]
                for tree, source in trees:
                    env = dict(os.environ)
                    if source:
                        env["PYTHONPATH"] = source
                    for what, argv in commands.items():
                        cmd = [sys.executable, "-m", "initcli", *argv]
                        # `-m` puts the working directory first on sys.path: run in the tree.
                        where = Path(source) if source else ROOT
                        wall, rss, code, tail = run(cmd, env, args.timeout, where)
                        row = {
                            "tensors": n,
                            "layout": layout,
                            "what": what,
                            "code": tree,
                            "wall_s": round(wall, 2),
                            "peak_rss_mb": round(rss),
                            "exit": code,
                        }
                        rows.append(row)
                        print(json.dumps(row), flush=True)
                        if code not in (0, -9):
                            print(tail, file=sys.stderr)
                file.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _write(kind: str, folder: Path, size: str) -> int:
    done = subprocess.run(
        [sys.executable, __file__, "--write", kind, str(folder), size],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SHAPES), default="7B")
    parser.add_argument("--dcp-size", choices=[*sorted(SHAPES), "none"], default="1B")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to write (a temp folder in it)"
    )
    parser.add_argument(
        "--write", nargs=3, metavar=("KIND", "FOLDER", "SIZE"), help=argparse.SUPPRESS
    )
    parser.add_argument(
        "--tiny",
        type=lambda text: [int(n) for n in text.split(",")],
        help="instead: files of N tiny tensors (e.g. 100000,1000000), count and inspect",
    )
    parser.add_argument("--layouts", nargs="+", choices=TINY_LAYOUTS, default=list(TINY_LAYOUTS))
    parser.add_argument("--inspect-max", type=int, default=100_000, help="--tiny: inspect up to N")
    parser.add_argument("--before", type=Path, help="--tiny: also time this initcli source tree")
    parser.add_argument("--timeout", type=float, default=300.0, help="--tiny: seconds per run")
    args = parser.parse_args()
    if args.tiny:
        summary = {
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "load_before": os.getloadavg(),
            "rows": tiny_main(args),
            "load_after": os.getloadavg(),
        }
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
        return
    if args.write:
        # In a child, so that this process never imports torch: a forked child's ru_maxrss
        # would otherwise start at the parent's size.
        kind, folder, size = args.write
        print((write_dcp if kind == "dcp" else write_safetensors)(Path(folder), size))
        return
    py = sys.executable
    initcli = [py, "-m", "initcli"]
    rows: list[dict[str, object]] = []

    def bench(label: str, argv: list[str], gb: float | None = None) -> None:
        wall, rss, code, tail = run(argv)
        row = {"what": label, "wall_s": round(wall, 3), "peak_rss_mb": round(rss), "exit": code}
        if gb:
            row["gb_per_s"] = round(gb / wall, 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if code != 0:
            print(tail, file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="initcli-bench-", dir=args.dir))
    try:
        st = work / "st"
        st.mkdir()
        t0 = time.perf_counter()
        params = _write("st", st, args.size)
        files = sorted(str(f) for f in st.glob("*.safetensors"))
        gb = sum(os.path.getsize(f) for f in files) / 1e9
        print(f"# wrote {params:,} params, {gb:.2f} GB in {time.perf_counter() - t0:.1f} s")
        subprocess.run(["cat", *files], stdout=subprocess.DEVNULL, check=True)  # warm the cache
        bench("import torch", [py, "-c", "import torch"])
        bench("cat > /dev/null", ["cat", *files], gb)
        bench("initcli count", [*initcli, "count", str(st), "-q", "--format", "json"])
        out = str(work / "inspect.json")
        bench("initcli inspect", [*initcli, "inspect", str(st), "-q", "-o", out, "-f", "json"], gb)
        bench("safe_open loop + var_mean", [py, "-c", PLAIN_LOOP, str(st)], gb)
        with open("/proc/meminfo") as info:
            free = next(int(x.split()[1]) for x in info if x.startswith("MemAvailable")) / 1e6
        if gb < 0.6 * free:
            bench("load_file + var_mean (naive)", [py, "-c", NAIVE, str(st)], gb)
        else:
            rows.append({"what": "load_file + var_mean (naive)", "skipped": f"needs > {gb:.1f} GB"})
        shutil.rmtree(st)
        if args.dcp_size != "none":
            d = work / "dcp"
            d.mkdir()
            dparams = _write("dcp", d, args.dcp_size)
            dgb = sum(f.stat().st_size for f in d.iterdir()) / 1e9
            print(f"# wrote DCP {dparams:,} params, {dgb:.2f} GB")
            bench("initcli count (DCP)", [*initcli, "count", str(d), "-q", "--format", "json"])
            out = str(work / "inspect-dcp.json")
            bench(
                "initcli inspect (DCP)",
                [*initcli, "inspect", str(d), "-q", "-o", out, "-f", "json"],
                dgb,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "size": args.size,
        "rows": rows,
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
