"""Ledger journals: the access log and the unauthorized-recording log."""

from __future__ import annotations

from datetime import timedelta

import pytest

from asterisk_recguard.ledger import Ledger

from .ledger_support import T0, ledger  # noqa: F401 - ledger is a fixture

# --- access and unauthorized logs -------------------------------------------------------------


def test_access_log(ledger: Ledger) -> None:
    for minute, action in enumerate(["hold", "export", "release", "purge"]):
        ledger.log_access(actor="dpo", action=action, reason=f"because {minute}",
                          recording_id=None if action == "purge" else "ab" * 16,
                          detail={"to": "/tmp/out"} if action == "export" else None,
                          at=T0 + timedelta(minutes=minute))
    entries = ledger.access_log()
    assert [e.action for e in entries] == ["hold", "export", "release", "purge"]
    assert entries[1].detail == {"to": "/tmp/out"} and entries[1].actor == "dpo"
    assert [e.action for e in ledger.access_log(limit=2)] == ["release", "purge"]
    assert [e.action for e in ledger.access_log(since=T0 + timedelta(minutes=1))] == [
        "export", "release", "purge"]
    with pytest.raises(ValueError, match="reason"):
        ledger.log_access(actor="dpo", action="export", reason="")
    with pytest.raises(ValueError, match="action"):
        ledger.log_access(actor="dpo", action="peek", reason="curious")
    assert len(ledger.access_log()) == 4


def test_unauthorized_log(ledger: Ledger) -> None:
    ledger.log_unauthorized(channel="PJSIP/q-0001", action="stopped_deleted",
                            file="/var/spool/asterisk/monitor/q.wav", started_by="Queue", at=T0)
    ledger.log_unauthorized(channel="PJSIP/q-0002", action="logged_only",
                            at=T0 + timedelta(seconds=1))
    entries = ledger.unauthorized_log()
    assert [(e.channel, e.action, e.started_by) for e in entries] == [
        ("PJSIP/q-0001", "stopped_deleted", "Queue"), ("PJSIP/q-0002", "logged_only", None)]
    with pytest.raises(ValueError):
        ledger.log_unauthorized(channel="c", action="ignored")
