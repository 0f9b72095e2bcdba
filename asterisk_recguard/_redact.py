"""Recognise field names that would carry a caller's number, so that the
ledger can refuse them and the decision log can mask them.

Caller numbers are personal data that recguard must never store or log in
clear (only their keyed hash). Both the ledger and the decision log accept
free-form JSON (facts, details), so one shared rule decides which key names
are too dangerous to let through, whatever spelling the code uses.
"""

from __future__ import annotations

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
    if not isinstance(key, str):
        return False
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


# Phone numbers are 7 to 15 digits (E.164), possibly after a "+" or "00";
# internal extensions, sequence numbers and ports are shorter. A run inside
# a longer token of letters and digits (a hex recording id) is not a number.
_NUMBER_RUN = re.compile(r"(?<![0-9A-Za-z])\+?\d{7,}(?![0-9A-Za-z])")
MASK = "[number]"


def mask_numbers(text: str) -> str:
    """Replace every run of seven or more digits by ``[number]``.

    For names built from dialled or presented numbers that recguard must
    keep: channel names (``Local/0038640123456@out-…``), file names of
    recordings made behind its back (``…-040123456-….wav``), dialplan
    locations (``from-pstn,040123456,1``). What remains still tells an
    operator where to look.
    """
    return _NUMBER_RUN.sub(lambda m: m.group() if _channel_sequence(text, m) else MASK, text)


def _channel_sequence(text: str, match: re.Match[str]) -> bool:
    """Asterisk's channel counter (``PJSIP/trunk-00000012``, ``…-0000001a;2``): eight
    hex digits after the last dash, at the end of the name or before ``;``."""
    start, end = match.span()
    return (end - start == 8 and start > 0 and text[start - 1] == "-"
            and (end == len(text) or text[end] == ";"))
