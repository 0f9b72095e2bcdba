"""What the guard knows of one call while it is up, and of its recording's parts.

A :class:`CallState` is owned by exactly one lane (see the package docstring):
only that lane's thread reads or changes it while the call is tracked, so it
needs no lock. When the call ends its state leaves the lane and is handed,
whole, to a file worker that finalizes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from .. import channelfacts as cf
from ..policy import CallFacts, Consent, Decision


@dataclass
class ActiveRecording:
    """One MixMonitor's file of a call (a part of the call's recording)."""

    recording_id: str
    path: Path
    mixmonitor_id: str
    purposes: tuple[str, ...]
    # Under legal hold: kept whatever the decisions say, finalized at hangup.
    held: bool = False
    # Muted by MixMonitorMute for a pause (card details); the ledger holds the open pause.
    muted: bool = False


@dataclass
class CallState:
    """``call_id`` is the channel's uniqueid (what AMI and ARI actions use);
    ``channel`` is its name with any number masked (what the logs show)."""

    call_id: str
    channel: str
    facts: CallFacts
    decision: Decision | None = None
    recording: ActiveRecording | None = None
    # Earlier parts of this call's recording, stopped but kept with it: they
    # follow every later decision and are finalized (or deleted) at hangup.
    segments: list[ActiveRecording] = field(default_factory=list)
    # MixMonitor starts the guard asked for on this channel and has not yet
    # seen as a MixMonitorStart event: a start beyond them is someone else's.
    expected_starts: int = 0
    # What paused the call's recording ("agent_key", "crm"), None when not paused.
    # Kept while nothing is recorded, so a recording that starts during the pause starts muted.
    paused_by: str | None = None

    def parts(self) -> list[ActiveRecording]:
        return [*self.segments, *([self.recording] if self.recording else [])]

    def keep_withdrawal(self, facts: CallFacts) -> CallFacts:
        """Consent withdrawn in this call stays withdrawn: a stale snapshot, a
        failed Setvar or the consent question asked again does not bring it back."""
        if self.facts.consent is Consent.WITHDRAWN and facts.consent is not Consent.WITHDRAWN:
            return replace(facts, consent=Consent.WITHDRAWN)
        return facts


@dataclass(frozen=True)
class FinalFacts:
    """A call's facts at its end, and when it ended."""

    facts: CallFacts
    ended_at: datetime


def parse_final_facts(value: str) -> FinalFacts | None:
    """``epoch|purposes|notices|consent|outcome`` as the hangup handler of
    dialplan/recguard.conf leaves it in AstDB; None when malformed."""
    parts = value.split("|")
    if len(parts) != 5:
        return None
    epoch, purposes, notices, consent, outcome = parts
    try:
        ended = datetime.fromtimestamp(int(epoch), timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None
    facts = cf.facts_from_channelvars({
        cf.PURPOSE_VAR: purposes, cf.NOTICES_VAR: notices, cf.CONSENT_VAR: consent, cf.OUTCOME_VAR: outcome,
    })
    return FinalFacts(facts, ended)
