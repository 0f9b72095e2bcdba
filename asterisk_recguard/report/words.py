"""Plain words for the codes the report shows (reasons, bases, consent),
shared by its text and HTML renderings."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ..policy import BASIS_TEXT, REASON_TEXT
from .figures import NO_PURPOSE, Integrity

DELETION_TEXT: dict[str, str] = {
    "retention_expired": "its retention period ended (purge)",
    "erasure_request": "the data subject asked for erasure",
    "consent_withdrawn": "the caller withdrew consent",
    "no_transaction": "the call led to no transaction",
    "reclassified": "the purpose it was recorded for was no longer declared",
    "finalize_failed": "it could not be finalized (hash or encryption failed)",
    "start_failed": "MixMonitor did not start it",
}

REQUEST_TEXT: dict[str, str] = {
    "access": "access (recguard subject find)",
    "erasure": "erasure (recguard subject erase)",
    "copy": "copy of recordings (recguard export --caller)",
}

DAY_SERIES: tuple[tuple[str, str], ...] = (
    ("recorded", "recorded"),
    ("deleted", "recorded, then deleted"),
    ("not_recorded", "not recorded"),
)


def reason_text(code: str) -> str:
    """What a reason for not recording means."""
    if code == NO_PURPOSE:
        return "no purpose was declared for the call"
    return REASON_TEXT.get(code, "a reason this version of recguard does not know")


def deletion_text(code: str) -> str:
    """What a deletion reason means; a combined one (``a,b``) names each part."""
    return "; ".join(DELETION_TEXT.get(part, "(recorded by another version)")
                     for part in code.split(","))


def basis_text(code: str) -> str:
    return BASIS_TEXT.get(code, code)


def duration(span: timedelta) -> str:
    """A delay as a person says it: '3 d 4 h', '2 h 5 min', '40 s'."""
    seconds = int(span.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def moment(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%MZ")


def retention(days: int | None) -> str:
    return "not kept" if days is None else f"{days} days"


def integrity_text(integrity: Integrity) -> str:
    """One sentence on whether the figures rest on a ledger as recguard wrote it."""
    if not integrity.intact:
        return ("The ledger was changed behind recguard's back: figures drawn from the rows "
                "named below cannot be trusted; run recguard audit")
    checked = "linked and sealed" if integrity.sealed else "linked (seals not checked: no RECGUARD_HASH_SECRET)"
    return (f"The decisions, the access log and the unauthorized log are intact: every row "
            f"{checked} as recguard wrote it, checked when this report was made")
