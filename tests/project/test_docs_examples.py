"""Every command example in README.md and docs/**/*.md runs and prints what the page shows.

The convention (docs/development.md, "Examples in the docs"): a fenced block whose info string is
`console` is an example. Each line starting with `$ ` is a command (a trailing `\\` continues it);
the lines after it, up to the next `$ `, are what it prints, stdout then stderr. In the shown
output a line `...` stands for any number of lines and `...` inside a line for any text; blanks at
line ends do not count. A command that shows no output must still exit 0. The exit code must be 2
where the output shows `Error:`, 1 where it shows `Check failed`, else 0, unless an `echo $?`
shows it. Each block runs in a fresh folder that links the repository's sample_models/,
benchmarks/, baselines/ and tests/; an HTML comment on the line before the fence,
`<!-- docs-test: setup=NAME slow -->`, names a setup below that writes the block's other files
first, and `slow` moves a block out of the default run.

`initcli ...` commands (with `> /dev/null` and `; echo $?` at most) run in-process, so the default
run stays fast; any other shell line runs in bash with the installed `initcli` on PATH.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import run

ROOT = Path(__file__).resolve().parents[2]
LINKED = ("sample_models", "benchmarks", "baselines", "tests")
DIRECTIVE = re.compile(r"<!--\s*docs-test:(.*?)-->")


def documents() -> list[Path]:
    """README.md and every Markdown page of the site (new pages are picked up by themselves)."""
    pages = sorted(p for p in (ROOT / "docs").rglob("*.md") if "hooks" not in p.parts)
    return [ROOT / "README.md", *pages]


@dataclass(frozen=True)
class Fence:
    path: Path
    line: int  # 1-based line of the opening fence
    info: str
    body: list[str]
    directive: str  # the text of a `<!-- docs-test: ... -->` on the line before, or ""


def fences(path: Path) -> list[Fence]:
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Fence] = []
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not opening:
            i += 1
            continue
        indent, marker, info = opening.groups()
        before = lines[i - 1] if i else ""
        directive = DIRECTIVE.search(before)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(marker):
            j += 1
        body = [line.removeprefix(indent) for line in lines[i + 1 : j]]
        said = directive.group(1).strip() if directive else ""
        found.append(Fence(path, i + 1, info, body, said))
        i = j + 1
    return found


@dataclass(frozen=True)
class Step:
    command: str
    shown: list[str]


def steps(fence: Fence) -> list[Step]:
    found: list[Step] = []
    lines = iter(fence.body)
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + next(lines).strip()
            found.append(Step(command, []))
        elif found:
            found[-1].shown.append(line)
        else:
            raise AssertionError(f"{fence.path.name}:{fence.line}: output before the first `$ `")
    return found


def examples() -> list[Fence]:
    return [f for path in documents() for f in fences(path) if f.info == "console"]


# --- what a block needs besides the repository's files --------------------------------------------

MYPKG = '''\
"""A project's model, as the CI page's example has it."""

from torch import nn


class Classifier(nn.Module):
    def __init__(self, width: int = 64) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(784, width), nn.ReLU(), nn.Linear(width, width), {extra}nn.ReLU()
        )
        self.head = nn.Linear(width, 10{head})

    def forward(self, x):
        return self.head(self.encoder(x))
'''


def _mypkg(folder: Path, *, changed: bool = False) -> None:
    (folder / "mypkg").mkdir()
    (folder / "mypkg/__init__.py").write_text("")
    extra, head = ("nn.LayerNorm(width), ", ", bias=False") if changed else ("", "")
    (folder / "mypkg/models.py").write_text(MYPKG.format(extra=extra, head=head))


def setup_mypkg(folder: Path) -> None:
    """mypkg.models:Classifier, an MLP for 28×28 images, and the project's own baselines/."""
    (folder / "baselines").unlink()  # the project's own, not this repository's
    (folder / "baselines").mkdir()
    _mypkg(folder)


def setup_mypkg_changed(folder: Path) -> None:
    """The project above with its baseline at widths 64 and 128 recorded, then the model changed:
    a LayerNorm added to the encoder, the head's bias dropped."""
    setup_mypkg(folder)
    for width, more in (("64", ()), ("128", ("--update",))):
        code, _, err = run(
            "snapshot", "mypkg.models:Classifier", "--arg", f"width={width}",
            "-o", "baselines/models.json", *more,
        )  # fmt: skip
        assert code == 0, err
    for name in [n for n in sys.modules if n == "mypkg" or n.startswith("mypkg.")]:
        del sys.modules[name]  # the next import must see the changed file
    shutil.rmtree(folder / "mypkg")
    importlib.invalidate_caches()
    _mypkg(folder, changed=True)


def setup_bad_yaml(folder: Path) -> None:
    """A spec with a misspelt key on line 4, in layer 2."""
    (folder / "bad.yaml").write_text(
        "input: 4\nlayers:\n  - {units: 5, activation: relu}\n  - {unit: 3}\n"
    )


def setup_evil_pt(folder: Path) -> None:
    """A state dict with a payload whose unpickling would call os.system."""
    import torch

    class RunsCode:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return os.system, ("touch pwned",)

    torch.save({"weight": torch.ones(2, 2), "payload": RunsCode()}, folder / "evil.pt")


def setup_lenet_trained(folder: Path) -> None:
    """LeNet-5 under its default init at seed 0 (what `initcli inspect` builds), trained for 100
    SGD steps (lr 0.1) on one fixed batch of 8 random images and labels, saved as a state dict."""
    import torch

    from sample_models.lenet import LeNet5

    torch.manual_seed(0)
    model = LeNet5()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(8, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: a second thread only adds contention
    try:
        for _ in range(100):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    torch.save(model.state_dict(), folder / "lenet-trained.pt")


def setup_gpt2_finetuned(folder: Path) -> None:
    """The recipe of tests/weights/test_freshness.py: a 2-layer GPT-2 trained 30 Adam steps with
    transformer.h.1.mlp.c_fc frozen, saved with save_pretrained."""
    import torch
    from weights.test_freshness import MODELS, _train_all_but

    build, kept = MODELS["gpt2"]
    torch.manual_seed(0)
    model = build()
    _train_all_but(model, kept)
    model.save_pretrained(folder / "gpt2-finetuned")


SETUPS: dict[str, Callable[[Path], None]] = {
    name.removeprefix("setup_"): f for name, f in globals().items() if name.startswith("setup_")
}


# --- running a block ------------------------------------------------------------------------------


def _options(fence: Fence) -> tuple[list[str], bool]:
    setups: list[str] = []
    slow = False
    for word in fence.directive.split():
        if word == "slow":
            slow = True
        elif word.startswith("setup="):
            setups += word.removeprefix("setup=").split(",")
        else:
            raise AssertionError(f"{fence.path.name}:{fence.line}: unknown docs-test word {word!r}")
    return setups, slow


def _in_process(words: list[str]) -> tuple[list[str], bool, bool] | None:
    """`initcli ARGS [> /dev/null] [; echo $?]` as (ARGS, quiet, echo), else None."""
    if not words or words[0] != "initcli":
        return None
    echo = words[-3:] == [";", "echo", "$?"]
    if echo:
        words = words[:-3]
    quiet = words[-2:] == [">", "/dev/null"]
    if quiet:
        words = words[:-2]
    if any(w in {">", ">>", "|", ";", "&&", "||", "<", "2>", "&"} for w in words):
        return None
    return words[1:], quiet, echo


def _shell(command: str, folder: Path) -> tuple[int, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("NO_COLOR", None)
    result = subprocess.run(
        ["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    return result.returncode, result.stdout + result.stderr


def execute(command: str, folder: Path, last: int) -> tuple[int, list[str], list[str]]:
    """Run one command: (exit code, stdout lines then stderr lines, stderr then stdout)."""
    if command.strip() == "echo $?":
        return last, [str(last)], [str(last)]
    words = shlex.split(command, comments=True)
    parsed = _in_process(words)
    if parsed is None:
        code, text = _shell(command, folder)
        return code, text.splitlines(), text.splitlines()
    args, quiet, echo = parsed
    code, out, err = run(*args)
    out = "" if quiet else out
    tail = [str(code)] if echo else []
    return (
        code,
        [*out.splitlines(), *err.splitlines(), *tail],
        [*err.splitlines(), *out.splitlines(), *tail],
    )


def _pattern(shown: list[str]) -> re.Pattern[str]:
    parts = []
    for line in shown:
        if line.strip() == "...":
            parts.append(r"(?:[^\n]*\n)*?")
        else:
            pieces = [re.escape(p) for p in line.rstrip().split("...")]
            parts.append("[^\n]*?".join(pieces) + r"\n")
    return re.compile("".join(parts))


def _trim(lines: list[str]) -> str:
    lines = [line.rstrip() for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    return "".join(line + "\n" for line in lines)


def matches(shown: list[str], *printed: list[str]) -> bool:
    pattern = _pattern(_trim(shown).splitlines())
    return any(pattern.fullmatch(_trim(p)) for p in printed)


def _expected_code(step: Step) -> int | None:
    shown = "\n".join(step.shown)
    if step.command.rstrip().endswith("echo $?"):
        return None  # the output shows it
    if re.search(r"^Error: ", shown, re.MULTILINE):
        return 2
    if re.search(r"^Check failed", shown, re.MULTILINE):
        return 1
    return 0


def _params() -> list[object]:
    params = []
    for fence in examples():
        _, slow = _options(fence)
        marks = [pytest.mark.slow] if slow else []
        name = f"{fence.path.relative_to(ROOT)}:{fence.line}"
        params.append(pytest.param(fence, id=name, marks=marks))
    return params


@pytest.mark.parametrize("fence", _params())
def test_command_example_prints_what_the_page_shows(
    fence: Fence, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in LINKED:
        (tmp_path / name).symlink_to(ROOT / name, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    setups, _ = _options(fence)
    for name in setups:
        SETUPS[name](tmp_path)
    last = 0
    for step in steps(fence):
        code, printed, reordered = execute(step.command, tmp_path, last)
        where = f"{fence.path.name}:{fence.line}: $ {step.command}"
        wanted = _expected_code(step)
        if wanted is not None:
            assert code == wanted, f"{where}\nexit {code}, expected {wanted}\n" + "\n".join(printed)
        if any(line.strip() for line in step.shown):
            assert matches(step.shown, printed, reordered), (
                f"{where}\n--- the page shows:\n{_trim(step.shown)}--- it prints:\n{_trim(printed)}"
            )
        last = code


# --- the convention itself ------------------------------------------------------------------------


def test_every_shown_command_is_in_a_console_block() -> None:
    """A `$ ` line outside a console block would never run: every example must be one."""
    stray = [
        f"{f.path.relative_to(ROOT)}:{f.line}"
        for path in documents()
        for f in fences(path)
        if f.info != "console" and any(line.startswith("$ ") for line in f.body)
    ]
    assert stray == []


def test_every_setup_named_exists_and_every_setup_is_used() -> None:
    named = {name for fence in examples() for name in _options(fence)[0]}
    assert named <= set(SETUPS), named - set(SETUPS)
    assert set(SETUPS) <= named, set(SETUPS) - named


def test_the_matcher_honours_its_wildcards() -> None:
    shown = ["a ... c", "...", "z"]
    assert matches(shown, ["a b c", "x", "y", "z"])
    assert matches(shown, ["a  c  ", "z", ""])
    assert not matches(shown, ["a b d", "z"])
    assert not matches(["a", "b"], ["a", "b", "c"])


# --- the Python API example -----------------------------------------------------------------------


def _api_example() -> tuple[str, str]:
    page = (ROOT / "docs/reference/api.md").read_text(encoding="utf-8")
    section = page.split("## Example", 1)[1].split("\n## ", 1)[0]
    code, shown = re.findall(r"```(?:python|text)?\n(.*?)```", section, re.DOTALL)[:2]
    return code, shown


def test_python_api_example_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, shown = _api_example()
    assert "import initcli" in code
    monkeypatch.chdir(ROOT)  # the example runs from the repository root
    code = code.replace("/tmp/lenet.safetensors", str(tmp_path / "lenet.safetensors"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(textwrap.dedent(code), "api.md", "exec"), {})
    assert out.getvalue() == shown
