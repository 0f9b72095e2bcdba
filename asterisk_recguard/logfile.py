"""The decision log's file: each line appended whole with one ``write``,
the file created private and reopened when logrotate moves it; written by
the caller, or (``background``) by a thread of its own.

In the background, a line is queued and the caller goes on: the lines queued
meanwhile are written together, in order, by one ``write``. The guard's lanes
then make no system call per line (a write, under load, was a tenth of a
gate's cost). A line that cannot be written there is reported through
``on_lost`` and dropped, as the daemon's tolerant log does anyway; the ledger,
written first, stays the record of every decision. :meth:`LineFile.flush`
waits for what is queued, :meth:`LineFile.close` writes it before closing.

Written here rather than taken from logging's handlers: WatchedFileHandler
stats the file for every line, QueueHandler hands records (not rendered
lines) to a listener, and neither writes a batch with one ``write``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


class LineFile:
    """The structlog "logger" of the decision log: appends each rendered line to ``path``."""

    # How often the path is checked for rotation. Not on every line, as
    # logging.WatchedFileHandler does: the stat was a tenth of a gate's cost
    # under load. A line written meanwhile goes to the rotated file, not lost.
    reopen_check_s = 1.0

    def __init__(self, path: Path, *, background: bool = False,
                 on_lost: Callable[[list[str], BaseException], None] | None = None) -> None:
        self.path = path
        # Told the lines a background write lost, and why (the caller was not waiting to hear).
        self.on_lost = on_lost
        self._lock = threading.Lock()  # the descriptor's
        self._fd: int | None = None
        self._ino: tuple[int, int] | None = None
        self._checked = 0.0  # time.monotonic() of the last rotation check
        self._background = background
        self._queue: list[str] = []
        self._queued = self._written = 0  # lines, for flush()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- writing -------------------------------------------------------------------

    def write_line(self, line: str) -> None:
        if not self._background:
            self._write((line + "\n").encode("utf-8"))
            return
        with self._wake:
            if self._thread is None:
                if self._stopping:
                    raise ValueError(f"decision log {self.path} is closed")
                self._thread = threading.Thread(target=self._run, name="decision-log", daemon=True)
                self._thread.start()
            self._queue.append(line)
            self._queued += 1
            if len(self._queue) == 1:
                self._wake.notify_all()

    def _write(self, data: bytes) -> None:
        with self._lock:
            fd = self._current()
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                batch, self._queue = self._queue, []
                stopping = self._stopping
            if batch:
                try:
                    self._write("".join(line + "\n" for line in batch).encode("utf-8"))
                except Exception as exc:  # the thread must go on: later lines may be written
                    self._lost(batch, exc)
            with self._wake:
                self._written += len(batch)
                self._wake.notify_all()
                if stopping and not self._queue:
                    return

    def _lost(self, lines: list[str], exc: BaseException) -> None:
        if self.on_lost is not None:
            try:
                self.on_lost(lines, exc)
                return
            except Exception:
                log.exception("decision log: reporting lost lines failed")
        log.error("decision log %s: %d line(s) could not be written: %s", self.path, len(lines), exc)

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every line queued so far is written (or lost); False on timeout."""
        with self._wake:
            target = self._queued
            return self._wake.wait_for(lambda: self._written >= target, timeout)

    # -- the file ----------------------------------------------------------------------

    def _open(self) -> None:
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        st = os.fstat(fd)
        self._fd, self._ino, self._checked = fd, (st.st_dev, st.st_ino), time.monotonic()

    def _current(self) -> int:
        """The open descriptor, reopened if the file was moved or removed
        (logrotate), as logging.WatchedFileHandler does, within ``reopen_check_s``."""
        if self._fd is not None:
            now = time.monotonic()
            if now - self._checked < self.reopen_check_s:
                return self._fd
            self._checked = now
            try:
                st = os.stat(self.path)
                if (st.st_dev, st.st_ino) == self._ino:
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        self._open()
        assert self._fd is not None
        return self._fd

    def close(self) -> None:
        """Write what is queued, then close the file (a line after this reopens it,
        or, in the background, is refused)."""
        with self._wake:
            self._stopping = True
            thread = self._thread
            self._wake.notify_all()
        if thread is not None:
            thread.join()
            with self._wake:
                self._thread = None
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    # structlog calls the method named after the level with the rendered line.
    def debug(self, line: str) -> None:
        self.write_line(line)

    info = warning = warn = error = critical = msg = debug
