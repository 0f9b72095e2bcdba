"""Two Asterisk servers, two guards, one PostgreSQL ledger: two sandboxes
(each with its own recordings directory, not shared) whose guards run as
pbx-a and pbx-b. One caller calls both; the DPO on pbx-a finds both calls,
an export that would need pbx-b's file does nothing and says to run it on
pbx-b, and each server answers for its own; a guard killed on pbx-b does not
disturb pbx-a's, and the caller's recordings are erased on both servers.
The second sandbox listens on RECGUARD_TEST_HTTP_PORT_B and
RECGUARD_TEST_AMI_PORT_B (28088 and 25038 unless set)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.ledger import Ledger

from .conftest import DIALPLAN
from .guardrun import guard_process, wait_app_registered
from .pgledger import cluster, pg_ledger  # noqa: F401 - fixtures

HTTP_PORT_B = int(os.environ.get("RECGUARD_TEST_HTTP_PORT_B", "28088"))
AMI_PORT_B = int(os.environ.get("RECGUARD_TEST_AMI_PORT_B", "25038"))
ORDER_FACTS = {"RECGUARD_PURPOSE": "order", "RECGUARD_NOTICES": "evidence-v1:complete",
               "RECGUARD_CONSENT": "none", "RECGUARD_OUTCOME": "transaction"}
CALLER_ID = "Ana <+38640123456>"
SPOKEN = "040 123 456"


@pytest.fixture(scope="module")
def sandbox_b(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A second Asterisk beside the session's sandbox (which says whether one can run)."""
    state = tmp_path_factory.mktemp("sandbox-b")
    box = Sandbox(state_dir=state, http_port=HTTP_PORT_B, ami_port=AMI_PORT_B)
    box.up(includes=sorted(DIALPLAN.glob("*.conf")), timeout=90)
    try:
        yield box
    finally:
        box.down()
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def callers_b(sandbox_b: Sandbox) -> Iterator[CallerSimulator]:
    env = sandbox_b.credentials()
    sim = CallerSimulator(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"],
                          env["RECGUARD_ARI_PASSWORD"])
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def record(sim: CallerSimulator) -> str:
    """One call from the caller, recorded for an order, 1 s long; its recording id."""
    call = sim.call("recguard-test-guard", "direct", variables=ORDER_FACTS, caller_id=CALLER_ID)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id and call.centre_variable("RECGUARD_DECISION") == "record"
    time.sleep(1.0)
    call.hangup()
    call.wait_ended()
    return recording_id


def test_two_servers_one_ledger(sandbox: Sandbox, sandbox_b: Sandbox, idle: CallerSimulator,
                                callers_b: CallerSimulator, pg_ledger: str,
                                tmp_path: Path) -> None:
    # Every server shares the ledger and its hash secret (caller hashes and seals).
    shared = {"RECGUARD_LEDGER": pg_ledger,
              "RECGUARD_HASH_SECRET": sandbox.credentials()["RECGUARD_HASH_SECRET"]}
    boxes = {"pbx-a": sandbox, "pbx-b": sandbox_b}

    def dpo(server: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
        env.update(shared, RECGUARD_SERVER_ID=server, SUDO_USER="dpo-anna")
        return subprocess.run([sys.executable, "-m", "asterisk_recguard", *args, "--env-file",
                               str(boxes[server].env_file)],
                              env=env, capture_output=True, text=True, timeout=60)

    with guard_process(sandbox.env_file, **shared, RECGUARD_SERVER_ID="pbx-a") as guard_a, \
            guard_process(sandbox_b.env_file, **shared, RECGUARD_SERVER_ID="pbx-b") as guard_b:
        assert wait_app_registered(idle.client), "the guard of pbx-a did not register"
        assert wait_app_registered(callers_b.client), "the guard of pbx-b did not register"
        ids = {"pbx-a": record(idle), "pbx-b": record(callers_b)}
        with Ledger(pg_ledger) as ledger:
            for server, rid in ids.items():
                assert wait_until(lambda: ledger.recording(rid).status == "finalized", 10), server
                rec = ledger.recording(rid)
                assert rec is not None and rec.server_id == server
                assert Path(rec.file_path).is_relative_to(boxes[server].recordings_dir)

        # The DPO on pbx-a sees the caller's calls on both servers.
        found = dpo("pbx-a", "subject", "find", "--caller", SPOKEN, "--json")
        assert found.returncode == 0, found.stderr
        rows = [json.loads(line) for line in found.stdout.splitlines()]
        assert {(r["recording_id"], r["server"]) for r in rows} == {
            (ids["pbx-a"], "pbx-a"), (ids["pbx-b"], "pbx-b")}

        # pbx-b's file is on pbx-b only: an export of both does nothing, and says so.
        to = tmp_path / "dsar"
        refused = dpo("pbx-a", "subject", "export", "--caller", SPOKEN, "--to", str(to),
                      "--reason", "access request DSAR-21")
        assert refused.returncode == 2
        assert f"1 on pbx-b ({ids['pbx-b']})" in refused.stderr
        assert "on pbx-b" in refused.stderr and "--server pbx-b" in refused.stderr
        assert not to.exists()
        for server in boxes:
            part = tmp_path / server
            done = dpo(server, "subject", "export", "--server", server, "--caller", SPOKEN,
                       "--to", str(part), "--reason", "access request DSAR-21")
            assert done.returncode == 0, done.stderr
            assert [p.name for p in part.glob("*.wav")] == [f"{ids[server]}.wav"]

        # pbx-b's guard dies: pbx-a's goes on guarding and recording.
        guard_b.send_signal(signal.SIGKILL)
        guard_b.wait(10)
        later = record(idle)
        assert guard_a.poll() is None
        with Ledger(pg_ledger) as ledger:
            assert wait_until(lambda: ledger.recording(later).status == "finalized", 10)

        # The erasure, each server for its own files (pbx-b's with its guard down).
        for server in boxes:
            erased = dpo(server, "subject", "erase", "--server", server, "--caller", SPOKEN,
                         "--reason", "erasure request DSAR-22")
            assert erased.returncode == 0, erased.stdout + erased.stderr
        with Ledger(pg_ledger) as ledger:
            for rid in (*ids.values(), later):
                rec = ledger.recording(rid)
                assert rec is not None and rec.status == "deleted"
                assert not Path(rec.file_path).exists()
            erasures = [e for e in ledger.access_log() if e.action == "erase"]
            assert {e.server_id for e in erasures} == {"pbx-a", "pbx-b"}
        audit = dpo("pbx-a", "audit")
        assert audit.returncode == 0, audit.stdout + audit.stderr
