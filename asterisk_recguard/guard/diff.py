"""Pure: what a decision means for a call's recording.

    not recording, decision records         -> "start"  MixMonitor
    recording, decision still records       -> "keep"   with the purposes updated
    recording, decision no longer records   -> "delete" at once
    not recording, decision does not record -> "none"

Nothing here does I/O; the guard's actions carry the plan out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..policy import Decision, Policy
from .state import ActiveRecording

Action = Literal["start", "keep", "delete", "none"]


@dataclass(frozen=True)
class Plan:
    action: Action
    # Parts whose purposes change to the decision's (never a held part: a
    # hold freezes what the recording is kept for).
    retag: tuple[ActiveRecording, ...] = ()
    # Why the parts lose their basis, when the action is "delete".
    loss_reason: str | None = None


def plan(parts: list[ActiveRecording], recording_now: bool, decision: Decision) -> Plan:
    """What to do with a live call's recording after ``decision``."""
    if decision.record:
        return Plan("keep" if recording_now else "start", retag=_retag(parts, decision))
    if parts:
        return Plan("delete", loss_reason=loss_reason(parts[-1], decision))
    return Plan("none")


def final_action(parts: list[ActiveRecording], decision: Decision) -> Action:
    """The decision logged at the end of a call: its parts are kept or deleted."""
    if not parts:
        return "none"
    return "keep" if decision.record else "delete"


def keeps(part: ActiveRecording, decision: Decision) -> bool:
    """At the end of a call: is this part kept (a basis, or a legal hold)?"""
    return decision.record or part.held


def _retag(parts: list[ActiveRecording], decision: Decision) -> tuple[ActiveRecording, ...]:
    kept = tuple(sorted(decision.purposes))
    return tuple(part for part in parts if part.purposes != kept and not part.held)


def loss_reason(part: ActiveRecording, decision: Decision) -> str:
    """Why the purposes the recording had no longer justify it.

    A rejection reason when the purpose is still declared (``no_transaction``,
    ``consent_withdrawn``); ``reclassified`` when it is no longer declared at all.
    """
    reasons = sorted({str(r.reason) for r in decision.rejected if r.purpose in part.purposes})
    return ",".join(reasons) or "reclassified"


def retention_days(policy: Policy, purposes: tuple[str, ...]) -> int:
    """A recording is kept as long as its longest-kept purpose allows."""
    days = [policy.purposes[p].retention_days or 0 for p in purposes if p in policy.purposes]
    return max(days, default=0)


def bases(policy: Policy, purposes: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Each purpose's legal basis, as the ledger stores it."""
    return {p: str(policy.basis_of(p)) for p in purposes}
