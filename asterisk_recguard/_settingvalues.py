"""How each RECGUARD_* setting's text becomes its typed value, or the reason
it cannot: one parser per kind of value, and the limits they keep.

Each parser takes the raw string and returns the value or raises
:class:`_Bad` with what is wrong; :mod:`.settings` adds the key, where it was
set and how to fix it.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from .display import ECHO_LIMIT, printable
from .ledger.location import DatabaseUrl, is_url

MIN_HASH_SECRET_LENGTH = 32
MAX_GATE_TIMEOUT = 30.0
# The longest purge interval or orphan grace: a year is far beyond any use,
# and keeps every date and timeout computed from them in range.
MAX_INTERVAL_SECONDS = 365 * 24 * 3600

# Values in config/recguard.env.example start with this; copying the example
# without filling it in must not give every installation the same secrets.
PLACEHOLDER_PREFIX = "CHANGE-ME"


class _Bad(ValueError):
    pass


def _echo(raw: str) -> str:
    """A value quoted back in its error: escaped and shortened."""
    return printable(raw, ECHO_LIMIT)


def _text(raw: str) -> str:
    if not raw.strip():
        raise _Bad("is empty")
    if raw != raw.strip():
        raise _Bad("has leading or trailing spaces")
    return raw


def _secret(raw: str) -> str:
    value = _text(raw)
    if value.upper().startswith(PLACEHOLDER_PREFIX):
        raise _Bad("is still the placeholder from recguard.env.example")
    return value


def _hash_secret(raw: str) -> str:
    value = _secret(raw)
    if len(value) < MIN_HASH_SECRET_LENGTH:
        raise _Bad(f"is {len(value)} characters long, at least {MIN_HASH_SECRET_LENGTH} are needed")
    return value


def _without_credentials(url: str) -> str:
    """The URL as it may be shown: all from the scheme to its last "@" masked (a
    password holding "/", "?" or "#" would end the host part early)."""
    start = url.find("://") + 3 if "://" in url else 0
    at = url.rfind("@", start)
    return url if at < 0 else f"{url[:start]}…{url[at:]}"


def _url(raw: str) -> str:
    value = _text(raw)
    if "@" in value:
        # The URL is printed (in `ari_connected`, in errors); a secret in it would go
        # with it, so it is not echoed here either.
        raise _Bad(f'"{_without_credentials(value)}" must not hold a user name or password; '
                   "set them in RECGUARD_ARI_USER and RECGUARD_ARI_PASSWORD instead")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise _Bad(f'"{_echo(value)}" is not a valid URL: its host is malformed') from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _Bad(f'"{_echo(value)}" is not an http:// or https:// URL')
    try:
        parts.port
    except ValueError:
        raise _Bad(f'"{_echo(value)}" has a bad port number') from None
    if parts.query or parts.fragment:
        raise _Bad(f'"{_echo(value)}" must not have a query or fragment')
    return value.rstrip("/")


def _matching(pattern: str, problem: str) -> Callable[[str], str]:
    """A parser for text that must match ``pattern``; ``problem`` says why not."""
    compiled = re.compile(pattern)

    def parse(raw: str) -> str:
        value = _text(raw)
        if not compiled.fullmatch(value):
            raise _Bad(f'"{_echo(value)}" {problem}')
        return value

    return parse


_server_id = _matching(r"[A-Za-z0-9._-]{1,64}",
                       'is not a server id (1 to 64 letters, digits, ".", "_" or "-")')


def _default_server_id() -> str:
    """The host name, when it is a valid server id."""
    return _server_id(socket.gethostname())


_app = _matching(r"[A-Za-z0-9_-]+", 'may contain only letters, digits, "_" and "-"')
_host = _matching(r"[A-Za-z0-9._:\[\]-]+", "is not a host name or IP address")


def _either(first: str, second: str) -> Callable[[str], str]:
    """A parser for one of two words, in any case; returns it in lower case."""

    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in (first, second):
            raise _Bad(f'"{_echo(raw)}" is neither "{first}" nor "{second}"')
        return value

    return parse


_on_off = _either("on", "off")
_unauthorized = _either("enforce", "log")


# ASCII digits only: str.isdigit(), int() and float() also take "²", "٣" or
# full-width digits, and int() gives up on more than 4300 digits.
_WHOLE = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"[0-9]{1,18}(\.[0-9]{0,9})?|\.[0-9]{1,9}")


def _bounded_int(raw: str, low: int, high: int, unit: str) -> int:
    """A whole number from ``low`` to ``high`` written in ASCII digits;
    ``unit`` names it in the error, e.g. "a port number"."""
    value = raw.strip()
    if not _WHOLE.fullmatch(value) or not low <= int(value) <= high:
        raise _Bad(f'"{_echo(raw)}" is not {unit} ({low}-{high})')
    return int(value)


def _port(raw: str) -> int:
    return _bounded_int(raw, 1, 65535, "a port number")


def _seconds(raw: str) -> int:
    return _bounded_int(raw, 0, MAX_INTERVAL_SECONDS, "a whole number of seconds")


def _absolute_path(raw: str) -> Path:
    path = Path(_text(raw)).expanduser()
    if not path.is_absolute():
        raise _Bad(f'"{_echo(raw)}" is not an absolute path (one that starts with / or ~/); '
                   "a relative one would depend on the directory recguard is started in")
    return path


def _ledger(raw: str) -> Path | DatabaseUrl:
    if not is_url(raw.strip()):
        return _absolute_path(raw)
    try:
        return DatabaseUrl.parse(raw)
    except ValueError as exc:
        raise _Bad(f"is {exc}") from None  # the URL is not echoed: it may hold a password


def _switch(raw: str) -> bool:
    return _on_off(raw) == "on"


def _gate_timeout(raw: str) -> float:
    value = raw.strip()
    if not _DECIMAL.fullmatch(value) or not 0 < float(value) <= MAX_GATE_TIMEOUT:
        raise _Bad(f'"{_echo(raw)}" is not a number of seconds between 0 and {MAX_GATE_TIMEOUT:g} '
                   "(0 excluded)")
    return float(value)


def _metrics(raw: str) -> tuple[str, int] | None:
    """``off``, or ``ADDR:PORT`` with ADDR an IP address (IPv6 in brackets)."""
    value = raw.strip()
    if value.lower() == "off":
        return None
    host, sep, port = value.rpartition(":")
    address = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise _Bad(f'"{_echo(raw)}" is not off or ADDRESS:PORT with an IP address') from None
    if not sep or ":" in address and host == address:
        raise _Bad(f'"{_echo(raw)}" is not off or ADDRESS:PORT (an IPv6 address goes in brackets)')
    return address, _port(port)


_COUNTRY_RE = re.compile(r"[1-9][0-9]{0,2}")


def _country_code(raw: str) -> str:
    value = raw.strip()
    if not _COUNTRY_RE.fullmatch(value):
        raise _Bad(f'"{_echo(raw)}" is not a country calling code (1-3 digits, no "+" or leading 0)')
    return value
