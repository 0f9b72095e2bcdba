"""A decision pass: decide on the facts, act on the difference, write it down.

:meth:`Passes.apply` runs on the call's lane while the call is up;
:meth:`Passes.finalize` runs on a worker once the call has ended and its state
has left the lane. Both take the policy as one snapshot for the whole pass,
so a reload in the middle cannot mix two policies in one decision.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from ..ledger import Ledger
from ..policy import CallFacts, Decision, Policy, decide
from . import diff
from .actions import Recordings
from .asterisk import CallControl
from .events import GuardEvents, describe
from .state import CallState, FinalFacts

log = logging.getLogger(__name__)


@dataclass
class Passes:
    ledger: Ledger
    recordings: Recordings
    control: CallControl
    events: GuardEvents
    clock: Callable[[], datetime]

    def apply(self, state: CallState, facts: CallFacts, policy: Policy, trigger: str,
              deadline: float | None = None) -> None:
        """Decide on ``facts`` and bring the call's recording in line (on the call's lane)."""
        decision = decide(facts, policy)
        state.facts = facts
        state.decision = decision
        plan = diff.plan(state.parts(), state.recording is not None, decision)
        if plan.retag:
            self.recordings.retag(plan.retag, decision, policy, reason=trigger)
        if plan.action == "start":
            try:
                rec = self.recordings.start(state, decision, policy, deadline)
            except Exception:
                self.record(state, facts, decision, trigger, "none", None)
                raise
            self.record(state, facts, decision, trigger, "start", rec.recording_id)
        elif plan.action == "keep":
            assert state.recording is not None
            self.record(state, facts, decision, trigger, "keep", state.recording.recording_id)
        elif plan.action == "delete":
            self.record(state, facts, decision, trigger, "delete", state.parts()[-1].recording_id)
            self.recordings.discard(state, policy, reason=plan.loss_reason or "reclassified", trigger=trigger)
        else:
            self.record(state, facts, decision, trigger, "none", None)

    def reapply(self, state: CallState, facts: CallFacts, policy: Policy, trigger: str) -> None:
        """A pass during the call: a failure is logged, the call stays tracked."""
        try:
            self.apply(state, facts, policy, trigger)
        except Exception as exc:
            log.exception("re-decision failed for %s", state.channel)
            self.events.change_failed(state, describe(exc))

    def finalize(self, state: CallState, final: FinalFacts | None, policy: Policy, trigger: str) -> None:
        """The last pass, on a worker: each part kept for its purposes or deleted."""
        try:
            facts = state.keep_withdrawal(final.facts) if final else state.facts
            ended = final.ended_at if final else self.clock()
            decision = decide(facts, policy)
            self.ledger.end_call(state.call_id, ended_at=ended, facts=facts.to_dict())
            parts = state.parts()
            self.record(state, facts, decision, trigger, diff.final_action(parts, decision),
                        parts[-1].recording_id if parts else None)
            for part in parts:
                self.recordings.settle(state, part, decision, policy, ended, trigger)
        except Exception as exc:
            log.exception("finalizing %s failed", state.call_id)
            self.events.finalize_failed(state, str(exc))
        finally:
            self.control.forget_final_facts(state.call_id)

    def record(self, state: CallState, facts: CallFacts, decision: Decision, trigger: str, action: str,
               recording_id: str | None) -> None:
        """A decision goes to the ledger and to the decision log, with its facts and reasons."""
        rejected = [{"purpose": r.purpose, "reason": str(r.reason)} for r in decision.rejected]
        # Not waited for: what the decision did (a recording started, a deletion
        # intended) is durable on its own, and the row follows within a commit.
        with self.ledger.write_behind():
            self.ledger.record_decision(state.call_id, trigger=trigger, facts=facts.to_dict(),
                                        record=decision.record, purposes=decision.purposes, rejected=rejected,
                                        policy=decision.policy, action=action,
                                        retention_days=decision.retention_days, recording_id=recording_id,
                                        at=self.clock())
        self.events.decision(state, facts, decision, trigger, action, recording_id, rejected)
