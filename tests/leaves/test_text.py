"""Control characters in printed names are escaped; printable Unicode is kept; "a, b and N more"."""

from __future__ import annotations

import pytest

from initcli.text import first_and_more, printable


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


@pytest.mark.parametrize(
    ("items", "n", "shown"),
    [
        ([], 3, ""),
        (["a"], 3, "a"),
        (["a", "b", "c"], 3, "a, b, c"),
        (["a", "b", "c", "d"], 3, "a, b, c and 1 more"),
        (["a", "b", "c", "d", "e"], 2, "a, b and 3 more"),
        ([f"t{i}" for i in range(1_005)], 3, "t0, t1, t2 and 1,002 more"),
    ],
)
def test_first_and_more(items: list[str], n: int, shown: str) -> None:
    assert first_and_more(items, n) == shown


def test_first_and_more_separator_and_show_only_the_shown() -> None:
    seen: list[int] = []

    def show(i: int) -> str:
        seen.append(i)
        return f"<{i}>"

    assert first_and_more(range(10), 2, "; ", show) == "<0>; <1> and 8 more"
    assert seen == [0, 1]
