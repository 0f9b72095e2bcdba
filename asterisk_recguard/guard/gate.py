"""The gate: a channel entering Stasis from dialplan/recguard.conf.

The first pass of a call starts tracking it; a later pass (the call came
through the gate again, after a transfer, with other purposes) is a re-gate
of the same call. Either way the caller must never wait: whatever fails, the
channel is continued within ``RECGUARD_GATE_TIMEOUT``, unrecorded, and the
failure is logged. Runs on the call's lane.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .. import channelfacts as cf
from .._redact import mask_numbers
from ..ledger import Ledger
from ..policy import Policy
from .actions import Recordings
from .asterisk import AsteriskError, CallControl, ChannelGone
from .decision import Passes
from .events import GuardEvents, describe
from .state import ActiveRecording, CallState

log = logging.getLogger(__name__)

GATE_ARG = "gate"


@dataclass
class Gate:
    control: CallControl
    ledger: Ledger
    passes: Passes
    recordings: Recordings
    events: GuardEvents
    hash_caller: Callable[[str], str | None]
    timeout: float
    action_timeout: float
    accepting: Callable[[], bool]
    clock: Callable[[], datetime]
    # Each gate's time from its event to the continue (the newest 100,000).
    seconds: deque[float] = field(default_factory=lambda: deque(maxlen=100_000))

    def stasis_start(self, calls: dict[str, CallState], event: dict[str, Any], channel: dict[str, Any],
                     received: float, policy: Policy) -> None:
        args = event.get("args") or []
        if args and args[0] == GATE_ARG:
            try:
                self._gate(calls, channel, received, policy)
            finally:
                self.seconds.append(time.perf_counter() - received)
            return
        # Not the gate: whoever sent it here, the caller must not wait in Stasis.
        call_id = channel["id"]
        self.events.stasis_unexpected(call_id, mask_numbers(str(channel.get("name", ""))), self.control.app,
                                      GATE_ARG)
        self._continue(call_id, None)

    def _gate(self, calls: dict[str, CallState], channel: dict[str, Any], began: float, policy: Policy) -> None:
        call_id = channel["id"]
        name = mask_numbers(str(channel.get("name", "")))
        deadline = began + self.timeout
        state = calls.get(call_id)
        first_pass = state is None  # otherwise a re-gate after a transfer
        before: ActiveRecording | None = state.recording if state else None  # an earlier pass's recording
        subscribed = False
        try:
            if not self.accepting():
                raise RuntimeError("recguard is shutting down")
            facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
            if state is None:
                caller_hash = self.hash_caller((channel.get("caller") or {}).get("number") or "")
                state = calls[call_id] = CallState(call_id=call_id, channel=name, facts=facts)
                self.ledger.upsert_call_start(call_id, channel=name, linkedid=channel.get("linkedid"),
                                              caller_hash=caller_hash, facts=facts.to_dict())
                # Before continuing, so no change after the gate is missed.
                self.control.subscribe(call_id)
            else:
                facts = state.keep_withdrawal(facts)
            subscribed = True
            if time.perf_counter() > deadline:
                # Too slow to decide in time: the caller goes on, unrecorded.
                raise TimeoutError(f"the gate took over {self.timeout:g} s before deciding")
            self.passes.apply(state, facts, policy, trigger="gate", deadline=deadline)
        except Exception as exc:  # the caller must go on whatever happened
            log.exception("gate failed for %s", name)
            self.events.gate_failed(call_id, name, describe(exc))
            if state is not None and first_pass and not subscribed:
                # Its hangup will never be seen; a ledger entry, if any, is
                # finalized by the next reconcile.
                calls.pop(call_id, None)
            # Only what this pass started goes; a lawful recording from an
            # earlier pass (before a transfer) is not this pass's to undo.
            if state is not None and state.recording is not None and state.recording is not before:
                self.recordings.discard(state, policy, reason="gate_failed", trigger="gate", only_current=True)
        finally:
            recording = state.recording if state is not None else None
            told = self._tell(call_id, name, "record" if recording else "skip",
                              recording.recording_id if recording else "", deadline)
            if not told and state is not None and subscribed:
                self._untrack(calls, state, before, first_pass, policy)

    def _tell(self, call_id: str, name: str, outcome: str, recording_id: str, deadline: float) -> bool:
        """Tell the dialplan the decision and let the call go on; True if it was told.
        The call is continued whatever happens here."""
        told = False
        try:
            for variable, value in ((cf.DECISION_VAR, outcome), (cf.RECORDING_ID_VAR, recording_id)):
                if value:
                    wait = max(0.3, min(self.action_timeout, deadline - time.perf_counter()))
                    self.control.set_variable(call_id, variable, value, wait)
            told = True
        except AsteriskError as exc:
            self.events.gate_failed(call_id, name, str(exc))
        finally:
            self._continue(call_id, name)
        return told

    def _continue(self, call_id: str, name: str | None) -> None:
        try:
            self.control.continue_call(call_id)
        except ChannelGone:
            pass  # the caller hung up meanwhile; the hangup event finalizes the call
        except AsteriskError as exc:
            self.events.gate_failed(call_id, name, str(exc))

    def _untrack(self, calls: dict[str, CallState], state: CallState, before: ActiveRecording | None,
                 first_pass: bool, policy: Policy) -> None:
        """The dialplan did not hear the decision, so it says "unavailable" and
        skips the gate's hangup handler and withdrawal key: make that true."""
        if state.recording is not None and state.recording is not before:
            self.recordings.discard(state, policy, reason="gate_failed", trigger="gate", only_current=True)
        if not first_pass:
            return
        calls.pop(state.call_id, None)
        self.control.unsubscribe(state.call_id)
        self.ledger.end_call(state.call_id, ended_at=self.clock(), facts=state.facts.to_dict())
