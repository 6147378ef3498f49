"""Control characters in printed names are escaped; printable Unicode is kept."""

from __future__ import annotations

import pytest

from initcli.text import printable


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("a\x1b[31mred", "a\\x1b[31mred"),
        ("layer\nfake.row 1 2 3", "layer\\nfake.row 1 2 3"),
        ("tab\there", "tab\\there"),
        ("bell\x07\x7f", "bell\\x07\\x7f"),
        ("c1\x9b31m", "c1\\x9b31m"),
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),
        ("nbsp\u00a0x", "nbsp\\xa0x"),
        ("cr\rover", "cr\\rover"),
    ],
)
def test_control_characters_are_escaped(name: str, shown: str) -> None:
    assert printable(name) == shown


@pytest.mark.parametrize("name", ["encoder.layers.0.weight", "Gewichte.ä", "权重.0", "w🙂", "a b"])
def test_printable_names_are_unchanged(name: str) -> None:
    assert printable(name) == name
