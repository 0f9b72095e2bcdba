"""A ledger with a month of calls for the report's tests and its screenshot:
calls decided by the real policy (``decide``), recordings kept, lost and
purged, data-subject requests, a hold and an unauthorized recording, all
through the ledger's own API, as the guard and the commands write them."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from asterisk_recguard.ledger import Ledger
from asterisk_recguard.policy import CallFacts, Policy, decide
from asterisk_recguard.resources import default_policy_path
from asterisk_recguard.policy import load_policy

MONTH = date(2026, 11, 1)
HASH = "c3" * 32
SHA = "0f" * 32

# Facts of each kind of call, and how often it comes.
ORDER = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
         "consent": "none", "outcome": "transaction"}
KINDS: dict[str, tuple[dict[str, Any], int]] = {
    "order": (ORDER, 30),
    "order_quality": ({**ORDER, "purposes": ["order", "quality"],
                       "notices": {"evidence-v1": "complete", "quality-consent-v1": "complete"},
                       "consent": "given"}, 8),
    "complaint": ({**ORDER, "purposes": ["complaint"]}, 6),
    "no_transaction": ({**ORDER, "outcome": "no_transaction"}, 8),
    "withdrawn": ({"purposes": ["quality"], "notices": {"quality-consent-v1": "complete"},
                   "consent": "withdrawn", "outcome": "unknown"}, 3),
    "refused": ({"purposes": ["quality"], "notices": {"quality-consent-v1": "complete"},
                 "consent": "refused", "outcome": "unknown"}, 6),
    "general_info": ({"purposes": ["general_info"], "notices": {}, "consent": "none",
                      "outcome": "unknown"}, 25),
    "interrupted": ({**ORDER, "notices": {"evidence-v1": "interrupted"}}, 4),
    "undeclared": ({"purposes": [], "notices": {}, "consent": "none", "outcome": "unknown"}, 10),
}


@dataclass
class Expected:
    """What a test can check the report against."""

    calls: int = 0
    recorded: int = 0
    deleted: int = 0
    not_recorded: int = 0


def policy() -> Policy:
    return load_policy(default_policy_path())


def _at(day: date, seconds: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc) + timedelta(seconds=seconds)


class Filler:
    """Writes calls into a ledger as the guard would."""

    def __init__(self, ledger: Ledger, policy: Policy) -> None:
        self.ledger, self.policy, self.n = ledger, policy, 0
        self.expected = Expected()

    def call(self, at: datetime, facts: dict[str, Any], *, label: str | None = None,
             first: dict[str, Any] | None = None, counted: bool = True) -> str | None:
        """A call decided once at the gate (on ``first``, else ``facts``) and once at
        hangup on ``facts``; its recording kept or deleted. Returns the recording id."""
        self.n += 1
        call_id = f"{1800000000 + self.n}.{self.n}"
        label = label or self.policy.label
        self.ledger.upsert_call_start(call_id, channel=f"PJSIP/trunk-{self.n:08x}",
                                      started_at=at, caller_hash=HASH)
        gate = decide(CallFacts.from_dict(first or facts), self.policy)
        end = decide(CallFacts.from_dict(facts), self.policy)
        recording = None
        if gate.record:
            recording = f"{self.n:032x}"
            self.ledger.recording_started(
                recording, call_id=call_id, channel="PJSIP/x", path=f"/spool/{recording}.wav",
                purposes=list(gate.purposes),
                bases={p: str(self.policy.basis_of(p)) for p in gate.purposes}, started_at=at)
        self._decide(call_id, at, first or facts, gate, "gate", "start" if gate.record else "none",
                     recording, label)
        ended = at + timedelta(minutes=4)
        self.ledger.end_call(call_id, ended_at=ended, facts=facts)
        final = "none" if recording is None else ("keep" if end.record else "delete")
        self._decide(call_id, ended, facts, end, "hangup", final, recording, label)
        if counted:
            self._count(recording, end.record)
        if recording is None:
            return None
        if end.record:
            self.ledger.recording_stopped(recording, stopped_at=ended)
            self.ledger.recording_finalized(
                recording, size_bytes=64000, duration_s=240.0, sha256=SHA,
                deadline=ended + timedelta(days=end.retention_days or 0), finalized_at=ended)
            return recording
        reasons = ",".join(sorted({str(r.reason) for r in end.rejected}))
        self.ledger.mark_deleting(recording, reason=reasons, actor="recguard", at=ended)
        self.ledger.mark_deleted(recording, at=ended + timedelta(seconds=1))
        return recording

    def _count(self, recording: str | None, kept: bool) -> None:
        self.expected.calls += 1
        if recording is None:
            self.expected.not_recorded += 1
        elif kept:
            self.expected.recorded += 1
        else:
            self.expected.deleted += 1

    def _decide(self, call_id: str, at: datetime, facts: dict[str, Any], decision: Any,
                trigger: str, action: str, recording: str | None, label: str) -> None:
        self.ledger.record_decision(
            call_id, trigger=trigger, facts=facts, record=decision.record,
            purposes=decision.purposes,
            rejected=[{"purpose": r.purpose, "reason": str(r.reason)} for r in decision.rejected],
            policy=label, action=action, retention_days=decision.retention_days,
            recording_id=recording, at=at)

    def old_recording(self, deadline: datetime) -> str:
        """A recording of an order three years before ``deadline``, due then."""
        recording = self.call(deadline - timedelta(days=1095, minutes=4), ORDER, counted=False)
        assert recording is not None
        return recording


def fill_month(ledger: Ledger, policy: Policy, *, seed: int = 7,
               daily: tuple[int, int] = (20, 45)) -> Expected:
    """A month (November 2026) of calls and what goes with them; returns the calls' figures."""
    rng = random.Random(seed)
    filler = Filler(ledger, policy)
    # Recordings of three years ago whose deadlines fall in the month: the purge deletes them.
    old = [filler.old_recording(_at(MONTH + timedelta(days=d), 3600 * 2)) for d in range(0, 30, 2)]
    kinds = [name for name, (_, weight) in KINDS.items() for _ in range(weight)]
    for offset in range(30):
        day = MONTH + timedelta(days=offset)
        weekend = day.weekday() >= 5
        label = "sl-call-centre 2026-10" if offset < 11 else policy.label
        for _ in range(rng.randint(*daily) // (3 if weekend else 1)):
            facts, _ = KINDS[rng.choice(kinds)]
            first = ({**facts, "consent": "given"} if facts.get("consent") == "withdrawn" else None)
            if facts.get("outcome") == "no_transaction":
                first = {**facts, "outcome": "unknown"}
            filler.call(_at(day, rng.randint(8 * 3600, 18 * 3600)), facts, label=label,
                        first=first)
    for index, recording in enumerate(old):
        deadline = ledger.recording(recording).deadline  # type: ignore[union-attr]
        late = timedelta(hours=30) if index == 3 else timedelta(minutes=10 + index)
        if index == 5:
            ledger.set_hold(recording, reason="court case 123/2026", actor="dpo-anna",
                            at=deadline - timedelta(days=3))
            ledger.log_access(actor="dpo-anna", action="hold", reason="court case 123/2026",
                              recording_id=recording, at=deadline - timedelta(days=3))
            continue
        ledger.mark_deleting(recording, reason="retention_expired", actor="purge",
                             at=deadline + late)
        ledger.mark_deleted(recording, at=deadline + late)
    _requests(ledger)
    ledger.log_unauthorized(channel="PJSIP/agent-0000001f", action="stopped_deleted",
                            call_id=None, file="/spool/agent-own.wav", started_by="AMI user crm",
                            at=_at(MONTH + timedelta(days=17), 40000))
    return filler.expected


def _requests(ledger: Ledger) -> None:
    at = _at(MONTH + timedelta(days=9), 36000)
    for n in range(3):
        ledger.log_access(actor="dpo-anna", action="access", reason=f"DSAR-{n}",
                          detail={"request": "subject_find", "caller_hash": HASH, "recordings": []},
                          at=at + timedelta(days=n))
    for outcome in ("deleted", "deleted", "refused"):
        ledger.log_access(actor="dpo-anna", action="erase", reason="DSAR-1",
                          detail={"caller_hash": HASH, "outcome": outcome},
                          at=at + timedelta(days=3))
    ledger.log_access(actor="dpo-anna", action="export", reason="DSAR-2", recording_id="ab" * 16,
                      detail={"request": "data_subject", "caller_hash": HASH},
                      at=at + timedelta(days=4))
    ledger.log_access(actor="legal", action="export", reason="claim 77", recording_id="cd" * 16,
                      detail={"request": "recording"}, at=at + timedelta(days=5))
