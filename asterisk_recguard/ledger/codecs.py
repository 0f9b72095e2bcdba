"""How values go into the ledger: timestamps as sortable UTC text, JSON
without caller numbers, and the checks every id, hash and purpose list passes
before it is written."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._redact import find_caller_number_key
from ..storage import is_recording_id

_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_TS_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_HEX64 = re.compile(r"[0-9a-f]{64}")
SERVER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


# --- time ---------------------------------------------------------------------


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def format_ts(value: datetime) -> str:
    """A timezone-aware datetime as the ledger's sortable UTC text."""
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware UTC datetime")
    utc = value.astimezone(timezone.utc)
    if utc.year < 1000:  # isoformat pads the year differently from strftime
        return utc.strftime(_TS_FORMAT)
    # The same text as strftime(_TS_FORMAT), at a fraction of its cost (rows are written per call).
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def parse_ts(text: str) -> datetime:
    """The ledger's UTC text back into an aware datetime."""
    if _TS_SHAPE.fullmatch(text):
        # fromisoformat is C and many times faster than strptime; the shape
        # check keeps it to the ledger's one format.
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=timezone.utc)
    return datetime.strptime(text, _TS_FORMAT).replace(tzinfo=timezone.utc)


def opt_ts(text: str | None) -> datetime | None:
    return None if text is None else parse_ts(text)


def ts_or(value: datetime | None, default: str) -> str:
    """``value`` as ledger text, or ``default`` when there is none (SQL's coalesce)."""
    return default if value is None else format_ts(value)


# --- JSON -----------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@functools.lru_cache(maxsize=2048)
def _caller_number_key_in(text: str) -> str | None:
    """Checked on the serialised form, so that nested dataclasses and mappings
    are covered too. Cached by text: a gate writes the same few facts,
    purposes and bases texts call after call."""
    return find_caller_number_key(json.loads(text))


def to_json(value: Any, what: str) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_json_default)
    bad = _caller_number_key_in(text)
    if bad:
        raise ValueError(
            f"{what} has a field {bad!r} that could hold a caller number in clear; "
            "store only the keyed hash (caller_hash)"
        )
    return text


# --- checks ---------------------------------------------------------------------


def check_hash(caller_hash: str) -> str:
    if not is_hex64(caller_hash):
        raise ValueError(
            "caller_hash must be the 64-character lowercase hex HMAC of the number, "
            "never the number itself"
        )
    return caller_hash


def is_hex64(value: object) -> bool:
    """64 lowercase hex digits: a caller hash or a SHA-256 digest."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def check_recording_id(recording_id: str) -> str:
    if not is_recording_id(recording_id):
        raise ValueError("recording_id must be a uuid4 hex string (32 lowercase hex digits)")
    return recording_id


def check_text(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    return value


def purpose_names(purposes: Iterable[str]) -> list[str]:
    """The purposes in order, each once; refuses one string passed as a list."""
    if isinstance(purposes, str):
        raise TypeError("purposes must be a list of purpose names, not one string")
    out: list[str] = []
    for purpose in purposes:
        check_text(purpose, "each purpose")
        if purpose not in out:
            out.append(purpose)
    return out


def recording_purposes(
    purposes: Iterable[str], bases: Mapping[str, str]
) -> tuple[list[str], dict[str, str]]:
    """A recording's purposes (at least one) and the legal basis of exactly each."""
    names = purpose_names(purposes)
    if not names:
        raise ValueError("a recording needs at least one purpose; delete it instead")
    basis_map = dict(bases)
    if set(basis_map) != set(names):
        raise ValueError(
            f"bases must name a legal basis for exactly the purposes {names}, "
            f"got bases for {sorted(basis_map)}"
        )
    for purpose, basis in basis_map.items():
        check_text(basis, f"the basis of {purpose}")
    return names, basis_map


def check_server_id(value: str | None) -> str | None:
    """A server id (1 to 64 letters, digits, ".", "_", "-"), or None."""
    if value is not None and (not isinstance(value, str) or not SERVER_ID.fullmatch(value)):
        raise ValueError(f"{value!r} is not a server id (1 to 64 letters, digits, '.', '_', '-')")
    return value
