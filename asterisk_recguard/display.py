"""Text recguard did not write itself, made fit for a terminal: every control
character shown as a visible escape, and an echo of input shortened.

Whatever a human reads that comes from data (a policy's names and
descriptions, decision-log and ledger values, file names, arguments quoted
back in an error) goes through :func:`printable` where the line is built. A
line break in such text would forge a line of recguard's own (``RECORD this
call``); an ESC or a C1 control would drive the terminal; a bidi override
would show the text reversed. Machine output (``--json``) is left to JSON.

Only the escapes are added: a backslash already in the text stays as it is,
so text that went through once comes out of a second pass unchanged.
"""

from __future__ import annotations

import re

# Echoes of input in an error: enough to recognise it (a purpose id is at most
# 64 characters, a recording id 32), not enough to flood the screen.
ECHO_LIMIT = 80
# One line of a message as a whole, whatever it quotes.
LINE_LIMIT = 1000

_SHORT_ESCAPES = {"\n": r"\n", "\r": r"\r", "\t": r"\t"}
# Python's own idea of printable, less the spaces: every Cc (C0, DEL, C1), Cf
# (bidi embeddings, overrides and isolates, zero-width and tag characters),
# Zl and Zp (line and paragraph separators), Cs (lone surrogates, as
# surrogateescape leaves undecodable bytes), Co and Cn is escaped. Spaces
# (Zs) are shown as they are: they move nothing.
_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def _escape(char: str) -> str:
    if char.isprintable() or _SPACES.fullmatch(char):
        return char
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object, limit: int | None = None) -> str:
    """``text`` (or ``str()`` of anything else) with every control character
    as a visible escape (``\\n``, ``\\x1b``, ``\\u202e``) and, beyond ``limit``
    characters of output, cut and marked with its length: ``…(10000 chars)``.

    An escape is never cut in half: it is shown whole or not at all.
    """
    value = text if isinstance(text, str) else str(text)
    if value.isprintable() and (limit is None or len(value) <= limit):
        return value  # the common case, at no cost
    shown: list[str] = []
    length = 0
    for char in value:
        piece = _escape(char)
        if limit is not None and length + len(piece) > limit:
            return "".join(shown) + f"…({len(value)} chars)"
        shown.append(piece)
        length += len(piece)
    return "".join(shown)


def quoted(value: object, limit: int = ECHO_LIMIT) -> str:
    """An input echoed in an error, as ``{value!r}`` would quote it, but
    escaped by :func:`printable` and shortened to ``limit``."""
    if isinstance(value, str):
        return f"'{printable(value, limit)}'"
    return printable(repr(value), limit)


# A message's first line says what is wrong; each further line is a detail,
# indented by two spaces (the settings' problems, an export's failures).
_DETAIL_LINE = re.compile(r"\n(?=  )")


def printable_lines(text: str, limit: int | None = LINE_LIMIT) -> str:
    """A message: its first line and its detail lines (a line break followed
    by two spaces) kept, each through :func:`printable`. Any other line
    break is escaped like the rest, so quoted text cannot start a line."""
    return "\n".join(printable(line, limit) for line in _DETAIL_LINE.split(text))
