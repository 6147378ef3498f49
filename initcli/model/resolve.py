"""Resolve a TARGET (`pkg.mod:Name`, `file.py:Name`, `spec.yaml`, `hf:ORG/NAME`) into what it is."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import inspect
import os
import re
import sys
import sysconfig
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import yaml
from torch import nn

from initcli import files, heard, memory
from initcli.errors import ArgError, TargetError, first_line

if TYPE_CHECKING:
    from initcli.model.spec import InitCheck, MLPSpec

SPEC_SUFFIXES = (".yaml", ".yml")
HUB_PREFIX = "hf:"
# ORG/NAME as the Hub spells repo ids (huggingface_hub checks them again); the revision (a branch,
# tag, commit or `refs/pr/1`) is the Hub's to judge. `hf:Name` without a slash stays what it
# always was: attribute Name of a module `hf`.
_HUB_TARGET = re.compile(r"hf:(?P<repo>[\w.-]+/[\w.-]+)(?:@(?P<revision>\S+))?")


@dataclass(frozen=True)
class HubRepo:
    """A `hf:ORG/NAME[@REVISION]` TARGET: a model repository of the Hugging Face Hub."""

    repo_id: str
    revision: str | None  # None: the default branch (main)

    @property
    def label(self) -> str:
        """The TARGET as written back: `hf:ORG/NAME`, with `@REVISION` when one was given."""
        at = f"@{self.revision}" if self.revision is not None else ""
        return f"{HUB_PREFIX}{self.repo_id}{at}"


def is_hub_target(target: str) -> bool:
    """Whether TARGET is meant as a Hub repository (`hf:` and a slash): weights, never code."""
    text = target.strip()
    return text.startswith(HUB_PREFIX) and "/" in text


def parse_hub_target(target: str) -> HubRepo:
    """`hf:ORG/NAME[@REVISION]` split into repo id and revision; TargetError when malformed."""
    found = _HUB_TARGET.fullmatch(target.strip())
    if found is None:
        raise TargetError(
            f"{target.strip()!r} is not a Hub target; write hf:ORG/NAME or hf:ORG/NAME@REVISION "
            "(e.g. hf:openai-community/gpt2@main)"
        )
    return HubRepo(found["repo"], found["revision"])


@dataclass(frozen=True)
class ModelSource:
    """A resolved TARGET: `build()` constructs the model (seed first: constructors draw numbers)."""

    target: str
    build: Callable[[], nn.Module]
    spec: MLPSpec | None = None
    # An nn.Module instance was named: it was built at import time, before any seed was set.
    prebuilt: bool = False
    args: Mapping[str, object] = field(default_factory=dict)


@contextlib.contextmanager
def user_code(target: str, phase: str) -> Iterator[None]:
    """Run the user's code (`phase`: imported, built, initialized, run) inside this block.

    What it prints to stdout goes to stderr, so `--format json` stays one JSON document (output
    that C code writes to file descriptor 1 directly is not caught). `sys.exit()`, `exit()` and
    `KeyboardInterrupt` raised by that code become a TargetError naming the target: user code
    does not choose initcli's exit code. A real Ctrl-C, SIGTERM or SIGHUP (noted by the handlers
    of `files.install_signal_handlers`) passes through unchanged, so the CLI still exits 130.
    """
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    except SystemExit as exc:
        if files.signal_received() is not None:
            raise
        call = "sys.exit()" if exc.code is None else f"sys.exit({exc.code!r})"
        raise TargetError(
            f"{target} called {call} while being {phase}; initcli stopped: a model's code must "
            "not exit the program, remove that call or guard it with `if __name__ == '__main__':`"
        ) from None
    except KeyboardInterrupt:
        if files.signal_received() is not None:
            raise
        raise TargetError(
            f"{target} raised KeyboardInterrupt while being {phase} (not a Ctrl-C); initcli "
            "stopped: remove the raise from that code path"
        ) from None
    except GeneratorExit:
        raise
    except Exception:
        raise  # the caller names the phase that failed
    except BaseException as exc:
        # A BaseException of the model's own (not SystemExit or KeyboardInterrupt, above) would
        # otherwise pass every `except Exception` and end in a traceback.
        raise TargetError(
            f"{target} raised {first_line(exc)} (a BaseException, not an Exception) while being "
            f"{phase}; initcli stopped: raise an Exception subclass instead"
        ) from None
    finally:
        # A library the code imported (transformers) says what it has to say through initcli's
        # notes from now on, not through a handler of its own that -q cannot silence.
        heard.adopt_library_loggers()


def _stdlib_dirs() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    return tuple(Path(paths[key]).resolve() for key in ("stdlib", "platstdlib"))


def _site_dirs() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    return tuple(Path(paths[key]).resolve() for key in ("purelib", "platlib"))


def _under(file: str | None, folders: tuple[Path, ...]) -> bool:
    if not file:
        return False
    path = Path(file).resolve()
    return any(path.is_relative_to(folder) for folder in folders)


def refuse_library_target(target: str) -> None:
    """Refuse, before anything is imported, a TARGET that names the standard library.

    `os:system`, `builtins:exit`, `subprocess:run` or a stdlib .py file can never be a model;
    refusing them by name means not even their import runs (`antigravity` opens a browser).
    """
    location, _ = _split(target.strip())
    if location.endswith(".py") or "/" in location or os.sep in location:
        if _under(location, _stdlib_dirs()) and not _under(location, _site_dirs()):
            raise TargetError(
                f"{target} is a file of Python's standard library, not a model; name a model in "
                "your own code"
            )
        return
    if location.split(".")[0] in sys.stdlib_module_names:
        raise TargetError(
            f"{target} names the standard library module '{location}', not a model; initcli "
            "builds only nn.Module classes, nn.Module instances and functions of your own code"
        )


def _returns_module(function: Callable[..., object]) -> bool:
    try:
        returned = typing.get_type_hints(function).get("return")
    except Exception:  # an annotation that does not evaluate declares nothing usable
        return False
    return isinstance(returned, type) and issubclass(returned, nn.Module)


def check_model_factory(label: str, obj: object) -> None:
    """Refuse, before calling it, anything TARGET names that cannot be a model.

    Allowed: an nn.Module instance, an nn.Module subclass, or a Python function (or bound method)
    defined in the user's own code — a file or package outside the standard library and
    site-packages. A function of an installed package (site-packages) is allowed only when it
    declares an nn.Module return type (`torchvision.models.resnet18 -> ResNet`). Refused: classes
    that are not nn.Module subclasses, builtins and C functions, other callables (`exit`,
    `functools.partial`), and every function of the standard library (`os.system`,
    `subprocess.run`, `shutil.rmtree`). Keyword arguments are then checked against the signature
    (`_check_signature`): a function that declares `**kwargs` accepts any name, as it says.
    """
    if isinstance(obj, nn.Module):
        return
    if isinstance(obj, type):
        if not issubclass(obj, nn.Module):
            raise TargetError(f"{label} is a class but not an nn.Module subclass")
        return
    if not callable(obj):
        raise TargetError(
            f"{label} is a {type(obj).__name__}, not an nn.Module class, "
            "a factory returning one, or an nn.Module instance"
        )
    function = obj.__func__ if isinstance(obj, types.MethodType) else obj
    if not isinstance(function, types.FunctionType):
        raise TargetError(
            f"{label} is a {type(obj).__name__}, not an nn.Module class, a Python function "
            "returning one, or an nn.Module instance; initcli calls nothing else"
        )
    module = function.__module__ or ""
    file = function.__code__.co_filename
    in_site = _under(file, _site_dirs())
    if module.split(".")[0] in sys.stdlib_module_names or (
        _under(file, _stdlib_dirs()) and not in_site
    ):
        raise TargetError(
            f"{label} is a function of Python's standard library ({module}), not a model "
            "factory; initcli calls only nn.Module classes and functions of your own code"
        )
    if in_site and not _returns_module(function):
        raise TargetError(
            f"{label} is a function of an installed package ({module}) that does not declare "
            "an nn.Module return type; wrap it in a factory function in your own file"
        )


def check_init_function(label: str, obj: object) -> None:
    """Refuse, before calling it, what `--init fn:` names unless it is a Python function (or
    bound method) outside the standard library: no classes, builtins, C functions or partials."""
    if not callable(obj):
        raise TargetError(
            f"{label} is a {type(obj).__name__}, not a function; name an init function"
        )
    function = obj.__func__ if isinstance(obj, types.MethodType) else obj
    if isinstance(obj, type) or not isinstance(function, types.FunctionType):
        raise TargetError(
            f"{label} is a {type(obj).__name__}, not a Python function; name a function "
            "that takes a module, e.g. def init_weights(m): ..."
        )
    module = function.__module__ or ""
    file = function.__code__.co_filename
    if module.split(".")[0] in sys.stdlib_module_names or (
        _under(file, _stdlib_dirs()) and not _under(file, _site_dirs())
    ):
        raise TargetError(
            f"{label} is a function of Python's standard library ({module}), not an init "
            "function; name a function of your own code"
        )


def resolve_function(target: str) -> Callable[..., object]:
    """What `pkg.mod:name` or `file.py:name` names, imported as a TARGET is and checked to be
    an init function of the user's own code (check_init_function)."""
    location, name = _split(target.strip())
    if not location or name is None:
        raise TargetError(
            f"'{target}' names no function; write pkg.mod:init_weights or file.py:init_weights"
        )
    refuse_library_target(target)
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module = _load_file(location) if is_file else _import_module(location)
    label = f"{location}:{name}"
    if not hasattr(module, name):
        functions = [a for a, v in vars(module).items() if inspect.isfunction(v) and a[0] != "_"]
        close = difflib.get_close_matches(name, functions, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise TargetError(f"'{location}' has no attribute '{name}'{hint}")
    obj = getattr(module, name)
    check_init_function(label, obj)
    return typing.cast("Callable[..., object]", obj)


def resolve_batch_function(target: str) -> Callable[..., object]:
    """What `--input pkg.mod:make_batch` or `file.py:make_batch` names: loaded as a TARGET is,
    and checked to be a Python function of the user's own code (as `--init fn:` is)."""
    try:
        return resolve_function(target)
    except TargetError as exc:
        # The same checks, said of a batch factory instead of an init function.
        said = str(exc).replace("an init function", "a batch factory")
        said = said.replace("a function that takes a module, e.g. def init_weights(m): ...", (
            "a function returning a tensor or a dict of keyword arguments, e.g. "
            "def make_batch(batch_size, seed): ..."))  # fmt: skip
        said = said.replace("init_weights", "make_batch")
        raise TargetError(f"--input: {said}") from None


def parse_args(pairs: Sequence[str]) -> dict[str, object]:
    """`--arg key=value` pairs, values read as YAML scalars (`5` int, `tanh` str, `[3,4]` list)."""
    args: dict[str, object] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ArgError(f"--arg {pair!r} is not key=value; write e.g. --arg depth=5")
        if key in args:
            raise ArgError(f"--arg {key} is given twice; give each argument once")
        try:
            args[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            first = str(exc).splitlines()[0]
            raise ArgError(
                f"--arg {key}: {raw!r} is not a YAML value ({first}); "
                "quote strings with special characters"
            ) from None
        except ValueError:
            # int() refuses strings of more than sys.get_int_max_str_digits() digits (4,300).
            raise ArgError(
                f"--arg {key}: the number has more than {sys.get_int_max_str_digits():,} digits, "
                "the most Python reads as an integer; pass a smaller value, or quote it for a "
                "string"
            ) from None
    return args


def _import_module(dotted: str) -> ModuleType:
    # As uvicorn and gunicorn do: `pkg.mod` is looked for in the current directory first.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        with user_code(dotted, "imported"):
            return importlib.import_module(dotted)
    except TargetError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and (dotted == exc.name or dotted.startswith(exc.name + ".")):
            raise TargetError(
                f"cannot import '{dotted}': no module named '{exc.name}'; run initcli from the "
                "folder that holds the package, install it, or give a file path (path/file.py:Name)"
            ) from None
        raise TargetError(f"importing '{dotted}' failed: {first_line(exc)}") from None
    except Exception as exc:
        raise TargetError(f"importing '{dotted}' failed: {first_line(exc)}") from None


def _load_file(location: str) -> ModuleType:
    path = Path(location)
    try:
        path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise TargetError(f"no such file: {location}; check the path") from None
    except OSError as exc:  # a name too long for the file system, a loop of links, no access
        raise TargetError(f"cannot read {location}: {exc.strerror}; check the path") from None
    if path.is_dir():
        raise TargetError(
            f"{location} is a directory; name a .py file in it, e.g. {path}/model.py:Name"
        )
    if path.suffix != ".py":
        raise TargetError(
            f"{location} is not a .py file; use file.py:Name, pkg.mod:Name or spec.yaml"
        )
    files.require_regular(path)  # importlib opens it itself
    name = f"_initcli_target_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always get a loader
        raise TargetError(f"cannot load {path} as Python source")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so dataclasses and pickling inside the file can find it; the
    # file's folder goes on sys.path so it can import its neighbours.
    sys.modules[name] = module
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        with user_code(location, "imported"):
            spec.loader.exec_module(module)
    except TargetError:
        sys.modules.pop(name, None)
        raise
    except Exception as exc:
        sys.modules.pop(name, None)
        raise TargetError(f"running {path} failed: {first_line(exc)}") from None
    return module


def _module_names(module: ModuleType) -> list[str]:
    return sorted(
        attr for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (isinstance(value, nn.Module)
             or (isinstance(value, type) and issubclass(value, nn.Module)
                 and value.__module__ == module.__name__))
    )  # fmt: skip


def _check_signature(
    label: str, factory: Callable[..., object], args: Mapping[str, object]
) -> None:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # a signature Python cannot read: let the call decide
        return
    params = list(sig.parameters.values())
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params)
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not takes_kwargs:
        unknown = [key for key in args if key not in {p.name for p in named}]
        if unknown:
            accepted = ", ".join(p.name for p in named) or "no arguments"
            close = difflib.get_close_matches(unknown[0], [p.name for p in named], n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise ArgError(
                f"{label} does not accept --arg {unknown[0]}; {hint}(it takes: {accepted})"
            )
    positional_only = [
        p.name for p in params if p.kind is p.POSITIONAL_ONLY and p.default is p.empty
    ]
    missing = [p.name for p in named if p.default is p.empty and p.name not in args]
    if positional_only:
        raise TargetError(
            f"{label} needs positional-only arguments ({', '.join(positional_only)}), "
            "which --arg cannot pass; wrap it in a factory function"
        )
    if missing:
        example = " ".join(f"--arg {name}=..." for name in missing)
        raise TargetError(
            f"{label} needs constructor arguments: {', '.join(missing)}; pass them with {example}"
        )


def _builder(label: str, obj: object, args: Mapping[str, object]) -> Callable[[], nn.Module]:
    check_model_factory(label, obj)
    factory = typing.cast("Callable[..., object]", obj)
    _check_signature(label, factory, args)

    def build() -> nn.Module:
        try:
            with user_code(label, "built"):
                model = factory(**args)
        except TargetError:
            raise
        except Exception as exc:
            if memory.is_out_of_memory(exc):
                raise memory.out_of_memory_error(f"building {label}") from None
            raise TargetError(f"building {label} failed: {first_line(exc)}") from None
        if not isinstance(model, nn.Module):
            raise TargetError(f"{label} returned a {type(model).__name__}, not an nn.Module")
        return model

    return build


def _split(target: str) -> tuple[str, str | None]:
    # rpartition, so a Windows drive letter (C:\...) stays with the path.
    left, sep, right = target.rpartition(":")
    if sep and not right.strip():
        return left, None  # `file.py:` — the name was left out
    if not sep or "/" in right or "\\" in right:
        return target, None
    return left, right


def resolve(
    target: str,
    args: Mapping[str, object] | None = None,
    check_init: InitCheck | None = None,
) -> ModelSource:
    """Find what TARGET names and check --arg against it; nothing is built yet.

    `check_init` checks a YAML spec's `init:` (initcli.init.policy.check_spec_init).
    """
    args = dict(args or {})
    if is_hub_target(target):
        raise TargetError(
            f"{target.strip()} names a Hub repository, which initcli reads as weights (count, "
            "inspect, snapshot, check), never as code to build; for this command, write a "
            "factory that builds the model from its config, e.g. build.py:build"
        )
    location, name = _split(target.strip())
    if not location:
        raise TargetError(
            f"'{target}' names no module or file; use pkg.mod:Name, path/file.py:Name or spec.yaml"
        )
    if name is None and location.lower().endswith(SPEC_SUFFIXES):
        if args:
            raise ArgError(f"--arg does not apply to a YAML spec ({target}); edit the spec instead")
        # pydantic loads only for specs: a .py target does not pay for it.
        from initcli.model.spec import build_mlp, load_spec

        spec = load_spec(location, check_init)
        return ModelSource(target, lambda: build_mlp(spec), spec=spec)
    refuse_library_target(target)
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    module = _load_file(location) if is_file else _import_module(location)
    if name is None:
        found = _module_names(module)
        hint = f" (nn.Module names there: {', '.join(found)})" if found else ""
        example = f"{location}:{found[0] if found else 'Name'}"
        raise TargetError(f"'{target}' names no model; add ':Name', e.g. {example}{hint}")
    label = f"{location}:{name}"
    if not hasattr(module, name):
        candidates = [attr for attr in vars(module) if not attr.startswith("_")]
        close = difflib.get_close_matches(name, candidates, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        found = _module_names(module)
        listing = f"(nn.Module names there: {', '.join(found)})" if found else ""
        raise TargetError(f"'{location}' has no attribute '{name}'; {hint}{listing}".rstrip("; "))
    obj = getattr(module, name)
    if isinstance(obj, nn.Module):
        if args:
            raise ArgError(
                f"{label} is an nn.Module instance, already built: --arg cannot "
                "apply; name its class or a factory instead"
            )
        return ModelSource(label, lambda: obj, prebuilt=True)
    return ModelSource(label, _builder(label, obj, args), args=args)
