"""inspect's progress as a rich bar on stderr (rendering code: imported only when one is shown)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text


def _si(n: float) -> str:
    """1234567 → 1.23M: element counts in a progress line."""
    for unit in ("", "k", "M", "G", "T"):
        if abs(n) < 1000 or unit == "T":
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}T"  # pragma: no cover - loop always returns


class _ElementsColumn(ProgressColumn):
    """`1.2G/6.74G elements · 310M/s`: what has been measured, and how fast."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        rate = f" · {_si(speed)}/s" if speed else ""
        return Text(f"{_si(task.completed)}/{_si(task.total or 0)} elements{rate}")


class _DelayedProgress(Progress):
    """A Progress that draws nothing until it has run `delay` seconds: short runs stay quiet."""

    def __init__(self, *columns: str | ProgressColumn, delay: float, **kwargs: Any) -> None:
        self._shown_after = time.monotonic() + delay  # read by Live in super().__init__
        super().__init__(*columns, **kwargs)

    def get_renderable(self) -> RenderableType:
        if time.monotonic() < self._shown_after:
            return Text("")
        return super().get_renderable()


class ProgressBar:
    """inspect's progress (report.Progress) as a rich bar: parameters and elements done / total,
    rate and ETA. Create it only for a terminal stderr (the CLI checks); it appears after `delay`
    seconds and is erased when done, so it never mixes with results."""

    def __init__(self, console: Console, delay: float = 1.0) -> None:
        self.console = console
        self.delay = delay
        self._progress: _DelayedProgress | None = None
        self._task: TaskID | None = None
        self._params = 0
        self._total_params = 0

    def start(self, params: int, elements: int) -> None:
        self._params, self._total_params = 0, params
        self._progress = _DelayedProgress(
            TextColumn("[bold]{task.description}", table_column=Column(max_width=28)),
            BarColumn(),
            TextColumn("{task.fields[params]} params"),
            _ElementsColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            delay=self.delay,
            console=self.console,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(
            "initializing", total=max(elements, 1), params=f"0/{params:,}"
        )
        self._progress.start()

    def advance(self, name: str, elements: int) -> None:
        if self._progress is None or self._task is None:
            return
        self._params += 1
        self._progress.update(
            self._task,
            advance=elements,
            description=name,
            params=f"{self._params:,}/{self._total_params:,}",
        )

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def stderr_bar() -> ProgressBar | None:
    """A bar on stderr, or None when stderr is not a terminal (logs and pipes stay clean)."""
    console = Console(stderr=True)
    return ProgressBar(console) if console.is_terminal else None
