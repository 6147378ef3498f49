"""Fuzz every data parser: hostile input ends in exit 0, 1 or 2, one Error: line, no harm."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import pickle
import resource
import signal
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import torch
import yaml
from conftest import ROOT, run
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

# --- what every example must satisfy ------------------------------------------------------------

# Wall-clock bound per example (SIGALRM, so a real hang is cut off, not only measured afterwards
# as hypothesis' deadline does; the seeds take 0.05-0.3 s, a loaded 2-core box needs headroom).
SECONDS = 10
# Peak resident memory of the whole test process (torch + transformers ≈ 0.7 GB to start with).
MAX_RSS_BYTES = 3 * 2**30

FAST = settings(
    max_examples=12,
    # No shrinking in the default run: a failure is reported as found, and an xfailed property
    # (a crash class fixed on another branch) costs one failing example, not a shrink.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    derandomize=True,
    database=None,
    deadline=None,  # SECONDS bounds time instead: it also interrupts a hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=False,
)
SLOW = settings(FAST, max_examples=400, phases=list(Phase))

SPEC = ROOT / "sample_models" / "mlp.yaml"

# A failing example holds whole model folders: hypothesis warns that printing it is long.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# Crash classes fixed on other helpers' branches of issue 17, not merged here yet.
DCP_BRANCH = "fixed on the DCP-unpickler branch (issue 17 items 1 and 6)"
HF_BRANCH = "fixed on the HF-folders branch (issue 17 items 2, 5, 7)"
INDEX_BRANCH = "fixed on the index branch (issue 17 item 8: index metadata, nesting)"
POLICY_BRANCH = "fixed on the policy branch (issue 17 item 8: duplicate keys, depth)"
OPEN = "open: found by this fuzz suite, not fixed on any branch yet"


class _TimedOut(BaseException):
    """Raised by SIGALRM: a BaseException, so neither initcli's nor click's handlers catch it."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise _TimedOut

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _digests(paths: list[Path]) -> dict[Path, str]:
    """sha256 of every file under `paths` (files, or folders walked)."""
    found: dict[Path, str] = {}
    for path in paths:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            found[file] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def check_run(
    args: list[str], inputs: list[Path], marker: Path | None = None, seconds: float = SECONDS
) -> tuple[int, str]:
    """Run the CLI in-process on hostile input and assert the contract; return (code, stderr).

    Exit 0, 1 or 2; on 2, stderr's last line is the one `Error:` line (only `Note:` lines may come
    before it), with no "unexpected" (an unhandled exception) and no traceback; the marker file
    is not created; every input file is byte-for-byte unchanged; time and memory stay bounded.
    """
    before = _digests(inputs)
    try:
        with _time_limit(seconds), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code, _out, err = run(*args)
    except _TimedOut:
        pytest.fail(f"initcli {' '.join(args)} ran past {seconds} s")
    except RecursionError:
        pytest.fail(f"initcli {' '.join(args)}: RecursionError escaped the CLI")
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err, err
    if code == 2:
        lines = err.rstrip("\n").split("\n")
        assert lines[-1].startswith("Error: "), err
        assert all(line.startswith("Note: ") for line in lines[:-1]), err
        # "Error: unexpected XError" is the CLI's wording for an unhandled exception (a parser's
        # own "found unexpected end of stream" is a fine message).
        assert not lines[-1].startswith("Error: unexpected "), err
        assert "INITCLI_DEBUG" not in lines[-1], err
    if marker is not None:
        assert not marker.exists(), f"{marker} was created: code ran from the input"
    assert _digests(inputs) == before, "an input file changed"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    assert rss < MAX_RSS_BYTES, f"peak RSS {rss / 2**30:.1f} GB"
    return code, err


def fuzz(
    make: Callable[[Seeds], st.SearchStrategy[Any]],
    body: Callable[[Seeds, Any], None],
    xfail: str | None = None,
    slow_xfail: str | None = None,
) -> tuple[Callable[..., None], Callable[..., None]]:
    """A property as two tests: FAST for the default run, SLOW (marked slow) for the long one.

    `make` builds the strategy from the seeds (a module fixture, drawn through st.data()), `body`
    runs one drawn case (with the seeds). `xfail` names the branch that fixes the crash classes
    this property still finds here; `slow_xfail` those only the long run finds.
    """

    def test(seeds: Seeds, data: st.DataObject) -> None:
        body(seeds, data.draw(make(seeds), label="case"))

    fast = FAST(given(data=st.data())(test))
    slow = pytest.mark.slow(SLOW(given(data=st.data())(test)))
    if xfail is not None:
        fast = pytest.mark.xfail(strict=False, reason=xfail)(fast)
    if xfail is not None or slow_xfail is not None:
        slow = pytest.mark.xfail(strict=False, reason=xfail or slow_xfail)(slow)
    return fast, slow


# --- mutation engines ----------------------------------------------------------------------------

# Byte strings that parsers trip over: JSON/YAML punctuation, extreme numbers, odd unicode.
INTERESTING = [
    b"\x00",
    b"\xff" * 8,
    b"\x7f\xff\xff\xff\xff\xff\xff\xff",
    b"\xff\xff\xff\xff\xff\xff\xff\x7f",
    b'"',
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"-1",
    b"1e309",
    b"NaN",
    b"18446744073709551616",
    b"9" * 5000,
    b"\\ud800",
    "é\u202e\U0001f600".encode(),
    b"\xc3\x28",
    b"&a [*a, *a]",
    b"!!python/object/apply:os.system ['true']",
    b"\n  - ",
    b"\t",
]


@st.composite
def byte_mutation(draw: st.DrawFn, seed: bytes, other: bytes = b"") -> bytes:
    """1-4 of: flip a bit, truncate, insert, duplicate a slice, splice in another seed's slice,
    overwrite with an interesting value."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "splice", "over"]))
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if kind == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.sampled_from(INTERESTING) | st.binary(min_size=1, max_size=8))
        elif kind == "duplicate":
            end = draw(st.integers(pos, n))
            data[pos:pos] = data[pos:end] * draw(st.integers(1, 3))
        elif kind == "splice":
            source = other or seed
            start = draw(st.integers(0, len(source)))
            data[pos:] = source[start:]
        else:
            value = draw(st.sampled_from(INTERESTING))
            data[pos : pos + len(value)] = value
    return bytes(data)


# Stand-ins, replaced in the dumped text: values json.dumps cannot write or would take long to.
_DEEP = "\x01DEEP\x01"
_BIGINT = "\x01BIGINT\x01"
_HUGE_STR = "\x01HUGESTR\x01"
_SPECIAL = {
    json.dumps(_DEEP): "[" * 100_000 + "]" * 100_000,
    json.dumps(_BIGINT): "9" * 5000,
    json.dumps(_HUGE_STR): json.dumps("x" * 2_000_000),
}

ODD_VALUES: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, -(2**63), 2**31, 2**63, 2**64, 10**30, -(10**30)]),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "x", "../x", "/etc/passwd", "\u202e", "\ud800", "\x00", "F32", "float32"]),
    st.text(max_size=12),
    st.sampled_from([_DEEP, _BIGINT, _HUGE_STR]),
    st.lists(st.integers(-3, 10**12), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.builds(lambda n: [[[n]]], st.integers()),
)


def _paths(obj: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield at
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from _paths(value, (*at, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            yield from _paths(value, (*at, i))


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return obj


@st.composite
def tree_mutation(draw: st.DrawFn, seed: Any) -> Any:
    """1-3 of: a value replaced (other type, extreme number, deep, huge, unicode), a key deleted,
    a key added, a list emptied or grown."""
    obj = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(obj))))
        kind = draw(st.sampled_from(["replace", "replace", "delete", "add", "grow"]))
        if kind == "replace" or (kind == "delete" and not path):
            obj = _replace(obj, path, draw(ODD_VALUES))
            continue
        parent = obj
        for key in path[:-1] if kind == "delete" else path:
            parent = parent[key]
        if kind == "delete":
            del parent[path[-1]]
        elif kind == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = draw(ODD_VALUES)
        elif kind == "grow" and isinstance(parent, list) and parent:
            parent.extend(copy.deepcopy(parent) * draw(st.integers(1, 50)))
        else:
            obj = _replace(obj, path, draw(ODD_VALUES))
    return obj


def dump_json(obj: Any, ascii_only: bool = True) -> bytes:
    text = json.dumps(obj, ensure_ascii=ascii_only)
    for stand_in, real in _SPECIAL.items():
        text = text.replace(stand_in, real)
    return text.encode("utf-8", "surrogatepass")


def dump_yaml(obj: Any) -> bytes:
    text = yaml.safe_dump(obj, allow_unicode=True, sort_keys=False)
    for stand_in, real in _SPECIAL.items():
        text = text.replace(yaml.safe_dump(json.loads(stand_in)).removesuffix("\n...\n"), real)
    return text.encode("utf-8", "surrogatepass")


JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


# --- seeds ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Seeds:
    safetensors: bytes
    pt: bytes  # a torch.save state dict
    hf: dict[str, bytes]  # a sharded save_pretrained folder: file name -> bytes
    dcp: dict[str, bytes]  # a dcp.save folder
    spec: bytes
    policy: bytes
    baseline: bytes  # the snapshot of SPEC_COPY, a path inside `spec_dir`
    spec_dir: Path  # holds spec.yaml, the target the baseline names


def _folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> Seeds:
    import torch.distributed.checkpoint as dcp
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    base = tmp_path_factory.mktemp("seeds")
    torch.manual_seed(0)
    state = {"fc.weight": torch.randn(3, 4), "fc.bias": torch.zeros(3)}
    save_file(state, base / "t.safetensors")
    torch.save({"state_dict": state, "epoch": 3}, base / "t.pt")

    hf_logging.set_verbosity_error()
    config = GPT2Config(n_layer=1, n_embd=8, n_head=2, vocab_size=16, n_positions=8)
    config.bos_token_id = config.eos_token_id = 0
    GPT2LMHeadModel(config).save_pretrained(base / "hf", max_shard_size="2KB")
    assert (base / "hf" / "model.safetensors.index.json").is_file()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        state = {"fc.weight": torch.randn(3, 4), "fc.bias": torch.zeros(3), "step": 5}
        dcp.save(state, checkpoint_id=base / "dcp", no_dist=True)

    spec_dir = base / "spec"
    spec_dir.mkdir()
    (spec_dir / "spec.yaml").write_bytes(SPEC.read_bytes())
    code, _, err = run("snapshot", str(spec_dir / "spec.yaml"), "-o", str(base / "b.json"))
    assert code == 0, err
    return Seeds(
        safetensors=(base / "t.safetensors").read_bytes(),
        pt=(base / "t.pt").read_bytes(),
        hf=_folder_bytes(base / "hf"),
        dcp=_folder_bytes(base / "dcp"),
        spec=SPEC.read_bytes(),
        policy=b"Linear: kaiming_normal:nonlinearity=relu\n'*.bias': zeros\n",
        baseline=(base / "b.json").read_bytes(),
        spec_dir=spec_dir,
    )


@contextmanager
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="initcli-fuzz-") as name:
        yield Path(name)


def write_folder(where: Path, files: dict[str, bytes]) -> Path:
    where.mkdir()
    for name, data in files.items():
        (where / name).write_bytes(data)
    return where


# --- safetensors header (single file) ------------------------------------------------------------

COMMANDS = st.sampled_from([("count",), ("inspect", "-f", "json")])


def _split_safetensors(data: bytes) -> tuple[dict[str, Any], bytes]:
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _pack_safetensors(header: bytes, body: bytes) -> bytes:
    return len(header).to_bytes(8, "little") + header + body


def _safetensors_case(data: bytes, command: tuple[str, ...]) -> None:
    with workdir() as d:
        file = d / "m.safetensors"
        file.write_bytes(data)
        check_run([command[0], str(file), *command[1:]], [file])


@st.composite
def _st_header(draw: st.DrawFn, seed: bytes) -> bytes:
    header, body = _split_safetensors(seed)
    mutated = dump_json(draw(tree_mutation(header)), draw(st.booleans()))
    if draw(st.booleans()):
        body = draw(byte_mutation(body)) if body else body
    return _pack_safetensors(mutated, body)


SAFETENSORS_DTYPES = ["F32", "F16", "BF16", "I64", "U8", "BOOL", "F4", "F8_E4M3", "C64", "X9"]


@st.composite
def _st_scratch_header(draw: st.DrawFn) -> bytes:
    header: dict[str, Any] = {}
    offset = 0
    for i in range(draw(st.integers(0, 4))):
        shape = draw(st.lists(st.integers(0, 6), max_size=4))
        size = draw(st.integers(0, 64))
        name = draw(st.sampled_from([f"l{i}.weight", f"l{i}.bias", "", "a" * 300, "\u202e"]))
        header[name] = {
            "dtype": draw(st.sampled_from(SAFETENSORS_DTYPES)),
            "shape": shape,
            "data_offsets": [offset, offset + size],
        }
        offset += size
    if draw(st.booleans()):
        header["__metadata__"] = draw(JSON_VALUES)
    body = draw(st.binary(min_size=0, max_size=offset + 8))
    return _pack_safetensors(dump_json(header), body)


test_safetensors_bytes, test_safetensors_bytes_slow = fuzz(
    lambda s: st.tuples(byte_mutation(s.safetensors), COMMANDS),
    lambda _, c: _safetensors_case(*c),
)
test_safetensors_header, test_safetensors_header_slow = fuzz(
    lambda s: st.tuples(_st_header(s.safetensors), COMMANDS),
    lambda _, c: _safetensors_case(*c),
)
test_safetensors_scratch, test_safetensors_scratch_slow = fuzz(
    lambda s: st.tuples(_st_scratch_header(), COMMANDS), lambda _, c: _safetensors_case(*c)
)


# --- torch.save state dicts (.pt, read with weights_only=True) ------------------------------------


def _pt_case(data: bytes, command: tuple[str, ...]) -> None:
    with workdir() as d:
        file = d / "m.pt"
        file.write_bytes(data)
        check_run([command[0], str(file), *command[1:]], [file], d / "MARKER")


test_pt_bytes, test_pt_bytes_slow = fuzz(
    lambda s: st.tuples(byte_mutation(s.pt), COMMANDS), lambda _, c: _pt_case(*c)
)

# --- shard index (model.safetensors.index.json + shards) -----------------------------------------

INDEX = "model.safetensors.index.json"


def _folder_case(files: dict[str, bytes], command: tuple[str, ...]) -> None:
    with workdir() as d:
        folder = write_folder(d / "model", files)
        check_run([command[0], str(folder), *command[1:]], [folder], d / "MARKER")


@st.composite
def _st_index(draw: st.DrawFn, seeds: Seeds) -> dict[str, bytes]:
    files = dict(seeds.hf)
    how = draw(st.sampled_from(["bytes", "tree", "tree", "scratch", "shard"]))
    if how == "bytes":
        files[INDEX] = draw(byte_mutation(files[INDEX]))
    elif how == "tree":
        files[INDEX] = dump_json(draw(tree_mutation(json.loads(files[INDEX]))), draw(st.booleans()))
    elif how == "scratch":
        files[INDEX] = dump_json(
            draw(
                st.fixed_dictionaries(
                    {"weight_map": JSON_VALUES | st.dictionaries(st.text(max_size=8), JSON_VALUES)},
                    optional={"metadata": JSON_VALUES},
                )
            )
        )
    else:  # a shard changed, dropped, or named by a path outside the folder
        shards = sorted(n for n in files if n.endswith(".safetensors"))
        shard = draw(st.sampled_from(shards))
        if draw(st.booleans()):
            files[shard] = draw(byte_mutation(files[shard]))
        else:
            del files[shard]
    return files


test_index, test_index_slow = fuzz(
    lambda s: st.tuples(_st_index(s), COMMANDS),
    lambda _, c: _folder_case(*c),
)


# --- HF config.json ------------------------------------------------------------------------------


@st.composite
def _st_config(draw: st.DrawFn, seeds: Seeds) -> dict[str, bytes]:
    files = dict(seeds.hf)
    how = draw(st.sampled_from(["bytes", "tree", "tree", "scratch"]))
    if how == "bytes":
        files["config.json"] = draw(byte_mutation(files["config.json"]))
    elif how == "tree":
        tree = draw(tree_mutation(json.loads(files["config.json"])))
        files["config.json"] = dump_json(tree, draw(st.booleans()))
    else:
        files["config.json"] = dump_json(draw(JSON_VALUES))
    return files


test_config, test_config_slow = fuzz(
    lambda s: st.tuples(_st_config(s), COMMANDS), lambda _, c: _folder_case(*c)
)


# --- DCP .metadata (pickle) and .distcp ----------------------------------------------------------


class _Screen(pickle.Unpickler):
    """Loads a pickle only if every global it names is one the genuine seed names.

    A byte-mutated pickle is run through this first and dropped (hypothesis.reject) if it names
    anything else, so no mutation can reach a callable the seed does not already use: mutating
    a pickle must never build a harmful payload by chance.
    """

    allowed: frozenset[tuple[str, str]] = frozenset()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"{module}.{name} is not in the seed")
        return super().find_class(module, name)


class _Record(pickle.Unpickler):
    seen: set[tuple[str, str]]

    def find_class(self, module: str, name: str) -> Any:
        self.seen.add((module, name))
        return super().find_class(module, name)


def _seed_globals(data: bytes) -> frozenset[tuple[str, str]]:
    record = _Record(io.BytesIO(data))
    record.seen = set()
    record.load()
    return frozenset(record.seen)


def _screened(data: bytes, allowed: frozenset[tuple[str, str]]) -> bool:
    screen = _Screen(io.BytesIO(data))
    screen.allowed = allowed
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            screen.load()
    except pickle.UnpicklingError as exc:
        return "is not in the seed" not in str(exc)
    except (Exception, RecursionError):
        return True  # fails the same way, naming nothing new, in initcli
    return True


class _Marker:
    """A marker-file payload: unpickling it creates an empty file at `path` (in a temp folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.path), "w"))


class _EvalMarker(_Marker):
    def __reduce__(self) -> tuple[Any, ...]:
        return (eval, (f"open({str(self.path)!r}, 'w').close()",))


def _slots(obj: Any, seen: set[int] | None = None) -> Iterator[tuple[Any, Any]]:
    """(container, key) for every value below `obj`: dataclass fields, dict values, list items."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        children = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    elif isinstance(obj, dict):
        children = list(obj.items())
    elif isinstance(obj, list):
        children = list(enumerate(obj))
    else:
        return
    for key, value in children:
        yield obj, key
        yield from _slots(value, seen)


def _put(container: Any, key: Any, value: Any) -> None:
    if dataclasses.is_dataclass(container):
        object.__setattr__(container, key, value)  # some DCP dataclasses are frozen
    else:
        container[key] = value


DCP_VALUES: st.SearchStrategy[Any] = st.one_of(
    ODD_VALUES.filter(lambda v: not (isinstance(v, str) and v.startswith("\x01"))),
    st.sampled_from(
        [
            torch.Size([-1]),
            torch.Size([2**40, 2**40]),
            torch.Size([]),
            torch.Size([0, 3]),
            torch.int8,
            torch.complex64,
            torch.bool,
            "../outside.distcp",
            "/etc/passwd",
            "sub/../../x",
            2**62,
        ]
    ),
)


@st.composite
def _st_dcp(draw: st.DrawFn, seeds: Seeds) -> dict[str, bytes]:
    files = dict(seeds.dcp)
    how = draw(st.sampled_from(["bytes", "tree", "tree", "distcp"]))
    if how == "bytes":
        data = draw(byte_mutation(files[".metadata"]))
        if not _screened(data, _seed_globals(files[".metadata"])):
            reject()
        files[".metadata"] = data
    elif how == "tree":
        meta = pickle.loads(files[".metadata"])  # the seed: written by dcp.save above
        for _ in range(draw(st.integers(1, 3))):
            slots = list(_slots(meta))
            if draw(st.integers(0, 9)) == 0:
                meta = draw(DCP_VALUES)  # the whole metadata is something else
                break
            container, key = draw(st.sampled_from(slots))
            _put(container, key, draw(DCP_VALUES))
        try:
            files[".metadata"] = pickle.dumps(meta)
        except Exception:  # torch's own __getstate__ refuses some values (a bad memory_format)
            reject()
    else:
        name = next(n for n in files if n.endswith(".distcp"))
        files[name] = draw(byte_mutation(files[name]))
    return files


test_dcp, test_dcp_slow = fuzz(
    lambda s: st.tuples(_st_dcp(s), COMMANDS),
    lambda _, c: _folder_case(*c),
)


# --- YAML spec -----------------------------------------------------------------------------------


def _spec_case(data: bytes, command: tuple[str, ...]) -> None:
    with workdir() as d:
        file = d / "spec.yaml"
        file.write_bytes(data)
        check_run([command[0], str(file), *command[1:]], [file])


YAML_SNIPPETS = st.sampled_from(
    [
        "&a [*a]",
        "!!python/object/apply:os.system ['true']",
        "!!binary aGVsbG8=",
        "<<: {units: 3}",
        "? [a, b]\n: c",
        "[" * 10_000 + "]" * 10_000,
        "{units: " * 2000 + "1" + "}" * 2000,
        "units: 1\nunits: 2",
        "0x7fffffffffffffff",
        ".inf",
        "~",
        "'\\ud800'",
        '"\\ud800"',
        "2001-12-14t21:59:43.10-05:00",
        "%YAML 1.1\n---",
        "--- a\n--- b",
    ]
)


@st.composite
def _st_yaml(draw: st.DrawFn, seed: bytes) -> bytes:
    how = draw(st.sampled_from(["bytes", "tree", "tree", "snippet", "scratch"]))
    if how == "bytes":
        return draw(byte_mutation(seed))
    if how == "tree":
        return dump_yaml(draw(tree_mutation(yaml.safe_load(seed))))
    if how == "snippet":
        lines = seed.decode().splitlines()
        at = draw(st.integers(0, len(lines)))
        key = draw(st.sampled_from(["", "units: ", "  - ", "input: ", "layers: ", "x: "]))
        lines.insert(at, key + draw(YAML_SNIPPETS))
        return "\n".join(lines).encode()
    return dump_yaml(draw(JSON_VALUES))


test_spec, test_spec_slow = fuzz(
    lambda s: st.tuples(_st_yaml(s.spec), COMMANDS), lambda _, c: _spec_case(*c)
)


# --- policy file (--init @file.yaml) -------------------------------------------------------------

SELECTORS = st.sampled_from(
    ["Linear", "Linear.weight", "*.bias", "ReLU", "Nope", "*", "", "a b", "_ConvNd", "\u202e"]
)
SCHEME_TEXTS = st.sampled_from(
    [
        "zeros",
        "normal:std=0.01",
        "normal:std=-1",
        "normal:std=1e400",
        "kaiming_normal:mode=fan_out,nonlinearity=relu",
        "xavier_normal:gain=tanh",
        "constant:val=nan",
        "uniform:a=2,b=1",
        "auto",
        "default",
        "nope",
        "normal:std",
        "normal:std=1,std=2",
        ":",
        "",
    ]
)


def _no_code(data: bytes) -> bool:
    # `fn:`/`method:` in a policy names code the user runs on purpose: never made by the fuzzer.
    return b"fn:" not in data and b"method:" not in data


@st.composite
def _st_policy(draw: st.DrawFn, seeds: Seeds) -> bytes:
    how = draw(st.sampled_from(["yaml", "scratch", "scratch"]))
    if how == "yaml":
        data = draw(_st_yaml(seeds.policy))
    else:
        rules = draw(st.lists(st.tuples(SELECTORS, SCHEME_TEXTS | JSON_VALUES), max_size=5))
        text = "".join(f"{json.dumps(k)}: {json.dumps(v)}\n" for k, v in rules)
        data = text.encode()
    if not _no_code(data):
        reject()
    return data


def _policy_case(_: Seeds, data: bytes) -> None:
    with workdir() as d:
        file = d / "policy.yaml"
        file.write_bytes(data)
        check_run(["inspect", str(SPEC), "--init", f"@{file}", "-f", "json"], [file, SPEC])


test_policy, test_policy_slow = fuzz(_st_policy, _policy_case)


# --- baseline JSON (initcli check FILE) ----------------------------------------------------------


def _only_safe_targets(data: bytes) -> bool:
    """A baseline names models to build: the fuzzer keeps every target a path to a file (a spec
    or a checkpoint), never a module or .py file it would import (mutations could name one)."""
    try:
        baseline = json.loads(data)
    except (ValueError, RecursionError):
        return True
    models = baseline.get("models") if isinstance(baseline, dict) else None
    for entry in models if isinstance(models, list) else []:
        target = entry.get("target") if isinstance(entry, dict) else None
        if isinstance(target, str):
            location = target.strip().rsplit(":", 1)[0] if ":" in target else target.strip()
            if "/" not in location or location.endswith(".py") or ":" in target:
                return False
    return True


@st.composite
def _st_baseline(draw: st.DrawFn, seeds: Seeds) -> bytes:
    how = draw(st.sampled_from(["bytes", "tree", "tree", "scratch"]))
    if how == "bytes":
        data = draw(byte_mutation(seeds.baseline))
    elif how == "tree":
        data = dump_json(draw(tree_mutation(json.loads(seeds.baseline))), draw(st.booleans()))
    else:
        data = dump_json(draw(JSON_VALUES))
    if not _only_safe_targets(data):
        reject()
    return data


def _baseline_case(seeds: Seeds, data: bytes) -> None:
    with workdir() as d:
        file = d / "b.json"
        file.write_bytes(data)
        check_run(["check", str(file)], [file, seeds.spec_dir], d / "MARKER")


test_baseline, test_baseline_slow = fuzz(_st_baseline, _baseline_case)


# --- table-driven: one hostile input per known crash class ---------------------------------------


def _sf_header(text: bytes) -> bytes:
    return _pack_safetensors(text, b"")


def _hf_with(seeds: Seeds, **files: bytes) -> dict[str, bytes]:
    out = dict(seeds.hf)
    out.update({k.replace("__", "."): v for k, v in files.items()})
    return out


def _index_with(seeds: Seeds, **changes: Any) -> dict[str, bytes]:
    index = json.loads(seeds.hf[INDEX])
    index.update(changes)
    return _hf_with(seeds, **{INDEX.replace(".", "__"): dump_json(index)})


def _config_with(seeds: Seeds, **changes: Any) -> dict[str, bytes]:
    config = json.loads(seeds.hf["config.json"])
    config.update(changes)
    return _hf_with(seeds, config__json=dump_json(config))


def _dcp_with(seeds: Seeds, change: Callable[[Any], Any]) -> dict[str, bytes]:
    meta = pickle.loads(seeds.dcp[".metadata"])  # the seed: written by dcp.save above
    return {**seeds.dcp, ".metadata": pickle.dumps(change(meta))}


def _storage(meta: Any, **fields: Any) -> Any:
    for info in meta.storage_data.values():
        for key, value in fields.items():
            object.__setattr__(info, key, value)
    return meta


def _laughs(depth: int) -> bytes:
    """A policy whose one rule's value is a YAML alias bomb: 9**depth items from ~40·depth bytes."""
    parts = [b"&a0 [x,x,x,x,x,x,x,x,x]"]
    parts += [b"&a%d [%s]" % (i, b",".join([b"*a%d" % (i - 1)] * 9)) for i in range(1, depth)]
    return b"Linear: [" + b", ".join(parts) + b"]\n"


@dataclasses.dataclass(frozen=True)
class Case:
    kind: str  # "file" (a .safetensors), "folder" (a model folder), "policy", "baseline"
    build: Callable[[Seeds, Path], Any]  # (seeds, marker path) -> bytes or {name: bytes}
    xfail: str | None = None
    seconds: float = SECONDS
    check: Callable[[int, str], None] | None = None  # more to assert on (code, stderr)


def _refused(code: int, err: str) -> None:
    assert code == 2, err


def _short(code: int, err: str) -> None:
    assert len(err) < 2000, f"a {len(err):,}-character error message"


def _no_passwd_size(code: int, err: str) -> None:
    size = Path("/etc/passwd").stat().st_size
    assert code == 2 and f"{size:,}" not in err, err


def _says(*words: str) -> Callable[[int, str], None]:
    """Refused (exit 2) with each of `words` in the one Error: line."""

    def check(code: int, err: str) -> None:
        assert code == 2, err
        for word in words:
            assert word in err, err

    return check


_NOT_SAFETENSORS = "m.safetensors is not a readable safetensors file: "

CASES: dict[str, Case] = {
    # safetensors header
    "safetensors-deep-nesting": Case(
        "file",
        lambda s, m: _sf_header(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        check=_says(
            _NOT_SAFETENSORS + "its header nests arrays or objects deeper than Python's JSON "
            "parser goes (about 1,000 levels); a safetensors header is 3 levels deep"
        ),
    ),
    "safetensors-5000-digit-int": Case(
        "file",
        lambda s, m: _sf_header(b'{"a": {"dtype": "F32", "shape": [' + b"9" * 5000 + b"]}}"),
        check=_says(
            _NOT_SAFETENSORS + "its header holds a number with more than 4,300 digits; "
            "not a safetensors header"
        ),
    ),
    "safetensors-entry-without-value": Case(
        "file",
        lambda s, m: _sf_header(b'{"a":}'),
        check=_says(_NOT_SAFETENSORS + "its header is not JSON (JSONDecodeError: Expecting value"),
    ),
    "safetensors-entry-cut-short": Case(
        "file",
        lambda s, m: _sf_header(b'{"a": {"dtype": '),
        check=_says(_NOT_SAFETENSORS + "its header is not JSON (JSONDecodeError: Expecting value"),
    ),
    "safetensors-offsets-10**40": Case(
        "file",
        lambda s, m: _sf_header(
            b'{"a": {"dtype": "U8", "shape": [%d], "data_offsets": [0, %d]}}' % (10**40, 10**40)
        ),
        check=_says(_NOT_SAFETENSORS + "tensor 'a' has a malformed shape or data_offsets"),
    ),
    "safetensors-empty-tensor-with-huge-dims": Case(
        "file",
        lambda s, m: _sf_header(
            b'{"a": {"dtype": "F32", "shape": [0, %d, %d], "data_offsets": [0, 0]}}'
            % (2**62, 2**62)
        ),
        check=_says(_NOT_SAFETENSORS + "tensor 'a' has a shape whose dimensions multiply past"),
    ),
    "safetensors-1500-dims-of-4000-digits": Case(
        "file",
        lambda s, m: _sf_header(
            b'{"a": {"dtype": "F32", "shape": [%s, 0], "data_offsets": [0, 0]}}'
            % b", ".join([b"9" * 4000] * 1500)
        ),
        seconds=3,
        check=_says(_NOT_SAFETENSORS + "tensor 'a' has a malformed shape or data_offsets"),
    ),
    "safetensors-5000-digit-name": Case(
        "file",
        lambda s, m: _pack_safetensors(
            b'{"l.%s.w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}' % (b"9" * 5000),
            b"\0",
        ),  # count reads it from the header alone; inspect refuses it (test_weights_errors)
    ),
    "safetensors-length-2**64-1": Case("file", lambda s, m: b"\xff" * 8 + s.safetensors[8:]),
    "safetensors-empty-header": Case("file", lambda s, m: _sf_header(b"{}")),
    "safetensors-metadata-not-strings": Case(
        "file", lambda s, m: _sf_header(b'{"__metadata__": {"a": [1, {"b": null}]}}')
    ),
    # shard index
    "index-metadata-not-a-mapping": Case("folder", lambda s, m: _index_with(s, metadata=[1, 2])),
    "index-weight-map-100k-deep": Case("folder", lambda s, m: _index_with(s, weight_map=_DEEP)),
    "index-5000-digit-total-size": Case(
        "folder", lambda s, m: _index_with(s, metadata={"total_size": _BIGINT})
    ),
    "index-shard-outside-folder": Case(
        "folder", lambda s, m: _index_with(s, weight_map={"x": "../../etc/passwd"}), None
    ),
    # config.json
    "config-n_layer-10000": Case("folder", lambda s, m: _config_with(s, n_layer=10_000), seconds=3),
    "config-auto_map-custom-code": Case(
        "folder",
        lambda s, m: _hf_with(
            s,
            config__json=dump_json(
                {"model_type": "fuzzmodel", "auto_map": {"AutoModel": "modeling.Fuzz"}}
            ),
            modeling__py=f"open({str(m)!r}, 'w').close()\n".encode(),
        ),
    ),
    # DCP .metadata: marker payloads (an empty file in the temp folder, nothing else)
    "dcp-payload-top-level": Case(
        "folder", lambda s, m: {**s.dcp, ".metadata": pickle.dumps(_Marker(m))}
    ),
    "dcp-payload-eval": Case(
        "folder", lambda s, m: {**s.dcp, ".metadata": pickle.dumps(_EvalMarker(m))}
    ),
    "dcp-payload-in-storage-data": Case(
        "folder",
        lambda s, m: _dcp_with(s, lambda meta: _storage(meta, offset=_Marker(m))),
    ),
    "dcp-payload-in-planner-data": Case(
        "folder",
        lambda s, m: _dcp_with(
            s, lambda meta: _put(meta, "planner_data", {"w": _Marker(m)}) or meta
        ),
    ),
    "dcp-not-metadata": Case("folder", lambda s, m: {**s.dcp, ".metadata": pickle.dumps({"a": 1})}),
    "dcp-path-outside": Case(
        "folder",
        lambda s, m: _dcp_with(s, lambda meta: _storage(meta, relative_path="/etc/passwd")),
        check=_no_passwd_size,
    ),
    "dcp-path-dotdot": Case(
        "folder",
        lambda s, m: _dcp_with(s, lambda meta: _storage(meta, relative_path="../x.distcp")),
        None,
        check=_refused,
    ),
    "dcp-corrupt-distcp": Case(
        "folder",
        lambda s, m: {**s.dcp, "__0_0.distcp": b"\x00" * len(s.dcp["__0_0.distcp"])},
    ),
    # policy file
    "policy-5000-deep": Case("policy", lambda s, m: b"Linear: " + b"[" * 5000 + b"]" * 5000),
    "policy-duplicate-keys": Case(
        "policy", lambda s, m: b"Linear: zeros\nLinear: ones\n", check=_refused
    ),
    "policy-5000-digit-key": Case("policy", lambda s, m: b"? " + b"9" * 5000 + b"\n: zeros\n"),
    "policy-5000-digit-value": Case("policy", lambda s, m: b"Linear: " + b"9" * 5000),
    "policy-alias-bomb": Case("policy", lambda s, m: _laughs(6), check=_short),
    # baseline
    "baseline-5000-digit-int": Case("baseline", lambda s, m: b'{"format": ' + b"9" * 5000 + b"}"),
    "baseline-100k-deep": Case("baseline", lambda s, m: b"[" * 100_000 + b"]" * 100_000),
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=False, reason=c.xfail)) if c.xfail else n
        for n, c in CASES.items()
    ],
)
def test_known_hostile_input(seeds: Seeds, name: str, tmp_path: Path) -> None:
    case = CASES[name]
    marker = tmp_path / "MARKER"
    built = case.build(seeds, marker)
    if case.kind == "folder":
        target = write_folder(tmp_path / "model", built)
        args = ["inspect" if "payload" in name or "distcp" in name else "count", str(target)]
        inputs = [target]
    else:
        target = (
            tmp_path
            / {"file": "m.safetensors", "policy": "p.yaml", "baseline": "b.json"}[case.kind]
        )
        target.write_bytes(built)
        inputs = [target]
        if case.kind == "policy":
            args = ["inspect", str(SPEC), "--init", f"@{target}", "-f", "json"]
        elif case.kind == "baseline":
            args = ["check", str(target)]
        else:
            args = ["count", str(target)]
    code, err = check_run(args, inputs, marker, case.seconds)
    if case.check is not None:
        case.check(code, err)
