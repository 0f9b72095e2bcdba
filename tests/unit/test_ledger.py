"""Ledger: durability settings, the record of calls/decisions/recordings,
refusal of clear numbers, the deletion intent state surviving a kill, legal
hold, thread safety and schema-version refusal."""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import (
    MAX_BATCH,
    RECORDING_STATUSES,
    SCHEMA_VERSION,
    InvalidTransition,
    Ledger,
    RecordingHeld,
    UnknownRecord,
    format_ts,
    parse_ts,
)

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)
HASH_A = "a1" * 32
HASH_B = "b2" * 32
SHA = "0f" * 32
TS_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def rid() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as opened:
        yield opened


def start_call(ledger: Ledger, call_id: str = "1700000000.12", caller_hash: str | None = HASH_A,
               at: datetime = T0) -> None:
    ledger.upsert_call_start(call_id, channel="PJSIP/trunk-00000012", started_at=at,
                             linkedid=call_id, caller_hash=caller_hash,
                             facts={"purposes_declared": ["order"]})


def start_recording(ledger: Ledger, call_id: str = "1700000000.12", purposes=("order",),
                    at: datetime = T0, directory: str = "/spool") -> str:
    recording_id = rid()
    ledger.recording_started(
        recording_id, call_id=call_id, channel="PJSIP/trunk-00000012",
        path=f"{directory}/{recording_id}.wav", purposes=list(purposes),
        bases={p: ("consent" if p == "quality" else "contract_evidence") for p in purposes},
        started_at=at,
    )
    return recording_id


def finalize(ledger: Ledger, recording_id: str, deadline: datetime, **kw) -> None:
    ledger.recording_finalized(recording_id, size_bytes=1234, duration_s=12.5, sha256=SHA,
                               deadline=deadline, finalized_at=T0 + timedelta(minutes=5), **kw)


# --- opening ---------------------------------------------------------------------


def test_creates_private_dirs_and_file_with_durable_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "new" / "deeper" / "ledger.sqlite3"
    with Ledger(path) as ledger:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
        conn = ledger._conn
        assert conn is not None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert ledger.schema_version == SCHEMA_VERSION


def test_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        start_call(ledger)
    with Ledger(path) as ledger:
        call = ledger.call("1700000000.12")
        assert call is not None and call.caller_hash == HASH_A


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(UserError) as info:
        Ledger(path)
    message = str(info.value)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert "upgrade recguard" in message


def test_non_sqlite_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not a database " * 200)
    with pytest.raises(UserError) as info:
        Ledger(path)
    assert str(path) in str(info.value)
    assert path.read_bytes().startswith(b"this is not a database")  # left untouched


def test_other_programs_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="another program"):
        Ledger(path)


def test_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="is a directory"):
        Ledger(tmp_path)


def test_closed_ledger_refuses_use(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.close()
    assert ledger.closed
    with pytest.raises(RuntimeError, match="closed"):
        ledger.live_calls()


# --- timestamps --------------------------------------------------------------------


def test_timestamps_are_utc_text_and_aware_datetimes(ledger: Ledger) -> None:
    cet = timezone(timedelta(hours=1))
    start_call(ledger, at=datetime(2026, 11, 28, 11, 0, tzinfo=cet))
    raw = ledger._conn.execute("SELECT started_at FROM calls").fetchone()[0]  # type: ignore[union-attr]
    assert raw == "2026-11-28T10:00:00.000000Z"
    assert TS_RE.fullmatch(raw)
    call = ledger.call("1700000000.12")
    assert call is not None and call.started_at == T0 and call.started_at.tzinfo is not None
    assert parse_ts(format_ts(T0)) == T0


def test_naive_datetimes_are_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="naive"):
        ledger.upsert_call_start("1.1", channel="c", started_at=datetime(2026, 1, 1))


# --- calls and decisions --------------------------------------------------------------


def test_call_lifecycle(ledger: Ledger) -> None:
    start_call(ledger)
    # A second pass through the gate keeps the first start and updates the facts.
    again = ledger.upsert_call_start("1700000000.12", channel="PJSIP/agent-1",
                                     started_at=T0 + timedelta(minutes=1),
                                     facts={"purposes_declared": ["complaint"]})
    assert again.started_at == T0
    assert again.channel == "PJSIP/agent-1"
    assert again.caller_hash == HASH_A  # not cleared by an upsert without one
    assert again.last_facts == {"purposes_declared": ["complaint"]}
    assert [c.call_id for c in ledger.live_calls()] == ["1700000000.12"]

    ended = ledger.end_call("1700000000.12", ended_at=T0 + timedelta(minutes=3),
                            facts={"outcome": "transaction"})
    assert ended.status == "ended" and ended.ended_at == T0 + timedelta(minutes=3)
    again_end = ledger.end_call("1700000000.12", ended_at=T0 + timedelta(minutes=9))
    assert again_end.ended_at == T0 + timedelta(minutes=3)  # the first hangup counts
    assert again_end.last_facts == {"outcome": "transaction"}
    assert ledger.live_calls() == []
    with pytest.raises(UnknownRecord):
        ledger.end_call("nope")


def test_decisions_are_kept_with_facts_and_reasons(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = rid()
    first = ledger.record_decision(
        "1700000000.12", trigger="gate", facts={"purposes_declared": ["order", "general_info"]},
        record=True, purposes=["order"],
        rejected=[{"purpose": "general_info", "reason": "purpose_forbidden"}],
        policy="2026-11-01", action="start", retention_days=1095, recording_id=recording_id,
        at=T0,
    )
    second = ledger.record_decision(
        "1700000000.12", trigger="hangup", facts={"outcome": "no_transaction"}, record=False,
        purposes=[], rejected=[{"purpose": "order", "reason": "no_transaction"}],
        policy="2026-11-01", action="delete", at=T0 + timedelta(minutes=2),
    )
    assert second > first
    decisions = ledger.decisions_for_call("1700000000.12")
    assert [d.trigger for d in decisions] == ["gate", "hangup"]
    assert decisions[0].record is True and decisions[0].purposes == ["order"]
    assert decisions[0].rejected == [{"purpose": "general_info", "reason": "purpose_forbidden"}]
    assert decisions[0].retention_days == 1095 and decisions[0].recording_id == recording_id
    assert decisions[1].action == "delete" and decisions[1].record is False
    call = ledger.call("1700000000.12")
    assert call is not None and call.last_facts == {"outcome": "no_transaction"}


def test_decision_validation(ledger: Ledger) -> None:
    start_call(ledger)
    common = dict(trigger="gate", facts={}, record=False, purposes=[], rejected=[], policy="v1")
    with pytest.raises(ValueError, match="action"):
        ledger.record_decision("1700000000.12", action="record", **common)
    with pytest.raises(UnknownRecord):
        ledger.record_decision("no-such-call", action="none", **common)
    with pytest.raises(ValueError, match="recording_id"):
        ledger.record_decision("1700000000.12", action="none", recording_id="../../etc", **common)
    assert ledger.decisions_for_call("1700000000.12") == []


def test_decisions_and_access_log_are_append_only(ledger: Ledger) -> None:
    start_call(ledger)
    ledger.record_decision("1700000000.12", trigger="gate", facts={}, record=False, purposes=[],
                           rejected=[], policy="v1", action="none")
    ledger.log_access(actor="dpo", action="export", reason="subject request 17")
    conn = ledger._conn
    assert conn is not None
    for sql in ("UPDATE decisions SET action = 'start'", "DELETE FROM decisions",
                "UPDATE access_log SET reason = 'x'", "DELETE FROM access_log"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    assert ledger.access_log()[0].reason == "subject request 17"


# --- clear numbers ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["+38640123456", "040123456", "A1" * 32, "a1" * 31, "g" * 64, ""])
def test_caller_hash_must_be_a_hash(ledger: Ledger, bad: str) -> None:
    with pytest.raises(ValueError, match="never the number"):
        ledger.upsert_call_start("1.1", channel="c", caller_hash=bad)
    with pytest.raises(ValueError, match="never the number"):
        ledger.recordings_by_caller_hash(bad)
    assert ledger.call("1.1") is None


@pytest.mark.parametrize("key", ["caller", "callerid", "caller_id_number", "number",
                                 "CALLERID(num)", "CALLERIDNUM", "connected", "phone_number"])
def test_facts_with_a_caller_number_field_are_refused(ledger: Ledger, key: str) -> None:
    start_call(ledger)
    with pytest.raises(ValueError, match="caller number"):
        ledger.record_decision("1700000000.12", trigger="gate", facts={"channel": {key: "+386401"}},
                               record=False, purposes=[], rejected=[], policy="v1", action="none")
    with pytest.raises(ValueError, match="caller number"):
        ledger.log_access(actor="dpo", action="export", reason="r", detail={key: "+386401"})
    with pytest.raises(ValueError, match="caller number"):
        ledger.upsert_call_start("2.2", channel="c", facts={key: "+386401"})
    assert ledger.decisions_for_call("1700000000.12") == []
    assert ledger.access_log() == []


def test_the_schema_itself_refuses_a_clear_number(ledger: Ledger) -> None:
    conn = ledger._conn
    assert conn is not None
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO calls (call_id, channel, caller_hash, started_at) "
                     "VALUES ('x', 'c', '+38640123456', '2026-01-01T00:00:00.000000Z')")


# --- recordings ----------------------------------------------------------------------------


def test_recording_lifecycle_with_purpose_history(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger, purposes=("order", "quality"))
    ledger.set_mixmonitor_id(recording_id, "0x7f00aa")
    rec = ledger.recording(recording_id)
    assert rec is not None
    assert rec.status == "recording" and rec.mixmonitor_id == "0x7f00aa"
    assert rec.purposes == ["order", "quality"]
    assert rec.bases == {"order": "contract_evidence", "quality": "consent"}
    assert [r.recording_id for r in ledger.active_recordings()] == [recording_id]

    ledger.update_recording_purposes(recording_id, ["order"], {"order": "contract_evidence"},
                                     reason="consent_withdrawn", at=T0 + timedelta(seconds=30))
    stopped = ledger.recording_stopped(recording_id, stopped_at=T0 + timedelta(minutes=2))
    assert stopped.status == "stopped"
    deadline = T0 + timedelta(days=1095)
    finalize(ledger, recording_id, deadline)
    rec = ledger.recording(recording_id)
    assert rec is not None
    assert rec.status == "finalized" and rec.deadline == deadline
    assert (rec.size_bytes, rec.duration_s, rec.sha256) == (1234, 12.5, SHA)
    assert rec.stopped_at == T0 + timedelta(minutes=2)
    assert rec.purposes == ["order"]
    assert ledger.active_recordings() == []
    # A late stop event changes nothing.
    assert ledger.recording_stopped(recording_id).status == "finalized"

    history = ledger.purpose_history(recording_id)
    assert [(h.purposes, h.reason) for h in history] == [
        (["order", "quality"], "started"), (["order"], "consent_withdrawn")]
    assert [r.recording_id for r in ledger.recordings_for_call("1700000000.12")] == [recording_id]


def test_recording_validation(ledger: Ledger) -> None:
    start_call(ledger)
    base = dict(call_id="1700000000.12", channel="c", path="/spool/a.wav")
    with pytest.raises(ValueError, match="recording_id"):
        ledger.recording_started("$(touch /tmp/pwned)", purposes=["order"],
                                 bases={"order": "contract_evidence"}, **base)
    with pytest.raises(ValueError, match="at least one purpose"):
        ledger.recording_started(rid(), purposes=[], bases={}, **base)
    with pytest.raises(ValueError, match="bases"):
        ledger.recording_started(rid(), purposes=["order", "quality"],
                                 bases={"order": "contract_evidence"}, **base)
    with pytest.raises(UnknownRecord):
        ledger.recording_started(rid(), purposes=["order"], bases={"order": "x"},
                                 call_id="nope", channel="c", path="/spool/b.wav")
    recording_id = start_recording(ledger)
    with pytest.raises(ValueError, match="at least one purpose"):
        ledger.update_recording_purposes(recording_id, [], {}, reason="x")
    with pytest.raises(ValueError, match="sha256"):
        ledger.recording_finalized(recording_id, size_bytes=1, duration_s=1, sha256="xyz",
                                   deadline=T0)
    with pytest.raises(ValueError, match="together"):
        ledger.recording_finalized(recording_id, size_bytes=1, duration_s=1, sha256=SHA,
                                   deadline=T0, stored_path="/spool/x.enc")
    assert ledger.recordings_for_call("1700000000.12")[0].status == "recording"


def test_encrypted_copy_is_tracked(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    finalize(ledger, recording_id, T0 + timedelta(days=90),
             stored_path=f"/spool/{recording_id}.wav.enc", key_id="k2026")
    rec = ledger.recording(recording_id)
    assert rec is not None
    assert rec.file_path == f"/spool/{recording_id}.wav.enc" and rec.key_id == "k2026"
    assert ledger.known_paths() == {f"/spool/{recording_id}.wav", f"/spool/{recording_id}.wav.enc"}


def test_expired_respects_deadline_hold_and_deletion(ledger: Ledger) -> None:
    start_call(ledger)
    soon, later, held, gone, live = (start_recording(ledger) for _ in range(5))
    finalize(ledger, soon, T0 + timedelta(days=90))
    finalize(ledger, later, T0 + timedelta(days=1095))
    finalize(ledger, held, T0 + timedelta(days=90))
    finalize(ledger, gone, T0 + timedelta(days=90))
    ledger.set_hold(held, reason="court case 12/2027", actor="dpo")
    ledger.mark_deleting(gone, reason="no_transaction")
    ledger.mark_deleted(gone)

    def ids(recs) -> set[str]:
        return {r.recording_id for r in recs}

    assert ids(ledger.expired(T0 + timedelta(days=89))) == set()
    assert ids(ledger.expired(T0 + timedelta(days=90))) == {soon}
    assert ids(ledger.expired(T0 + timedelta(days=2000))) == {soon, later}
    assert ids(ledger.held_recordings()) == {held}
    assert ids(ledger.held_recordings(past_deadline_at=T0 + timedelta(days=10))) == set()
    assert ids(ledger.held_recordings(past_deadline_at=T0 + timedelta(days=100))) == {held}
    assert ids(ledger.active_recordings()) == {live}


def test_legal_hold_blocks_deletion_until_released(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    finalize(ledger, recording_id, T0 + timedelta(days=90))
    with pytest.raises(ValueError):
        ledger.set_hold(recording_id, reason="  ", actor="dpo")
    rec = ledger.set_hold(recording_id, reason="IP request 0712-1/2026", actor="dpo",
                          at=T0 + timedelta(days=1))
    assert rec.held and rec.held_by == "dpo" and rec.held_at == T0 + timedelta(days=1)
    with pytest.raises(RecordingHeld):
        ledger.mark_deleting(recording_id, reason="subject_erasure")
    with pytest.raises(RecordingHeld):
        ledger.mark_deleted(recording_id, reason="subject_erasure")
    assert ledger.recording(recording_id).status == "finalized"  # type: ignore[union-attr]
    released = ledger.release_hold(recording_id, actor="dpo")
    assert not released.held and released.hold_reason is None
    with pytest.raises(InvalidTransition, match="not under legal hold"):
        ledger.release_hold(recording_id, actor="dpo")
    assert ledger.mark_deleting(recording_id, reason="subject_erasure").status == "deleting"
    with pytest.raises(InvalidTransition):
        ledger.set_hold(recording_id, reason="too late", actor="dpo")


def test_deletion_is_two_step_and_idempotent(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    deleting = ledger.mark_deleting(recording_id, reason="purpose_withdrawn", actor="recguard",
                                    at=T0 + timedelta(seconds=40))
    assert deleting.status == "deleting"
    assert deleting.stopped_at == T0 + timedelta(seconds=40)
    assert [r.recording_id for r in ledger.pending_deletions()] == [recording_id]
    assert f"/spool/{recording_id}.wav" in ledger.known_paths()  # not deleted yet
    # A second intent keeps the first reason.
    assert ledger.mark_deleting(recording_id, reason="other").deletion_reason == "purpose_withdrawn"
    with pytest.raises(InvalidTransition):
        ledger.recording_finalized(recording_id, size_bytes=1, duration_s=1, sha256=SHA,
                                   deadline=T0)
    with pytest.raises(InvalidTransition):
        ledger.update_recording_purposes(recording_id, ["order"], {"order": "x"}, reason="r")
    deleted = ledger.mark_deleted(recording_id, at=T0 + timedelta(seconds=41))
    assert deleted.status == "deleted"
    assert deleted.deletion_reason == "purpose_withdrawn" and deleted.deleted_by == "recguard"
    assert deleted.deleted_at == T0 + timedelta(seconds=41)
    assert ledger.mark_deleted(recording_id, reason="again").deleted_at == deleted.deleted_at
    assert ledger.pending_deletions() == []
    assert ledger.known_paths() == frozenset()
    other = start_recording(ledger)
    with pytest.raises(ValueError, match="reason"):
        ledger.mark_deleted(other)  # no intent recorded and no reason given



# --- batch deletion ----------------------------------------------------------------

EXPIRED_AT = T0 + timedelta(days=90)


def expired_recordings(ledger: Ledger, count: int) -> list[str]:
    """``count`` finalized recordings whose deadline is EXPIRED_AT."""
    start_call(ledger)
    ids = [start_recording(ledger, at=T0 + timedelta(microseconds=i)) for i in range(count)]
    for recording_id in ids:
        finalize(ledger, recording_id, EXPIRED_AT)
    return ids


def transactions(ledger: Ledger, call: Callable[[], object]) -> int:
    """How many write transactions ``call()`` opens on the ledger's connection:
    a batch is worth doing only if it is one commit (one fsync), not one per id."""
    begun: list[str] = []

    def trace(sql: str) -> None:
        if sql == "BEGIN IMMEDIATE":
            begun.append(sql)

    conn = ledger._conn
    assert conn is not None
    conn.set_trace_callback(trace)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    return len(begun)


def test_batch_deletion_of_one_recording_is_two_step(ledger: Ledger) -> None:
    (recording_id,) = expired_recordings(ledger, 1)
    stopped_at = ledger.recording(recording_id).stopped_at  # type: ignore[union-attr]
    marked = ledger.mark_deleting_expired([recording_id], now=EXPIRED_AT,
                                          reason="retention_expired", actor="purge",
                                          at=T0 + timedelta(days=91))
    assert marked == [recording_id]
    rec = ledger.recording(recording_id)
    assert rec is not None
    assert (rec.status, rec.deletion_reason, rec.deleted_by) == (
        "deleting", "retention_expired", "purge")
    assert rec.stopped_at == stopped_at and rec.deleted_at is None
    assert [r.recording_id for r in ledger.pending_deletions()] == [recording_id]

    ledger.mark_deleted_many([recording_id], at=T0 + timedelta(days=91, seconds=1))
    done = ledger.recording(recording_id)
    assert done is not None
    assert (done.status, done.deletion_reason, done.deleted_by) == (
        "deleted", "retention_expired", "purge")
    assert done.deleted_at == T0 + timedelta(days=91, seconds=1)
    assert ledger.pending_deletions() == []
    assert ledger.known_paths() == frozenset()


def test_a_full_batch_is_one_transaction_per_step(ledger: Ledger) -> None:
    ids = expired_recordings(ledger, MAX_BATCH)
    marked: list[str] = []
    assert transactions(ledger, lambda: marked.extend(ledger.mark_deleting_expired(
        ids, now=EXPIRED_AT, reason="retention_expired", actor="purge",
        at=EXPIRED_AT))) == 1
    assert sorted(marked) == sorted(ids)
    assert len(ledger.pending_deletions()) == MAX_BATCH
    assert transactions(ledger, lambda: ledger.mark_deleted_many(ids, at=EXPIRED_AT)) == 1
    assert ledger.pending_deletions() == []
    assert {r.status for r in ledger.recordings()} == {"deleted"}


@pytest.mark.parametrize("count", [0, MAX_BATCH + 1])
def test_a_batch_outside_1_to_max_batch_is_refused(ledger: Ledger, count: int) -> None:
    ids = expired_recordings(ledger, count)
    with pytest.raises(ValueError, match=f"1 to {MAX_BATCH} recordings, not {count}"):
        ledger.mark_deleting_expired(ids, now=EXPIRED_AT, reason="retention_expired",
                                     actor="purge", at=EXPIRED_AT)
    with pytest.raises(ValueError, match=f"1 to {MAX_BATCH} recordings, not {count}"):
        ledger.mark_deleted_many(ids, at=EXPIRED_AT)
    assert {r.status for r in ledger.recordings()} <= {"finalized"}


def test_a_held_recording_in_the_batch_is_untouched(ledger: Ledger) -> None:
    due, held = expired_recordings(ledger, 2)
    ledger.set_hold(held, reason="court case 12/2027", actor="dpo")
    marked = ledger.mark_deleting_expired([due, held], now=EXPIRED_AT,
                                          reason="retention_expired", actor="purge",
                                          at=EXPIRED_AT)
    assert marked == [due]
    ledger.mark_deleted_many([due, held], at=EXPIRED_AT)
    assert ledger.recording(due).status == "deleted"  # type: ignore[union-attr]
    kept = ledger.recording(held)
    assert kept is not None
    assert (kept.status, kept.deletion_reason, kept.deleted_by, kept.deleted_at) == (
        "finalized", None, None, None)
    assert kept.hold_reason == "court case 12/2027"


def test_a_recording_not_past_its_deadline_is_untouched(ledger: Ledger) -> None:
    (due,) = expired_recordings(ledger, 1)
    later = start_recording(ledger, at=T0 + timedelta(seconds=1))
    finalize(ledger, later, EXPIRED_AT + timedelta(microseconds=1))
    live = start_recording(ledger, at=T0 + timedelta(seconds=2))
    marked = ledger.mark_deleting_expired([due, later, live], now=EXPIRED_AT,
                                          reason="retention_expired", actor="purge",
                                          at=EXPIRED_AT)
    assert marked == [due]
    # Confirming only touches recordings marked 'deleting'.
    ledger.mark_deleted_many([due, later, live], at=EXPIRED_AT)
    assert [(r.recording_id, r.status, r.deletion_reason) for r in ledger.recordings()] == [
        (due, "deleted", "retention_expired"), (later, "finalized", None),
        (live, "recording", None)]


# --- listing -----------------------------------------------------------------------


def test_recordings_lists_by_start_and_filters_by_status(ledger: Ledger) -> None:
    start_call(ledger)
    # Started out of order, and two at the same instant ordered by id.
    third = start_recording(ledger, at=T0 + timedelta(minutes=2))
    first = start_recording(ledger, at=T0)
    tied = sorted([start_recording(ledger, at=T0 + timedelta(minutes=1)) for _ in range(2)])
    finalize(ledger, first, EXPIRED_AT)
    ledger.mark_deleting(tied[0], reason="purpose_withdrawn")
    ledger.mark_deleting(third, reason="purpose_withdrawn")
    ledger.mark_deleted(third)

    def ids(recs) -> list[str]:
        return [r.recording_id for r in recs]

    assert ids(ledger.recordings()) == [first, *tied, third]
    assert ids(ledger.recordings(statuses=["finalized", "deleting", "recording"])) == [
        first, *tied]
    assert ids(ledger.recordings(statuses=("deleted",))) == [third]
    assert ids(ledger.recordings(statuses={"stopped"})) == []
    assert ids(ledger.recordings(statuses=iter(["deleting", "deleting"]))) == [tied[0]]
    assert ledger.recordings(statuses=[]) == []
    assert ids(ledger.recordings(statuses=RECORDING_STATUSES)) == ids(ledger.recordings())


def test_recordings_refuses_unknown_statuses(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match=r"unknown recording status\(es\) \['active'\]"):
        ledger.recordings(statuses=["finalized", "active"])
    with pytest.raises(TypeError, match="not one string"):
        ledger.recordings(statuses="deleted")


KILLED_MID_DELETE = """
import os, signal, sys
from datetime import datetime, timedelta, timezone
from asterisk_recguard.ledger import Ledger
ledger = Ledger(sys.argv[1])
t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
ledger.upsert_call_start("9.9", channel="PJSIP/x-1", started_at=t0)
for rid in (sys.argv[2], sys.argv[3]):
    ledger.recording_started(rid, call_id="9.9", channel="PJSIP/x-1", path=f"/spool/{rid}.wav",
                             purposes=["order"], bases={"order": "contract_evidence"}, started_at=t0)
    ledger.recording_finalized(rid, size_bytes=10, duration_s=1.0, sha256="ab" * 32,
                               deadline=t0 + timedelta(days=1))
ledger.mark_deleting(sys.argv[2], reason="retention_expired", actor="purge")
# Killed after the intent is committed, before the file is unlinked and confirmed.
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_interrupted_deletion_resumes_after_a_kill(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    first, second = rid(), rid()
    result = subprocess.run([sys.executable, "-c", KILLED_MID_DELETE, str(path), first, second],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr
    with Ledger(path) as ledger:
        pending = ledger.pending_deletions()
        assert [r.recording_id for r in pending] == [first]
        assert pending[0].deletion_reason == "retention_expired"
        assert pending[0].deleted_at is None
        assert ledger.recording(second).status == "finalized"  # type: ignore[union-attr]
        # The next run finishes the job.
        done = ledger.mark_deleted(first)
        assert done.status == "deleted" and done.deletion_reason == "retention_expired"
        assert done.deleted_by == "purge"
        assert ledger.pending_deletions() == []
        assert ledger.known_paths() == {f"/spool/{second}.wav"}


def test_recordings_by_caller_hash(ledger: Ledger) -> None:
    start_call(ledger, "1.1", HASH_A)
    start_call(ledger, "2.2", HASH_A, at=T0 + timedelta(hours=1))
    start_call(ledger, "3.3", HASH_B)
    start_call(ledger, "4.4", None)
    a1 = start_recording(ledger, "1.1")
    a2 = start_recording(ledger, "2.2", at=T0 + timedelta(hours=1))
    start_recording(ledger, "3.3")
    start_recording(ledger, "4.4")
    ledger.mark_deleting(a1, reason="no_transaction")
    ledger.mark_deleted(a1)
    assert [r.recording_id for r in ledger.recordings_by_caller_hash(HASH_A)] == [a2]
    assert [r.recording_id for r in ledger.recordings_by_caller_hash(
        HASH_A, include_deleted=True)] == [a1, a2]
    assert ledger.recordings_by_caller_hash("c3" * 32) == []


# --- access and unauthorized logs -------------------------------------------------------------


def test_access_log(ledger: Ledger) -> None:
    for minute, action in enumerate(["hold", "export", "release", "purge"]):
        ledger.log_access(actor="dpo", action=action, reason=f"because {minute}",
                          recording_id=None if action == "purge" else "ab" * 16,
                          detail={"to": "/tmp/out"} if action == "export" else None,
                          at=T0 + timedelta(minutes=minute))
    entries = ledger.access_log()
    assert [e.action for e in entries] == ["hold", "export", "release", "purge"]
    assert entries[1].detail == {"to": "/tmp/out"} and entries[1].actor == "dpo"
    assert [e.action for e in ledger.access_log(limit=2)] == ["release", "purge"]
    assert [e.action for e in ledger.access_log(since=T0 + timedelta(minutes=1))] == [
        "export", "release", "purge"]
    with pytest.raises(ValueError, match="reason"):
        ledger.log_access(actor="dpo", action="export", reason="")
    with pytest.raises(ValueError, match="action"):
        ledger.log_access(actor="dpo", action="peek", reason="curious")
    assert len(ledger.access_log()) == 4


def test_unauthorized_log(ledger: Ledger) -> None:
    ledger.log_unauthorized(channel="PJSIP/q-0001", action="stopped_deleted",
                            file="/var/spool/asterisk/monitor/q.wav", started_by="Queue", at=T0)
    ledger.log_unauthorized(channel="PJSIP/q-0002", action="logged_only",
                            at=T0 + timedelta(seconds=1))
    entries = ledger.unauthorized_log()
    assert [(e.channel, e.action, e.started_by) for e in entries] == [
        ("PJSIP/q-0001", "stopped_deleted", "Queue"), ("PJSIP/q-0002", "logged_only", None)]
    with pytest.raises(ValueError):
        ledger.log_unauthorized(channel="c", action="ignored")


# --- threads and processes ----------------------------------------------------------------


def test_concurrent_writers_from_threads(ledger: Ledger) -> None:
    threads_n, per_thread = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_n)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            call_id = f"17000.{n}"
            ledger.upsert_call_start(call_id, channel=f"PJSIP/t-{n}")
            recording_id = start_recording(ledger, call_id)
            for i in range(per_thread):
                ledger.record_decision(call_id, trigger="change", facts={"i": i}, record=True,
                                       purposes=["order"], rejected=[], policy="v1",
                                       action="keep", recording_id=recording_id)
                ledger.log_access(actor=f"t{n}", action="access", reason=f"r{i}")
            ledger.recording_stopped(recording_id)
            ledger.end_call(call_id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    for n in range(threads_n):
        decisions = ledger.decisions_for_call(f"17000.{n}")
        assert len(decisions) == per_thread
        assert [d.facts["i"] for d in decisions] == list(range(per_thread))
    assert len(ledger.access_log()) == threads_n * per_thread
    assert ledger.live_calls() == []
    active = ledger.active_recordings()
    assert len(active) == threads_n and all(r.status == "stopped" for r in active)


def test_two_connections_share_committed_writes(tmp_path: Path) -> None:
    # The daemon and a CLI command (hold, purge) open the same ledger.
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as daemon, Ledger(path) as cli:
        start_call(daemon)
        recording_id = start_recording(daemon)
        cli.set_hold(recording_id, reason="court", actor="dpo")
        rec = daemon.recording(recording_id)
        assert rec is not None and rec.held


def test_policy_objects_are_stored_as_json(ledger: Ledger) -> None:
    from asterisk_recguard.policy import CallFacts

    start_call(ledger)
    facts = CallFacts(purposes={"order", "quality"}, notices={"evidence-v1": "complete"},
                      consent="given")
    ledger.record_decision("1700000000.12", trigger="gate", facts=facts.to_dict(), record=True,
                           purposes=["order", "quality"], rejected=(), policy="v1",
                           action="start")
    ledger.end_call("1700000000.12", facts=facts)  # the object itself, not only its dict
    call = ledger.call("1700000000.12")
    assert call is not None
    assert sorted(call.last_facts["purposes"]) == ["order", "quality"]
    assert call.last_facts["notices"] == {"evidence-v1": "complete"}
    assert call.last_facts["consent"] == "given"
    assert ledger.decisions_for_call("1700000000.12")[0].facts == facts.to_dict()
