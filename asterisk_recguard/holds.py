"""Legal holds: keep a recording past its deadline for a litigation or an
authority's request (GDPR art. 17(3)(e)), and lift that again.

A held recording is listed, never deleted, by the purge and refused by an
erasure. Placing a hold needs a reason; both steps go with the actor to the
access log and the decision log.
"""

from __future__ import annotations

from .access import Clock, get_recording, moment, require_reason
from .decisionlog import EventLog
from .errors import UserError
from .ledger import InvalidTransition, Ledger, Recording, utcnow

RELEASE_WITHOUT_REASON = "no reason given"


class Refused(UserError):
    """The request is understood but the recording's state does not allow it
    (already held, not held, deleted); exit status 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


def place_hold(ledger: Ledger, log: EventLog, recording_id: str, *, reason: str,
               actor: str, clock: Clock = utcnow) -> Recording:
    """Keep a recording past its deadline until released; logged with the reason."""
    why = require_reason(reason, "a legal hold")
    rec = get_recording(ledger, recording_id)
    if rec.held:
        raise Refused(
            f"recording {rec.recording_id} is already under legal hold since "
            f"{moment(rec.held_at)} by {rec.held_by}: {rec.hold_reason}; "
            "release it first to place a hold with another reason"
        )
    try:
        held = ledger.set_hold(rec.recording_id, reason=why, actor=actor, at=clock())
    except InvalidTransition as exc:
        raise Refused(str(exc)) from None
    ledger.log_access(actor=actor, action="hold", reason=why, recording_id=held.recording_id,
                      call_id=held.call_id, detail={"deadline": held.deadline}, at=clock())
    log.emit("hold", call_id=held.call_id, recording_id=held.recording_id, reason=why,
             actor=actor, deadline=held.deadline)
    return held


def release_hold(ledger: Ledger, log: EventLog, recording_id: str, *, actor: str,
                 reason: str | None = None, clock: Clock = utcnow) -> Recording:
    """Lift a legal hold; the next purge deletes the recording if its deadline has passed."""
    rec = get_recording(ledger, recording_id)
    if not rec.held:
        raise Refused(f"recording {rec.recording_id} is not under legal hold")
    why = reason.strip() if reason and reason.strip() else RELEASE_WITHOUT_REASON
    released = ledger.release_hold(rec.recording_id, actor=actor, at=clock())
    detail = {"hold_reason": rec.hold_reason, "held_by": rec.held_by, "held_at": rec.held_at,
              "deadline": rec.deadline}
    ledger.log_access(actor=actor, action="release", reason=why,
                      recording_id=rec.recording_id, call_id=rec.call_id, detail=detail,
                      at=clock())
    log.emit("release", call_id=rec.call_id, recording_id=rec.recording_id, reason=why,
             actor=actor, hold_reason=rec.hold_reason, deadline=rec.deadline)
    return released
