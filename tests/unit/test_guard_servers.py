"""The guard on a ledger several servers share, on fakes of Asterisk: it
reconciles only its own server's calls, and on a PostgreSQL ledger whose
database goes away it fails closed (no MixMonitor without its ledger row,
the dialplan told nothing, so "unavailable") and records again by itself
once the database is back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard import channelfacts as cf
from asterisk_recguard.devtools.pgcluster import Cluster, server_bin
from asterisk_recguard.guard import Guard
from asterisk_recguard.guard.testing import (
    CapturingLog,
    FakeCallControl,
    FakeMixMonitors,
    channel,
    destroyed,
    stasis_start,
)
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.lifecycle import RecordingStatus

from .pg_support import _required
from .test_guard import EVIDENCE, SECRET, Rig, default_policy, wait_for


def rig_on(ledger: Ledger, recordings: Path) -> Rig:
    control, mixmonitors, log = FakeCallControl(), FakeMixMonitors(recordings), CapturingLog()
    guard = Guard(policy=default_policy(), control=control, mixmonitors=mixmonitors, ledger=ledger,
                  decision_log=log, hash_secret=SECRET, lanes=2, workers=2)
    return Rig(guard, control, mixmonitors, ledger, log, recordings)


def test_reconcile_leaves_another_servers_calls_to_its_guard(tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    path = tmp_path / "ledger.sqlite3"
    Ledger.create(path, recordings_dir=recordings).close()
    b = rig_on(Ledger(path, server_id="pbx-b"), recordings)
    b.feed(stasis_start(channel("b1", purposes="order", notices=EVIDENCE)))
    (theirs,) = b.recordings_of("b1")
    assert theirs.server_id == "pbx-b"
    a = rig_on(Ledger(path, server_id="pbx-a"), recordings)
    try:
        # pbx-b's call is not up on pbx-a's Asterisk: were it pbx-a's, this
        # reconcile would finalize it as ended.
        a.guard.reconcile()
        a.guard.wait_idle(10)
        assert a.guard.tracked_calls() == 0
        assert ("b1",) not in a.control.asked("final_facts")
        after = a.ledger.recording(theirs.recording_id)
        assert after is not None and after.status == RecordingStatus.RECORDING
        assert a.ledger.call("b1").status == "live"
    finally:
        for rig in (a, b):
            rig.guard.shutdown(10)
            rig.ledger.close()


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A cluster of this test's own, since it is stopped and started again."""
    bin_dir = server_bin()
    if bin_dir is None:
        if _required():
            pytest.fail("PostgreSQL is not installed; apt-get install postgresql", pytrace=False)
        pytest.skip("PostgreSQL is not installed")
    cluster = Cluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def gate_call(rig: Rig, call_id: str) -> None:
    rig.feed(stasis_start(channel(call_id, purposes="order", notices=EVIDENCE)))


def test_with_the_database_away_the_gate_fails_closed_and_recovers_by_itself(
        own_cluster: Cluster, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    url = own_cluster.url()
    Ledger.create(url, recordings_dir=recordings).close()
    rig = rig_on(Ledger(url, server_id="pbx-a"), recordings)
    try:
        gate_call(rig, "up1")
        assert rig.control.variables["up1"][cf.DECISION_VAR] == "record"
        assert len(rig.mixmonitors.started) == 1

        own_cluster.halt()
        began = time.monotonic()
        for n in range(3):
            gate_call(rig, f"down{n}")
        took = time.monotonic() - began
        for n in range(3):
            # Nothing started, nothing told: the dialplan says "unavailable".
            assert cf.DECISION_VAR not in rig.control.variables.get(f"down{n}", {})
            assert (f"down{n}",) in rig.control.asked("continue_call")
        assert len(rig.mixmonitors.started) == 1
        assert len(rig.log.events("gate_failed")) == 3
        assert took < 3 * 2.0  # each caller went on at once, not after a timeout
        # The call recorded before the outage hangs up meanwhile: its end cannot
        # be written; the guard goes on.
        rig.feed(destroyed(channel("up1")))

        own_cluster.serve()
        gate_call(rig, "back1")
        assert rig.control.variables["back1"][cf.DECISION_VAR] == "record"
        assert len(rig.mixmonitors.started) == 2
        (rec,) = rig.recordings_of("back1")
        assert rec.server_id == "pbx-a" and rec.status == RecordingStatus.RECORDING
        for n in range(3):
            assert rig.ledger.call(f"down{n}") is None  # no row, and no recording
        # The call that ended during the outage could not be finalized then
        # (one finalize_failed line); the reconcile the daemon runs when the
        # database is back (its guard lock is taken again) finalizes it on the
        # final facts its hangup handler left.
        assert [line["call_id"] for line in rig.log.events("finalize_failed")] == ["up1"]
        (kept,) = rig.recordings_of("up1")
        assert kept.status == RecordingStatus.RECORDING
        rig.control.astdb["up1"] = f"{int(time.time())}|order|{EVIDENCE}|none|transaction"
        rig.guard.reconcile()
        rig.guard.wait_idle(10)
        assert wait_for(lambda: rig.ledger.recording(kept.recording_id).status
                        == RecordingStatus.FINALIZED, 10)
        assert rig.ledger.call("up1").status == "ended"
    finally:
        rig.guard.shutdown(10)
        rig.ledger.close()
