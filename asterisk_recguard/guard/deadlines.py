"""The gate's deadline, kept even when the call's lane is busy or its gate
waits on Asterisk or the ledger.

A gate waits in its call's lane behind the work of the calls that share the
lane, and once begun it waits on Asterisk's answers and on the ledger's
commit; under load either may run past ``RECGUARD_GATE_TIMEOUT``. So each
gate also has a :class:`PendingGate` here, and one thread continues every
call whose gate has not answered by its deadline: the dialplan is told
nothing, so the call goes on as ``unavailable``, and one ``gate_shed`` line
says so. The lane and this thread settle who answers the caller through the
:class:`PendingGate`: the lane takes it to begin and claims it to answer; the
deadline takes whatever the lane has not claimed yet. A gate the deadline
took while it was deciding is undone by its lane (see :mod:`.gate`).
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
    """One gate from its StasisStart until the caller is answered."""

    WAITING, BEGUN, ANSWERING, OVERDUE = "waiting", "begun", "answering", "overdue"

    def __init__(self, call_id: str, channel: str, received: float, deadline: float) -> None:
        self.call_id = call_id
        self.channel = channel  # as Asterisk names it; masked only if it is ever logged
        self.received = received
        self.deadline = deadline
        self._lock = threading.Lock()
        self._state = self.WAITING

    def _move(self, allowed: tuple[str, ...], to: str) -> str | None:
        """The state it was in if it was one of ``allowed`` (it is ``to`` now), else None."""
        with self._lock:
            was = self._state
            if was not in allowed:
                return None
            self._state = to
            return was

    def take(self) -> bool:
        """The lane begins the gate: False if its deadline came first."""
        return self._move((self.WAITING,), self.BEGUN) is not None

    def claim_answer(self) -> bool:
        """The lane is about to answer the caller (tell and continue, or shed
        it itself): False if the deadline has answered already."""
        return self._move((self.WAITING, self.BEGUN, self.ANSWERING), self.ANSWERING) is not None

    def overdue(self) -> str | None:
        """The deadline answers: "waiting" or "begun" if it took the gate, None
        if the lane is answering or answered."""
        return self._move((self.WAITING, self.BEGUN), self.OVERDUE)


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
            was = pending.overdue()
            if was is not None:
                self._pool.submit(self._shed, pending, was)

    def _shed(self, pending: PendingGate, was: str) -> None:
        channel = mask_numbers(pending.channel)
        stage = "at its deadline" if was == PendingGate.WAITING else "at its deadline, while deciding"
        self.events.gate_shed(pending.call_id, channel, stage, round((self.clock() - pending.received) * 1000))
        try:
            self.control.continue_call(pending.call_id)
        except ChannelGone:
            pass  # the caller hung up meanwhile
        except AsteriskError as exc:
            self.events.gate_failed(pending.call_id, channel, str(exc))
        if self.on_gate is not None:
            self.on_gate(self.clock() - pending.received)
