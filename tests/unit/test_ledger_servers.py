"""Several servers in one ledger (schema 5): every call, recording and
access-log row carries the server id of the ledger object that wrote it, the
guard's lists are scoped to one server, rows older than the server ids keep
their hashes and are claimed by a lone server. On both engines, except the
migration of an old file, which only SQLite has."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger
from asterisk_recguard.ledger.chain import Chain

from .ledger_support import EXPIRED_AT, T0, finalize, ledger_file_at, start_call, start_recording
from .recfixtures import SECRET


def test_rows_carry_the_server_id_of_the_ledger_that_wrote_them(location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None, server_id="pbx-a") as ledger:
        start_call(ledger)
        recording_id = start_recording(ledger)
        ledger.log_access(actor="dpo", action="access", reason="subject request",
                          recording_id=recording_id)
        call = ledger.call("1700000000.12")
        recording = ledger.recording(recording_id)
        (entry,) = ledger.access_log()
        assert call is not None and recording is not None
        assert (call.server_id, recording.server_id, entry.server_id) == ("pbx-a",) * 3
        assert not ledger.verify_chains().breaks


def test_a_call_seen_again_by_another_server_keeps_its_first(location: Path | str) -> None:
    Ledger.create(location, recordings_dir=None, server_id="pbx-a").close()
    with Ledger(location, server_id="pbx-a") as a, Ledger(location, server_id="pbx-b") as b:
        start_call(a)
        start_call(b)  # the same call id again, through the other server
        call = b.call("1700000000.12")
        assert call is not None and call.server_id == "pbx-a"


def test_the_guards_lists_are_scoped_to_one_server(location: Path | str) -> None:
    Ledger.create(location, recordings_dir=None).close()
    with Ledger(location, server_id="pbx-a") as a, Ledger(location, server_id="pbx-b") as b:
        start_call(a, "1.1")
        start_call(b, "2.1")
        live_a, live_b = start_recording(a, "1.1"), start_recording(b, "2.1")
        start_call(a, "1.2")
        start_call(b, "2.2")
        due_a, due_b = start_recording(a, "1.2"), start_recording(b, "2.2")
        for ledger, rid in ((a, due_a), (b, due_b)):
            finalize(ledger, rid, deadline=EXPIRED_AT - timedelta(days=1))
        start_call(a, "1.3")
        gone_a = start_recording(a, "1.3")
        a.mark_deleting(gone_a, reason="erasure_request", actor="dpo")
        a.set_hold(due_a, reason="court", actor="dpo")
        b.set_hold(due_b, reason="court", actor="dpo")

        assert {c.call_id for c in a.live_calls(server_id="pbx-a")} == {"1.1", "1.2", "1.3"}
        assert {c.call_id for c in a.live_calls(server_id="pbx-b")} == {"2.1", "2.2"}
        assert len(a.live_calls()) == 5  # no server id: every server's
        assert [r.recording_id for r in b.active_recordings(server_id="pbx-b")] == [live_b]
        assert [r.recording_id for r in b.active_recordings(server_id="pbx-a")] == [live_a]
        assert [r.recording_id for r in b.pending_deletions(server_id="pbx-a")] == [gone_a]
        assert b.pending_deletions(server_id="pbx-b") == []
        assert [r.recording_id for r in a.held_recordings(past_deadline_at=EXPIRED_AT,
                                                           server_id="pbx-b")] == [due_b]
        assert len(a.held_recordings()) == 2
        a.release_hold(due_a, actor="dpo")
        b.release_hold(due_b, actor="dpo")
        assert [r.recording_id for r in a.expired(EXPIRED_AT, server_id="pbx-a")] == [due_a]
        assert [r.recording_id for r in a.expired(EXPIRED_AT, server_id="pbx-b")] == [due_b]
        assert {r.recording_id for r in a.expired(EXPIRED_AT)} == {due_a, due_b}
        assert a.server_ids() == ["pbx-a", "pbx-b"]


def test_rows_without_a_server_are_claimed_only_by_a_lone_server(location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None) as old:  # as before server ids
        start_call(old, "0.1")
        start_recording(old, "0.1")
    with Ledger(location, server_id="pbx-a") as a:
        # Alone in the ledger, a server counts the unowned rows as its own...
        assert [c.call_id for c in a.live_calls(server_id="pbx-a")] == ["0.1"]
        assert [c.call_id for c in a.live_calls(server_id="pbx-b")] == ["0.1"]
        assert a.claim_unowned("pbx-a") == 2  # ...and its guard claims them: the call, the recording
        assert [c.call_id for c in a.live_calls(server_id="pbx-a")] == ["0.1"]
        assert a.live_calls(server_id="pbx-b") == []
        assert len(a.active_recordings(server_id="pbx-a")) == 1
    with Ledger(location) as old:
        start_call(old, "0.2")
    with Ledger(location, server_id="pbx-b") as b:
        # pbx-a's rows are in the ledger: pbx-b may not take the unowned call,
        # which counts as pbx-a's as long as pbx-a is the only server.
        assert b.claim_unowned("pbx-b") == 0
        assert b.live_calls(server_id="pbx-b") == []
        assert [c.call_id for c in b.live_calls(server_id="pbx-a")] == ["0.1", "0.2"]
        call = b.call("0.2")
        assert call is not None and call.server_id is None
        start_call(b, "2.1")
        # Two servers now: an unowned row is nobody's to finish or delete.
        assert [c.call_id for c in b.live_calls(server_id="pbx-a")] == ["0.1"]
        assert [c.call_id for c in b.live_calls(server_id="pbx-b")] == ["2.1"]


def test_a_bad_server_id_is_refused(location: Path | str) -> None:
    for bad in ("", "pbx a", "x" * 65, "pbx/1"):
        with pytest.raises(ValueError, match="not a server id"):
            Ledger.create(location, recordings_dir=None, server_id=bad)


def test_access_log_rows_of_an_older_ledger_keep_their_hashes(tmp_path: Path) -> None:
    """SQLite only: PostgreSQL ledgers are always made at the current version."""
    path = tmp_path / "ledger.sqlite3"
    with ledger_file_at(path, 4) as conn:
        conn.row_factory = sqlite3.Row
        chain = Chain(SECRET)
        for n in range(3):
            chain.append(conn, "access_log", {
                "at": f"2026-11-0{n + 1}T10:00:00.000000Z", "actor": "dpo", "action": "access",
                "recording_id": None, "call_id": None, "reason": f"request {n}", "detail": "{}"})
    with Ledger(path, seal_secret=SECRET, server_id="pbx-a") as ledger:
        assert ledger.schema_version == SCHEMA_VERSION == 5
        before = ledger.verify_chains()
        assert not before.breaks and before.heads["access_log"].rows == 3
        ledger.log_access(actor="dpo", action="export", reason="request 3", at=T0)
        entries = ledger.access_log()
        assert [e.server_id for e in entries] == [None, None, None, "pbx-a"]
        after = ledger.verify_chains()
        assert not after.breaks and after.heads["access_log"].rows == 4
    # A changed server id is a changed row: the chain names it.
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER access_log_no_update")
    conn.execute("UPDATE access_log SET server_id = 'pbx-b' WHERE id = 4")
    conn.commit()
    conn.close()
    with Ledger(path, seal_secret=SECRET) as ledger:
        (broken,) = ledger.verify_chains().breaks
        assert (broken.table, broken.row_id) == ("access_log", 4)
