"""The PostgreSQL roles of config/postgresql: the guard's role runs every
step of a call's and a recording's life, and cannot update or delete
history, delete anything, or lift a trigger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from asterisk_recguard.devtools.pgcluster import SUPERUSER
from asterisk_recguard.errors import UserError
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.ledger.location import DatabaseUrl

from .ledger_support import EXPIRED_AT, T0, finalize, raw_execute, start_call, start_recording
from .cli_support import env, run
from .recfixtures import SECRET, World

CONFIG = Path(__file__).resolve().parents[2] / "config" / "postgresql"


def as_role(url: str, role: str) -> str:
    return url.replace(f"{SUPERUSER}@", f"{role}@")


def run_file(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute((CONFIG / name).read_text())  # type: ignore[arg-type]


@pytest.fixture
def guard_url(pg_url: str) -> str:
    """A ledger made by its owner and granted as recguard-grants.sql says: the guard's URL."""
    run_file(pg_url, "recguard-roles.sql")
    database = DatabaseUrl(pg_url).parts()["dbname"]
    raw_execute(pg_url, f"ALTER DATABASE {database} OWNER TO recguard_owner")
    owner = as_role(pg_url, "recguard_owner")
    Ledger.create(owner, recordings_dir=None).close()
    run_file(owner, "recguard-grants.sql")
    return as_role(pg_url, "recguard_guard")


def test_the_guard_role_runs_the_whole_lifecycle(guard_url: str) -> None:
    with Ledger(guard_url, seal_secret=SECRET) as ledger:
        start_call(ledger)
        start_call(ledger)  # seen again: the upsert's update
        ledger.record_decision("1700000000.12", trigger="gate", facts={}, record=True,
                               purposes=["order"], rejected=[], policy="p", action="start")
        kept, held, purged = (start_recording(ledger) for _ in range(3))
        ledger.set_mixmonitor_id(kept, "mm-1")
        ledger.update_recording_purposes(kept, ["order", "quality"],
                                         {"order": "contract_evidence", "quality": "consent"},
                                         reason="consent")
        for recording_id in (kept, held, purged):
            ledger.recording_stopped(recording_id)
            finalize(ledger, recording_id, EXPIRED_AT)
        ledger.set_hold(held, reason="court", actor="dpo")
        ledger.release_hold(held, actor="dpo")
        ledger.mark_deleting(kept, reason="erasure", actor="dpo")
        ledger.mark_deleted(kept)
        now = EXPIRED_AT + timedelta(days=1)
        assert ledger.mark_deleting_expired([held, purged], now=now, reason="retention_expired",
                                            actor="purge", at=now) == [held, purged]
        ledger.mark_deleted_many([held, purged], at=now)
        ledger.end_call("1700000000.12", ended_at=T0 + timedelta(minutes=1))
        ledger.log_access(actor="dpo", action="erase", reason="DSAR-1", recording_id=kept)
        ledger.log_unauthorized(channel="PJSIP/x-1", action="stopped_deleted")
        assert {r.status for r in ledger.recordings()} == {"deleted"}
        assert ledger.verify_chains().breaks == []


@pytest.mark.parametrize("sql", [
    "UPDATE decisions SET action = 'none'", "DELETE FROM decisions",
    "UPDATE access_log SET reason = 'x'", "DELETE FROM access_log",
    "UPDATE unauthorized SET action = 'logged_only'", "TRUNCATE access_log",
    "DELETE FROM recordings", "DELETE FROM calls", "UPDATE recordings SET path = '/x'",
    "UPDATE recordings SET recording_id = 'x'", "UPDATE calls SET started_at = 'x'",
    "ALTER TABLE access_log DISABLE TRIGGER USER", "DROP TABLE access_log",
    "UPDATE ledger_schema SET version = 1",
])
def test_the_guard_role_cannot_rewrite_history(guard_url: str, sql: str) -> None:
    with Ledger(guard_url, seal_secret=SECRET) as ledger:
        start_call(ledger)
        ledger.record_decision("1700000000.12", trigger="gate", facts={}, record=False,
                               purposes=[], rejected=[], policy="p", action="none")
        ledger.log_access(actor="dpo", action="access", reason="kept")
        ledger.log_unauthorized(channel="PJSIP/x-1", action="stopped_deleted")
        start_recording(ledger)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        raw_execute(guard_url, sql)


def test_an_upgrade_by_the_guard_role_says_who_upgrades(guard_url: str, pg_url: str) -> None:
    # A ledger of an older recguard, as far as the guard can tell.
    raw_execute(pg_url, "UPDATE ledger_schema SET version = 2")
    with pytest.raises(UserError, match="upgraded by its owner.*recguard-grants.sql"):
        Ledger(guard_url)


@pytest.mark.usefixtures("clean_env")
def test_a_database_error_in_a_command_is_one_line(guard_url: str, pg_url: str, world: World,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    raw_execute(pg_url, "REVOKE SELECT ON access_log FROM recguard_guard")
    status, out, err = run(capsys, "access-log", *env(world, RECGUARD_LEDGER=guard_url))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("recguard: error: the ledger failed: permission denied for table access_log")
