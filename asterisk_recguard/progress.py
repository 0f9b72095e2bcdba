"""A one-line progress report for long runs: count, bytes and time left,
redrawn in place on a terminal, and nothing at all on a pipe or in a file
(where a stream of carriage returns would only clutter a log).

A few lines of our own rather than tqdm: recguard runs as root on a PBX,
where each dependency is one more package to vet and keep patched, and one
line on stderr is all that is needed.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

_REDRAW_EVERY = 0.2  # seconds; more often only costs terminal writes


def _size(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class Progress:
    """``items`` of ``total`` done, ``nbytes`` of ``total_bytes`` read, on ``stream``."""

    def __init__(self, total: int, total_bytes: int, *, what: str = "verifying",
                 stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = sys.stderr if stream is None else stream
        self._shown = self._stream.isatty()
        self._total, self._total_bytes, self._what = total, total_bytes, what
        self._clock = clock
        self._started = clock()
        self._drawn_at: float | None = None
        self.items = 0
        self.nbytes = 0

    def advance(self, *, items: int = 0, nbytes: int = 0) -> None:
        self.items += items
        self.nbytes += nbytes
        if not self._shown:
            return
        now = self._clock()
        finished = self.items >= self._total
        if finished or self._drawn_at is None or now - self._drawn_at >= _REDRAW_EVERY:
            self._drawn_at = now
            self._stream.write(f"\r{self._line(now)}\x1b[K")
            self._stream.flush()

    def _line(self, now: float) -> str:
        line = f"{self._what}: {self.items}/{self._total}"
        if self._total_bytes:
            line += f", {_size(self.nbytes)} of {_size(self._total_bytes)}"
        elapsed = now - self._started
        done, todo = ((self.nbytes, self._total_bytes) if self._total_bytes
                      else (self.items, self._total))
        if 0 < done < todo and elapsed > 0:
            line += f", {_duration((todo - done) * elapsed / done)} left"
        return line

    def close(self) -> None:
        """Clear the line, so that what is printed next starts clean."""
        if self._shown and self._drawn_at is not None:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
