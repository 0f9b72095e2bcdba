"""Ledger batch deletion: the purge's two steps for many recordings, one
transaction each, with held and not yet expired recordings left untouched."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from asterisk_recguard.ledger import MAX_BATCH, Ledger

from .ledger_support import (  # noqa: F401 - ledger is a fixture
    EXPIRED_AT,
    T0,
    count_begins,
    finalize,
    ledger,
    start_call,
    start_recording,
)

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
    return count_begins(ledger, call)


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
