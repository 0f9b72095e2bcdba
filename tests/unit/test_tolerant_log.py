"""A decision-log line that cannot be written never stops the thread writing it."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from asterisk_recguard.decisionlog import DecisionLog, TolerantLog


def test_a_failed_write_is_reported_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               caplog: pytest.LogCaptureFixture) -> None:
    inner = DecisionLog(tmp_path / "decisions.jsonl")

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inner, "emit", disk_full)
    log = TolerantLog(inner)
    with caplog.at_level(logging.ERROR):
        log.emit("gate_failed", call_id="1764324723.1", error="whatever")
    assert "gate_failed" in caplog.text and "No space left" in caplog.text


def test_lines_still_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    log = TolerantLog(DecisionLog(path))
    log.emit("decision", call_id="1764324723.1", decision="skip")
    log.close()
    assert '"event":"decision"' in path.read_text()
