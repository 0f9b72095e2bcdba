"""``recguard logs``: show the decision log, human-readable or as raw JSON
lines, optionally following it like ``tail -F``.

Written by hand rather than piping to ``tail``: the log rotates
(logrotate moves it), lines are filtered by call and event, and a damaged line
must be shown, not crash the reader. Only a regular file is read (``safefile``),
and a line longer than MAX_LINE_BYTES is named, not read into memory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..display import LINE_LIMIT, printable
from ..errors import UserError
from ..safefile import open_regular
from ..settings import DEFAULT_DECISION_LOG, SettingsError, load_settings, raw_value
from ._common import ENV_FILE_DEFAULT, add_command, at_least

EVENT_WIDTH = 19  # the longest common event, "recording_finalized"
FOLLOW_LINES = 10
POLL_SECONDS = 0.25
# Far longer than any line the guard writes; a longer one is damage.
MAX_LINE_BYTES = 1 << 20

# One paragraph, re-flowed to the terminal's width.
DESCRIPTION = f"""\
Show the decision log: one line per decision or action of the guard. The log
is found with --log, else RECGUARD_DECISION_LOG (from the environment or the
env file), else {DEFAULT_DECISION_LOG}."""

# Fields the human-readable form shows in fixed places or leaves out.
_SHOWN = frozenset({
    "ts", "level", "event", "call_id", "decision", "purposes_recorded", "purposes",
    "reasons", "recording_id", "deadline", "trigger", "caller_hash", "linkedid",
})
# A decision line is kept short; the facts are in --json and the ledger.
_DECISION_HIDDEN = frozenset({
    "channel", "purposes_declared", "notices", "consent", "outcome", "action", "policy",
    "retention_days", "facts",
})


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "logs", "show or follow the decision log", DESCRIPTION,
                         func=run, wrap=True)
    parser.add_argument("-f", "--follow", action="store_true",
                        help="keep printing new lines as they are written (survives log rotation)")
    parser.add_argument("--call", metavar="ID", help="only lines of this call (its call_id)")
    parser.add_argument("--event", metavar="NAME", action="append",
                        help="only this event, e.g. decision or recording_deleted (repeatable)")
    parser.add_argument("--json", action="store_true",
                        help="print the JSON lines unchanged (for jq), with all their fields")
    parser.add_argument("-n", "--lines", type=at_least(0), metavar="N",
                        help=("start with the last N matching lines "
                              f"(default: all; {FOLLOW_LINES} with -f)"))
    parser.add_argument("--log", metavar="PATH", help="the decision log file to read")
    parser.add_argument("--env-file", metavar="PATH",
                        help=f"env file to read RECGUARD_DECISION_LOG from ({ENV_FILE_DEFAULT})")


# --- which file ------------------------------------------------------------------


def decision_log_path(log: str | None, env_file: str | None) -> Path:
    """--log, else the configured RECGUARD_DECISION_LOG, else the default.

    Reading the log must not need the whole configuration (passwords), so a
    configuration that does not validate still yields its decision-log path.
    """
    if log:
        return Path(log).expanduser()
    try:
        return load_settings(env_file, need_asterisk=False).decision_log
    except SettingsError:
        configured = raw_value("RECGUARD_DECISION_LOG", env_file)
        return Path(configured).expanduser() if configured else DEFAULT_DECISION_LOG


def _open_log(path: Path, *, missing_ok: bool = False) -> IO[bytes]:
    """The log opened for reading; with ``missing_ok`` a missing file raises
    FileNotFoundError (between a rotation and the next line) instead of the
    user's error."""
    missing = (None if missing_ok else
               f"no decisions logged yet at {path} (the guard creates it with its first "
               "decision); point to another log with --log PATH or RECGUARD_DECISION_LOG")
    return os.fdopen(open_regular(path, "decision log", missing=missing), "rb")


# --- one line -----------------------------------------------------------------


def parse_line(raw: str) -> dict[str, Any] | None:
    """The JSON object of a line, or None when the line is malformed."""
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _short_ts(ts: Any) -> str:
    # "2026-11-28T10:12:03.123456Z" -> "2026-11-28 10:12:03Z"
    if isinstance(ts, str) and len(ts) >= 19 and ts[10] == "T":
        return f"{ts[:10]} {ts[11:19]}Z"
    return str(ts) if ts is not None else "?"


def _names(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ",".join(str(v) for v in value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def format_record(record: dict[str, Any]) -> str:
    """One decision-log object as one human-readable line, every value from
    the log escaped (a value may hold a line break or an ESC), e.g.
    ``2026-11-28 10:12:03Z  decision            call 1700000000.12  record order,quality
    (general_info: purpose_forbidden)  rec 3f2a...  until 2029-11-27``."""
    event = str(record.get("event", "?"))
    parts = [_short_ts(record.get("ts")), event.ljust(EVENT_WIDTH)]
    level = record.get("level")
    if level in ("warning", "error", "critical"):
        parts.append(str(level).upper())
    if record.get("call_id") is not None:
        parts.append(f"call {record['call_id']}")

    recorded = record.get("purposes_recorded")
    if event == "decision":
        decision = record.get("decision")
        recorded_list = recorded if isinstance(recorded, list) else []
        if decision == "record":
            parts.append(f"record {_names(recorded_list)}")
        elif decision is not None:
            parts.append(str(decision))
        trigger = record.get("trigger")
        if trigger and trigger != "gate":
            parts.append(f"on {trigger}")
        reasons = record.get("reasons")
        if isinstance(reasons, list):
            # The reasons a declared purpose was not recorded for.
            rejected = [
                f"{r.get('purpose')}: {r.get('reason')}"
                for r in reasons
                if isinstance(r, dict) and r.get("purpose") not in recorded_list
            ]
            if rejected:
                parts.append("(" + ", ".join(rejected) + ")")
    else:
        purposes = recorded if recorded is not None else record.get("purposes")
        if purposes:
            parts.append(_names(purposes))

    if record.get("recording_id"):
        parts.append(f"rec {record['recording_id']}")
    deadline = record.get("deadline")
    if isinstance(deadline, str) and deadline:
        parts.append(f"until {deadline[:10]}")

    if event != "decision":
        hidden = _SHOWN | ({"channel"} if record.get("call_id") is not None else set())
        parts.extend(f"{k}={_value(v)}" for k, v in record.items()
                     if k not in hidden and v is not None)
    return printable("  ".join(parts))


# --- filtering and output --------------------------------------------------------------


class _Printer:
    """Filters lines and prints them; malformed lines become ``? <raw>``."""

    def __init__(self, call: str | None, events: Iterable[str] | None, as_json: bool,
                 out: Callable[[str], None], err: Callable[[str], None]) -> None:
        self.call = call
        self.events = frozenset(events) if events else None
        self.as_json = as_json
        self.out, self.err = out, err

    def render(self, raw: str) -> tuple[Callable[[str], None], str] | None:
        """Where and what to print for one raw line, or None to skip it."""
        if not raw.strip():
            return None
        record = parse_line(raw)
        if record is None:
            # In --json mode stdout stays valid JSON for jq; the damage still shows.
            return (self.err if self.as_json else self.out), printable(f"? {raw}", LINE_LIMIT)
        if self.call is not None and str(record.get("call_id")) != self.call:
            return None
        if self.events is not None and record.get("event") not in self.events:
            return None
        return self.out, (raw if self.as_json else format_record(record))

    def __call__(self, raw: str) -> None:
        rendered = self.render(raw)
        if rendered is not None:
            write, text = rendered
            write(text)


def _decode(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8", errors="replace")


class _Lines:
    """The lines of an open log, counted from the start of the file. A line
    longer than MAX_LINE_BYTES is replaced by a note naming it, and the rest
    of it is skipped piece by piece, never held whole."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.number = 0
        self._skipping = False

    def restart(self) -> None:
        """The file was truncated: read it again from the start."""
        self.handle.seek(0)
        self.number, self._skipping = 0, False

    def next(self, *, complete_only: bool = False) -> str | None:
        """The next line, or None at the end. With ``complete_only`` a last
        line without its newline (the writer is mid-line) is left unread, to
        be read whole later."""
        while True:
            position = self.handle.tell()
            line = self.handle.readline(MAX_LINE_BYTES + 1)
            if not line:
                return None
            ended = line.endswith(b"\n")
            if self._skipping:
                self._skipping = not ended
                continue
            if len(line) > MAX_LINE_BYTES and not ended:
                self.number += 1
                self._skipping = True
                return f"line {self.number} is longer than {MAX_LINE_BYTES} bytes; not shown"
            if complete_only and not ended:
                self.handle.seek(position)
                return None
            self.number += 1
            return _decode(line)


def read_lines(lines: _Lines, *, complete_only: bool = False) -> Iterator[str]:
    """The lines from the reader's position on (see :meth:`_Lines.next`)."""
    while (line := lines.next(complete_only=complete_only)) is not None:
        yield line


def follow(path: Path, lines: _Lines, emit: Callable[[str], None], *,
           poll: float = POLL_SECONDS, stop: Callable[[], bool] = lambda: False) -> None:
    """Print what is appended to ``path`` from the reader's position on, like
    ``tail -F``: a moved or replaced file (rotation) is drained and reopened,
    a truncated one is read again from the start. Returns when ``stop()``."""
    st = os.fstat(lines.handle.fileno())
    identity = (st.st_dev, st.st_ino)
    try:
        while True:
            line = lines.next(complete_only=True)
            if line is not None:
                emit(line)
                continue
            if stop():
                return
            time.sleep(poll)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue  # rotated away, the new file not there yet
            if (st.st_dev, st.st_ino) != identity:
                try:
                    fresh = _Lines(_open_log(path, missing_ok=True))
                except FileNotFoundError:
                    continue  # gone again; the old file stays open until the new one is there
                for line in read_lines(lines):  # the old file's last lines, even a partial one
                    emit(line)
                lines.handle.close()
                lines = fresh
                st = os.fstat(lines.handle.fileno())
                identity = (st.st_dev, st.st_ino)
            elif st.st_size < lines.handle.tell():
                lines.restart()
    finally:
        lines.handle.close()


def show(path: Path, *, call: str | None = None, events: Iterable[str] | None = None,
         as_json: bool = False, lines: int | None = None, follow_on: bool = False,
         out: Callable[[str], None] | None = None, err: Callable[[str], None] | None = None,
         stop: Callable[[], bool] = lambda: False, poll: float = POLL_SECONDS) -> None:
    """Print the matching lines of the log at ``path`` (the last ``lines`` of
    them if given), then follow it when ``follow_on``."""
    out = out or (lambda text: print(text, flush=True))
    err = err or (lambda text: print(text, file=sys.stderr, flush=True))
    printer = _Printer(call, events, as_json, out, err)
    lines_in = _Lines(_open_log(path))
    if lines is None and follow_on:
        lines = FOLLOW_LINES
    if lines is None:
        for raw in read_lines(lines_in, complete_only=follow_on):
            printer(raw)
    elif lines > 0:
        # The last `lines` matching lines, each with the damaged lines after
        # it; damaged lines do not count towards `lines`.
        leading: list[tuple[Callable[[str], None], str]] = []
        groups: deque[list[tuple[Callable[[str], None], str]]] = deque(maxlen=lines)
        matched = 0
        for raw in read_lines(lines_in, complete_only=follow_on):
            rendered = printer.render(raw)
            if rendered is None:
                continue
            if parse_line(raw) is None:
                (groups[-1] if groups else leading).append(rendered)
            else:
                groups.append([rendered])
                matched += 1
        for group in ([leading] if matched <= lines else []) + list(groups):
            for write, text in group:
                write(text)
    else:
        # -n 0: nothing of the past, only what comes (with -f).
        for _ in read_lines(lines_in, complete_only=follow_on):
            pass
    if follow_on:
        follow(path, lines_in, printer, poll=poll, stop=stop)
    else:
        lines_in.handle.close()


def run(args: argparse.Namespace) -> int:
    path = decision_log_path(args.log, args.env_file)
    try:
        show(path, call=args.call, events=args.event, as_json=args.json, lines=args.lines,
             follow_on=args.follow)
    except BrokenPipeError:
        # `recguard logs | head`: the reader left; leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0
