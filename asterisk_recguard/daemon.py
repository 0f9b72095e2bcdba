"""``recguard run``: wires settings, policy, ledger, decision log, the ARI and
AMI clients and the guard together, and handles the process's signals.

SIGTERM/SIGINT: the ARI websocket is closed first, so the app is unregistered
and new calls pass the gate unrecorded at once (fail closed); then in-flight
finalizations finish and the process exits 0. SIGHUP: the policy is reloaded;
an invalid new policy is logged and the old one stays.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from wsgiref.simple_server import WSGIServer

from . import guardlock
from .ami import AmiClient
from .ari import AriClient, EventStream
from .decisionlog import DecisionLog, TolerantLog
from .metrics import CountingLog, Metrics, Readings, ScrapeCollector, serve
from .display import printable
from .errors import UserError
from .guard import Guard, LiveCallControl
from .ledger import Ledger, utcnow
from .policy import load_policy
from .recorder import Recorder
from .retention import current_actor, last_purge, purge
from .settings import Settings, check_recordings_dir, load_settings
from .vault import Keyring

log = logging.getLogger(__name__)

# Exit status when another client took over the ARI app; the systemd unit
# does not restart on it (RestartPreventExitStatus), so two guards never fight.
EXIT_REPLACED = 3
# Lanes mostly wait on Asterisk's answers, so there are enough of them for a
# burst of gates to be in flight at once; workers mostly wait on files.
GUARD_LANES = 32
GUARD_WORKERS = 4


def ledger_for_run(settings: Settings) -> Ledger:
    """The ledger the guard writes: the existing one, or, on the very first
    start, a new one. A first start is one with no file at all at
    RECGUARD_LEDGER and no recording in the recordings directory; an empty
    file, or a spool that holds recordings, is a ledger lost, never a new one.
    A PostgreSQL ledger is made once, by `recguard ledger init`, never here:
    several servers' guards start against it."""
    if not isinstance(settings.ledger, Path) or os.path.lexists(settings.ledger):
        return Ledger(settings.ledger, seal_secret=settings.hash_secret,
                      server_id=settings.server_id)
    return Ledger.create(settings.ledger, recordings_dir=settings.recordings_dir,
                         seal_secret=settings.hash_secret, server_id=settings.server_id)


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.policy = load_policy(settings.policy)
        self.keyring = Keyring.load(settings.key_file) if settings.encryption else None
        check_recordings_dir(settings.recordings_dir)
        self.ledger = ledger_for_run(settings)
        try:
            # One guard per ledger file, or per server id on a shared database.
            self._lock = guardlock.take(settings.ledger, settings.server_id, self._lock_lost,
                                        self._database_back)
        except UserError:
            self.ledger.close()
            raise
        # Calls and recordings from before server ids are this server's, if it is alone.
        self._claimed = self.ledger.claim_unowned(settings.server_id)
        # Written from several threads; a lost line (disk full) must not stop any of them.
        # Every line is counted for the metrics as it is emitted.
        self.metrics = Metrics(lambda: self.policy.purposes.keys())
        # Written by a thread of its own, so no call waits for the disk to log.
        self.decision_log = CountingLog(TolerantLog(DecisionLog(settings.decision_log, background=True),
                                                    on_lost=lambda event: self.metrics.log_lost.inc()),
                                        self.metrics)
        self.ledger.observe_commits(self.metrics.commit_seconds.observe)
        self.ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app,
                             timeout=settings.gate_timeout, connections=GUARD_LANES + GUARD_WORKERS + 2)
        self.ami = AmiClient(
            settings.ami_host,
            settings.ami_port,
            settings.ami_user,
            settings.ami_secret,
            on_connect=self._ami_connected,
            on_disconnect=lambda reason: self.decision_log.emit("ami_disconnected", error=reason),
            on_event=lambda event: self.guard.on_ami_event(event),
        )
        # MixMonitor must answer well within the time the gate may hold a call.
        self.recorder = Recorder(self.ami, settings.recordings_dir,
                                 action_timeout=min(1.5, settings.gate_timeout / 2))
        self.guard = Guard(
            policy=self.policy,
            control=LiveCallControl(self.ari, self.ami, self.recorder.action_timeout),
            mixmonitors=self.recorder,
            ledger=self.ledger,
            decision_log=self.decision_log,
            hash_secret=settings.hash_secret,
            default_country_code=settings.default_country_code,
            keyring=self.keyring,
            enforce_unauthorized=settings.enforce_unauthorized,
            gate_timeout=settings.gate_timeout,
            monitor_dirs=[settings.monitor_dir],
            lanes=GUARD_LANES,
            workers=GUARD_WORKERS,
        )
        self.guard.on_replaced = self._replaced
        self.guard.gate.on_gate = self.metrics.gate_seconds.observe
        self.exit_status = 0
        self.events = EventStream(
            self.ari,
            on_event=self.guard.on_ari_event,
            on_connect=self.guard.on_ari_connected,
            on_disconnect=self.guard.on_ari_disconnected,
        )
        self._stop = threading.Event()
        self._own_purge: float | None = None  # when this guard's scheduled purge last succeeded
        self.metrics_server: WSGIServer | None = None
        self.metrics.registry.register(ScrapeCollector(Readings(
            recording_counts=self.ledger.recording_counts,
            last_purge=self._last_purge,
            connected={"ari": self.events.connected.is_set, "ami": self.ami.connected.is_set},
            tracked_calls=self.guard.tracked_calls,
            policy=lambda: self.policy.label,
        )))

    def _last_purge(self) -> float | None:
        """The last purge without failures: by anyone beside an SQLite ledger
        (its stamp file), else this guard's own scheduled one."""
        path = self.ledger.path
        stamped = last_purge(path) if path is not None else None
        return max((t for t in (stamped, self._own_purge) if t is not None), default=None)

    def _serve_metrics(self) -> None:
        """Not fatal: a guard without its metrics still guards; the warning says why."""
        if self.settings.metrics is None:
            return
        address, port = self.settings.metrics
        try:
            self.metrics_server = serve(self.metrics.registry, address, port)
        except OSError as exc:
            message = (f"metrics not served: cannot listen on {address}:{port} ({exc.strerror or exc}); "
                       "set RECGUARD_METRICS to a free ADDRESS:PORT, or off")
            print(f"recguard: warning: {printable(message)}", file=sys.stderr, flush=True)
            self.decision_log.emit("config_warning", level="warning", error=message)

    def _ami_connected(self) -> None:
        # Only MixMonitorStart matters on AMI (recordings started behind the
        # guard's back); the filter spares the daemon every other call event.
        try:
            self.ami.send("Filter", Operation="Add", Filter="Event: MixMonitorStart")
        except Exception as exc:
            self.decision_log.emit("ami_filter_failed", error=str(exc))
        self.decision_log.emit("ami_connected", host=f"{self.settings.ami_host}:{self.settings.ami_port}")
        if self.events.connected.is_set():
            self.guard.on_ami_connected()

    def start(self, connect_timeout: float = 10.0) -> None:
        for warning in self.settings.warnings:
            self.decision_log.emit("config_warning", level="warning", error=warning)
        self.decision_log.emit("started", policy=self.policy.label, app=self.settings.ari_app,
                               server=self.settings.server_id, claimed=self._claimed)
        self._serve_metrics()
        # AMI first: the gate needs it to record the first call.
        self.ami.start()
        if not self.ami.wait_connected(connect_timeout):
            self._unreachable("AMI", f"{self.settings.ami_host}:{self.settings.ami_port}", self.ami.last_error)
        self.events.start()
        if not self.events.wait_connected(connect_timeout):
            self._unreachable("ARI", self.settings.ari_url, "no websocket")
        if self.settings.purge_interval > 0:
            threading.Thread(target=self._purge_loop, name="purge", daemon=True).start()

    def _purge_loop(self) -> None:
        """Recordings past their deadline go on a schedule, not only when someone remembers."""
        actor = f"recguard run ({current_actor()})"
        while True:
            try:
                report = purge(self.ledger, self.decision_log, utcnow(), actor,
                               recordings_dir=self.settings.recordings_dir,
                               server_id=self.settings.server_id)
                if report.ok:
                    self._own_purge = time.time()
            except Exception as exc:  # a failed run is retried at the next interval
                log.exception("scheduled purge failed")
                self.decision_log.emit("purge_failed", error=f"{type(exc).__name__}: {exc}")
            if self._stop.wait(self.settings.purge_interval):
                return

    def _replaced(self) -> None:
        """Another client took the ARI app: two guards must not fight over it."""
        print(f"recguard: error: another client registered the ARI app {self.settings.ari_app!r}; "
              "stopping (run one recguard per app)", file=sys.stderr, flush=True)
        self.exit_status = EXIT_REPLACED
        self._stop.set()

    def _unreachable(self, what: str, where: str, error: str) -> None:
        """Not fatal: the guard keeps trying, and until then calls pass the gate unrecorded."""
        message = f"{what} at {where} not reachable yet ({error or 'no answer'}); retrying, calls go unrecorded meanwhile"
        print(f"recguard: warning: {printable(message)}", file=sys.stderr, flush=True)
        self.decision_log.emit(f"{what.lower()}_unreachable", level="warning", error=message)

    def _database_back(self) -> None:
        """The database was away and answers again: what could not be written
        meanwhile (the end of a call, a finalization) is reconciled now, on
        the reconcile thread, as after an AMI outage."""
        self.guard.on_ami_connected()

    def _lock_lost(self, message: str) -> None:
        """Another guard of this server id took the lock while the database was away."""
        print(f"recguard: error: {printable(message)}; stopping", file=sys.stderr, flush=True)
        self.decision_log.emit("guard_lock_lost", level="error", error=message)
        self.exit_status = EXIT_REPLACED
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self.events.stop()
        self.guard.shutdown()
        self.ami.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        self.decision_log.emit("stopped")
        self.ledger.close()
        self.decision_log.close()
        self._lock.close()

    def reload_policy(self) -> None:
        try:
            policy = load_policy(self.settings.policy)
        except UserError as exc:
            self.decision_log.emit("policy_reload_failed", level="error", error=str(exc),
                                   policy=self.policy.label)
            return
        self.policy = policy
        self.guard.set_policy(policy)
        self.decision_log.emit("policy_reloaded", policy=policy.label)

    def run_forever(self) -> int:
        def on_term(signum: int, frame: FrameType | None) -> None:
            self._stop.set()

        def on_hup(signum: int, frame: FrameType | None) -> None:
            threading.Thread(target=self.reload_policy, name="reload", daemon=True).start()

        signal.signal(signal.SIGTERM, on_term)
        signal.signal(signal.SIGINT, on_term)
        signal.signal(signal.SIGHUP, on_hup)
        self.start()
        served = ""
        if self.metrics_server is not None and self.settings.metrics is not None:
            address, port = self.settings.metrics
            served = f"; metrics on http://{f'[{address}]' if ':' in address else address}:{port}/metrics"
        print(
            printable(f"recguard: guarding app {self.settings.ari_app!r} on {self.settings.ari_url}; "
                      f"policy {self.policy.label}; decision log {self.settings.decision_log}{served}"),
            file=sys.stderr,
            flush=True,
        )
        while not self._stop.wait(1.0):
            pass
        self.stop()
        return self.exit_status


def run(env_file: Path | None) -> int:
    logging.basicConfig(level=logging.WARNING, format="recguard: %(levelname)s %(name)s: %(message)s")
    settings = load_settings(env_file)
    for warning in settings.warnings:
        print(f"recguard: warning: {printable(warning)}", file=sys.stderr)
    return Daemon(settings).run_forever()
