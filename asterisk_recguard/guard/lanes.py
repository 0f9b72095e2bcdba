"""The guard's threads: lanes that own calls, and workers for file work.

A :class:`Lanes` is a few threads, each with its own queue and its own table
of calls. A call always goes to the same lane (by a hash of its id), so its
events are handled in order and its :class:`~.state.CallState` is touched by
that one thread only; one slow call holds up only the calls that share its
lane. :class:`Workers` is a pool for blocking work done after a call has left
its lane or on a snapshot of it (waiting for MixMonitor to close a file,
hashing, encrypting, unlinking); it never touches a lane's table.

Written here rather than taken from a library: the standard library has a
thread pool but no "same key, same thread" executor, and the guard needs the
lane's table to be private to its thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .state import CallState

log = logging.getLogger(__name__)

# A job runs on a lane with that lane's table of calls as its first argument.
LaneJob = Callable[..., None]
OnError = Callable[[str, BaseException], None]


class Lane:
    def __init__(self, index: int, on_error: OnError) -> None:
        self.calls: dict[str, CallState] = {}  # touched by this lane's thread only
        self.queue: queue.Queue[tuple[LaneJob, tuple[Any, ...]] | None] = queue.Queue()
        self._on_error = on_error
        self.thread = threading.Thread(target=self._run, name=f"lane-{index}", daemon=True)

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                job, args = item
                try:
                    job(self.calls, *args)
                except Exception as exc:  # one bad event must not stop the lane
                    log.exception("lane job %s failed", getattr(job, "__name__", job))
                    self._on_error("event", exc)
            finally:
                self.queue.task_done()


class Lanes:
    def __init__(self, count: int, on_error: OnError) -> None:
        self._lanes = [Lane(i, on_error) for i in range(max(1, count))]
        for lane in self._lanes:
            lane.thread.start()

    def post(self, call_id: str, job: LaneJob, *args: Any) -> None:
        """Run ``job(calls, *args)`` on the lane that owns ``call_id``."""
        lane = self._lanes[zlib.crc32(call_id.encode()) % len(self._lanes)]
        lane.queue.put((job, args))

    def post_all(self, job: LaneJob, *args: Any) -> None:
        """Run ``job(calls, *args)`` once on every lane (e.g. a policy reload)."""
        for lane in self._lanes:
            lane.queue.put((job, args))

    def call_ids(self, timeout: float = 10.0) -> set[str]:
        """The calls tracked now, asked of each lane in its turn (so work
        already posted to a lane is counted)."""
        answers: list[Future[set[str]]] = []
        for lane in self._lanes:
            answer: Future[set[str]] = Future()
            lane.queue.put((lambda calls, a=answer: a.set_result(set(calls)), ()))
            answers.append(answer)
        found: set[str] = set()
        for answer in answers:
            found |= answer.result(timeout)
        return found

    def tracked(self) -> int:
        """How many calls the lanes track (a reading for tests and metrics)."""
        return sum(len(lane.calls) for lane in self._lanes)

    def busy(self) -> bool:
        return any(lane.queue.unfinished_tasks for lane in self._lanes)

    def stop(self) -> None:
        for lane in self._lanes:
            lane.queue.put(None)
        for lane in self._lanes:
            lane.thread.join(5)


class Workers:
    """Blocking work off the lanes, each task's failure logged, never lost."""

    def __init__(self, count: int, on_error: OnError) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max(1, count), thread_name_prefix="files")
        self._on_error = on_error
        self._lock = threading.Lock()  # a leaf: held only to change the sets below
        self._pending: set[Future[Any]] = set()
        self._claimed: set[str] = set()

    def submit(self, fn: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        future = self._pool.submit(fn, *args, **kwargs)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def claim(self, key: str) -> bool:
        """Take ``key`` (a recording id) for one task at a time; False if taken."""
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            return True

    def release(self, key: str) -> None:
        with self._lock:
            self._claimed.discard(key)

    def claimed(self, key: str) -> bool:
        with self._lock:
            return key in self._claimed

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)
        exc = future.exception()
        if exc is not None:
            log.error("background task failed: %s", exc, exc_info=exc)
            self._on_error("task", exc)

    def pending(self) -> list[Future[Any]]:
        with self._lock:
            return list(self._pending)

    def stop(self) -> None:
        self._pool.shutdown(wait=True)


def wait_idle(lanes: Lanes, workers: Workers, timeout: float) -> None:
    """Until the lanes are empty and every submitted task has finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = workers.pending()
        if not pending and not lanes.busy():
            return
        for future in pending:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # already logged when it finished
                pass
        time.sleep(0.02)
