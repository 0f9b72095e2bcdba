"""`recguard ledger copy` moves an SQLite ledger into PostgreSQL with its
history, checks the copy, says what it did, and refuses a target that holds
rows; a bad or unreachable database is one line that never shows the password."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger

from .cli_support import env, run
from .ledger_support import raw_execute
from .recfixtures import NUMBER, SECRET, T0, World

DEADLINE = T0 + timedelta(days=1095)

pytestmark = pytest.mark.usefixtures("clean_env")


def with_password(url: str) -> str:
    """The cluster trusts its socket, so the password is never asked for: it is
    there to show that it is not printed."""
    return url.replace("recguard_admin@", "recguard_admin:s3cret-pw@")


def history(world: World) -> None:
    first = world.add(deadline=DEADLINE, seed=1)
    world.add(deadline=DEADLINE + timedelta(days=1), seed=2, encrypted=False)
    ledger = world.ledger
    ledger.update_recording_purposes(first.recording_id, ["order", "quality"],
                                     {"order": "contract_evidence", "quality": "consent"},
                                     reason="consent given")
    ledger.record_decision(first.call_id, trigger="change", facts={"consent": "given"},
                           record=True, purposes=["order", "quality"], rejected=[],
                           policy="p1", action="keep", recording_id=first.recording_id)
    ledger.log_access(actor="dpo", action="access", reason="DSAR-1",
                      recording_id=first.recording_id)
    ledger.log_unauthorized(channel="PJSIP/x-9", action="logged_only", started_by="dialplan")


def copy(world: World, capsys: pytest.CaptureFixture[str], target: str) -> tuple[int, str, str]:
    return run(capsys, "ledger", "copy", "--from", f"sqlite:{world.ledger.path}", "--to", target,
               *env(world))


def test_copy_moves_every_row_with_its_chain(world: World, pg_url: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    history(world)
    status, out, err = copy(world, capsys, with_password(pg_url))
    assert (status, err) == (0, "")
    assert "s3cret-pw" not in out
    assert "recordings 2" in out and "access_log 1" in out and "unauthorized 1" in out
    assert "purpose_history 3" in out and "one transaction" in out
    assert "hash chains are whole and sealed" in out
    source = world.ledger
    with Ledger(pg_url, seal_secret=SECRET) as target:
        # Rows from before server ids go to the server the ledger came from
        # (RECGUARD_SERVER_ID, here the host name).
        server = target.recordings()[0].server_id
        assert f"gave the 4 calls and recordings without a server id to server {server}" in out
        assert {r.server_id for r in target.recordings()} == {server}
        assert [dataclasses.replace(r, server_id=None)
                for r in target.recordings()] == source.recordings()
        assert target.access_log() == source.access_log()
        assert target.unauthorized_log() == source.unauthorized_log()
        for rec in source.recordings():
            assert target.decisions_for_call(rec.call_id) == source.decisions_for_call(rec.call_id)
            assert target.purpose_history(rec.recording_id) == source.purpose_history(rec.recording_id)
        assert target.verify_chains().heads == source.verify_chains().heads
        # The copy goes on where the source stopped: new rows chain and number after the old.
        rec = target.recordings()[0]
        target.update_recording_purposes(rec.recording_id, ["order"],
                                         {"order": "contract_evidence"}, reason="withdrawn")
        assert target.log_access(actor="dpo", action="access", reason="after the move") == 2
        assert target.verify_chains().breaks == []


def test_copy_refuses_a_ledger_that_holds_rows(world: World, pg_url: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    history(world)
    assert copy(world, capsys, pg_url)[0] == 0
    world.ledger.log_access(actor="dpo", action="access", reason="after the first copy")
    status, out, err = copy(world, capsys, pg_url)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "not empty" in err and "access_log" in err
    with Ledger(pg_url) as target:
        assert [e.reason for e in target.access_log()] == ["DSAR-1"]


def test_copy_into_an_unreachable_database_is_one_line(world: World, tmp_path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://guard:s3cret-pw@/recguard?host={tmp_path}&connect_timeout=2"
    status, out, err = copy(world, capsys, url)
    assert status == 2 and out == "" and err.count("\n") == 1
    assert "cannot be reached" in err and "guard@" in err and "s3cret-pw" not in err


@pytest.mark.parametrize(("source", "target", "expected"), [
    ("sqlite:{ledger}", "postgresql://guard:s3cret-pw@db/x?bogus=1", "not a valid PostgreSQL URL"),
    ("sqlite:{ledger}", "/var/lib/recguard/other.sqlite3", "--to names the PostgreSQL database"),
    ("postgresql://guard:s3cret-pw@db/x", "postgresql://guard@db/y", "--from names the SQLite"),
])
def test_bad_arguments_are_one_line(world: World, capsys: pytest.CaptureFixture[str],
                                    source: str, target: str, expected: str) -> None:
    status, out, err = run(capsys, "ledger", "copy", "--from",
                           source.format(ledger=world.ledger.path), "--to", target, *env(world))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert expected in err and "s3cret-pw" not in err


def test_copy_has_help_that_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "ledger", "copy", "--help")
    assert status == 0 and "examples:" in out and "recguard ledger copy --from sqlite:" in out


def test_the_commands_work_on_the_copy(world: World, pg_url: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    history(world)
    assert copy(world, capsys, pg_url)[0] == 0
    # The audit finds the same on both (the history's purpose change lacks its facts).
    on_source = run(capsys, "audit", "--verify", *env(world))
    on_copy = env(world, RECGUARD_LEDGER=pg_url)  # the same env file, now naming the copy
    assert run(capsys, "audit", "--verify", *on_copy) == on_source
    assert on_source[0] == 1 and "order,quality" in on_source[1]
    status, out, _ = run(capsys, "subject", "find", "--caller", NUMBER, *on_copy)
    assert status == 0 and out.count("finalized") == 2, out
    recording_id = world.ledger.recordings()[0].recording_id
    status, _, err = run(capsys, "hold", recording_id, "--reason", "court 7", *on_copy)
    assert status == 0, err
    status, out, _ = run(capsys, "access-log", *on_copy)
    assert status == 0 and "court 7" in out and "DSAR-1" in out
    status, out, err = run(capsys, "purge", *on_copy)
    assert status == 0, err
    assert not world.ledger.recording(recording_id).held  # type: ignore[union-attr]
    with Ledger(pg_url, seal_secret=SECRET) as target:
        assert target.recording(recording_id).held  # type: ignore[union-attr]
        assert target.verify_chains().breaks == []


def test_init_makes_a_database_ledger_once(world: World, pg_url: str,
                                           capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    empty_spool = tmp_path / "empty-spool"
    empty_spool.mkdir()
    args = env(world, RECGUARD_LEDGER=with_password(pg_url),
               RECGUARD_RECORDINGS_DIR=str(empty_spool))
    status, out, err = run(capsys, "ledger", "init", *args)
    assert (status, err) == (0, "") and f"schema version {SCHEMA_VERSION}" in out
    assert "s3cret-pw" not in out
    status, out, err = run(capsys, "ledger", "init", *args)
    assert status == 2 and "already exists" in err and err.count("\n") == 1
    assert "s3cret-pw" not in err


def test_copy_refuses_a_ledger_with_a_table_it_does_not_know(world: World, pg_url: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    history(world)
    raw_execute(world.ledger.path, "CREATE TABLE pause_notes (id INTEGER PRIMARY KEY)")
    status, out, err = copy(world, capsys, pg_url)
    assert status == 2 and out == "" and "pause_notes" in err and "nothing was copied" in err
    with Ledger(pg_url) as target:
        assert target.recordings() == []


def test_copy_gives_rows_without_a_server_to_the_server_named(
        world: World, pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    history(world)
    status, out, err = run(capsys, "ledger", "copy", "--from", f"sqlite:{world.ledger.path}",
                           "--to", pg_url, "--server", "pbx-a", *env(world))
    assert (status, err) == (0, "")
    assert "gave the 4 calls and recordings without a server id to server pbx-a" in out
    with Ledger(pg_url, seal_secret=SECRET) as target:
        assert {r.server_id for r in target.recordings()} == {"pbx-a"}
        assert {c.server_id for c in target.live_calls()} <= {"pbx-a"}
        assert target.verify_chains().breaks == []
    # The source keeps its rows as they were.
    assert {r.server_id for r in world.ledger.recordings()} == {None}
