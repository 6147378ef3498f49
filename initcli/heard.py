"""What libraries say while a command runs (warnings, log records), kept as one-line notes."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType

from initcli.text import printable

__all__ = ["MAX_HEARD", "adopt_library_loggers", "library_messages"]

# Distinct messages kept; the rest are counted in one more line.
MAX_HEARD = 10
# Libraries that print through a handler of their own and do not propagate to the root logger,
# and the module whose get_logger() adds that handler (on its first call, not at import): their
# loggers are routed to the root, where the collector listens, once that module is imported.
_OWN_HANDLERS = {
    "transformers": "transformers.utils.logging",
    "huggingface_hub": "huggingface_hub.utils.logging",
}


class _Collector(logging.Handler):
    """Every record of WARNING or above that reaches the root logger, as `library: message`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.heard: list[str] = []
        self.seen: set[str] = set()
        self.adopted: dict[str, tuple[list[logging.Handler], bool]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if _ACTIVE and _ACTIVE[-1] is not self:
            return  # a collection inside this one (a meta build's) hears it, and only it
        try:
            text = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: its raw format
            text = str(record.msg)
        self.add(f"{record.name.split('.')[0]}: {text}")

    def add(self, text: str) -> None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        line = printable(lines[0] if lines else text)[:300]
        if line not in self.seen:
            self.seen.add(line)
            self.heard.append(line)

    def adopt(self) -> None:
        for name, module in _OWN_HANDLERS.items():
            if module in sys.modules and name not in self.adopted:
                sys.modules[module].get_logger(name)  # the library adds its handler now
                logger = logging.getLogger(name)
                self.adopted[name] = (list(logger.handlers), logger.propagate)
                logger.handlers = []
                logger.propagate = True

    def restore(self) -> None:
        for name, (handlers, propagate) in self.adopted.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers
            logger.propagate = propagate


_ACTIVE: list[_Collector] = []


class _AdoptOnImport(importlib.abc.MetaPathFinder):
    """While a collection runs, a library of _OWN_HANDLERS imported for the first time (by a
    user's model file, at its top) is adopted as soon as its logging module has run, so what the
    rest of that file does (a config built at module level) is heard too. It finds nothing
    itself: the module is found and loaded as always, then adopted."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name not in _OWN_HANDLERS.values():
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _Adopting(spec.loader)
        return spec


class _Adopting(importlib.abc.Loader):
    """A package's own loader, then adoption; the module keeps its own loader afterwards."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        adopt_library_loggers()


def adopt_library_loggers() -> None:
    """Route the loggers of libraries imported since the collection began (transformers,
    imported by a user's model file) to the collector: called after user code is imported."""
    if _ACTIVE:
        _ACTIVE[-1].adopt()


@contextmanager
def library_messages() -> Iterator[list[str]]:
    """Collect what libraries say while the block runs, instead of letting them print it: Python
    warnings (under the process's filters) and log records of WARNING and above, each distinct
    line once, in order, at most MAX_HEARD (then one line counting the rest). The list is filled
    when the block ends; loggers, handlers and warning state are restored then."""
    collector = _Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    _ACTIVE.append(collector)
    finder = _AdoptOnImport()
    sys.meta_path.insert(0, finder)
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            collector.adopt()
            yield notes
    finally:
        sys.meta_path.remove(finder)
        _ACTIVE.remove(collector)
        root.removeHandler(collector)
        collector.restore()
    for found in caught:
        collector.add(f"{found.category.__name__}: {found.message}")
    notes.extend(collector.heard[:MAX_HEARD])
    if len(collector.heard) > MAX_HEARD:
        notes.append(f"and {len(collector.heard) - MAX_HEARD} more messages from libraries.")
