"""Caller numbers as a keyed hash only: normalise a caller number to E.164 and
hash it with HMAC-SHA256, so that the product can recognise a caller (for a
data-subject request) without ever storing or logging the number in clear
(GDPR art. 32, data minimisation).

Normalisation rules (``normalize_number``)
------------------------------------------

The input is what Asterisk presents as ``CALLERID(num)`` or what an operator
types for a data-subject request. The result is ``+`` followed by 3 to 15 ASCII
digits, or ``None`` when there is no usable number. Hostile input never
raises and never passes through: the output contains only ``+`` and digits.

1. Only these characters are accepted: ASCII digits ``0-9``, a ``+`` as the
   very first character, and the visual separators space, ``-``, ``.``, ``/``,
   ``(`` and ``)``. Anything else -- letters (``anonymous``, ``unknown``,
   vanity numbers), control characters (CR/LF), quotes, shell metacharacters,
   ``*``/``#`` and digits of other scripts (Arabic-Indic, full-width, ...) --
   makes the input unusable. Digits of other scripts are rejected rather than
   mapped because the switch never dials them; a "number" written with them is
   not a number a caller can have. Leading and trailing spaces are ignored.
2. ``tel:`` and ``sip:``/``sips:`` URIs (scheme in any case) are unwrapped:
   ``tel:NUMBER;params`` gives NUMBER, ``sip:USER;params@host`` gives USER.
   The URI itself may contain only letters, digits and ``+-.()@:;=_[]``; a SIP
   URI without ``@`` has no user part and is unusable.
3. Prefixes, checked on the digits in this order:

   * ``+`` or ``00``: international. What follows is country code and
     national number. A ``(0)`` trunk-prefix marker, as in
     ``+386 (0)40 123 456``, is dropped. A country code cannot start with 0.
   * a single leading ``0``: national trunk prefix. It is replaced by the
     default country code: ``040 123 456`` -> ``+38640123456``.
   * no prefix at all: ambiguous. If the digits start with the default country
     code *and* at least 8 digits follow it, they are an international number
     whose ``+`` was dropped (many trunks present ``38640123456``). Otherwise
     they are a national number whose trunk prefix was dropped, and the default
     country code is put in front (``40 123 456`` -> ``+38640123456``).
     For Slovenia (386) this rule is exact: a Slovenian national significant
     number has exactly 8 digits, so it can never be 386 followed by 8 more.
     For countries with longer or variable-length national numbers it is a
     heuristic; configure the trunk to present ``+`` or ``0``.

4. At least 3 digits must remain after the prefix is removed, and the result
   must have at most 15 digits (the E.164 maximum). Inputs longer than 256
   characters are rejected before any work is done.

Hashing
-------

``caller_hash`` is HMAC-SHA256 keyed with a secret of at least 32 bytes over
the ASCII E.164 string; the result is 64 lowercase hex characters. Phone
numbers are a small space (about 10^10 per country), so an unkeyed hash would
be reversed by enumeration in minutes: the secret is what protects the callers
and must be kept apart from the ledger. Changing the secret, or the rules
above, makes every stored hash unmatchable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import string

__all__ = [
    "MIN_SECRET_BYTES",
    "caller_hash",
    "hash_caller",
    "normalize_number",
]

MIN_SECRET_BYTES = 32

_MAX_INPUT_CHARS = 256
_MIN_DIGITS = 3
_MAX_E164_DIGITS = 15
# A national significant number is at least this long when the default
# country code is read as an international prefix without '+' (rule 3).
_MIN_DIGITS_AFTER_BARE_COUNTRY_CODE = 8

_DIGITS = frozenset(string.digits)
_NUMBER_CHARS = _DIGITS | frozenset(" -./()")
_URI_CHARS = frozenset(string.ascii_letters + string.digits + "+-.()@:;=_[]")
_URI_SCHEMES = ("tel", "sip", "sips")

# [0-9], not \d: \d also matches digits of other scripts.
_E164 = re.compile(r"\+[1-9][0-9]{2,14}")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")


def normalize_number(raw: str, default_country_code: str = "386") -> str | None:
    """Return ``raw`` as ``+`` and E.164 digits, or None if it holds no usable number.

    See the module docstring for the rules. Raises ValueError only for an
    invalid ``default_country_code`` (a configuration error), never because of
    ``raw``.
    """
    country_code = _check_country_code(default_country_code)
    if not isinstance(raw, str) or len(raw) > _MAX_INPUT_CHARS:
        return None
    number = _unwrap_uri(raw.strip(" "))
    if number is None:
        return None
    return _to_e164(number, country_code)


def caller_hash(number_e164: str, secret: bytes | str) -> str:
    """HMAC-SHA256 of an E.164 number (as ``normalize_number`` returns it), in lowercase hex.

    Raises ValueError if the secret is shorter than 32 bytes or the number is
    not in E.164 form. The message never repeats the number.
    """
    key = _secret_bytes(secret)
    if not isinstance(number_e164, str) or not _E164.fullmatch(number_e164):
        raise ValueError(
            "caller_hash() needs a number in E.164 form ('+' and 3 to 15 digits); "
            "pass raw caller numbers to hash_caller() instead"
        )
    return hmac.new(key, number_e164.encode("ascii"), hashlib.sha256).hexdigest()


def hash_caller(raw: str, secret: bytes | str, default_country_code: str = "386") -> str | None:
    """Normalise ``raw`` and return its keyed hash, or None if it holds no usable number.

    The secret is checked first, so a bad secret is reported even for an
    anonymous caller.
    """
    _secret_bytes(secret)
    number = normalize_number(raw, default_country_code)
    if number is None:
        return None
    return caller_hash(number, secret)


def _check_country_code(code: str) -> str:
    if not isinstance(code, str) or not _COUNTRY_CODE.fullmatch(code):
        raise ValueError(
            "default country code must be 1 to 3 digits without '+' or a leading 0 "
            "(for Slovenia: 386)"
        )
    return code


def _secret_bytes(secret: bytes | str) -> bytes:
    if isinstance(secret, str):
        key = secret.encode("utf-8")
    elif isinstance(secret, (bytes, bytearray)):
        key = bytes(secret)
    else:
        raise ValueError("the caller-hash secret must be bytes or str")
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the caller-hash secret must be at least {MIN_SECRET_BYTES} bytes "
            f"(got {len(key)}); make one with: "
            "python3 -c 'import secrets; print(secrets.token_hex(32))'"
        )
    return key


def _unwrap_uri(text: str) -> str | None:
    """The number part of a tel:/sip: URI, ``text`` itself if it is no URI, None if unusable."""
    scheme, colon, rest = text.partition(":")
    if not colon:
        return text
    if scheme.lower() not in _URI_SCHEMES or not rest or not set(rest) <= _URI_CHARS:
        return None
    if scheme.lower() == "tel":
        return rest.split(";", 1)[0]
    user, at, _host = rest.partition("@")
    if not at:
        return None
    return user.split(";", 1)[0]


def _to_e164(number: str, country_code: str) -> str | None:
    plus = number.startswith("+")
    body = number[1:] if plus else number
    if not body or not set(body) <= _NUMBER_CHARS:
        return None
    all_digits = _only_digits(body)

    if plus or all_digits.startswith("00"):
        # "+386 (0)40 ..." writes the national trunk prefix in brackets.
        digits = _only_digits(body.replace("(0)", "", 1))
        if not plus:
            digits = digits[2:]
        if len(digits) < _MIN_DIGITS or digits.startswith("0"):
            return None
        e164 = digits
    elif all_digits.startswith("0"):
        national = all_digits[1:]
        if len(national) < _MIN_DIGITS:
            return None
        e164 = country_code + national
    elif (
        all_digits.startswith(country_code)
        and len(all_digits) - len(country_code) >= _MIN_DIGITS_AFTER_BARE_COUNTRY_CODE
    ):
        e164 = all_digits
    else:
        if len(all_digits) < _MIN_DIGITS:
            return None
        e164 = country_code + all_digits

    if len(e164) > _MAX_E164_DIGITS:
        return None
    return "+" + e164


def _only_digits(text: str) -> str:
    return "".join(ch for ch in text if ch in _DIGITS)
