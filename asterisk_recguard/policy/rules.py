"""The recording rules: ``decide(facts, policy)``.

It answers, from the facts of a call and a policy, whether the call may be
recorded, for which purposes, for how long, and why not. It is the only place
where the recording rules of DESIGN.md §1 live; the guard only turns the
difference between two decisions into start, keep, or stop-and-delete. Pure.

The rules, in the order they are checked for each declared purpose (the first
that fails gives the purpose's one reason code):

1. the policy knows the purpose (``purpose_unknown``) and its basis is not
   ``forbidden`` (``purpose_forbidden``);
2. a notice covering the purpose played to the end, or was cut short and the
   notice accepts that (``notice_missing`` when no notice played at all,
   ``notice_interrupted`` when a covering one was cut short,
   ``notice_not_covering_purpose`` when only other notices played);
3. a ``consent`` purpose has ``consent = given`` (``consent_missing``,
   ``consent_refused``, ``consent_withdrawn``);
4. an ``evidence`` purpose has not lost its transaction (``no_transaction``).

The call is recorded if and only if at least one purpose passes all of them;
the retention is the longest among those purposes.
"""

from __future__ import annotations

from .model import (
    Basis,
    CallFacts,
    Consent,
    Decision,
    NoticeStatus,
    Outcome,
    Policy,
    Reason,
    Rejection,
)


def _notice_reason(purpose_id: str, facts: CallFacts, policy: Policy) -> Reason | None:
    heard_interrupted = False
    for notice in policy.notices_covering(purpose_id):
        status = facts.notices.get(notice.id)
        if status is NoticeStatus.COMPLETE:
            return None
        if status is NoticeStatus.INTERRUPTED:
            if notice.accept_interrupted:
                return None
            heard_interrupted = True
    if heard_interrupted:
        return Reason.NOTICE_INTERRUPTED
    if facts.notices:
        return Reason.NOTICE_NOT_COVERING_PURPOSE
    return Reason.NOTICE_MISSING


_CONSENT_REASON = {
    Consent.NONE: Reason.CONSENT_MISSING,
    Consent.REFUSED: Reason.CONSENT_REFUSED,
    Consent.WITHDRAWN: Reason.CONSENT_WITHDRAWN,
}


def _reason(purpose_id: str, facts: CallFacts, policy: Policy) -> Reason | None:
    """Why this purpose does not justify recording, or None if it does."""
    purpose = policy.purposes.get(purpose_id)
    if purpose is None:
        return Reason.PURPOSE_UNKNOWN
    if purpose.basis is Basis.FORBIDDEN:
        return Reason.PURPOSE_FORBIDDEN
    notice_reason = _notice_reason(purpose_id, facts, policy)
    if notice_reason is not None:
        return notice_reason
    if purpose.basis is Basis.CONSENT and facts.consent is not Consent.GIVEN:
        return _CONSENT_REASON[facts.consent]
    if purpose.basis is Basis.EVIDENCE and facts.outcome is Outcome.NO_TRANSACTION:
        return Reason.NO_TRANSACTION
    return None


def decide(facts: CallFacts, policy: Policy) -> Decision:
    """Whether the call may be recorded, for which purposes, how long, and why not.

    Called again with changed facts mid-call, it gives the new set of purposes.
    """
    justifying: list[str] = []
    rejected: list[Rejection] = []
    for purpose_id in sorted(facts.purposes):
        reason = _reason(purpose_id, facts, policy)
        if reason is None:
            justifying.append(purpose_id)
        else:
            rejected.append(Rejection(purpose_id, reason))
    retentions = [
        days
        for days in (policy.purposes[purpose_id].retention_days for purpose_id in justifying)
        if days is not None
    ]
    return Decision(
        record=bool(justifying),
        purposes=tuple(justifying),
        rejected=tuple(rejected),
        retention_days=max(retentions) if retentions else None,
        policy=policy.label,
    )
