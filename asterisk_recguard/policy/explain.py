"""A decision in plain words, for a data-protection officer and the decision log.

Ids, names and descriptions come from the policy file and the call's facts,
not from recguard: each is escaped, so that no text can start a line of its own.
"""

from __future__ import annotations

from ..display import ECHO_LIMIT, printable
from .model import Basis, CallFacts, Decision, NoticeStatus, Outcome, Policy, Reason


#: Plain-language explanation of each reason code, for a data-protection
#: officer and for the decision log.
REASON_TEXT: dict[str, str] = {
    Reason.PURPOSE_UNKNOWN: (
        "the policy does not know this purpose, so it cannot justify a recording"
    ),
    Reason.PURPOSE_FORBIDDEN: "the law does not allow recording calls for this purpose",
    Reason.NOTICE_MISSING: (
        "the caller was not told beforehand: no notice was played"
    ),
    Reason.NOTICE_NOT_COVERING_PURPOSE: (
        "the notice that was played does not tell the caller about this purpose"
    ),
    Reason.NOTICE_INTERRUPTED: (
        "the notice about this purpose was cut short, so the caller may not have "
        "heard it to the end"
    ),
    Reason.CONSENT_MISSING: (
        "this purpose needs the caller's consent, and the caller did not give it "
        "(silence or staying on the line is not consent)"
    ),
    Reason.CONSENT_REFUSED: "the caller refused consent",
    Reason.CONSENT_WITHDRAWN: "the caller withdrew consent",
    Reason.NO_TRANSACTION: (
        "the call led to no transaction, so there is nothing to keep as evidence"
    ),
}

#: What each basis means, in plain words.
BASIS_TEXT: dict[str, str] = {
    Basis.EVIDENCE: "evidence of a business transaction",
    Basis.CONSENT: "the caller's prior consent",
    Basis.FORBIDDEN: "none: never recorded",
}


def _status_text(status: NoticeStatus) -> str:
    return "played to the end" if status is NoticeStatus.COMPLETE else "cut short"


def _id(text: str) -> str:
    return printable(text, ECHO_LIMIT)


def explain(decision: Decision, policy: Policy, facts: CallFacts | None = None) -> str:
    """A short explanation of a decision that a data-protection officer can read."""
    lines: list[str] = []
    if facts is not None:
        notices = (
            ", ".join(
                f"{_id(notice_id)} ({_status_text(status)}"
                + ("" if notice_id in policy.notices else ", not in this policy")
                + ")"
                for notice_id, status in facts.notices.items()
            )
            or "none"
        )
        lines.append(
            f"Call: purposes {', '.join(_id(p) for p in sorted(facts.purposes)) or 'none'}; "
            f"notices {notices}; consent {facts.consent}; outcome {facts.outcome}."
        )
    label = printable(decision.policy)
    if decision.record:
        lines.append(f"RECORD this call (policy {label}).")
        lines.append("Recorded for:")
        for purpose_id in decision.purposes:
            purpose = policy.purposes[purpose_id]
            lines.append(f"  {_id(purpose_id)} — {printable(purpose.description)}")
            lines.append(
                f"    basis: {BASIS_TEXT[purpose.basis]}; "
                f"its retention: {purpose.retention_days} days"
            )
        lines.append(
            f"Kept for {decision.retention_days} days after the call ends, then deleted."
        )
        evidence = [p for p in decision.purposes if policy.basis_of(p) is Basis.EVIDENCE]
        if evidence and facts is not None and facts.outcome is Outcome.UNKNOWN:
            lines.append("If the call ends with no transaction, the evidence purposes lapse;")
            lines.append("with no other purpose left, the recording is deleted at once.")
    else:
        lines.append(f"DO NOT RECORD this call (policy {label}).")
        if not decision.rejected:
            lines.append("No purpose was declared; recording needs a declared purpose.")
    if decision.rejected:
        lines.append("Not recorded for:")
        for rejection in decision.rejected:
            known = policy.purposes.get(rejection.purpose)
            about = f" — {printable(known.description)}" if known else ""
            lines.append(f"  {_id(rejection.purpose)}{about}")
            lines.append(f"    why: {REASON_TEXT[rejection.reason]}")
    return "\n".join(lines)
