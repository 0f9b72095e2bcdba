"""The lifecycle of a recording and of a call: the states and the allowed moves.

This module depends on nothing, so the ledger, the guard, retention, the audit
and the commands all speak of states through it rather than through string
literals. The values are the ones stored in the ledger.

A recording::

    (none) ──► RECORDING ──► STOPPED ──► FINALIZED ──► DELETING ──► DELETED
                   │            │                          ▲
                   └────────────┴──────────────────────────┘
                   (a recording that loses its basis goes straight to DELETING)

``RECORDING → FINALIZED`` is allowed too: a call that ends while MixMonitor
still writes is finalized without a separate stop. Every status may stay what
it is (stop and delete requests can arrive late or twice); a DELETED recording
never comes back.
"""

from __future__ import annotations

from enum import StrEnum


class RecordingStatus(StrEnum):
    RECORDING = "recording"  # MixMonitor is (or may be) writing the file
    STOPPED = "stopped"  # MixMonitor stopped; the call is still up or not yet finalized
    FINALIZED = "finalized"  # complete, hashed (encrypted), with a deletion deadline
    DELETING = "deleting"  # intent to delete is durable; files may still exist
    DELETED = "deleted"  # files gone; the row stays as the record of the deletion

    @property
    def open(self) -> bool:
        """Still part of a call: not yet finalized or deleted."""
        return self in (RecordingStatus.RECORDING, RecordingStatus.STOPPED)

    @property
    def gone(self) -> bool:
        """On its way out or out: nothing may change its purposes any more."""
        return self in (RecordingStatus.DELETING, RecordingStatus.DELETED)


class CallStatus(StrEnum):
    LIVE = "live"
    ENDED = "ended"


_R = RecordingStatus

RECORDING_TRANSITIONS: dict[RecordingStatus, frozenset[RecordingStatus]] = {
    _R.RECORDING: frozenset({_R.RECORDING, _R.STOPPED, _R.FINALIZED, _R.DELETING}),
    _R.STOPPED: frozenset({_R.STOPPED, _R.FINALIZED, _R.DELETING}),
    _R.FINALIZED: frozenset({_R.FINALIZED, _R.DELETING}),
    _R.DELETING: frozenset({_R.DELETING, _R.DELETED}),
    _R.DELETED: frozenset({_R.DELETED}),
}

CALL_TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    CallStatus.LIVE: frozenset({CallStatus.LIVE, CallStatus.ENDED}),
    CallStatus.ENDED: frozenset({CallStatus.ENDED}),
}


class InvalidTransition(ValueError):
    """A change of status the lifecycle does not allow."""


def allowed(current: RecordingStatus | str, new: RecordingStatus | str) -> bool:
    return RecordingStatus(new) in RECORDING_TRANSITIONS[RecordingStatus(current)]


def check_transition(subject: str, current: RecordingStatus | str, new: RecordingStatus | str) -> None:
    """Raise :class:`InvalidTransition` unless ``current → new`` is allowed."""
    if not allowed(current, new):
        raise InvalidTransition(f"{subject} is {RecordingStatus(current)}; it cannot become {RecordingStatus(new)}")
