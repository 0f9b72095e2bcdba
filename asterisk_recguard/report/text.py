"""The report as plain text, for a terminal or a mail: every figure of
:class:`~.figures.ReportFigures`, with policy and ledger text escaped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from ..display import printable
from .figures import ReportFigures
from . import words as w


def render_text(figures: ReportFigures) -> str:
    return "\n".join(_lines(figures)) + "\n"


def _counted(counts: Counter[str] | Counter[int],
             explain: Callable[[str], str] | None = None) -> Iterator[str]:
    """Each key with its count, most first; with ``explain``, what the key means."""
    if not counts:
        yield "    none"
    for key, count in sorted(counts.items(), key=lambda item: (-item[1], str(item[0]))):
        words = f"  {explain(str(key))}" if explain else ""
        yield f"    {count:>6}  {printable(key, 80)}{words}"


def _lines(f: ReportFigures) -> Iterator[str]:
    yield f"recguard report: {f.since} to {f.until} (UTC days, both included)"
    yield f"made {w.moment(f.made_at)}"
    yield from _integrity(f)
    yield ""
    yield "RECORD OF PROCESSING (GDPR art. 30)"
    yield f"  policy in force now: {printable(f.policy_label, 200)}"
    yield "  policy versions decisions were made under in the period:"
    if not f.policies_used:
        yield "    none: no decision in the period"
    for use in f.policies_used:
        yield (f"    {printable(use.label, 200)}: {use.decisions} decisions, "
               f"{w.moment(use.first)} to {w.moment(use.last)}")
    yield "  purposes (basis, retention, notices that cover it):"
    for p in f.purposes:
        notices = ", ".join(printable(n, 64) for n in p.notices) or "none"
        yield (f"    {printable(p.id, 64)}: {w.basis_text(p.basis)}; {w.retention(p.retention_days)}; "
               f"notices: {notices}")
        yield f"      {printable(p.description, 400)}"
        if p.justification:
            yield f"      retention justified: {printable(p.justification, 400)}"
    yield "  notices (what the caller is told before recording):"
    for n in f.notices:
        covers = ", ".join(printable(c, 64) for c in n.covers)
        yield (f"    {printable(n.id, 64)}: covers {covers}; prompt {printable(n.prompt, 200)}; "
               f"text {printable(n.text_file, 200)}")
        yield f"      \u201c{printable(n.words, 2000)}\u201d"
    yield ""
    yield "CALLS (that started in the period)"
    yield f"  {f.calls_seen:>6}  calls the gate saw"
    yield f"  {f.calls_decided:>6}  calls decided"
    yield f"  {f.calls_recorded:>6}    recorded and kept at the end of the call"
    yield f"  {f.calls_recording_deleted:>6}    recorded, then deleted during or at the end of the call"
    yield f"  {f.calls_not_recorded:>6}    not recorded"
    yield "  recorded, by purpose (a call may have several):"
    yield from _counted(f.recorded_by_purpose)
    yield "  not recorded or deleted, by reason (a call may have several):"
    yield from _counted(f.not_recorded_by_reason, w.reason_text)
    yield "  consent (calls): " + ", ".join(
        f"{kind} {f.consent.get(kind, 0)}" for kind in ("given", "refused", "withdrawn"))
    yield ""
    yield "RECORDINGS"
    yield "  deleted in the period, by reason:"
    yield from _counted(f.deleted_by_reason, w.deletion_text)
    late = (f"; the longest by {w.duration(f.longest_late.by)} (recording "
            f"{f.longest_late.recording_id}, deadline {w.moment(f.longest_late.deadline)})"
            if f.longest_late else "")
    yield f"  deleted after their deadline: {f.deleted_late}{late}"
    yield f"  kept now: {f.kept_now} (and {f.in_progress_now} being recorded or finalized)"
    yield "  kept now, by purpose:"
    yield from _counted(f.kept_by_purpose)
    yield "  kept now, by year of deadline:"
    yield from _counted(f.kept_by_deadline_year)
    overdue = (f"; the longest by {w.duration(f.longest_overdue_now.by)} (recording "
               f"{f.longest_overdue_now.recording_id})" if f.longest_overdue_now else "")
    yield f"  past their deadline now and not held (must be 0): {f.overdue_now}{overdue}"
    yield (f"  legal holds: {f.holds_now} in force now; {f.holds_placed} placed and "
           f"{f.holds_released} released in the period")
    yield ""
    yield "REQUESTS AND INCIDENTS (in the period)"
    yield f"  data-subject requests answered: {sum(f.requests.values())}"
    for kind, label in w.REQUEST_TEXT.items():
        yield f"    {f.requests.get(kind, 0):>6}  {label}"
    yield (f"  recordings erased on request: {f.recordings_erased}; "
           f"erasures refused (legal hold, call in progress): {f.erasures_refused}")
    yield f"  recordings exported as evidence: {f.evidence_exports}"
    yield f"  unauthorized recordings found: {sum(f.unauthorized.values())}"
    yield from _counted(f.unauthorized)
    yield ""
    yield "WHAT THIS REPORT CANNOT TELL"
    for limit in f.limits:
        yield f"  - {limit}"


def _integrity(f: ReportFigures) -> Iterator[str]:
    if f.integrity is None:
        return
    yield ""
    yield "INTEGRITY OF THE LEDGER"
    yield f"  {w.integrity_text(f.integrity)}"
    for broken in f.integrity.breaks:
        yield f"  BROKEN: {printable(broken, 400)}"
    for table, rows in f.integrity.rows.items():
        yield f"    {table}: {rows} rows, chain ends with {f.integrity.heads.get(table) or '-'}"
