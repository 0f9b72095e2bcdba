"""The DPO's report: its figures from a real ledger (a month written as the
guard writes it, and hand-made edge cases at the period's bounds), the text
and HTML renderings, and the command line's errors."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from asterisk_recguard.ledger import Ledger
from asterisk_recguard.policy import Basis, Notice, Policy, Purpose
from asterisk_recguard.report import gather, render_html, render_text, to_json
from asterisk_recguard.report.charts import Series, nice_top, stacked_columns
from asterisk_recguard.report.figures import NO_PURPOSE, ReportFigures

from .cli_support import env, run
from .test_ledger_chain import behind_the_triggers
from .recfixtures import World
from .report_support import MONTH, ORDER, Expected, Filler, fill_month, policy

NOW = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))


def words(notice_id: str) -> str:
    return f"the words of {notice_id}"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[ReportFigures, Expected]:
    path = tmp_path_factory.mktemp("month") / "ledger.sqlite3"
    with Ledger.create(path, recordings_dir=None) as ledger:
        expected = fill_month(ledger, policy(), daily=(4, 9))
        figures = gather(ledger, policy(), *NOVEMBER, now=NOW, read_words=words)
    return figures, expected


# --- figures ----------------------------------------------------------------------------


def test_calls_are_counted_once_each_by_their_last_decision(month) -> None:
    figures, expected = month
    assert expected.calls > 60
    assert figures.calls_seen == figures.calls_decided == expected.calls
    assert figures.calls_recorded == expected.recorded
    assert figures.calls_recording_deleted == expected.deleted
    assert figures.calls_not_recorded == expected.not_recorded
    per_day = figures.per_day.values()
    assert sum(d.recorded for d in per_day) == expected.recorded
    assert sum(d.deleted + d.not_recorded for d in per_day) == expected.deleted + expected.not_recorded
    assert len(figures.per_day) == 30


def test_reasons_purposes_and_consent_are_what_the_policy_decided(month) -> None:
    figures, _ = month
    assert set(figures.recorded_by_purpose) <= {"order", "quality", "complaint"}
    assert figures.recorded_by_purpose["order"] > 0
    assert set(figures.not_recorded_by_reason) <= {
        "purpose_forbidden", NO_PURPOSE, "no_transaction", "consent_refused",
        "consent_withdrawn", "notice_interrupted"}
    # Every call deleted for a withdrawal had consent given first: counted in both.
    assert figures.consent["withdrawn"] == figures.deleted_by_reason["consent_withdrawn"]
    assert figures.consent["given"] >= figures.consent["withdrawn"]
    assert figures.deleted_by_reason["no_transaction"] == figures.not_recorded_by_reason["no_transaction"]


def test_deletions_delays_holds_requests_and_incidents(month) -> None:
    figures, _ = month
    # 15 recordings came due in the month; one was held, the rest purged.
    assert figures.deleted_by_reason["retention_expired"] == 14
    assert figures.deleted_late == 14
    assert figures.longest_late is not None and figures.longest_late.by == timedelta(hours=30)
    assert figures.holds_now == 1 and figures.holds_placed == 1 and figures.holds_released == 0
    assert figures.overdue_now == 0  # the held one is past its deadline, but held
    assert figures.requests == Counter({"access": 3, "erasure": 1, "copy": 1})
    assert (figures.recordings_erased, figures.erasures_refused) == (2, 1)
    assert figures.evidence_exports == 1
    assert figures.unauthorized == Counter({"stopped_deleted": 1})
    assert [u.label for u in figures.policies_used] == ["sl-call-centre 2026-10",
                                                        "sl-call-centre 2026-11"]
    assert sum(u.decisions for u in figures.policies_used) == 2 * figures.calls_decided


def test_kept_now_by_purpose_and_year_of_deadline(month) -> None:
    figures, expected = month
    # The month's kept recordings, and the held one from three years ago.
    assert figures.kept_now == expected.recorded + 1
    assert sum(figures.kept_by_deadline_year.values()) == figures.kept_now
    assert set(figures.kept_by_deadline_year) <= {2026, 2027, 2028, 2029}


def test_the_period_bounds_are_whole_utc_days_both_included(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "l.sqlite3", recordings_dir=None) as ledger:
        filler = Filler(ledger, policy())
        last_moment = datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc)
        filler.call(datetime(2026, 11, 1, tzinfo=timezone.utc), ORDER)
        filler.call(last_moment, ORDER)
        filler.call(last_moment + timedelta(seconds=1), ORDER)  # 1 December
        filler.call(datetime(2026, 10, 31, 23, 59, tzinfo=timezone.utc), ORDER)
        overdue = filler.call(datetime(2023, 6, 1, tzinfo=timezone.utc), ORDER)
        ledger.recording_started("e" * 32, call_id="1800000001.1", channel="PJSIP/x",
                                 path="/spool/live.wav", purposes=["order"],
                                 bases={"order": "evidence"}, started_at=NOW)
        assert ledger.decisions_of_calls([]) == []
        figures = gather(ledger, policy(), *NOVEMBER, now=NOW, read_words=words)
    assert figures.calls_decided == 2 and figures.calls_recorded == 2
    assert figures.per_day[date(2026, 11, 30)].recorded == 1
    assert figures.overdue_now == 1
    assert (figures.kept_now, figures.in_progress_now) == (5, 1)  # whenever they started
    assert figures.longest_overdue_now is not None
    assert figures.longest_overdue_now.recording_id == overdue
    assert figures.longest_overdue_now.by > timedelta(days=100)


def test_a_ledger_changed_behind_recguards_back_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger.create(path, recordings_dir=None, seal_secret="s") as ledger:
        Filler(ledger, policy()).call(datetime(2026, 11, 3, 9, tzinfo=timezone.utc), ORDER)
        intact = gather(ledger, policy(), *NOVEMBER, now=NOW, read_words=words).integrity
    assert intact is not None and intact.intact and intact.sealed
    assert intact.rows["decisions"] == 2 and intact.heads["decisions"]
    with behind_the_triggers(path) as conn:  # a "not recorded" made to look recorded
        conn.execute("UPDATE decisions SET record = 0 WHERE id = 2")
    with Ledger(path, seal_secret="s") as ledger:
        figures = gather(ledger, policy(), *NOVEMBER, now=NOW, read_words=words)
    assert figures.integrity is not None and not figures.integrity.intact
    assert "decisions row 2" in figures.integrity.breaks[0]
    assert "changed behind recguard's back" in render_text(figures)
    assert "<b>NO</b>ledger intact" in render_html(figures)


def test_an_empty_period_says_none(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "l.sqlite3", recordings_dir=None) as ledger:
        figures = gather(ledger, policy(), *NOVEMBER, now=NOW, read_words=words)
    assert figures.calls_decided == 0 and figures.policies_used == []
    text = render_text(figures)
    assert "none: no decision in the period" in text
    assert "<svg" in render_html(figures)


def test_json_keeps_every_count(month) -> None:
    figures, _ = month
    data = json.loads(json.dumps(to_json(figures)))
    assert data["calls_decided"] == figures.calls_decided
    assert data["deleted_by_reason"]["retention_expired"] == 14
    assert data["requests"] == {"access": 3, "erasure": 1, "copy": 1}
    assert data["longest_late"]["by"] == 30 * 3600
    assert data["per_day"]["2026-11-30"]["recorded"] == figures.per_day[date(2026, 11, 30)].recorded
    assert "c3" * 32 not in json.dumps(data)


# --- rendering ----------------------------------------------------------------------------

HOSTILE = '<script>alert(1)</script>\nRECORD every call <img src="http://evil.example/x.png">'


def hostile_policy() -> Policy:
    evil_id = 'q"><script>x()</script>'
    return Policy(
        name="p<b>", version="1\n2",
        purposes={evil_id: Purpose(evil_id, Basis.CONSENT, 90, HOSTILE, justification=HOSTILE)},
        notices={"n<1>": Notice("n<1>", frozenset({evil_id}), "recguard/n", "n.txt")},
    )


def hostile_figures(tmp_path: Path) -> ReportFigures:
    with Ledger.create(tmp_path / "l.sqlite3", recordings_dir=None) as ledger:
        filler = Filler(ledger, policy())
        filler.call(datetime(2026, 11, 3, 9, tzinfo=timezone.utc), ORDER, label=HOSTILE)
        figures = gather(ledger, hostile_policy(), *NOVEMBER, now=NOW,
                         read_words=lambda _: HOSTILE)
    return figures


def test_text_has_every_section_and_escapes_policy_text(month, tmp_path: Path) -> None:
    text = render_text(month[0])
    for heading in ("RECORD OF PROCESSING", "CALLS", "RECORDINGS", "REQUESTS AND INCIDENTS",
                    "WHAT THIS REPORT CANNOT TELL"):
        assert f"\n{heading}" in text
    assert "the longest by 1 d 6 h" in text
    assert "c3" * 32 not in text
    hostile = render_text(hostile_figures(tmp_path))
    assert "INTEGRITY OF THE LEDGER" in text and "are intact" in text
    assert "\nRECORD every call" not in hostile
    assert "\\nRECORD every call" in hostile


def test_html_is_self_contained_scriptless_and_escaped(tmp_path: Path) -> None:
    page = render_html(hostile_figures(tmp_path))
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", page, re.I)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "q&quot;&gt;&lt;script&gt;" in page
    assert "default-src 'none'" in page
    assert "c3" * 32 not in page


def test_each_chart_has_a_title_and_a_table(month) -> None:
    page = render_html(month[0])
    for chart in ("calls-per-day", "not-recorded-reasons", "deletions-per-day"):
        assert re.search(rf'<svg[^>]*aria-labelledby="{chart}-title"', page)
        assert f'<title id="{chart}-title">' in page
    assert page.count("<svg") == 3
    assert page.count("The chart as a table") == 3
    assert "<td>2026-11-30</td>" in page


def test_stacked_columns_are_as_tall_as_their_totals() -> None:
    svg = stacked_columns("c", "t", ["a", "b"], [Series("x", "#111111", [2, 1]),
                                                 Series("y", "#222222", [3, 0])],
                          width=300, height=260)
    heights = [float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)" fill="#(?:111111|222222)"', svg)]
    legend = 2 * [10.0]
    plot = 260 - 34 - 26  # the axis tops at 5, the taller column's total
    assert sorted(heights) == sorted([plot * 2 / 5, plot * 3 / 5, plot / 5, *legend])
    assert nice_top(4) == 5 and nice_top(11) == 20 and nice_top(0) == 1 and nice_top(50) == 50


# --- the command line -----------------------------------------------------------------------


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("argv", "message"), [
    (["--since", "2026-13-01", "--until", "2026-12-01"], "is not a day; write it as YYYY-MM-DD"),
    (["--month", "2026-1x"], "is not a month; write it as YYYY-MM"),
    (["--since", "2026-11-30", "--until", "2026-11-01"], "--until 2026-11-01 is before --since"),
    (["--since", "2026-11-01"], "say which period"),
    (["--month", "2026-11", "--since", "2026-11-01"], "either --month or --since"),
    (["--month", "2026-11", "--json", "--html", "x.html"], "--html FILE or --json"),
    (["--month", "2026-11", "--html", "/nonexistent/dir/r.html"], "no such directory"),
])
def test_bad_periods_and_options_are_one_line(world: World, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    status, out, err = run(capsys, "report", *argv, *env(world))
    assert status == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1


@pytest.mark.usefixtures("clean_env")
def test_help_says_the_until_day_is_included(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "report", "--help")
    assert status == 0
    assert "BOTH DAYS INCLUDED" in out and "examples:" in out and "--month" in out


@pytest.mark.usefixtures("clean_env")
def test_the_command_writes_text_json_and_html(world: World, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    Filler(world.ledger, policy()).call(datetime(2026, 11, 5, 10, tzinfo=timezone.utc), ORDER)
    status, out, err = run(capsys, "report", "--month", "2026-11", *env(world))
    assert status == 0, err
    assert "2026-11-01 to 2026-11-30" in out and "calls decided" in out
    # The notices' words come from the policy's files.
    assert "“(the words could not be read" not in out
    status, out, err = run(capsys, "report", "--since", "2026-11-05", "--until", "2026-11-05",
                           "--json", *env(world))
    assert status == 0, err
    assert json.loads(out)["calls_recorded"] == 1
    page = tmp_path / "r.html"
    status, out, err = run(capsys, "report", "--month", "2026-11", "--html", str(page), *env(world))
    assert status == 0, err
    assert "written to" in out and page.read_text().startswith("<!DOCTYPE html>")
    assert oct(page.stat().st_mode & 0o777) == "0o640"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_month_runs_to_its_last_day() -> None:
    from argparse import Namespace

    from asterisk_recguard.commands.report import period
    for month, last in ((date(2026, 2, 1), 28), (date(2028, 2, 1), 29), (date(2026, 12, 1), 31)):
        assert period(Namespace(month=month, since=None, until=None)) == (
            month, month.replace(day=last))
    assert MONTH == date(2026, 11, 1)


def test_last_month_is_the_one_before_this_one() -> None:
    from asterisk_recguard.commands.report import month_arg
    from asterisk_recguard.ledger import utcnow
    first = month_arg("last")
    this_month = utcnow().date().replace(day=1)
    assert first.day == 1 and first < this_month
    assert (this_month - first).days in (28, 29, 30, 31)
