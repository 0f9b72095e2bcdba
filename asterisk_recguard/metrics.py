"""Prometheus metrics of ``recguard run``: counters fed by the decision log's
events as they are emitted, gauges read from the ledger and the connections
when Prometheus scrapes, and the HTTP endpoint that serves them.

The decision log is the one place every decision and action is already
reported, so :class:`CountingLog` counts there and the guard's hot path gains
nothing but a few counter increments. Labels hold only bounded sets: decision,
trigger, the policy's purpose ids, reason and action codes; never a number,
channel, call or recording id (anything else becomes ``other``).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import __version__
from .decisionlog import EventLog, flush

log = logging.getLogger(__name__)

# A code is lower-case words joined by "_" or "-": no digits, so no number or
# id ever becomes a label value, whatever a field holds.
_CODE = re.compile(r"[a-z][a-z_-]{0,47}")
OTHER = "other"
DECISIONS = frozenset({"record", "skip"})
TRIGGERS = frozenset({"gate", "change", "dtmf", "hangup", "reconcile", "reload"})
LINKS = ("ari", "ami")
# What the guard does with a recording started behind its back (guard/foreign.py).
UNAUTHORIZED_ACTIONS = ("logged_only", "stopped_file_kept", "stopped_deleted")

# The gate holds a call at most RECGUARD_GATE_TIMEOUT (2 s by default, 30 at most).
GATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
# A commit is an fsync: well under a millisecond on a good disk, seconds on a stalled one.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


def code(value: Any, allowed: Collection[str] | None = None) -> str:
    """``value`` as a label: itself if it is a code (and in ``allowed``, when
    given), else ``other``."""
    if isinstance(value, str) and _CODE.fullmatch(value) and (allowed is None or value in allowed):
        return value
    return OTHER


class Metrics:
    """The guard's metrics, in a registry of their own (never the global one),
    so that several guards in one process, and tests, do not clash."""

    def __init__(self, purposes: Callable[[], Collection[str]] = frozenset) -> None:
        self.registry = CollectorRegistry()
        self.purposes = purposes  # the policy's purpose ids, read at each decision (a reload changes them)
        self._connected: set[str] = set()
        self._lock = threading.Lock()

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, doc, labels, registry=self.registry)

        self.events = counter("recguard_events", "Decision-log events emitted, by event.", ("event",))
        self.decisions = counter("recguard_decisions", "Decisions, by decision (record, skip) and trigger.",
                                 ("decision", "trigger"))
        self.rejections = counter("recguard_rejections",
                                  "Declared purposes not recorded, by purpose and reason.", ("purpose", "reason"))
        self.gates_shed = counter("recguard_gates_shed",
                                  "Gates whose time ran out (the call went on unrecorded, as unavailable).")
        self.gates_failed = counter("recguard_gates_failed",
                                    "Gate failures (the call went on unrecorded or undecided).")
        self.started = counter("recguard_recordings_started", "Recordings started.")
        self.finalized = counter("recguard_recordings_finalized", "Recordings finalized and kept.")
        self.deleted = counter("recguard_recordings_deleted", "Recordings deleted, by reason.", ("reason",))
        self.refused = counter("recguard_deletions_refused",
                               "Deletions refused (a ledger row naming a file outside the recordings directory).")
        self.unauthorized = counter("recguard_unauthorized_recordings",
                                    "Recordings started behind the guard's back, by what was done.", ("action",))
        self.purges = counter("recguard_purges", "Purge runs, by result (ok, failed).", ("result",))
        self.log_lost = counter("recguard_decision_log_write_failures",
                                "Decision-log lines that could not be written (the ledger still holds them).")
        self.reconnects = counter("recguard_reconnects", "Connections made again after the first, by link.",
                                  ("link",))
        self.gate_seconds = Histogram("recguard_gate_duration_seconds",
                                      "Time from a gate's StasisStart to the call's continue.",
                                      buckets=GATE_BUCKETS, registry=self.registry)
        self.commit_seconds = Histogram("recguard_ledger_commit_duration_seconds",
                                        "Time of each ledger COMMIT (one fsync shared by a group of writes).",
                                        buckets=COMMIT_BUCKETS, registry=self.registry)
        # Every known label set starts at 0: a series that appears at 1 is no
        # increase to Prometheus, so a first event (often the only one, for an
        # unauthorized recording) would escape rate(), increase() and the alerts.
        for link in LINKS:
            self.reconnects.labels(link)
        self.purges.labels("ok")
        self.purges.labels("failed")
        for decision in sorted(DECISIONS):
            for trigger in sorted(TRIGGERS):
                self.decisions.labels(decision, trigger)
        for action in UNAUTHORIZED_ACTIONS:
            self.unauthorized.labels(action)

    def observe(self, event: str, fields: Mapping[str, Any]) -> None:
        """Count one decision-log event; never raises (a metric must not stop a call)."""
        try:
            self._count(event, fields)
        except Exception:
            log.exception("metrics: event %r not counted", event)

    def _count(self, event: str, fields: Mapping[str, Any]) -> None:
        self.events.labels(code(event)).inc()
        if event == "decision":
            self.decisions.labels(code(fields.get("decision"), DECISIONS), code(fields.get("trigger"), TRIGGERS)).inc()
            purposes = self.purposes()
            for item in fields.get("reasons") or ():
                if isinstance(item, Mapping):
                    self.rejections.labels(code(item.get("purpose"), purposes), code(item.get("reason"))).inc()
        elif event == "gate_shed":
            self.gates_shed.inc()
        elif event == "gate_failed":
            self.gates_failed.inc()
        elif event == "recording_started":
            self.started.inc()
        elif event == "recording_finalized":
            self.finalized.inc()
        elif event == "recording_deleted":
            self.deleted.labels(code(fields.get("reason"))).inc()
        elif event == "deletion_refused":
            self.refused.inc()
        elif event == "unauthorized_recording":
            self.unauthorized.labels(code(fields.get("action"))).inc()
        elif event == "purge" and not fields.get("dry_run"):
            self.purges.labels("failed" if fields.get("level") == "error" else "ok").inc()
        elif event in ("ari_connected", "ami_connected"):
            link = event[:3]
            with self._lock:
                if link in self._connected:
                    self.reconnects.labels(link).inc()
                self._connected.add(link)


class CountingLog:
    """An EventLog that counts each event in :class:`Metrics`, then writes it."""

    def __init__(self, inner: EventLog, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def emit(self, event: str, *, level: str | None = None, **fields: Any) -> None:
        self.metrics.observe(event, {**fields, "level": level} if level else fields)
        self.inner.emit(event, level=level, **fields)

    def flush(self, timeout: float = 30.0) -> None:
        flush(self.inner, timeout)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


@dataclass
class Readings:
    """Where the scrape-time gauges come from; each is called at every scrape."""

    recording_counts: Callable[[datetime], Mapping[str, int]]  # Ledger.recording_counts
    last_purge: Callable[[], float | None]  # epoch seconds of the last purge without failures
    connected: Mapping[str, Callable[[], bool]]  # link -> is it up
    tracked_calls: Callable[[], int]
    policy: Callable[[], str]
    clock: Callable[[], float] = time.time


_COUNTS = (
    ("in_progress", "recguard_recordings_in_progress", "Recordings being recorded or stopped, not yet finalized."),
    ("overdue", "recguard_recordings_overdue",
     "Recordings past their deadline, not held and not yet deleted: must stay 0 (a retention breach)."),
    ("overdue_seconds", "recguard_recordings_overdue_seconds",
     "How long the longest overdue recording has been past its deadline (0: none)."),
    ("held_past_deadline", "recguard_recordings_held_past_deadline",
     "Recordings past their deadline kept by a legal hold."),
    ("deleting", "recguard_recordings_deleting", "Deletions begun and not yet confirmed."),
)


class ScrapeCollector(Collector):
    """Gauges read when Prometheus scrapes: a few cheap ledger counts, the
    age of the last purge, the connections, the calls being tracked."""

    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        r = self.readings
        now = r.clock()
        counts = r.recording_counts(datetime.fromtimestamp(now, timezone.utc))
        for key, name, doc in _COUNTS:
            yield GaugeMetricFamily(name, doc, value=counts[key])
        last = r.last_purge()
        yield GaugeMetricFamily("recguard_purge_last_success_timestamp_seconds",
                                "When the last purge without failures ended (0: never).", value=last or 0)
        yield GaugeMetricFamily("recguard_purge_age_seconds",
                                "Seconds since the last purge without failures (since the epoch: never).",
                                value=now - (last or 0))
        up = GaugeMetricFamily("recguard_connection_up", "1 while the link to Asterisk is up, else 0.",
                               labels=["link"])
        for link, connected in r.connected.items():
            up.add_metric([link], 1 if connected() else 0)
        yield up
        yield GaugeMetricFamily("recguard_calls_tracked", "Calls the guard is following now.",
                                value=r.tracked_calls())
        info = GaugeMetricFamily("recguard_build_info", "Always 1: the running version and policy.",
                                 labels=["version", "policy"])
        info.add_metric([__version__, r.policy()], 1)
        yield info


def serve(registry: CollectorRegistry, address: str, port: int) -> WSGIServer:
    """Serve ``registry`` at http://address:port/metrics on a thread of its
    own; OSError if the port cannot be bound."""
    server, _thread = start_http_server(port, addr=address, registry=registry)
    return server
