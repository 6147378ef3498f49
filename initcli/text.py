"""Text for messages: names made safe to print, and "the first few and N more"."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["block_pattern", "first_and_more", "printable"]

_T = TypeVar("_T")


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str) -> str:
    """`text` with every character Python deems unprintable escaped as in repr (`\\x1b`, `\\u202e`).

    A tensor name read from a weights file or a model may hold ESC sequences that recolour or
    rewrite the terminal, newlines that forge table rows, or bidirectional overrides that reorder
    what is shown; printable Unicode (accents, CJK, emoji, the ASCII space) is kept as it is.
    Renderers call it on every name they print from a file or a model.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def first_and_more(
    items: Sequence[_T], n: int, sep: str = ", ", show: Callable[[_T], str] = str
) -> str:
    """The first `n` items, each through `show`, joined by `sep`, then ` and K more` if K > 0.

    `first_and_more(["a", "b", "c", "d"], 2)` is `a, b and 2 more`; K takes a thousands
    separator (`and 1,234 more`). Only the shown items go through `show`.
    """
    shown = sep.join(show(item) for item in items[:n])
    rest = len(items) - n
    return f"{shown} and {rest:,} more" if rest > 0 else shown


def block_pattern(name: str) -> str:
    """The name with each block index as `*`: `h.3.attn.c_proj.weight` → `h.*.attn.c_proj.weight`
    (nested stacks too: `block.2.layer.1.wo` → `block.*.layer.*.wo`). A block index is a dotted
    name's all-digit part; a name without dots has none. Split, not a regular expression: half
    the time on files of 10⁶ modules."""
    if "." not in name:
        return name
    return ".".join(["*" if part.isdecimal() else part for part in name.split(".")])
