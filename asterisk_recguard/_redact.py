"""Keep caller numbers out of what recguard stores and logs: recognise field
names that would carry one, and mask numbers inside names.

Caller numbers are personal data that recguard must never store or log in
clear (only their keyed hash). Both the ledger and the decision log accept
free-form JSON (facts, details), so one shared rule decides which key names
are too dangerous to let through, whatever spelling the code uses.

Names recguard must keep (channels, files of recordings made behind its back,
dialplan locations) may be built from numbers; :func:`mask_numbers` replaces
each number in them by ``[number]``. The rule:

- A number is a run of digit groups joined by separators, with 7 or more
  digits in all (phone numbers are 7 to 15 digits, E.164). Between two groups
  stand one to three of: space, ``.``, ``-``, ``/``, ``(``, ``)``, ``_``; letters
  and anything else end a run, and digits glued to letters count
  (``from040123456``). So ``040123456``, ``+386 40 123 456``, ``(040) 123-456``,
  ``040/123-456``, ``040.123.456`` and ``0038640-123-456`` are each one number,
  masked whole with a leading ``+`` or ``(``.
- Not numbers, whatever their digits: runs of fewer than 7 digits
  (extensions, priorities, ports, times); Asterisk's channel counter, eight
  hex digits after a ``-`` at the end of the name or before ``;``
  (``PJSIP/trunk-00000012``, ``…-0000001a;2``); hex ids, a word of 32, 40 or
  64 hex digits with a letter among them (recording ids, SHA-1, SHA-256); and
  a run that is exactly a date, ``YYYY-MM-DD`` or ``YYYY/MM/DD``, as programs
  write dates into file names and spool paths (no one writes a phone number
  so).
- Masked like any number, on purpose: a date joined to more digits
  (``2026-11-29-040123456``), a compact date (``20261129``) or a date in
  another form, a call's unique id (``1764324723.12``) and an IPv4 address of
  7 or more digits: none can be told from a number by its shape alone, and
  what is lost is only a hint for the operator.
"""

from __future__ import annotations

import functools
import re

# Compared after lower-casing and removing everything but letters and digits,
# so caller_id_number, CallerIDNum and CALLERID(num) all match.
_EXACT = frozenset({
    "caller",
    "callerid",
    "calleridnum",
    "calleridnumber",
    "callernum",
    "callernumber",
    "callerno",
    "number",
    "phone",
    "phonenumber",
    "msisdn",
    "ani",
    "connected",
    "connectedline",
    "connectedlinenum",
    "connectedlinenumber",
})
_PREFIXES = ("callerid", "connectedline")
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def is_caller_number_key(key: object) -> bool:
    """True if a field of this name could hold a caller's number in clear.

    ``caller_hash`` (the keyed hash) is allowed; ``caller``, ``callerid``,
    ``caller_id_number``, ``number``, ``CALLERID*``, ARI's ``connected`` and
    any ``*_number`` are not.
    """
    return isinstance(key, str) and _names_a_number(key)


@functools.lru_cache(maxsize=4096)
def _names_a_number(key: str) -> bool:
    # Cached: the same few dozen field names are asked of every log line and ledger row.
    norm = _NON_ALNUM.sub("", key.lower())
    return norm in _EXACT or norm.startswith(_PREFIXES) or norm.endswith("number")


def find_caller_number_key(value: object, _path: str = "") -> str | None:
    """The dotted path of the first caller-number key anywhere in a nested
    structure of dicts and lists, or None."""
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{_path}.{key}" if _path else str(key)
            if is_caller_number_key(key):
                return here
            found = find_caller_number_key(item, here)
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = find_caller_number_key(item, f"{_path}[{index}]")
            if found:
                return found
    return None


# --- numbers inside names (the rule is in the module docstring) ---------------

MASK = "[number]"
MIN_DIGITS = 7
_WORD = re.compile(r"[^\W_]+")
_DIGITS = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[ ./()_-]{1,3}")
_HEX = re.compile(r"[0-9a-fA-F]+")
_HEX_ID_LENGTHS = frozenset({32, 40, 64})
_DATE = re.compile(r"(?:19|20)\d\d([-/])(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])")


@functools.lru_cache(maxsize=8192)
def mask_numbers(text: str) -> str:
    """Replace every number in ``text`` by ``[number]`` (the rule: module docstring).

    For names built from dialled or presented numbers that recguard must
    keep: channel names (``Local/0038640123456@out-…``), file names of
    recordings made behind its back (``/mon/+386 40 123 456.wav``), dialplan
    locations (``from-pstn,040123456,1``). What remains still tells an
    operator where to look. Cached: a call's channel name is masked for
    each of its log lines.
    """
    masked: list[str] = []
    done = 0
    for start, end in _numbers(text):
        masked += [text[done:start], MASK]
        done = end
    return "".join(masked) + text[done:] if masked else text


def _numbers(text: str) -> list[tuple[int, int]]:
    """The spans to mask, in order."""
    ids = [word.span() for word in _WORD.finditer(text) if _is_id(text, word)]
    groups = [m.span() for m in _DIGITS.finditer(text)
              if not any(a <= m.start() < b for a, b in ids)]
    runs: list[list[tuple[int, int]]] = []
    for group in groups:
        if runs and _SEPARATORS.fullmatch(text, runs[-1][-1][1], group[0]):
            runs[-1].append(group)
        else:
            runs.append([group])
    return [span for run in runs if (span := _masked_span(text, run))]


def _is_id(text: str, word: re.Match[str]) -> bool:
    """A channel counter or a hex id: the digits in it are not a number."""
    value, (start, end) = word.group(), word.span()
    if not _HEX.fullmatch(value):
        return False
    if len(value) == 8:
        return start > 0 and text[start - 1] == "-" and (end == len(text) or text[end] == ";")
    return len(value) in _HEX_ID_LENGTHS and not value.isdigit()


def _masked_span(text: str, run: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The span a run of digit groups masks, or None when it is not a number."""
    start, end = run[0][0], run[-1][1]
    if sum(b - a for a, b in run) < MIN_DIGITS or _DATE.fullmatch(text, start, end):
        return None
    if start > 0 and text[start - 1] == "(":
        start -= 1
    if start > 0 and text[start - 1] == "+":
        start -= 1
    if end < len(text) and text[end] == ")" and text.count("(", start, end) > text.count(")", start, end):
        end += 1
    return start, end
