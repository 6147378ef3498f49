"""The exceptions for bad input (cli/_app.py prints `Error: ...`, exits 2) and the exit codes."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """initcli's exit codes (a contract: docs/contract/exit-codes.md)."""

    OK = 0
    CHECK_FAILED = 1  # --expect mismatch, `check` found a change
    BAD_INPUT = 2  # bad input or usage: one `Error: ...` line on stderr
    HANGUP = 129  # SIGHUP
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM: timeout, CI cancellation, docker stop


def first_line(exc: BaseException) -> str:
    """`Type: first non-blank line of the message`: how a foreign exception shows in one line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class InitcliError(Exception):
    """Bad input or usage. The message is one line that says what was wrong and how to fix it."""


class TargetError(InitcliError):
    """A TARGET could not be found, imported or built."""


class HubError(TargetError):
    """A `hf:ORG/NAME` TARGET cannot be read: not cached, not found, refused, or no network."""


class SpecError(InitcliError):
    """A YAML MLP spec is unreadable or invalid; the message names the key and the line."""


class SchemeError(InitcliError):
    """An init scheme string is unknown or has bad parameters."""


class PolicyError(SchemeError):
    """An init policy (rules, @file, fn:, method:) is malformed or does not fit the model."""


class ArgError(InitcliError):
    """A --arg or another command-line value is malformed or not accepted."""


class ProbeError(InitcliError):
    """A probe could not run: no input shape, a forward pass that failed, an unfit model."""


class PlotError(InitcliError):
    """--plot cannot be honoured: matplotlib is missing, or the file cannot be written."""


class OutputError(InitcliError):
    """A file initcli was asked to write exists (without --force) or cannot be written."""


class NotRegularFileError(InitcliError):
    """A file initcli would read is a FIFO, socket or device: reading it could block forever."""


class CheckpointError(InitcliError):
    """A weights file is unreadable, not a checkpoint, or would run code if loaded."""


class BaselineError(InitcliError):
    """A baseline file is missing, unreadable, or not one `initcli snapshot` wrote."""


class DeviceError(InitcliError):
    """--device names a device that does not exist here."""


class RankError(InitcliError):
    """Under torchrun: a rank failed on its share of the tensors, or the ranks lost each other."""


class MemoryLimitError(InitcliError):
    """A model needs more memory than is free, and no streaming path can avoid building it."""
