"""display.printable: text that is not recguard's own, made safe to show on a
terminal (every control character a visible escape) and short enough to read."""

from __future__ import annotations

import pytest

from asterisk_recguard.display import ECHO_LIMIT, printable, printable_lines, quoted


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", r"a\nb"),
        ("a\r\nb", r"a\r\nb"),
        ("tab\there", r"tab\there"),
        ("\x00", r"\x00"),
        ("\x1b[2J\x1b]0;owned\x07", r"\x1b[2J\x1b]0;owned\x07"),
        ("del\x7f", r"del\x7f"),
        ("\x85next line", r"\x85next line"),  # C1 NEL
        ("\x9b31m", r"\x9b31m"),  # C1 CSI
        ("line\u2028sep", r"line\u2028sep"),
        ("para\u2029sep", r"para\u2029sep"),
        ("\u202egnp.exe", r"\u202egnp.exe"),  # right-to-left override
        ("\u2066isolate\u2069", r"\u2066isolate\u2069"),
        ("\u200fmark\u061c", r"\u200fmark\u061c"),
        ("\ufeffbom", r"\ufeffbom"),
        ("surrogate\udcff", r"surrogate\udcff"),  # an undecodable byte, kept by surrogateescape
        ("tag\U000e0041", r"tag\U000e0041"),
    ],
)
def test_every_control_character_becomes_a_visible_escape(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@pytest.mark.parametrize(
    "text",
    ["plain", "čšž ČŠŽ — „narekovaji“ …", "+386 40 123 456", "a b\u00a0c", "日本語", "emoji 😀",
     r"C:\path\n is a backslash and an n", ""],
)
def test_printable_text_is_left_as_it_is(text: str) -> None:
    assert printable(text) == text


def test_nothing_is_escaped_twice() -> None:
    once = printable("a\x1b[31m\nb\\x1b")
    assert printable(once) == once == r"a\x1b[31m\nb\x1b"


def test_long_text_is_shortened_and_says_how_long_it_was() -> None:
    assert printable("x" * 10_000, limit=80) == "x" * 80 + "…(10000 chars)"
    assert printable("x" * 80, limit=80) == "x" * 80
    assert len(printable("x" * 10_000, limit=ECHO_LIMIT)) < ECHO_LIMIT + 20


def test_escapes_count_towards_the_limit_and_are_never_cut_in_half() -> None:
    assert printable("\x1b" * 100, limit=10) == r"\x1b\x1b" + "…(100 chars)"
    assert printable("ab\u202ecd", limit=5) == "ab" + "…(5 chars)"


def test_anything_is_shown_as_its_text() -> None:
    assert printable(None) == "None"
    assert printable(42) == "42"


def test_an_echo_is_quoted_escaped_and_short() -> None:
    assert quoted("order") == "'order'"
    assert quoted("x\ny") == r"'x\ny'"
    assert quoted(LONG := "z" * 500) == "'" + "z" * ECHO_LIMIT + f"…({len(LONG)} chars)'"
    assert quoted([1, "a"]) == "[1, 'a']"


def test_a_message_keeps_only_its_indented_detail_lines() -> None:
    message = "2 problems:\n  first\n  second\x1b"
    assert printable_lines(message) == "2 problems:\n  first\n  " + r"second\x1b"
    assert printable_lines("no such file /x\nRECORD this call") == r"no such file /x\nRECORD this call"
    assert printable_lines("x" * 2000 + "\n  y").startswith("x" * 1000 + "…(2000 chars)\n  y")
