"""A pause for card details: the call's recording goes on, silent, until the
pause ends. Runs on the call's lane.

The agent's keys (``*82``, ``*83`` in dialplan/recguard-features.conf) set
``RECGUARD_PAUSE_KEY``, a CRM sets ``RECGUARD_PAUSE`` through AMI, on the
caller's channel: ``1`` pauses, ``0`` resumes. A pause is one state of the
call, whoever asked: a second pause while paused changes nothing, and either
may end it. A mute Asterisk refuses never leaves a recording going on with
the card details in it: the recording is stopped instead, and a new part is
decided at the resume (see :meth:`Pauses.request`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .actions import Recordings
from .events import GuardEvents
from .state import CallState

PAUSE_VAR = "RECGUARD_PAUSE"
PAUSE_KEY_VAR = "RECGUARD_PAUSE_KEY"
# Which variable says who asked: the ledger and the log keep it.
PAUSE_VARS = {PAUSE_VAR: "crm", PAUSE_KEY_VAR: "agent_key"}


def wanted(value: object) -> bool | None:
    """``1`` pause, ``0`` resume; anything else (an unset variable too) means nothing."""
    text = str(value or "").strip()
    return {"1": True, "0": False}.get(text)


@dataclass
class Pauses:
    recordings: Recordings
    events: GuardEvents

    def request(self, state: CallState, pause: bool, trigger: str) -> bool:
        """Pause or resume the call's recording; True when the call should be
        decided again (a part was stopped and may go on in a new one)."""
        return self._pause(state, trigger) if pause else self._resume(state, trigger)

    def _pause(self, state: CallState, trigger: str) -> bool:
        if state.paused_by is not None:
            return False  # paused already: the same pause
        state.paused_by = trigger
        rec = state.recording
        if rec is None:
            # Nothing recorded now; remembered, so a recording that starts during the pause starts muted.
            self.events.recording_paused(state, None, trigger, None)
        elif not self.recordings.mute(state, rec, trigger):
            # Card details must not be recorded: stopped, not left running unmuted.
            self.recordings.stop_current(state)
            self.events.recording_stopped(state, rec, "pause_failed", trigger)
        return False

    def _resume(self, state: CallState, trigger: str) -> bool:
        if state.paused_by is None:
            return False  # not paused: nothing to end
        state.paused_by = None
        rec = state.recording
        if rec is None:
            self.events.recording_resumed(state.call_id, state.channel, None, trigger, None, None)
            # A part a failed mute stopped goes on in a new one, if the decision still records.
            return state.decision is not None and state.decision.record
        if not rec.muted or self.recordings.unmute(state, rec, trigger):
            return False
        # Still silent in Asterisk: that part ends here and a new one starts with sound.
        self.recordings.stop_current(state)
        self.events.recording_stopped(state, rec, "resume_failed", trigger)
        return True
