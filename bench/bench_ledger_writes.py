"""Ledger write speed: decisions per second written by several threads at
once, each decision its own transaction (as the guard's lanes write them),
group-committed at synchronous=FULL, every row hash-chained and sealed.

    .venv/bin/python bench/bench_ledger_writes.py [--threads 8] [--decisions 4000] [--dir DIR]
        [--postgresql | --ledger postgresql://...]

Run it on the disk the ledger lives on: the figure is bounded by its fsyncs.
With --postgresql the same run is repeated on a PostgreSQL ledger in a
throwaway cluster on this machine (Debian's postgresql package, fsync on);
with --ledger, on the empty PostgreSQL database that URL names.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

# Runs from a source checkout too, without an installed package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from asterisk_recguard.devtools.pgcluster import Cluster, server_bin  # noqa: E402
from asterisk_recguard.ledger import Ledger  # noqa: E402

SECRET = "bench-secret-for-the-ledger-seal-0123456789"
FACTS = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
         "consent": "none", "outcome": "transaction"}
REJECTED = [{"purpose": "quality", "reason": "no consent"}]


def write(ledger: Ledger, thread: int, count: int, start: threading.Barrier, waits: list[float]) -> None:
    call_id = f"{1700000000 + thread}.{thread}"
    ledger.upsert_call_start(call_id, channel=f"PJSIP/trunk-{thread:08d}", facts=FACTS)
    start.wait()
    for i in range(count):
        began = time.perf_counter()
        ledger.record_decision(call_id, trigger="change", facts=FACTS, record=True,
                               purposes=["order"], rejected=REJECTED, policy="bench-1",
                               action="keep" if i else "start", retention_days=1095)
        waits.append(time.perf_counter() - began)


def run(where: Path | str, threads: int, total: int) -> tuple[float, int, list[float]]:
    """Seconds taken to write ``total`` decisions from ``threads`` threads
    into a new ledger at ``where`` (a file, or an empty database's URL), and
    each write's wait for its commit."""
    waits: list[float] = []
    per_thread = total // threads
    with Ledger.create(where, recordings_dir=None, seal_secret=SECRET) as ledger:
        start = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=write, args=(ledger, t, per_thread, start, waits))
                   for t in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
        breaks = ledger.verify_chains().breaks
        if breaks:
            raise SystemExit(f"the chain is broken after the run: {breaks[0].message}")
    return elapsed, per_thread * threads, waits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--decisions", type=int, default=4000)
    parser.add_argument("--dir", type=Path, help="where to put the ledger (default: a temp dir)")
    engine = parser.add_mutually_exclusive_group()
    engine.add_argument("--postgresql", action="store_true",
                        help="also on PostgreSQL, in a throwaway cluster on this machine")
    engine.add_argument("--ledger", metavar="URL",
                        help="also on PostgreSQL, in the empty database this URL names")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        report("SQLite", *run(Path(tmp) / "ledger.sqlite3", args.threads, args.decisions),
               args.threads)
    if args.ledger:
        report("PostgreSQL", *run(args.ledger, args.threads, args.decisions), args.threads)
    elif args.postgresql:
        bin_dir = server_bin()
        if bin_dir is None:
            raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
        cluster = Cluster(bin_dir).start()
        try:
            with psycopg.connect(cluster.url(), autocommit=True) as conn:
                conn.execute("CREATE DATABASE bench")
            report("PostgreSQL", *run(cluster.url("bench"), args.threads, args.decisions),
                   args.threads)
        finally:
            cluster.stop()


def report(engine: str, elapsed: float, written: int, waits: list[float], threads: int) -> None:
    waits.sort()
    p50, p99 = (waits[int(len(waits) * q)] * 1000 for q in (0.5, 0.99))
    print(f"{engine}: {written} decisions from {threads} threads in {elapsed:.2f} s: "
          f"{written / elapsed:,.0f} decisions/s (hash-chained and sealed); a write's wait for its "
          f"commit: median {p50:.1f} ms, p99 {p99:.1f} ms, max {waits[-1] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
