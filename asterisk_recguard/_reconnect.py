"""A connection kept open for ever on worker threads: connect, serve until the
connection is lost, wait, connect again. What the AMI and ARI clients share."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable


class Reconnecting(ABC):
    """A client whose worker thread keeps one connection open, with backoff.

    A failed attempt waits ``backoff_initial`` seconds, doubling with each
    further failure up to ``backoff_max``; after a lost connection the next
    attempt comes ``backoff_initial`` seconds later. ``connected`` is set while
    a connection is up. Subclasses say how to connect, how to serve a
    connection, what to do when one fails or is lost, and which threads run.
    """

    # What a failed connection attempt may raise; anything else ends the worker.
    _connect_errors: tuple[type[Exception], ...] = (Exception,)

    def __init__(
        self,
        on_connect: Callable[[], None] | None,
        on_disconnect: Callable[[str], None] | None,
        backoff_initial: float,
        backoff_max: float,
    ) -> None:
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=target, name=name, daemon=True) for name, target in self._workers()
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._interrupt()
        for thread in self._threads:
            thread.join(timeout)

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def _run(self) -> None:
        """The connection worker: runs until :meth:`stop`."""
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                self._connect()
            except self._connect_errors as exc:
                self._connect_failed(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_max)
                continue
            delay = self.backoff_initial
            reason = self._serve_connection()
            if not self._stop.is_set():
                self._disconnected(reason)
            self._stop.wait(self.backoff_initial)

    @abstractmethod
    def _workers(self) -> list[tuple[str, Callable[[], None]]]:
        """The threads to start, by name; one of them runs :meth:`_run`."""

    @abstractmethod
    def _connect(self) -> None:
        """Open the connection; raise one of ``_connect_errors`` if it fails."""

    @abstractmethod
    def _connect_failed(self, exc: Exception) -> None:
        """An attempt failed: note why and release what it left open."""

    @abstractmethod
    def _serve_connection(self) -> str:
        """Serve the open connection until it is lost or stopped, close it and
        clear ``connected``; return why it ended."""

    @abstractmethod
    def _disconnected(self, reason: str) -> None:
        """A connection was lost while not stopping: tell ``on_disconnect``."""

    @abstractmethod
    def _interrupt(self) -> None:
        """Wake the workers from whatever blocks them, so that they see the stop."""
