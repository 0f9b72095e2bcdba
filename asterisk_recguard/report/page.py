"""The report as one self-contained HTML page: inline CSS, inline SVG charts
(charts.py), no script and nothing fetched, so it opens offline and can be
mailed or archived as it is. Every text from the policy or the ledger is
escaped, and a Content-Security-Policy forbids scripts besides."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence

from .charts import Series, horizontal_bars, stacked_columns
from .figures import ReportFigures
from .words import (
    DAY_SERIES,
    REQUEST_TEXT,
    basis_text,
    deletion_text,
    duration,
    integrity_text,
    moment,
    reason_text,
    retention,
)

# Okabe-Ito colours: told apart with every common colour-vision deficiency.
DAY_COLOURS = {"recorded": "#0072b2", "deleted": "#e69f00", "not_recorded": "#999999"}
REASON_COLOUR = "#009e73"
DELETION_COLOURS = ("#d55e00", "#cc79a7", "#56b4e9", "#f0e442", "#000000", "#8c564b")

CSS = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:960px;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:0}h2{border-bottom:2px solid #555;padding-bottom:2px;margin-top:1.6em}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;
vertical-align:top}td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f2f2f2}
.meta{color:#555}.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.kpi{border:1px solid #ccc;border-radius:6px;padding:8px 12px;min-width:120px}
.kpi b{display:block;font-size:1.6em}.alert{border-color:#d55e00;background:#fff4ec}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}blockquote{margin:4px 0 4px 16px;
color:#444;font-style:italic}li{margin:2px 0}
"""


def e(value: object) -> str:
    """Any value as HTML text: escaped, quotes included."""
    return html.escape(str(value), quote=True)


def render_html(figures: ReportFigures) -> str:
    f = figures
    title = f"recguard report {f.since} to {f.until}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Defence in depth: even a text that slipped past escaping could run nothing.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">UTC days, both included. Made {e(moment(f.made_at))}. '
        f"Policy in force now: {e(f.policy_label)}.</p>",
        _summary(f), _calls(f), _recordings(f), _requests(f), _processing(f), _integrity(f),
        _limits(f),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _kpi(label: str, value: object, alert: bool = False) -> str:
    return f'<div class="kpi{" alert" if alert else ""}"><b>{e(value)}</b>{e(label)}</div>'


def _summary(f: ReportFigures) -> str:
    return '<div class="kpis">' + "".join([
        _kpi("calls decided", f.calls_decided),
        _kpi("recorded and kept", f.calls_recorded),
        _kpi("recorded, then deleted", f.calls_recording_deleted),
        _kpi("not recorded", f.calls_not_recorded),
        _kpi("recordings deleted", sum(f.deleted_by_reason.values())),
        _kpi("past deadline now (must be 0)", f.overdue_now, alert=f.overdue_now > 0),
        _kpi("unauthorized recordings", sum(f.unauthorized.values()),
             alert=bool(f.unauthorized)),
        _kpi("data-subject requests", sum(f.requests.values())),
        _kpi("ledger intact", "not checked" if f.integrity is None
             else "yes" if f.integrity.intact else "NO",
             alert=f.integrity is not None and not f.integrity.intact),
    ]) + "</div>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A table with a header row; counts are aligned right."""
    head = "".join(f"<th scope=\"col\">{e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = [f'<td{" class=n" if isinstance(v, int) else ""}>{e(v)}</td>' for v in row]
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}">none</td></tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _ranked(counts: Counter[str]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))


def _figure(caption: str, svg: str, table: str) -> str:
    return (f"<figure><figcaption>{e(caption)}</figcaption>{svg}"
            f"<details><summary>The chart as a table</summary>{table}</details></figure>")


def _calls(f: ReportFigures) -> str:
    days = f.days
    labels = [day.strftime("%d") for day in days]
    series = [Series(name, DAY_COLOURS[key], [getattr(f.per_day[d], key) for d in days])
              for key, name in DAY_SERIES]
    per_day = _figure(
        "Calls per day: recorded, recorded then deleted, not recorded",
        stacked_columns("calls-per-day", "Calls per day by what was decided", labels, series),
        _table(["day", *(name for _, name in DAY_SERIES)],
               [(d.isoformat(), *(getattr(f.per_day[d], k) for k, _ in DAY_SERIES)) for d in days]),
    )
    reasons = _ranked(f.not_recorded_by_reason)
    why = _figure(
        "Reasons for not recording (or for deleting during the call)",
        horizontal_bars("not-recorded-reasons", "Calls not recorded, by reason",
                        reasons, REASON_COLOUR),
        _table(["reason", "calls", "meaning"], [(r, n, reason_text(r)) for r, n in reasons]),
    )
    consent = ", ".join(f"{kind} {f.consent.get(kind, 0)}" for kind in ("given", "refused", "withdrawn"))
    return (
        "<h2>Calls</h2><p>Calls that started in the period, each counted once by the last "
        "decision made about it (at hangup, once it ended).</p>"
        + _table(["", "calls"], [
            ("the gate saw", f.calls_seen), ("decided", f.calls_decided),
            ("recorded and kept at the end of the call", f.calls_recorded),
            ("recorded, then deleted during or at the end of the call", f.calls_recording_deleted),
            ("not recorded", f.calls_not_recorded)])
        + per_day
        + "<h3>Recorded, by purpose</h3>"
        + _table(["purpose", "calls"], _ranked(f.recorded_by_purpose))
        + why
        + f"<p>Consent, in calls: {e(consent)}.</p>"
    )


def _recordings(f: ReportFigures) -> str:
    days = f.days
    reasons = sorted({r for counts in f.deleted_per_day.values() for r in counts})
    series = [Series(r, DELETION_COLOURS[i % len(DELETION_COLOURS)],
                     [f.deleted_per_day.get(d, Counter()).get(r, 0) for d in days])
              for i, r in enumerate(reasons)]
    chart = _figure(
        "Recordings deleted per day, by reason",
        stacked_columns("deletions-per-day", "Recordings deleted per day by reason",
                        [d.strftime("%d") for d in days], series),
        _table(["day", *reasons],
               [(d.isoformat(), *(f.deleted_per_day.get(d, Counter()).get(r, 0) for r in reasons))
                for d in days]),
    )
    late = (f"; the longest by {duration(f.longest_late.by)} (recording "
            f"{f.longest_late.recording_id}, deadline {moment(f.longest_late.deadline)})"
            if f.longest_late else "")
    overdue = (f"; the longest by {duration(f.longest_overdue_now.by)} (recording "
               f"{f.longest_overdue_now.recording_id})" if f.longest_overdue_now else "")
    return (
        "<h2>Recordings</h2>"
        + _table(["deleted in the period, by reason", "recordings", "meaning"],
                 [(r, n, deletion_text(r)) for r, n in _ranked(f.deleted_by_reason)])
        + f"<p>Deleted after their deadline: {e(f.deleted_late)}{e(late)}.</p>"
        + chart
        + f"<h3>Kept now: {e(f.kept_now)}</h3><p>And {e(f.in_progress_now)} being recorded "
        f"or finalized. Past their deadline now and not held (must be 0): "
        f"<strong>{e(f.overdue_now)}</strong>{e(overdue)}.</p>"
        + _table(["purpose", "recordings"], _ranked(f.kept_by_purpose))
        + _table(["year of deadline", "recordings"],
                 sorted(f.kept_by_deadline_year.items()))
        + f"<p>Legal holds: {e(f.holds_now)} in force now; {e(f.holds_placed)} placed and "
        f"{e(f.holds_released)} released in the period.</p>"
    )


def _requests(f: ReportFigures) -> str:
    return (
        "<h2>Requests and incidents</h2>"
        + _table(["data-subject requests answered", "requests"],
                 [(label, f.requests.get(kind, 0)) for kind, label in REQUEST_TEXT.items()])
        + f"<p>Recordings erased on request: {e(f.recordings_erased)}; erasures refused "
        f"(legal hold, call in progress): {e(f.erasures_refused)}. Recordings exported as "
        f"evidence: {e(f.evidence_exports)}.</p>"
        + _table(["unauthorized recordings found", "count"], _ranked(f.unauthorized))
    )


def _processing(f: ReportFigures) -> str:
    notices = "".join(
        f"<li><b>{e(n.id)}</b>: covers {e(', '.join(n.covers))}; prompt {e(n.prompt)}; "
        f"text {e(n.text_file)}<blockquote>{e(n.words)}</blockquote></li>" for n in f.notices)
    return (
        "<h2>Record of processing (GDPR art. 30)</h2>"
        + "<h3>Policy versions decisions were made under in the period</h3>"
        + _table(["policy", "decisions", "first", "last"],
                 [(u.label, u.decisions, moment(u.first), moment(u.last))
                  for u in f.policies_used])
        + f"<h3>Purposes in the policy in force now ({e(f.policy_label)})</h3>"
        + _table(["purpose", "legal basis", "retention", "notices", "description"],
                 [(p.id, basis_text(p.basis), retention(p.retention_days),
                   ", ".join(p.notices) or "none",
                   p.description + (f" (retention justified: {p.justification})"
                                    if p.justification else ""))
                  for p in f.purposes])
        + f"<h3>Notices</h3><ul>{notices}</ul>"
    )


def _integrity(f: ReportFigures) -> str:
    if f.integrity is None:
        return ""
    broken = "".join(f"<li><strong>BROKEN</strong>: {e(b)}</li>" for b in f.integrity.breaks)
    rows = [(table, n, f.integrity.heads.get(table) or "-") for table, n in f.integrity.rows.items()]
    return (f'<h2>Integrity of the ledger</h2><p class="{"" if f.integrity.intact else "kpi alert"}">'
            f"{e(integrity_text(f.integrity))}.</p><ul>{broken}</ul>"
            + _table(["hash-chained table", "rows", "chain ends with"], rows))


def _limits(f: ReportFigures) -> str:
    items = "".join(f"<li>{e(limit)}</li>" for limit in f.limits)
    return f"<h2>What this report cannot tell</h2><ul>{items}</ul>"
