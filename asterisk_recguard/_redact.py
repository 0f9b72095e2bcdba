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
