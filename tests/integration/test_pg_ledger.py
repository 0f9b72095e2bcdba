"""`recguard run` on a PostgreSQL ledger (a throwaway cluster) with the
sandbox's Asterisk: rows carry the server id, a second guard for the same
server id refuses to start, and with the database stopped the gate fails
closed (nothing recorded) while the guard keeps running, and records again
once the database is back, finishing what it could not write meanwhile."""

from __future__ import annotations

import subprocess
import sys
import time

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.pgcluster import Cluster
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.ledger import Ledger, utcnow

from .guardrun import guard_process, read_log, wait_app_registered
from .pgledger import cluster, pg_ledger  # noqa: F401 - fixtures
from .test_recovery import place


def test_recguard_run_on_a_database_ledger_one_guard_per_server(
        sandbox: Sandbox, idle: CallerSimulator, pg_ledger: str) -> None:
    with guard_process(sandbox.env_file, RECGUARD_LEDGER=pg_ledger,
                       RECGUARD_SERVER_ID="pbx-a") as process:
        assert wait_app_registered(idle.client), "recguard run did not register its app"
        call = place(idle, "order", "given")
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id and call.centre_variable("RECGUARD_DECISION") == "record"
        with Ledger(pg_ledger) as ledger:
            rec = ledger.recording(recording_id)
            assert rec is not None and rec.server_id == "pbx-a"
            assert ledger.call(rec.call_id).server_id == "pbx-a"  # type: ignore[union-attr]
        # A second guard for the same server refuses, in one line, and changes nothing.
        second = subprocess.run(
            [sys.executable, "-m", "asterisk_recguard", "run", "--env-file", str(sandbox.env_file)],
            env={**_clean_env(), "RECGUARD_LEDGER": pg_ledger, "RECGUARD_SERVER_ID": "pbx-a"},
            capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        errors = [line for line in second.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and "already guards server 'pbx-a'" in errors[0]
        assert process.poll() is None
        call.hangup()
        call.wait_ended()
        with Ledger(pg_ledger) as ledger:
            assert wait_until(lambda: ledger.recording(recording_id).status == "finalized", 10)


def _clean_env() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}


def test_with_the_database_stopped_nothing_is_recorded_and_the_guard_recovers(
        sandbox: Sandbox, idle: CallerSimulator, cluster: Cluster, pg_ledger: str) -> None:
    log_path = sandbox.env_file.parent / "pg-outage.jsonl"
    with guard_process(sandbox.env_file, RECGUARD_LEDGER=pg_ledger, RECGUARD_SERVER_ID="pbx-a",
                       RECGUARD_DECISION_LOG=str(log_path)) as process:
        assert wait_app_registered(idle.client), "recguard run did not register its app"
        before = place(idle, "order", "given")
        kept_id = before.centre_variable("RECGUARD_RECORDING_ID")
        assert kept_id

        cluster.halt()
        outage = utcnow()
        try:
            files = set(sandbox.recordings_dir.iterdir())
            began = time.monotonic()
            down = place(idle, "order", "given")
            waited = time.monotonic() - began
            # No ledger row, so no MixMonitor: the dialplan hears nothing ("unavailable").
            assert down.centre_variable("RECGUARD_DECISION") is None
            assert down.centre_variable("RECGUARD_RECORDING_ID") is None
            assert waited < 5.0
            down.hangup()
            down.wait_ended()
            before.hangup()  # ends during the outage: its finalization cannot be written
            before.wait_ended()
            time.sleep(1.0)
            assert set(sandbox.recordings_dir.iterdir()) - files == set()
            assert process.poll() is None  # the guard did not crash
        finally:
            cluster.serve()
            back = utcnow()

        # Back: the guard lock is taken again, the reconcile it triggers
        # finalizes the call that ended meanwhile, new calls are recorded.
        with Ledger(pg_ledger) as ledger:
            assert wait_until(lambda: ledger.recording(kept_id).status == "finalized", 30)
            assert ledger.calls_started_between(outage, back) == []  # no row for the call
        again = place(idle, "order", "given")
        assert again.centre_variable("RECGUARD_DECISION") == "record"
        again.hangup()
        again.wait_ended()
        events = [e["event"] for e in read_log(log_path)]
        assert "gate_failed" in events and "finalize_failed" in events
        assert process.poll() is None
