"""The gate's deadline, kept even when the call's lane is busy.

A gate waits in its call's lane behind the work of the calls that share the
lane. The lane sheds a gate whose time ran out when it gets to it, but that
may be long after ``RECGUARD_GATE_TIMEOUT``. So each gate also has a
:class:`PendingGate` here, and one thread continues every call whose gate
has not begun by its deadline: the dialplan is told nothing, so the call
goes on as ``unavailable``, and one ``gate_shed`` line says so. Whoever comes
first, the lane or this thread, takes the gate (:meth:`PendingGate.take`);
the other leaves it alone.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .._redact import mask_numbers
from .asterisk import AsteriskError, CallControl, ChannelGone
from .events import GuardEvents


class PendingGate:
    """One gate between its StasisStart and the moment someone takes it."""

    def __init__(self, call_id: str, channel: str, received: float, deadline: float) -> None:
        self.call_id = call_id
        self.channel = channel  # as Asterisk names it; masked only if it is ever logged
        self.received = received
        self.deadline = deadline
        self._token = threading.Lock()

    def take(self) -> bool:
        """True for the first caller only: the lane, or the deadline."""
        return self._token.acquire(blocking=False)


class GateDeadlines:
    def __init__(self, control: CallControl, events: GuardEvents, clock: Callable[[], float] = time.perf_counter,
                 workers: int = 2, on_gate: Callable[[float], None] | None = None) -> None:
        self.control = control
        self.events = events
        self.clock = clock
        self.on_gate = on_gate  # told each shed gate's time to its continue, as the lane's gates are
        self._heap: list[tuple[float, int, PendingGate]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._stopping = False
        # Continuing a call is a request to Asterisk: off the timer, so one slow
        # answer does not make the next deadline late.
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gate-deadline")
        self._thread = threading.Thread(target=self._run, name="gate-deadlines", daemon=True)
        self._thread.start()

    def watch(self, pending: PendingGate) -> None:
        with self._wake:
            heapq.heappush(self._heap, (pending.deadline, next(self._order), pending))
            if self._heap[0][2] is pending:
                self._wake.notify()

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(5)
        self._pool.shutdown(wait=True)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and (not self._heap or self._heap[0][0] > self.clock()):
                    self._wake.wait(None if not self._heap else max(0.0, self._heap[0][0] - self.clock()))
                if self._stopping:
                    return
                _, _, pending = heapq.heappop(self._heap)
            if pending.take():
                self._pool.submit(self._shed, pending)

    def _shed(self, pending: PendingGate) -> None:
        channel = mask_numbers(pending.channel)
        self.events.gate_shed(pending.call_id, channel, "at its deadline",
                              round((self.clock() - pending.received) * 1000))
        try:
            self.control.continue_call(pending.call_id)
        except ChannelGone:
            pass  # the caller hung up meanwhile
        except AsteriskError as exc:
            self.events.gate_failed(pending.call_id, channel, str(exc))
        if self.on_gate is not None:
            self.on_gate(self.clock() - pending.received)
