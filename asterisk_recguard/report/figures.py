"""The data-protection officer's report as figures: the record of processing
(from the policy) and what happened in a period (from the ledger), gathered
into plain values that the text and HTML renderers only lay out.

Reads only. No caller number or caller hash is ever copied into a figure.
Days are UTC days.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, time, timedelta, timezone
from itertools import groupby
from typing import Any

from ..ledger import AccessEntry, DecisionRecord, Late, Ledger, PolicyUse
from ..policy import Policy

NO_PURPOSE = "no_purpose_declared"
# Access-log requests that answer a data subject (exporting.REQUEST_SUBJECT).
SUBJECT_EXPORT = "data_subject"
SUBJECT_FIND = "subject_find"

# What the ledger cannot tell, said in the report rather than guessed.
LIMITS: tuple[str, ...] = (
    "Calls that never reached the gate (recguard stopped, or a dialplan without the gate) "
    "are not in the ledger; they were not recorded by recguard (it fails closed), but "
    "they are not counted here.",
    "The ledger keeps the label of the policy each decision was made under, not its text: "
    "the purposes, bases, notices and retention shown are those of the policy file in "
    "force now.",
    "Consent 'none' covers both 'never asked' and 'asked, no answer': the ledger cannot "
    "tell them apart, so neither is counted as consent.",
    "Data-subject requests answered outside recguard (by mail, on paper) are not in its "
    "access log; a request is counted once per data subject and stated reason.",
    "Recordings kept now, legal holds in force and recordings overdue are as of the moment "
    "the report was made, not as of the end of the period.",
)


@dataclass(frozen=True)
class PurposeRecord:
    id: str
    basis: str
    retention_days: int | None
    description: str
    justification: str | None
    notices: tuple[str, ...]


@dataclass(frozen=True)
class NoticeRecord:
    id: str
    covers: tuple[str, ...]
    prompt: str
    text_file: str
    words: str  # the notice's words, or why they could not be read


@dataclass(frozen=True)
class Integrity:
    """The ledger's hash chains, walked when the report was made (as ``recguard audit`` does)."""

    sealed: bool  # False: no RECGUARD_HASH_SECRET, so links were checked but not seals
    rows: dict[str, int]  # table -> rows in its chain
    heads: dict[str, str | None]  # table -> the hash its chain ends with
    breaks: tuple[str, ...]  # the first broken row of each table, in words

    @property
    def intact(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Delay:
    """The longest time a recording stayed past its deadline."""

    recording_id: str
    deadline: datetime
    by: timedelta


@dataclass
class DayCalls:
    recorded: int = 0
    deleted: int = 0  # recorded, then deleted when its basis ended during or at the end of the call
    not_recorded: int = 0


@dataclass
class ReportFigures:
    since: date
    until: date  # inclusive: the last day of the period
    made_at: datetime
    policy_label: str
    purposes: list[PurposeRecord]
    notices: list[NoticeRecord]
    integrity: Integrity | None = None
    policies_used: list[PolicyUse] = field(default_factory=list)
    # calls that started in the period
    calls_seen: int = 0
    calls_decided: int = 0
    calls_recorded: int = 0
    calls_recording_deleted: int = 0
    calls_not_recorded: int = 0
    recorded_by_purpose: Counter[str] = field(default_factory=Counter)
    not_recorded_by_reason: Counter[str] = field(default_factory=Counter)
    consent: Counter[str] = field(default_factory=Counter)
    per_day: dict[date, DayCalls] = field(default_factory=dict)
    # recordings deleted in the period
    deleted_by_reason: Counter[str] = field(default_factory=Counter)
    deleted_per_day: dict[date, Counter[str]] = field(default_factory=dict)
    deleted_late: int = 0
    longest_late: Delay | None = None
    # now
    kept_now: int = 0
    kept_by_purpose: Counter[str] = field(default_factory=Counter)
    kept_by_deadline_year: Counter[int] = field(default_factory=Counter)
    in_progress_now: int = 0
    overdue_now: int = 0
    longest_overdue_now: Delay | None = None
    holds_now: int = 0
    # the access and unauthorized logs of the period
    holds_placed: int = 0
    holds_released: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    recordings_erased: int = 0
    erasures_refused: int = 0
    evidence_exports: int = 0
    unauthorized: Counter[str] = field(default_factory=Counter)
    limits: tuple[str, ...] = LIMITS

    @property
    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]


def period_bounds(since: date, until: date) -> tuple[datetime, datetime]:
    """The period's first moment and the moment after its last day (UTC)."""
    start = datetime.combine(since, time(), tzinfo=timezone.utc)
    return start, datetime.combine(until + timedelta(days=1), time(), tzinfo=timezone.utc)


def gather(ledger: Ledger, policy: Policy, since: date, until: date, *, now: datetime,
           read_words: Callable[[str], str]) -> ReportFigures:
    """The report's figures for the days ``since`` to ``until`` (both included).
    ``read_words`` gives a notice's words from its id (or why they are missing)."""
    start, end = period_bounds(since, until)
    figures = ReportFigures(since=since, until=until, made_at=now, policy_label=policy.label,
                            purposes=_purposes(policy), notices=_notices(policy, read_words))
    figures.per_day = {day: DayCalls() for day in figures.days}
    chains = ledger.verify_chains()
    figures.integrity = Integrity(
        chains.sealed, {table: head.rows for table, head in chains.heads.items()},
        {table: head.head_hash for table, head in chains.heads.items()},
        tuple(broken.message for broken in chains.breaks))
    figures.policies_used = ledger.policies_used_between(start, end)
    _calls(figures, ledger, start, end)
    _deletions(figures, ledger, start, end)
    _now(figures, ledger, now)
    _access(figures, ledger.access_between(start, end))
    figures.unauthorized = Counter(e.action for e in ledger.unauthorized_between(start, end))
    return figures


def _purposes(policy: Policy) -> list[PurposeRecord]:
    return [PurposeRecord(p.id, str(p.basis), p.retention_days, p.description, p.justification,
                          tuple(n.id for n in policy.notices_covering(p.id)))
            for p in (policy.purposes[k] for k in sorted(policy.purposes))]


def _notices(policy: Policy, read_words: Callable[[str], str]) -> list[NoticeRecord]:
    return [NoticeRecord(n.id, tuple(sorted(n.covers)), n.prompt, n.text, read_words(n.id))
            for n in (policy.notices[k] for k in sorted(policy.notices))]


# Calls whose decisions are read at a time: bounds memory on a busy month.
CALLS_PER_READ = 500


def _calls(figures: ReportFigures, ledger: Ledger, start: datetime, end: datetime) -> None:
    calls = ledger.calls_started_between(start, end)
    figures.calls_seen = len(calls)
    started = dict(calls)
    for first in range(0, len(calls), CALLS_PER_READ):
        ids = [call_id for call_id, _ in calls[first:first + CALLS_PER_READ]]
        decisions = ledger.decisions_of_calls(ids)
        for call_id, group in groupby(decisions, key=lambda d: d.call_id):
            _one_call(figures, started[call_id].date(), list(group))


def _one_call(figures: ReportFigures, day: date, decisions: list[DecisionRecord]) -> None:
    """One call, classified by its last decision (the one at hangup, once it ended)."""
    figures.calls_decided += 1
    last = decisions[-1]
    tally = figures.per_day.setdefault(day, DayCalls())
    if last.record:
        figures.calls_recorded += 1
        tally.recorded += 1
        figures.recorded_by_purpose.update(set(last.purposes))
    else:
        if any(d.action == "start" for d in decisions):
            figures.calls_recording_deleted += 1
            tally.deleted += 1
        else:
            figures.calls_not_recorded += 1
            tally.not_recorded += 1
        figures.not_recorded_by_reason.update(_reasons(last))
    figures.consent.update({str(d.facts.get("consent", "none")) for d in decisions} - {"none"})


def _reasons(decision: DecisionRecord) -> set[str]:
    """Each reason a call was not recorded for, once per call."""
    rejected = decision.rejected if isinstance(decision.rejected, list) else []
    reasons = {str(r.get("reason")) for r in rejected if isinstance(r, dict)}
    return reasons or {NO_PURPOSE}


def _longest(late: Iterable[Late], now: datetime) -> Delay | None:
    delays = [Delay(x.recording_id, x.deadline, (x.at or now) - x.deadline) for x in late]
    return max(delays, key=lambda d: (d.by, d.recording_id), default=None)


def _deletions(figures: ReportFigures, ledger: Ledger, start: datetime, end: datetime) -> None:
    for row in ledger.deletions_between(start, end):
        reason = row.reason or "unknown"
        figures.deleted_by_reason[reason] += row.count
        day = date.fromisoformat(row.day)
        figures.deleted_per_day.setdefault(day, Counter())[reason] += row.count
    late = ledger.deleted_late_between(start, end)
    figures.deleted_late = len(late)
    figures.longest_late = _longest(late, end)


def _now(figures: ReportFigures, ledger: Ledger, now: datetime) -> None:
    for kept in ledger.kept_counts():
        if not kept.finalized:
            figures.in_progress_now += kept.count
            continue
        figures.kept_now += kept.count
        for purpose in set(kept.purposes):
            figures.kept_by_purpose[purpose] += kept.count
        if kept.deadline_year is not None:
            figures.kept_by_deadline_year[kept.deadline_year] += kept.count
        if kept.held:
            figures.holds_now += kept.count
    figures.overdue_now, oldest = ledger.overdue(now)
    figures.longest_overdue_now = _longest([oldest] if oldest else [], now)


def _access(figures: ReportFigures, entries: Iterable[AccessEntry]) -> None:
    subjects: set[tuple[str, str, str]] = set()
    for entry in entries:
        request = str(entry.detail.get("request", ""))
        subject = str(entry.detail.get("caller_hash", ""))
        if entry.action == "hold":
            figures.holds_placed += 1
        elif entry.action == "release":
            figures.holds_released += 1
        elif entry.action == "access" and request == SUBJECT_FIND:
            subjects.add(("access", subject, entry.reason))
        elif entry.action == "erase":
            subjects.add(("erasure", subject, entry.reason))
            outcome = entry.detail.get("outcome")
            figures.recordings_erased += outcome == "deleted"
            figures.erasures_refused += outcome == "refused"
        elif entry.action == "export" and request == SUBJECT_EXPORT:
            subjects.add(("copy", subject, entry.reason))
        elif entry.action == "export" and entry.recording_id is not None:
            figures.evidence_exports += 1
    # Only the kind of each request is kept: the subject's hash stays here.
    figures.requests = Counter(kind for kind, _, _ in subjects)


def to_json(figures: ReportFigures) -> dict[str, Any]:
    """The figures as JSON-able values: dates and times as ISO text, delays in seconds."""
    def plain(value: Any) -> Any:
        if isinstance(value, (datetime, date)):
            return value.isoformat()
        if isinstance(value, timedelta):
            return value.total_seconds()
        if isinstance(value, dict):
            return {str(plain(k)): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if is_dataclass(value) and not isinstance(value, type):
            # Not dataclasses.asdict: it would rebuild a Counter from (key, count) pairs.
            return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
        return value
    return plain(figures)  # type: ignore[no-any-return]
