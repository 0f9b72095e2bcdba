"""The guard's own cost, without Asterisk: a recorded stream of call events
replayed into a real guard whose Asterisk side answers at once
(``asterisk_recguard.guard.testing``), with the real ledger (SQLite, WAL,
synchronous=FULL, group commit; or, with --postgresql, PostgreSQL in a
throwaway cluster on this machine) and the real decision log on disk. The
recordings directory, whose files the fake MixMonitor writes, is on tmpfs
(/dev/shm) where there is one: creating those files is Asterisk's work, not
the guard's, and on ext4 it cost more than the guard's own work per gate.

    .venv/bin/python bench/bench_guard_replay.py [--calls 2000] [--cores 1] [--lanes 32] [--postgresql]

Prints gate decisions per second (StasisStart to the dialplan told; no gate is
shed: the gate timeout is an hour, so every gate does its whole work), the
whole stream's events per second (gates, a fact change on a third of the
calls, hangups with finalization), and the memory the guard holds per
tracked call (tracemalloc, in a separate pass). Half the calls declare
`order` after a complete notice and are recorded; half declare
`general_info` and are not. The process is pinned to ``--cores`` cores.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asterisk_recguard import channelfacts as cf  # noqa: E402
from asterisk_recguard.decisionlog import DecisionLog  # noqa: E402
from asterisk_recguard.devtools.pgcluster import Cluster, server_bin  # noqa: E402
from asterisk_recguard.guard import Guard  # noqa: E402
from asterisk_recguard.guard.testing import (  # noqa: E402
    FakeCallControl,
    FakeMixMonitors,
    channel,
    destroyed,
    stasis_start,
    varset,
)
from asterisk_recguard.ledger import Ledger  # noqa: E402
from asterisk_recguard.policy import load_policy  # noqa: E402
from asterisk_recguard.resources import default_policy_path  # noqa: E402

EVIDENCE = "evidence-v1:complete"
SECRET = "bench-" + "s" * 40


def stream(calls: int) -> tuple[list[dict], list[dict]]:
    """The gates, then the rest of every call: a change on a third, then the hangup."""
    gates, rest = [], []
    for i in range(calls):
        purpose = "order" if i % 2 == 0 else "general_info"
        chan = channel(f"replay-{i}", purposes=purpose, notices=EVIDENCE, caller=f"+38640{i:06d}")
        gates.append(stasis_start(chan))
        if i % 3 == 0:
            rest.append(varset(channel(f"replay-{i}", purposes=purpose, notices=EVIDENCE,
                                       outcome="transaction"), cf.OUTCOME_VAR))
        rest.append(destroyed(channel(f"replay-{i}", purposes=purpose, notices=EVIDENCE, outcome="transaction")))
    return gates, rest


def spool() -> tempfile.TemporaryDirectory[str]:
    """Where the fake MixMonitor writes: tmpfs if this machine has /dev/shm."""
    shm = Path("/dev/shm")
    return tempfile.TemporaryDirectory(prefix="recguard-replay-", dir=shm if shm.is_dir() else None)


def make_guard(directory: Path, recordings: Path, lanes: int = 32,
               database: str | None = None) -> tuple[Guard, Ledger, DecisionLog]:
    """A guard on fakes of Asterisk writing into ``recordings``; its ledger an
    SQLite file in ``directory``, or the empty PostgreSQL database ``database`` names."""
    ledger = Ledger.create(database or directory / "ledger.sqlite3", recordings_dir=recordings,
                           seal_secret=SECRET)
    log = DecisionLog(directory / "decisions.jsonl", background=True)  # as `recguard run` writes it
    guard = Guard(policy=load_policy(default_policy_path()), control=FakeCallControl(),
                  mixmonitors=FakeMixMonitors(recordings), ledger=ledger, decision_log=log,
                  hash_secret=SECRET, lanes=lanes, workers=4, gate_timeout=3600.0)
    return guard, ledger, log


def timed_run(calls: int, lanes: int, database: str | None = None) -> None:
    gates, rest = stream(calls)
    # The recorded stream is the benchmark's input, held whole for the run; in
    # the daemon each event is freed once handled. Frozen, it is not the
    # guard's garbage collector's to scan again and again.
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="recguard-replay-") as directory, spool() as recordings:
        guard, ledger, log = make_guard(Path(directory), Path(recordings), lanes, database)
        try:
            began = time.perf_counter()
            for event in gates:
                guard.on_ari_event(event)
            guard.wait_idle(600)
            gated = time.perf_counter() - began
            for event in rest:
                guard.on_ari_event(event)
            guard.wait_idle(600)
            total = time.perf_counter() - began
            seconds = sorted(guard.gate_seconds)
        finally:
            guard.shutdown(60)
            ledger.close()
            log.close()
    print(f"gate decisions: {calls} in {gated:.2f} s = {calls / gated:,.0f}/s "
          f"(gate time median {1000 * seconds[len(seconds) // 2]:.1f} ms, "
          f"p99 {1000 * seconds[int(len(seconds) * 0.99)]:.1f} ms while the burst queued)")
    events = len(gates) + len(rest)
    print(f"whole stream: {events} events in {total:.2f} s = {events / total:,.0f} events/s "
          f"(including finalization: hashing, ledger, decision log)")


def memory_per_call(calls: int) -> None:
    gates, _ = stream(calls)
    with tempfile.TemporaryDirectory(prefix="recguard-replay-") as directory, spool() as recordings:
        guard, ledger, log = make_guard(Path(directory), Path(recordings))
        try:
            guard.on_ari_event(gates[0])  # warm up: lazily built objects are not per call
            guard.wait_idle(60)
            gc.collect()
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for event in gates[1:]:
                guard.on_ari_event(event)
            guard.wait_idle(600)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            tracemalloc.stop()
            tracked = guard.tracked_calls() - 1
        finally:
            guard.shutdown(60)
            ledger.close()
            log.close()
    print(f"memory: {(after - before) / tracked:,.0f} bytes per tracked call ({tracked} calls tracked)")


def postgresql_database() -> tuple[Cluster, str]:
    """A throwaway PostgreSQL cluster on this machine and the URL of an empty database in it."""
    bin_dir = server_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    cluster = Cluster(bin_dir).start()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE replay")
    return cluster, cluster.url("replay")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--postgresql", action="store_true",
                        help="the ledger in PostgreSQL (a throwaway cluster on this machine, started "
                             "before the pinning, so the server is not on the guard's core)")
    parser.add_argument("--lanes", type=int, default=32, help="the guard's lanes (recguard run uses 32)")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the memory per tracked call (default: yes)")
    parser.add_argument("--cores", type=int, default=1, help="pin the process to this many cores (default 1)")
    args = parser.parse_args()
    cluster, database = None, None
    if args.postgresql:
        cluster, database = postgresql_database()
    try:
        cores = sorted(os.sched_getaffinity(0))[: max(1, args.cores)]
        os.sched_setaffinity(0, cores)
        print(f"pinned to {len(cores)} core(s); {args.calls} calls; {args.lanes} lanes; ledger: "
              f"{'PostgreSQL' if database else 'SQLite'}")
        timed_run(args.calls, args.lanes, database)
        if args.memory:
            memory_per_call(args.calls)
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
