"""Ledger recordings: the lifecycle with purpose history, legal hold, the
two-step deletion and its intent surviving a kill, and the lists of recordings."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import (
    RECORDING_STATUSES,
    InvalidTransition,
    Ledger,
    RecordingHeld,
    UnknownRecord,
)

from .ledger_support import (  # noqa: F401 - ledger is a fixture
    ENGINES,
    EXPIRED_AT,
    HASH_A,
    HASH_B,
    SHA,
    T0,
    finalize,
    ledger,
    rid,
    start_call,
    start_recording,
)


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


def test_a_deletion_is_confirmed_only_after_its_intent(ledger: Ledger) -> None:
    # The lifecycle's order: DELETING is recorded before the files go, so a
    # crash in between is visible; confirming a deletion never declared is refused.
    start_call(ledger)
    recording_id = start_recording(ledger)
    finalize(ledger, recording_id, T0 + timedelta(days=90))
    with pytest.raises(InvalidTransition, match="is finalized; it cannot become deleted"):
        ledger.mark_deleted(recording_id, reason="subject_erasure")
    assert ledger.recording(recording_id).status == "finalized"  # type: ignore[union-attr]


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
ledger = Ledger.create(sys.argv[1], recordings_dir=None)
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


@pytest.mark.parametrize("engine", ENGINES)
def test_interrupted_deletion_resumes_after_a_kill(engine: str, tmp_path: Path,
                                                   request: pytest.FixtureRequest) -> None:
    path = tmp_path / "ledger.sqlite3" if engine == "sqlite" else request.getfixturevalue("pg_url")
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
