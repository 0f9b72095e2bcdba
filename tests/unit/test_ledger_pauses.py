"""Ledger pauses: a recording's muted stretches, opened once, closed once,
never deleted; and a version-3 ledger migrated to keep them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger, UnknownRecord

from .ledger_support import (  # noqa: F401 - ledger is a fixture
    DATABASE_ERRORS,
    T0,
    ledger,
    ledger_file_at,
    raw_execute,
    start_call,
    start_recording,
)


def test_a_pause_is_opened_and_closed_once(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    opened = ledger.pause_started(recording_id, by="crm", at=T0 + timedelta(seconds=10))
    # A second pause while paused is the same pause.
    again = ledger.pause_started(recording_id, by="agent_key", at=T0 + timedelta(seconds=11))
    assert again == opened
    assert (opened.paused_by, opened.resumed_at) == ("crm", None)
    (closed,) = ledger.pauses_closed(recording_id, by="agent_key", at=T0 + timedelta(seconds=13))
    assert (closed.id, closed.resumed_at, closed.resumed_by) == (opened.id, T0 + timedelta(seconds=13), "agent_key")
    # Nothing open: closing again closes nothing and changes nothing.
    assert ledger.pauses_closed(recording_id, by="hangup", at=T0 + timedelta(seconds=60)) == []
    ledger.pause_started(recording_id, by="agent_key", at=T0 + timedelta(seconds=20))
    ledger.pauses_closed(recording_id, by="hangup", at=T0 + timedelta(seconds=30))
    assert [(p.paused_at, p.paused_by, p.resumed_at, p.resumed_by) for p in ledger.pauses(recording_id)] == [
        (T0 + timedelta(seconds=10), "crm", T0 + timedelta(seconds=13), "agent_key"),
        (T0 + timedelta(seconds=20), "agent_key", T0 + timedelta(seconds=30), "hangup"),
    ]


def test_a_pause_never_ends_before_it_began(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    ledger.pause_started(recording_id, by="crm", at=T0 + timedelta(seconds=10))
    (closed,) = ledger.pauses_closed(recording_id, by="stopped", at=T0 + timedelta(seconds=9))
    assert closed.resumed_at == closed.paused_at


def test_pauses_refuse_unknown_recordings_and_triggers(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    with pytest.raises(UnknownRecord):
        ledger.pause_started("f" * 32, by="crm")
    with pytest.raises(ValueError, match="agent_key"):
        ledger.pause_started(recording_id, by="hangup")
    with pytest.raises(ValueError, match="stopped"):
        ledger.pauses_closed(recording_id, by="dtmf")


def test_a_closed_pause_cannot_be_changed_or_deleted(ledger: Ledger) -> None:
    start_call(ledger)
    recording_id = start_recording(ledger)
    ledger.pause_started(recording_id, by="crm", at=T0)
    with pytest.raises(DATABASE_ERRORS, match="closed once"):
        raw_execute(ledger, "UPDATE recording_pauses SET paused_at = '2026-01-01T00:00:00.000000Z'")
    ledger.pauses_closed(recording_id, by="crm", at=T0 + timedelta(seconds=3))
    with pytest.raises(DATABASE_ERRORS, match="closed once"):
        raw_execute(ledger, "UPDATE recording_pauses SET resumed_at = '2026-12-01T00:00:00.000000Z'")
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        raw_execute(ledger, "DELETE FROM recording_pauses")
    (kept,) = ledger.pauses(recording_id)
    assert kept.resumed_at == T0 + timedelta(seconds=3)


def test_version_three_is_migrated_to_keep_pauses(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with ledger_file_at(path, 3):
        pass
    with Ledger(path) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 5
        start_call(ledger)
        recording_id = start_recording(ledger)
        ledger.pause_started(recording_id, by="agent_key", at=T0)
        ledger.pauses_closed(recording_id, by="hangup", at=T0 + timedelta(seconds=5))
        assert [(p.paused_by, p.resumed_by) for p in ledger.pauses(recording_id)] == [("agent_key", "hangup")]
