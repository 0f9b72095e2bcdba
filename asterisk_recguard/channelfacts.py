"""The facts of a call as the dialplan snippets leave them in channel variables.

Pure: turns the ``RECGUARD_*`` channel variables (as ARI puts them in every
event through ari.conf ``channelvars``) into :class:`policy.CallFacts`. Values
are read defensively: anything malformed counts as *not established* — an
unreadable consent is no consent, an unreadable notice status is not a notice
heard to the end — so a bad value can only ever prevent a recording.

The variables (set by dialplan/recguard.conf, an agent key or a CRM):

    RECGUARD_PURPOSE   order,quality            purposes declared
    RECGUARD_NOTICES   evidence-v1:complete,... notices played, and how far
    RECGUARD_CONSENT   none|given|refused|withdrawn
    RECGUARD_OUTCOME   unknown|transaction|no_transaction
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .policy import MAX_ID_LENGTH, CallFacts, Consent, NoticeStatus, Outcome

PURPOSE_VAR = "RECGUARD_PURPOSE"
NOTICES_VAR = "RECGUARD_NOTICES"
CONSENT_VAR = "RECGUARD_CONSENT"
OUTCOME_VAR = "RECGUARD_OUTCOME"
DECISION_VAR = "RECGUARD_DECISION"
RECORDING_ID_VAR = "RECGUARD_RECORDING_ID"
FACT_VARS = frozenset({PURPOSE_VAR, NOTICES_VAR, CONSENT_VAR, OUTCOME_VAR})

_ID = re.compile(rf"[a-z0-9][a-z0-9_-]{{0,{MAX_ID_LENGTH - 1}}}")
# An id that is not well formed is still kept (so the decision names it as an
# unknown purpose), but reduced to a harmless printable form.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _safe_id(raw: str) -> str:
    raw = raw.strip()
    if _ID.fullmatch(raw):
        return raw
    return "invalid:" + _UNSAFE.sub("?", raw)[:MAX_ID_LENGTH]


def parse_purposes(raw: str | None) -> frozenset[str]:
    if not raw:
        return frozenset()
    return frozenset(_safe_id(part) for part in raw.split(",") if part.strip())


def parse_notices(raw: str | None) -> dict[str, NoticeStatus]:
    """``id:complete,id:interrupted``; a notice heard to the end once counts as heard."""
    notices: dict[str, NoticeStatus] = {}
    for entry in (raw or "").split(","):
        notice_id, _, status = entry.strip().partition(":")
        if not notice_id:
            continue
        notice_id = _safe_id(notice_id)
        heard = status.strip().lower() == NoticeStatus.COMPLETE.value
        if heard or notice_id not in notices:
            notices[notice_id] = NoticeStatus.COMPLETE if heard else NoticeStatus.INTERRUPTED
    return notices


def parse_consent(raw: str | None) -> Consent:
    try:
        return Consent((raw or "none").strip().lower())
    except ValueError:
        return Consent.NONE


def parse_outcome(raw: str | None) -> Outcome:
    try:
        return Outcome((raw or "unknown").strip().lower())
    except ValueError:
        return Outcome.UNKNOWN


def facts_from_channelvars(channelvars: Mapping[str, str | None]) -> CallFacts:
    return CallFacts(
        purposes=parse_purposes(channelvars.get(PURPOSE_VAR)),
        notices=parse_notices(channelvars.get(NOTICES_VAR)),
        consent=parse_consent(channelvars.get(CONSENT_VAR)),
        outcome=parse_outcome(channelvars.get(OUTCOME_VAR)),
    )
