"""The decision log written in the background (the daemon's): every line
reaches the file whole and in order, close() writes what is queued, and a
line the disk refused is reported as lost without stopping the lines after it."""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard.decisionlog import DecisionLog, TolerantLog, flush
from asterisk_recguard.logfile import LineFile


def lines_of(path: Path) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_lines_from_many_threads_arrive_whole_and_in_each_threads_order(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, background=True)
    per_thread, threads_n = 300, 8

    def work(n: int) -> None:
        for i in range(per_thread):
            log.emit("decision", call_id=f"t{n}", i=i, text="x" * (i % 50))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.flush(10)
    records = lines_of(path)
    assert len(records) == threads_n * per_thread
    for n in range(threads_n):
        assert [r["i"] for r in records if r["call_id"] == f"t{n}"] == list(range(per_thread))
    log.close()


def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path, background=True)
    for i in range(2000):
        log.emit("decision", i=i)
    log.close()
    assert [r["i"] for r in lines_of(path)] == list(range(2000))
    with pytest.raises(ValueError, match="closed"):
        log.emit("decision", i=2000)


def test_a_refused_write_is_reported_per_line_and_later_lines_still_arrive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "decisions.jsonl"
    lost: list[str] = []
    log = TolerantLog(DecisionLog(path, background=True), on_lost=lost.append)
    log.emit("decision", n=1)
    assert log.flush(10)
    real_write = os.write
    full = threading.Event()
    full.set()

    def disk_full(fd: int, data: bytes) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr("asterisk_recguard.logfile.os.write", disk_full)
    with caplog.at_level(logging.ERROR):
        log.emit("gate_failed", n=2, error="boom")
        log.emit("recording_started", n=3)
        assert log.flush(10)
    assert lost == ["gate_failed", "recording_started"]
    assert "No space left" in caplog.text and "gate_failed" in caplog.text
    full.clear()  # space again
    log.emit("decision", n=4)
    log.close()
    assert [r["n"] for r in lines_of(path)] == [1, 4]


def test_the_foreground_writer_still_raises_to_its_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("asterisk_recguard.logfile.os.write", disk_full)
    with DecisionLog(tmp_path / "decisions.jsonl") as log, pytest.raises(OSError, match="No space"):
        log.emit("decision", n=1)


def test_flush_of_a_log_that_does_not_queue_is_nothing() -> None:
    flush(object())  # e.g. a test's recording log: no flush method, nothing to wait for
    assert LineFile(Path("/nonexistent/never-opened")).flush(0.1)
