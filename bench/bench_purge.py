"""Purge speed: recordings deleted per second over a ledger of 100,000
finalized recordings, most of them past their deadline, each with a small
ciphertext file on disk.

The ledger is filled with one bulk transaction (building it through the
guard's one-transaction-per-call API would take longer than what is
measured); the purge itself is the real one: ledger transactions at
synchronous=FULL, unlinks with the directory fsynced, one decision-log
line per deletion, and the access-log entry.

    .venv/bin/python bench/bench_purge.py [--recordings N] [--expired FRACTION] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

# Runs from a source checkout too, without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asterisk_recguard.decisionlog import DecisionLog  # noqa: E402
from asterisk_recguard.ledger import Ledger, format_ts  # noqa: E402
from asterisk_recguard.retention import purge  # noqa: E402

NOW = datetime(2029, 1, 1, tzinfo=timezone.utc)
HELD_EVERY = 100  # one expired recording in this many is under legal hold
FACTS = json.dumps({"purposes": ["order"], "notices": {"evidence-v1": "complete"},
                    "consent": "none", "outcome": "transaction"})


def build(root: Path, count: int, expired_fraction: float) -> tuple[Path, int, int]:
    """A ledger and a spool of ``count`` finalized recordings; returns the
    ledger path and how many are expired (and not held) and held."""
    spool = root / "spool"
    spool.mkdir()
    ledger_path = root / "ledger.sqlite3"
    Ledger.create(ledger_path, recordings_dir=spool).close()  # the real schema
    conn = sqlite3.connect(ledger_path)
    conn.execute("PRAGMA synchronous = OFF")
    expired_count = int(count * expired_fraction)
    calls, recordings = [], []
    due = held = 0
    for i in range(count):
        recording_id = uuid.uuid4().hex
        call_id = f"{1700000000 + i}.{i % 1000}"
        started = NOW - timedelta(days=1200, seconds=i)
        expired = i < expired_count
        deadline = (NOW - timedelta(days=1, seconds=i)) if expired else (NOW + timedelta(days=30))
        is_held = expired and i % HELD_EVERY == 0
        due += expired and not is_held
        held += is_held
        clear = spool / f"{recording_id}.wav"
        stored = spool / f"{recording_id}.wav.rgv"
        stored.write_bytes(b"RGVAULT1" + os.urandom(56))
        calls.append((call_id, "PJSIP/trunk-00000001", format_ts(started),
                      format_ts(started + timedelta(minutes=3)), FACTS))
        recordings.append((
            recording_id, call_id, "PJSIP/trunk-00000001", str(clear), '["order"]',
            '{"order":"evidence"}', format_ts(started), format_ts(started + timedelta(minutes=3)),
            format_ts(started + timedelta(minutes=3)), format_ts(deadline), 64, 3.0, "0" * 64,
            str(stored), "k-bench",
            "held for the benchmark" if is_held else None,
            format_ts(started) if is_held else None, "bench" if is_held else None))
    with conn:
        conn.executemany(
            """INSERT INTO calls (call_id, channel, started_at, ended_at, last_facts, status)
               VALUES (?, ?, ?, ?, ?, 'ended')""", calls)
        conn.executemany(
            """INSERT INTO recordings (recording_id, call_id, channel, path, purposes, bases,
                   started_at, stopped_at, finalized_at, deadline, size_bytes, duration_s,
                   sha256, stored_path, key_id, hold_reason, held_at, held_by, status)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'finalized')""",
            recordings)
    conn.close()
    return ledger_path, due, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--expired", type=float, default=0.9,
                        help="fraction of the recordings past their deadline (default 0.9)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to build it (default: a temporary directory; the disk "
                             "it is on decides the fsync cost)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recguard-bench-", dir=args.dir) as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        ledger_path, due, held = build(root, args.recordings, args.expired)
        print(f"built a ledger of {args.recordings} finalized recordings ({due} due, {held} held)"
              f" in {time.perf_counter() - began:.1f} s")
        with Ledger(ledger_path) as ledger, DecisionLog(root / "decisions.jsonl") as log:
            began = time.perf_counter()
            report = purge(ledger, log, NOW, "bench", recordings_dir=root / "spool")
            seconds = time.perf_counter() - began
            left = len(ledger.expired(NOW))
        deleted = len(report.deleted)
        files_left = sum(1 for _ in (root / "spool").iterdir())
        if deleted != due or left or not report.ok or files_left != args.recordings - due:
            sys.exit(f"purge was wrong: deleted {deleted} of {due}, {left} still due, "
                     f"{len(report.failures)} failures, {files_left} files left")
        print(f"purge: {deleted} recordings deleted in {seconds:.1f} s "
              f"({deleted / seconds:,.0f}/s); {len(report.held)} held ones kept")


if __name__ == "__main__":
    main()
