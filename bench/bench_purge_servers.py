"""Purge speed on a PostgreSQL ledger several servers share: one server's
purge over a ledger of 1,000,000 finalized recordings spread over 10 server
ids, most of them past their deadline. Only that server's files exist (the
others' are on their own servers' disks); the purge must delete exactly its
due recordings and touch no other server's.

The ledger is filled with COPY (building it through the guard's API would
take longer than what is measured); the purge is the real one, as `recguard
purge` runs it on that server: batches of 500 in one transaction each,
unlinks with the directory fsynced, one decision-log line per deletion, the
access-log entry. In a throwaway cluster, or --ledger URL (an empty database).

    .venv/bin/python bench/bench_purge_servers.py [--recordings N] [--servers K] [--ledger URL]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Runs from a source checkout too, without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asterisk_recguard.decisionlog import DecisionLog  # noqa: E402
from asterisk_recguard.devtools.pgcluster import Cluster, server_bin  # noqa: E402
from asterisk_recguard.ledger import Ledger, format_ts  # noqa: E402
from asterisk_recguard.retention import purge  # noqa: E402

NOW = datetime(2029, 1, 1, tzinfo=timezone.utc)
EXPIRED = 0.9  # the fraction of recordings past their deadline
FACTS = '{"purposes":["order"],"notices":{"evidence-v1":"complete"},"consent":"none","outcome":"transaction"}'


def server_of(i: int, servers: int) -> str:
    return f"pbx-{i % servers:02d}"


def build(url: str, spool: Path, count: int, servers: int, mine: str) -> int:
    """The ledger's rows, and the files of ``mine``'s recordings; how many of those are due."""
    import psycopg
    Ledger.create(url, recordings_dir=None).close()  # the real schema
    due = 0
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        with cursor.copy("COPY calls (call_id, channel, started_at, ended_at, last_facts, status, "
                         "server_id) FROM STDIN") as copy:
            for i in range(count):
                started = NOW - timedelta(days=1200, seconds=i)
                copy.write_row((f"{1700000000 + i}.{i % 1000}", "PJSIP/trunk-00000001",
                                format_ts(started), format_ts(started + timedelta(minutes=3)),
                                FACTS, "ended", server_of(i, servers)))
        with cursor.copy("COPY recordings (recording_id, call_id, channel, path, purposes, bases, "
                         "started_at, stopped_at, finalized_at, deadline, size_bytes, duration_s, "
                         "sha256, stored_path, key_id, status, server_id) FROM STDIN") as copy:
            for i in range(count):
                recording_id = uuid.uuid4().hex
                started = NOW - timedelta(days=1200, seconds=i)
                expired = i < count * EXPIRED
                deadline = NOW - timedelta(days=1, seconds=i) if expired else NOW + timedelta(days=30)
                clear, stored = spool / f"{recording_id}.wav", spool / f"{recording_id}.wav.rgv"
                if server_of(i, servers) == mine:
                    stored.write_bytes(b"RGVAULT1" + os.urandom(56))
                    due += expired
                ended = format_ts(started + timedelta(minutes=3))
                copy.write_row((recording_id, f"{1700000000 + i}.{i % 1000}",
                                "PJSIP/trunk-00000001", str(clear), '["order"]',
                                '{"order":"evidence"}', format_ts(started), ended, ended,
                                format_ts(deadline), 64, 3.0, "0" * 64, str(stored), "k-bench",
                                "finalized", server_of(i, servers)))
        conn.execute("ANALYZE")
    return due


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--servers", type=int, default=10)
    parser.add_argument("--ledger", default=None, help="an empty database's URL (default: a "
                        "throwaway cluster)")
    args = parser.parse_args()
    cluster = None
    if args.ledger is None:
        bin_dir = server_bin()
        if bin_dir is None:
            sys.exit("PostgreSQL is not installed (apt-get install postgresql), or give --ledger URL")
        cluster = Cluster(bin_dir).start()
    url = args.ledger or cluster.url()  # type: ignore[union-attr]
    mine = server_of(3, args.servers)
    try:
        with tempfile.TemporaryDirectory(prefix="recguard-bench-") as tmp:
            root = Path(tmp)
            spool = root / "spool"
            spool.mkdir()
            began = time.perf_counter()
            due = build(url, spool, args.recordings, args.servers, mine)
            print(f"built a ledger of {args.recordings:,} finalized recordings over "
                  f"{args.servers} servers ({due:,} of {mine}'s due) in "
                  f"{time.perf_counter() - began:.1f} s")
            with Ledger(url, server_id=mine) as ledger, DecisionLog(root / "log.jsonl") as log:
                began = time.perf_counter()
                listed = len(ledger.expired(NOW, server_id=mine))
                listing = time.perf_counter() - began
                began = time.perf_counter()
                report = purge(ledger, log, NOW, "bench", recordings_dir=spool, server_id=mine)
                seconds = time.perf_counter() - began
                left = len(ledger.expired(NOW, server_id=mine))
                others = len(ledger.expired(NOW))
            deleted = len(report.deleted)
            expected_others = int(args.recordings * EXPIRED) - due
            if deleted != due or listed != due or left or not report.ok or others != expected_others:
                sys.exit(f"purge was wrong: deleted {deleted} of {due}, {left} still due, "
                         f"{others} of the other servers' due (expected {expected_others}), "
                         f"{len(report.failures)} failures")
            print(f"listing {mine}'s {listed:,} due recordings: {listing:.2f} s")
            print(f"purge of {mine}: {deleted:,} recordings deleted in {seconds:.1f} s "
                  f"({deleted / seconds:,.0f}/s); the other servers' {others:,} due left to them")
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
