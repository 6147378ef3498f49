"""Names from files and models made safe to print: control characters shown escaped."""

from __future__ import annotations

__all__ = ["printable"]


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
