"""Numbers inside names (channels, foreign files, dialplan locations) are masked
before they reach the ledger or the decision log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asterisk_recguard._redact import MASK, mask_numbers
from asterisk_recguard.decisionlog import DecisionLog


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Local/0038640123456@out-00000001;2", f"Local/{MASK}@out-00000001;2"),
        ("PJSIP/+38640123456-0000001a", f"PJSIP/{MASK}-0000001a"),
        ("PJSIP/40123456-00000012", f"PJSIP/{MASK}-00000012"),
        ("queue-040123456-1764324723.1.wav", f"queue-{MASK}-{MASK}.1.wav"),
        ("dialplan from-pstn,+38640123456,1", f"dialplan from-pstn,{MASK},1"),
        # Not numbers: channel counters, extensions, hex recording ids.
        ("PJSIP/trunk-00000012", "PJSIP/trunk-00000012"),
        ("Local/1001@agents-0000002f;1", "Local/1001@agents-0000002f;1"),
        ("/spool/0123456789abcdef0123456789abcdef.wav", "/spool/0123456789abcdef0123456789abcdef.wav"),
    ],
)
def test_mask_numbers(name: str, shown: str) -> None:
    assert mask_numbers(name) == shown


def test_decision_log_masks_numbers_in_names(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    with DecisionLog(path) as log:
        log.emit("unauthorized_recording", channel="Local/0038640123456@out-00000001;2",
                 file="/var/spool/asterisk/monitor/out-0038640123456.wav",
                 started_by="dialplan out,0038640123456,3", call_id="1764324723.12",
                 error="StopMixMonitor on Local/0038640123456@out failed")
    line = json.loads(path.read_text())
    assert "0038640123456" not in path.read_text()
    assert line["call_id"] == "1764324723.12"  # ids are not names: left alone
    assert line["file"] == f"/var/spool/asterisk/monitor/out-{MASK}.wav"
