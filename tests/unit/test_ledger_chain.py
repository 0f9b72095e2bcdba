"""The decisions, the access log and the unauthorized log are tamper-evident:
a row changed, removed or forged behind the append-only triggers is named by
`recguard audit` (table and row), and so is a chain recomputed by someone
without the installation's secret."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from asterisk_recguard.commands import _dpo
from asterisk_recguard.ledger import SCHEMA_VERSION, Ledger
from asterisk_recguard.settings import load_settings

from .cli_support import env, run
from .ledger_support import DATABASE_ERRORS, ledger_file_at, raw_execute
from .recfixtures import SECRET, World, env_file

CALL = "1700000000.1"
FACTS = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
         "consent": "none", "outcome": "transaction"}

pytestmark = pytest.mark.usefixtures("clean_env")


def keyed(world: World) -> Ledger:
    """The ledger as recguard's commands open it, with the installation's settings."""
    return _dpo.open_ledger(load_settings(env_file(world)))


def write_history(ledger: Ledger, rows: int = 3) -> None:
    """Decisions, access-log and unauthorized entries, written as recguard writes them."""
    ledger.upsert_call_start(CALL, channel="PJSIP/trunk-00000001", facts=FACTS)
    for i in range(rows):
        ledger.record_decision(CALL, trigger="gate" if i == 0 else "change", facts=FACTS,
                               record=True, purposes=["order"], rejected=[], policy="test-1",
                               action="start" if i == 0 else "keep", retention_days=1095)
        ledger.log_access(actor="dpo", action="access", reason=f"DSAR-{i}", call_id=CALL,
                          detail={"request": i})
        ledger.log_unauthorized(channel=f"PJSIP/x-{i}", action="logged_only",
                                started_by="dialplan")


def audit_lines(world: World, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    status, out, _ = run(capsys, "audit", *extra, *env(world))
    return status, out.strip().splitlines()


@contextmanager
def behind_the_triggers(path: Path) -> Iterator[sqlite3.Connection]:
    """What someone with write access to the file can do: drop every trigger,
    change rows, and put the triggers back as they were."""
    conn = sqlite3.connect(path)
    triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
    for name, _sql in triggers:
        conn.execute(f"DROP TRIGGER {name}")
    try:
        yield conn
    finally:
        for _name, sql in triggers:
            conn.execute(sql)
        conn.commit()
        conn.close()


@contextmanager
def a_history_behind_its_triggers(world: World) -> Iterator[sqlite3.Connection]:
    """A history written as recguard writes it, then opened behind its triggers."""
    with keyed(world) as ledger:
        write_history(ledger)
    with behind_the_triggers(world.ledger.path) as conn:
        yield conn


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def named(lines: list[str], table: str, row: int) -> bool:
    return any(table in line and f"row {row}" in line for line in lines)


# --- what goes unnoticed without the chain -------------------------------------------------


def test_an_intact_history_is_ok(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with keyed(world) as ledger:
        write_history(ledger)
    status, lines = audit_lines(world, capsys)
    assert status == 0 and lines[0].startswith("OK:")


@pytest.mark.parametrize(("table", "change"), [
    ("access_log", "reason = 'routine check'"),
    ("decisions", "record = 0, action = 'none'"),
    ("unauthorized", "action = 'stopped_deleted'"),
])
def test_a_row_rewritten_behind_the_triggers_is_named(world: World, capsys: pytest.CaptureFixture[str],
                                                      table: str, change: str) -> None:
    with a_history_behind_its_triggers(world) as conn:
        conn.execute(f"UPDATE {table} SET {change} WHERE id = 2")
    status, lines = audit_lines(world, capsys)
    assert status == 1
    assert named(lines, table, 2), lines
    assert len(lines) == 1  # the first broken row only, one line


def test_a_removed_row_is_named_by_the_row_after_it(world: World,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with a_history_behind_its_triggers(world) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 2")
    status, lines = audit_lines(world, capsys)
    assert status == 1 and named(lines, "decisions", 3), lines


def test_a_removed_first_row_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with a_history_behind_its_triggers(world) as conn:
        conn.execute("DELETE FROM access_log WHERE id = 1")
    status, lines = audit_lines(world, capsys)
    assert status == 1 and named(lines, "access_log", 2), lines


def test_a_forged_row_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A row copied from the newest one, every column it has, with another reason."""
    with a_history_behind_its_triggers(world) as conn:
        names = columns(conn, "access_log")
        values = ["4" if c == "id" else "'quiet export'" if c == "reason" else c for c in names]
        conn.execute(f"INSERT INTO access_log ({', '.join(names)}) "
                     f"SELECT {', '.join(values)} FROM access_log WHERE id = 3")
    status, lines = audit_lines(world, capsys)
    assert status == 1 and named(lines, "access_log", 4), lines


# --- what the chain alone would not catch: the seal ----------------------------------------


def recompute_from(conn: sqlite3.Connection, table: str, first: int) -> None:
    """Re-link every row from ``first`` on with the published algorithm, as
    someone who knows it but not the secret would; the seals stay as they were."""
    from asterisk_recguard.ledger.chain import GENESIS, row_hash

    names = [c for c in columns(conn, table) if c not in ("id", "prev_hash", "row_hash", "seal")]
    conn.row_factory = sqlite3.Row
    before = conn.execute(f"SELECT row_hash FROM {table} WHERE id < ? ORDER BY id DESC LIMIT 1",
                          (first,)).fetchone()
    prev = before["row_hash"] if before else GENESIS
    for row in conn.execute(f"SELECT * FROM {table} WHERE id >= ? ORDER BY id", (first,)).fetchall():
        digest = row_hash(table, row["id"], prev, {c: row[c] for c in names})
        conn.execute(f"UPDATE {table} SET prev_hash = ?, row_hash = ? WHERE id = ?",
                     (prev, digest, row["id"]))
        prev = digest


def test_a_chain_recomputed_without_the_secret_is_named(world: World,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with a_history_behind_its_triggers(world) as conn:
        conn.execute("DELETE FROM decisions WHERE id = 2")
        recompute_from(conn, "decisions", 2)
    status, lines = audit_lines(world, capsys)
    assert status == 1 and named(lines, "decisions", 3) and "seal" in lines[0], lines


def test_a_removed_seal_is_named(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with a_history_behind_its_triggers(world) as conn:
        conn.execute("UPDATE access_log SET seal = NULL WHERE id = 3")
    status, lines = audit_lines(world, capsys)
    assert status == 1 and named(lines, "access_log", 3) and "seal" in lines[0], lines


def test_another_secret_is_named_at_the_first_row(location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None, seal_secret=SECRET) as ledger:
        write_history(ledger)
    with Ledger(location, seal_secret="another-secret-" + "x" * 32) as ledger:
        report = ledger.verify_chains()
    assert sorted((b.table, b.row_id) for b in report.breaks) == [
        ("access_log", 1), ("decisions", 1), ("unauthorized", 1)]
    assert "RECGUARD_HASH_SECRET" in report.breaks[0].message


def test_the_audit_json_gives_each_chain_head(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with keyed(world) as ledger:
        write_history(ledger, rows=2)
    status, lines = audit_lines(world, capsys, "--json")
    chains = json.loads(lines[0])["chains"]
    assert status == 0
    assert {t: c["rows"] for t, c in chains.items()} == {
        "decisions": 2, "access_log": 2, "unauthorized": 2}
    assert all(len(c["head_hash"]) == 64 and c["head_id"] == 2 for c in chains.values())


# --- the chain as written ------------------------------------------------------------------


def test_a_plain_insert_is_refused(location: Path | str) -> None:
    Ledger.create(location, recordings_dir=None).close()
    with pytest.raises(DATABASE_ERRORS, match="chain"):
        raw_execute(location, "INSERT INTO access_log (id, at, actor, action, reason) "
                              "VALUES (1, '2026-01-01T00:00:00.000000Z', 'x', 'access', 'y')")


def test_two_writers_on_one_ledger_share_one_chain(location: Path | str) -> None:
    """The daemon and a command each have the ledger open: neither may chain
    onto a head the other has already moved."""
    path = location
    Ledger.create(path, recordings_dir=None).close()
    with Ledger(path, seal_secret=SECRET) as daemon, Ledger(path, seal_secret=SECRET) as command:
        for i in range(5):
            daemon.log_access(actor="daemon", action="purge", reason=f"run {i}")
            command.log_access(actor="dpo", action="hold", reason=f"case {i}")
        report = daemon.verify_chains()
    assert report.breaks == [] and report.heads["access_log"].rows == 10


def test_concurrent_writers_keep_one_chain(location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None, seal_secret=SECRET) as ledger:
        ledger.upsert_call_start(CALL, channel="PJSIP/trunk-00000001", facts=FACTS)

        def decide(n: int) -> None:
            for _ in range(25):
                ledger.record_decision(CALL, trigger="change", facts=FACTS, record=False,
                                       purposes=[], rejected=[], policy=f"p{n}", action="none")

        threads = [threading.Thread(target=decide, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        report = ledger.verify_chains()
        assert report.breaks == [] and report.heads["decisions"].rows == 200
        assert [d.id for d in ledger.decisions_for_call(CALL)] == list(range(1, 201))


def test_a_write_rolled_back_leaves_the_chain_whole(location: Path | str) -> None:
    with Ledger.create(location, recordings_dir=None, seal_secret=SECRET) as ledger:
        ledger.log_access(actor="dpo", action="access", reason="one")
        with pytest.raises(RuntimeError), ledger._engine.transaction():
            ledger.log_access(actor="dpo", action="access", reason="rolled back")
            raise RuntimeError("the caller's block failed")
        ledger.log_access(actor="dpo", action="access", reason="two")
        assert ledger.verify_chains().breaks == []
        assert [e.reason for e in ledger.access_log()] == ["one", "two"]


# --- a ledger of the schema before the chain -----------------------------------------------


def previous_schema(path: Path) -> None:
    """A ledger as the release before the chain left it, with history in each table."""
    with ledger_file_at(path, 2) as conn:
        conn.execute("INSERT INTO calls (call_id, channel, started_at) "
                     "VALUES ('1.1', 'PJSIP/a-1', '2026-11-01T10:00:00.000000Z')")
        for i in range(3):
            conn.execute("INSERT INTO decisions (call_id, at, trigger, facts, record, purposes, "
                         "rejected, policy, action) VALUES ('1.1', ?, 'gate', '{}', 0, '[]', '[]', "
                         "'p', 'none')", (f"2026-11-01T10:00:0{i}.000000Z",))
            conn.execute("INSERT INTO access_log (at, actor, action, reason) VALUES (?, 'dpo', "
                         "'access', ?)", (f"2026-11-01T11:00:0{i}.000000Z", f"old {i}"))
        conn.execute("INSERT INTO unauthorized (at, channel, action) "
                     "VALUES ('2026-11-01T12:00:00.000000Z', 'PJSIP/b-2', 'logged_only')")


def test_the_rows_of_an_upgraded_ledger_are_chained(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    previous_schema(path)
    with Ledger(path, seal_secret=SECRET) as ledger:
        assert ledger.schema_version == SCHEMA_VERSION
        ledger.log_access(actor="dpo", action="access", reason="after the upgrade")
        report = ledger.verify_chains()
        assert report.breaks == []
        assert {t: h.rows for t, h in report.heads.items()} == {
            "decisions": 3, "access_log": 4, "unauthorized": 1}
    with behind_the_triggers(path) as conn:
        conn.execute("UPDATE access_log SET reason = 'changed' WHERE id = 1")
    with Ledger(path, seal_secret=SECRET) as ledger:
        (broken,) = ledger.verify_chains().breaks
    assert (broken.table, broken.row_id) == ("access_log", 1)


def test_an_upgraded_ledger_stays_append_only(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    previous_schema(path)
    Ledger(path, seal_secret=SECRET).close()
    conn = sqlite3.connect(path)
    for table in ("decisions", "access_log", "unauthorized"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(f"UPDATE {table} SET row_hash = NULL")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(f"DELETE FROM {table}")
    conn.close()
