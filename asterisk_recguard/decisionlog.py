"""The decision log: one JSON object per line for every decision and every
action of the guard, in a file an operator tails (``recguard logs -f``) or
feeds to ``jq``.

It is built on structlog, but as a dedicated logger made with
``structlog.wrap_logger`` and its own processors: nothing is configured
globally, so the daemon's other logging (and any library's) is unaffected, and
nothing another module configures can change what reaches this file.

Guarantees, each enforced by a processor or the writer:

* One event is exactly one line: CR and LF are removed from every string.
* A caller number never reaches the file: any field named like one
  (``caller``, ``callerid``, ``caller_id_number``, ``number``, ``CALLERID*``,
  ``connected``, ``*_number``; see ``_redact``), at any depth, is replaced by
  ``"[redacted]"``. Log ``caller_hash`` instead.
* Whole lines are appended under a lock (the guard logs from several
  threads), so they never interleave; the file is created mode 0600 (parent
  directory 0700 when created) and reopened within a second when logrotate
  moves it (:mod:`.logfile`).
* A write error (disk full) raises ``OSError`` to the caller: the ledger is
  the primary record, and the guard decides what a lost line means. The
  daemon's log (``background``) is written by a thread of its own in
  batches, and reports a lost line through :class:`TolerantLog` instead.

Line schema (absent or ``null`` when not applicable)::

    ts                 "2026-11-28T10:12:03.123456Z"  UTC, always
    level              "info" | "warning" | "error"
    event              one of EVENTS (below)
    call_id            Asterisk uniqueid of the guarded (caller's) channel
    channel            channel name, e.g. "PJSIP/trunk-00000012"
    linkedid           Asterisk linkedid of the call
    trigger            what caused a decision: gate, change, dtmf, hangup,
                       reconcile, reload
    purposes_declared  ["order", "quality"]  purposes the dialplan/agent declared
    notices            {"evidence-v1": "complete"}  notice id -> complete | interrupted
    consent            "none" | "given" | "refused" | "withdrawn"
    outcome            "unknown" | "transaction" | "no_transaction"
    decision           "record" | "skip"
    action             "start" | "keep" | "stop" | "none" | "delete"
    purposes_recorded  ["order"]  the purposes the recording is kept for
    reasons            [{"purpose": "general_info", "reason": "purpose_forbidden"}, ...]
                       why each declared purpose not recorded was rejected
    recording_id       uuid4 hex of the recording
    deadline           "2029-11-27T10:12:03.000000Z"  deletion deadline
    retention_days     1095
    policy             policy version string
    caller_hash        keyed hash of the caller number (never the number)

  Other events add their own fields: ``file``, ``size_bytes``,
  ``duration_s``, ``sha256`` (recording_finalized); ``reason`` (deletions,
  hold, export, erase, access); ``started_by`` and ``enforced``
  (unauthorized_recording); ``error`` (failures, disconnects,
  config_warning); ``actor`` (hold, release, export, erase, access, purge,
  orphan_deleted); ``deleted``, ``held`` (purge); ``age_s`` (orphan_deleted);
  ``request``, ``recordings`` (access); ``url``, ``host`` (connects);
  ``app`` (started); ``next_step`` (finalize_failed: delete or reconcile);
  ``paused_at``, ``resumed_at`` (recording_paused, recording_resumed: a pause
  for card details, ``trigger`` agent_key, crm, hangup or stopped).

Events (EVENTS), by who writes them::

    guard      decision, recording_started, recording_stopped,
               recording_finalized, recording_deleted, unauthorized_recording,
               call_resumed, gate_failed, gate_shed, change_failed, setvar_failed,
               stop_failed, finalize_failed, finalize_incomplete,
               reconcile_failed, event_failed, task_failed,
               stasis_unexpected, clear_copy_removed, app_replaced,
               recording_held_kept,
               recording_paused, recording_resumed, pause_failed, resume_failed,
               ari_connected, ari_disconnected, ari_filter_failed
    daemon     started, stopped, config_warning, ami_connected,
               ami_disconnected, ami_filter_failed, ari_unreachable,
               ami_unreachable, policy_reloaded, policy_reload_failed,
               guard_lock_lost
    retention  purge, purge_failed, recording_deleted, deletion_refused,
               orphan_deleted, hold, release
    subjects   access, export, export_failed, erase
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, MutableMapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import structlog

from ._redact import is_caller_number_key, mask_numbers
from .logfile import LineFile

REDACTED = "[redacted]"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

EVENTS = frozenset({
    # calls and recordings (guard)
    "decision",
    "recording_started",
    "recording_stopped",
    "recording_paused",
    "recording_resumed",
    "pause_failed",
    "resume_failed",
    "recording_deleted",
    "deletion_refused",
    "recording_finalized",
    "unauthorized_recording",
    "call_resumed",
    "gate_failed",
    "gate_shed",
    "change_failed",
    "setvar_failed",
    "stop_failed",
    "finalize_failed",
    "finalize_incomplete",
    "reconcile_failed",
    "event_failed",
    "task_failed",
    "stasis_unexpected",
    "clear_copy_removed",
    "app_replaced",
    "recording_held_kept",
    # connections and lifecycle (guard, daemon)
    "started",
    "stopped",
    "config_warning",
    "ari_connected",
    "ari_disconnected",
    "ari_filter_failed",
    "ami_connected",
    "ami_disconnected",
    "ami_filter_failed",
    "ari_unreachable",
    "ami_unreachable",
    "policy_reloaded",
    "policy_reload_failed",
    "guard_lock_lost",
    # retention
    "purge",
    "purge_failed",
    "orphan_deleted",
    "hold",
    "release",
    # data-subject requests
    "access",
    "export",
    "export_failed",
    "erase",
})

# The level an event gets when emit() is not told otherwise; any other
# "*_failed" event is an error, the rest are info.
EVENT_LEVELS: dict[str, str] = {
    "gate_failed": "error",
    "policy_reload_failed": "error",
    "unauthorized_recording": "warning",
    "ari_disconnected": "warning",
    "ami_disconnected": "warning",
    "ari_unreachable": "warning",
    "ami_unreachable": "warning",
    "finalize_incomplete": "warning",
}
LEVELS = ("debug", "info", "warning", "error", "critical")

# Keys written first, in this order, so that lines read well raw.
_LEADING = ("ts", "level", "event", "call_id", "channel")


# --- processors (plain callables over the event dict) ---------------------------


def _flat(text: str) -> str:
    if "\r" in text or "\n" in text:
        return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    return text


def _plain_scalar(value: Any) -> Any:
    """A value that is not JSON-native as the text that stands for it."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.isoformat()
        return value.astimezone(timezone.utc).strftime(TS_FORMAT)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


_SCALARS = (int, float, bool, type(None))


def _clean(value: Any) -> Any:
    """One walk over the event: JSON-native types only (datetimes to UTC text,
    exceptions and paths to strings, sets to sorted lists), every field named
    like a caller number replaced at any depth, CR and LF removed from every
    string, keys too. One walk, not one per rule, and scalars handled in
    place: every guard action logs, and this was most of a line's cost."""
    kind = type(value)
    if kind is str:
        return _flat(value)
    if kind is dict:
        cleaned = {}
        for name, item in value.items():
            name = name if isinstance(name, str) else str(name)
            key = _flat(name)
            if is_caller_number_key(name):  # cached by name
                cleaned[key] = REDACTED
                continue
            item_kind = type(item)
            if item_kind is str:
                cleaned[key] = _flat(item)
            elif item_kind in _SCALARS:
                cleaned[key] = item
            else:
                cleaned[key] = _clean(item)
        return cleaned
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [_flat(item) if type(item) is str else _clean(item) for item in value]
    if isinstance(value, str):
        return _flat(value)
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, dict):
        return _clean(dict(value))
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return [_clean(item) for item in sorted(value, key=str)]
    return _flat(_plain_scalar(value))


def clean_fields(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Make the event plain, one line, and free of caller numbers (see :func:`_clean`)."""
    return _clean(event_dict)  # type: ignore[no-any-return]


# Fields that name things after numbers (channels, foreign files, dialplan
# locations, error texts quoting them); their digits runs are masked.
_NAME_FIELDS = frozenset({"channel", "file", "started_by", "error"})


def mask_numbers_in_names(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in _NAME_FIELDS & event_dict.keys():
        if isinstance(event_dict[key], str):
            event_dict[key] = mask_numbers(event_dict[key])
    return event_dict


def _set_level(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["level"] = "warning" if method == "warn" else method
    return event_dict


def _order_keys(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ordered = {k: event_dict[k] for k in _LEADING if k in event_dict}
    ordered.update(event_dict)  # a key already there keeps its place
    return ordered


def _render(logger: Any, method: str, event_dict: MutableMapping[str, Any]) -> str:
    return json.dumps(event_dict, ensure_ascii=False, separators=(",", ":"))


# --- the public face -----------------------------------------------------------------


class DecisionLog:
    """Writes the decision log at ``path``.

    ``emit(event, **fields)`` writes one line; ``bind(**fields)`` returns a
    DecisionLog sharing the same file whose lines all carry those fields
    (e.g. ``call_log = log.bind(call_id=..., channel=...)``). With
    ``background`` (the daemon's) a line is written by a thread of the log's
    own (:mod:`.logfile`): emit() does not wait for the disk, a write error
    is not raised to it, and :meth:`flush` waits for what is queued.
    """

    def __init__(self, path: str | Path, *, clock: Callable[[], datetime] | None = None,
                 background: bool = False) -> None:
        self.path = Path(path)
        self._writer = LineFile(self.path, background=background)
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._logger = structlog.wrap_logger(
            self._writer,
            processors=[
                self._add_timestamp,
                _set_level,
                clean_fields,
                mask_numbers_in_names,  # after the line breaks are gone: a number split by one is one number
                _order_keys,
                _render,
            ],
            wrapper_class=structlog.BoundLogger,
            context_class=dict,
            cache_logger_on_first_use=False,
        )

    @classmethod
    def _bound(cls, parent: DecisionLog, logger: Any) -> DecisionLog:
        child = cls.__new__(cls)
        child.path, child._writer, child._clock, child._logger = (
            parent.path, parent._writer, parent._clock, logger)
        return child

    def _add_timestamp(self, logger: Any, method: str,
                       event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict["ts"] = self._clock().astimezone(timezone.utc).strftime(TS_FORMAT)
        return event_dict

    def bind(self, **fields: Any) -> DecisionLog:
        return DecisionLog._bound(self, self._logger.bind(**fields))

    def emit(self, event: str, *, level: str | None = None, **fields: Any) -> None:
        """Write one line for ``event`` (see EVENTS) with ``fields``.
        ``level`` defaults to EVENT_LEVELS, "error" for "*_failed", else
        "info". ``ts``, ``level`` and ``event`` are set here and cannot be
        passed as fields."""
        if not isinstance(event, str) or not event:
            raise ValueError("event must be a non-empty string")
        level = level or EVENT_LEVELS.get(
            event, "error" if event.endswith("_failed") else "info")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
        getattr(self._logger, level)(event, **fields)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every line emitted so far is in the file (or reported lost)."""
        return self._writer.flush(timeout)

    def close(self) -> None:
        """Write what is queued and close the file (shared with every bound copy)."""
        self._writer.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class EventLog(Protocol):
    """What writes decision-log lines: a DecisionLog, or a TolerantLog around one."""

    def emit(self, event: str, *, level: str | None = None, **fields: Any) -> None: ...


def flush(log: object, timeout: float = 30.0) -> None:
    """Wait for the lines ``log`` has queued, if it queues any (a background DecisionLog)."""
    flushing = getattr(log, "flush", None)
    if flushing is not None:
        flushing(timeout)


class TolerantLog:
    """The decision log as the daemon's threads use it: a line that cannot be
    written (disk full, a vanished directory) is reported through Python
    logging and lost, but never stops call handling. The ledger, written
    first, remains the record of every decision."""

    def __init__(self, inner: DecisionLog, on_lost: Callable[[str], None] | None = None) -> None:
        self.inner = inner
        self.path = inner.path
        self.on_lost = on_lost  # told the event of each lost line (the daemon's metrics count them)
        inner._writer.on_lost = self._lost_in_background

    def _lost_in_background(self, lines: list[str], exc: BaseException) -> None:
        """Lines a background write lost: reported as emit() reports its own."""
        for line in lines:
            try:
                event = str(json.loads(line).get("event", "?"))
            except ValueError:
                event = "?"
            logging.getLogger(__name__).error("decision log line %r could not be written: %s", event, exc)
            if self.on_lost is not None:
                self.on_lost(event)

    def flush(self, timeout: float = 30.0) -> bool:
        return self.inner.flush(timeout)

    def emit(self, event: str, *, level: str | None = None, **fields: Any) -> None:
        try:
            self.inner.emit(event, level=level, **fields)
        except Exception:
            logging.getLogger(__name__).exception("decision log line %r could not be written", event)
            if self.on_lost is not None:
                self.on_lost(event)

    def close(self) -> None:
        self.inner.close()
