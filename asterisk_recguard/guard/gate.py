"""The gate: a channel entering Stasis from dialplan/recguard.conf.

The first pass of a call starts tracking it; a later pass (the call came
through the gate again, after a transfer, with other purposes) is a re-gate
of the same call. Either way the caller must never wait: whatever fails, the
channel is continued within ``RECGUARD_GATE_TIMEOUT``, unrecorded, and the
failure is logged. A gate whose time has run out (the guard is overloaded) is
shed: it does no further work on the caller's time, tells the dialplan
nothing, so the call goes on as ``unavailable``, and logs one ``gate_shed``
line. Whoever notices first sheds it: the lane, or the deadline's own thread
(:mod:`.deadlines`) while the gate waits for its lane or on Asterisk and the
ledger; a recording the pass started then is undone here. Runs on the call's
lane.
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
from .actions import Recordings, StartFailed
from .asterisk import AsteriskError, CallControl, ChannelGone
from .deadlines import PendingGate
from .decision import Passes
from .events import GuardEvents, describe
from .state import ActiveRecording, CallState

log = logging.getLogger(__name__)

GATE_ARG = "gate"


class Shed(Exception):
    """The gate's time ran out before it could answer: the caller goes on, unrecorded."""

    def __init__(self, stage: str, waited_ms: int) -> None:
        super().__init__(stage)
        self.stage = stage
        self.waited_ms = waited_ms


def _in_time(began: float, deadline: float, stage: str) -> None:
    now = time.perf_counter()
    if now > deadline:
        raise Shed(stage, round((now - began) * 1000))


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
    # Told each gate's time too (the daemon's metrics); must be cheap, it runs on the lane.
    on_gate: Callable[[float], None] | None = None

    def stasis_start(self, calls: dict[str, CallState], event: dict[str, Any], channel: dict[str, Any],
                     received: float, policy: Policy, pending: PendingGate | None = None) -> None:
        args = event.get("args") or []
        if args and args[0] == GATE_ARG:
            if pending is not None and not pending.take():
                self._overtaken(calls, channel, policy)
                return
            self._gate(calls, channel, received, policy, pending)
            return
        # Not the gate: whoever sent it here, the caller must not wait in Stasis.
        call_id = channel["id"]
        self.events.stasis_unexpected(call_id, mask_numbers(str(channel.get("name", ""))), self.control.app,
                                      GATE_ARG)
        self._continue(call_id, None)

    def _overtaken(self, calls: dict[str, CallState], channel: dict[str, Any], policy: Policy) -> None:
        """Its deadline came first: the call went on as unavailable without it.
        A first pass is left untracked, as the dialplan believes; a re-gate's
        new facts are still decided, so a recording they no longer justify stops."""
        state = calls.get(channel["id"])
        if state is not None:
            facts = state.keep_withdrawal(cf.facts_from_channelvars(channel.get("channelvars") or {}))
            self.passes.reapply(state, facts, policy, "gate")

    def _gate(self, calls: dict[str, CallState], channel: dict[str, Any], began: float, policy: Policy,
              pending: PendingGate | None = None) -> None:
        call_id = channel["id"]
        name = mask_numbers(str(channel.get("name", "")))
        deadline = began + self.timeout
        state = calls.get(call_id)
        first_pass = state is None  # otherwise a re-gate after a transfer
        before: ActiveRecording | None = state.recording if state else None  # an earlier pass's recording
        facts = cf.facts_from_channelvars(channel.get("channelvars") or {})
        subscribed = decided = False
        outcome: str | None = None  # what the dialplan is told; nothing means "unavailable"
        reason = "gate_failed"
        try:
            if not self.accepting():
                raise RuntimeError("recguard is shutting down")
            _in_time(began, deadline, "waiting for its turn")
            if state is None:
                caller_hash = self.hash_caller((channel.get("caller") or {}).get("number") or "")
                state = calls[call_id] = CallState(call_id=call_id, channel=name, facts=facts)
                with self.ledger.write_behind():  # durable with the recording, if there is one
                    self.ledger.upsert_call_start(call_id, channel=name, linkedid=channel.get("linkedid"),
                                                  caller_hash=caller_hash, facts=facts.to_dict())
            else:
                facts = state.keep_withdrawal(facts)
                subscribed = True  # by its first pass
            _in_time(began, deadline, "before deciding")
            self.passes.apply(state, facts, policy, trigger="gate", deadline=deadline)
            decided = True
            if not subscribed:
                # Before continuing, so no change after the gate is missed; after
                # MixMonitor's start, which a burst must not find later than it need
                # be (while the call is in Stasis its events reach the guard anyway).
                self.control.subscribe(call_id)
                subscribed = True
            _in_time(began, deadline, "after deciding")
            outcome = "record" if state.recording else "skip"
        except Shed as shed:
            # Overloaded: no further work on the caller's time, and the truth:
            # "unavailable", never "skip" (which says the law does not allow it).
            if pending is None or pending.claim_answer():  # else its deadline said so already
                self.events.gate_shed(call_id, name, shed.stage, shed.waited_ms)
            reason = "gate_shed"
        except Exception as exc:  # the caller must go on whatever happened
            log.exception("gate failed for %s", name)
            self.events.gate_failed(call_id, name, describe(exc))
            # Only what this pass started goes; a lawful recording from an
            # earlier pass (before a transfer) is not this pass's to undo.
            if state is not None and state.recording is not None and state.recording is not before:
                self.recordings.discard(state, policy, reason="gate_failed", trigger="gate", only_current=True)
            if first_pass and isinstance(exc, StartFailed):
                # A recording the law allows failed to start: that is not "skip"
                # (the law does not allow it) but the guard unable to record,
                # so the dialplan hears nothing and the call is untracked.
                outcome = None
            else:
                outcome = "skip" if state is not None and not first_pass or subscribed else None
        # The deadline's thread may have continued the caller already, unrecorded:
        # then this pass is shed, and what it did is undone below.
        answering = pending is None or pending.claim_answer()
        if not answering:
            outcome, reason = None, "gate_shed"
        recording = state.recording if state is not None else None
        told = outcome is not None and self._tell(call_id, name, outcome,
                                                  recording.recording_id if recording else "", deadline)
        if answering:  # else the deadline's thread answered the caller, and timed it
            self._continue(call_id, name)
            self._timed(time.perf_counter() - began)
        if state is None:
            return
        if first_pass and not subscribed:
            # Failed or shed before its subscription: its hangup would never be
            # seen, so whatever the dialplan heard, the call ends here.
            self._untrack(calls, state, before, first_pass, policy, reason, subscribed=False)
            return
        if not told:
            self._untrack(calls, state, before, first_pass, policy, reason)
        if not first_pass and not decided:
            # A re-gate the caller did not wait for: its new facts are still
            # decided, so a recording they no longer justify stops now.
            self.passes.reapply(state, facts, policy, "gate")

    def _timed(self, took: float) -> None:
        self.seconds.append(took)
        if self.on_gate is not None:
            self.on_gate(took)

    def _tell(self, call_id: str, name: str, outcome: str, recording_id: str, deadline: float) -> bool:
        """Tell the dialplan the decision, within the gate's time; True if it was told."""
        variables = {cf.DECISION_VAR: outcome}
        if recording_id:
            variables[cf.RECORDING_ID_VAR] = recording_id
        try:
            wait = max(0.05, min(self.action_timeout, deadline - time.perf_counter()))
            self.control.set_variables(call_id, variables, wait)
            return True
        except AsteriskError as exc:
            self.events.gate_failed(call_id, name, str(exc))
            return False

    def _continue(self, call_id: str, name: str | None) -> None:
        try:
            self.control.continue_call(call_id)
        except ChannelGone:
            pass  # the caller hung up meanwhile; the hangup event finalizes the call
        except AsteriskError as exc:
            self.events.gate_failed(call_id, name, str(exc))

    def _untrack(self, calls: dict[str, CallState], state: CallState, before: ActiveRecording | None,
                 first_pass: bool, policy: Policy, reason: str, subscribed: bool = True) -> None:
        """The dialplan did not hear the decision, so it says "unavailable" and
        skips the gate's hangup handler and withdrawal key: make that true."""
        if state.recording is not None and state.recording is not before:
            self.recordings.discard(state, policy, reason=reason, trigger="gate", only_current=True)
        if not first_pass:
            return
        calls.pop(state.call_id, None)
        if subscribed:
            self.control.unsubscribe(state.call_id)
        self.ledger.end_call(state.call_id, ended_at=self.clock(), facts=state.facts.to_dict())
