"""Numbers inside names (channels, foreign files, dialplan locations) are masked
before they reach the ledger or the decision log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asterisk_recguard._redact import MASK, mask_numbers
from asterisk_recguard.decisionlog import DecisionLog
from asterisk_recguard.guard import Guard
from asterisk_recguard.guard.testing import (
    CapturingLog,
    FakeCallControl,
    FakeMixMonitors,
    mixmonitor_start,
)
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.policy import load_policy
from asterisk_recguard.resources import default_policy_path


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Local/0038640123456@out-00000001;2", f"Local/{MASK}@out-00000001;2"),
        ("PJSIP/+38640123456-0000001a", f"PJSIP/{MASK}-0000001a"),
        ("PJSIP/40123456-00000012", f"PJSIP/{MASK}-00000012"),
        # The number and the call's unique id, joined by "-" and ".", are one run of digits.
        ("queue-040123456-1764324723.1.wav", f"queue-{MASK}.wav"),
        ("dialplan from-pstn,+38640123456,1", f"dialplan from-pstn,{MASK},1"),
        # Not numbers: channel counters, extensions, hex recording ids.
        ("PJSIP/trunk-00000012", "PJSIP/trunk-00000012"),
        ("Local/1001@agents-0000002f;1", "Local/1001@agents-0000002f;1"),
        ("/spool/0123456789abcdef0123456789abcdef.wav", "/spool/0123456789abcdef0123456789abcdef.wav"),
    ],
)
def test_mask_numbers(name: str, shown: str) -> None:
    assert mask_numbers(name) == shown


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        # Next to letters.
        ("from040123456.wav", f"from{MASK}.wav"),
        ("/mon/caller0038640123456x.wav", f"/mon/caller{MASK}x.wav"),
        ("out-040123456abc", f"out-{MASK}abc"),
        # With the usual separators, a leading + or 00.
        ("/mon/+386 40 123 456.wav", f"/mon/{MASK}.wav"),
        ("040 123 456", MASK),
        ("(040) 123-456", MASK),
        ("+386 (0)40 123 456", MASK),
        ("040/123-456.wav", f"{MASK}.wav"),
        ("040.123.456", MASK),
        ("040_123_456", MASK),
        ("00386 40 123456", MASK),
        ("0038640-123-456", MASK),
        ("01 234 56 78", MASK),
        ("+386 1 234 56 78", MASK),
        ("tel:+386-40-123-456;user=phone", f"tel:{MASK};user=phone"),
        ("caller040 - 123 - 456.wav", f"caller{MASK}.wav"),
        ("dialplan from-pstn,040 123 456,1", f"dialplan from-pstn,{MASK},1"),
        ("PJSIP/040 123 456-0000001a", f"PJSIP/{MASK}-0000001a"),
        ("Local/040-123-456@out-00000001;2", f"Local/{MASK}@out-00000001;2"),
        ("040１２３４５６", MASK),  # other scripts' digits are digits too
        # A date joined to more digits, a compact date and time, an address: digits all the same.
        ("2026-11-29-040123456.wav", f"{MASK}.wav"),
        ("20261129-101203.wav", f"{MASK}.wav"),
        ("AMI at 192.168.100.200:5038", f"AMI at {MASK}:5038"),
    ],
)
def test_numbers_next_to_letters_and_with_separators_are_masked(name: str, shown: str) -> None:
    assert mask_numbers(name) == shown


@pytest.mark.parametrize(
    "name",
    [
        # Short numbers: extensions, priorities, ports, counters, times, versions.
        "Local/1001@agents-0000002f;1",
        "ext 1001, priority 3",
        "queue 12 34 5",
        "127.0.0.1:5038",
        "10:12:03",
        "Asterisk 22.5.2",
        "from-pstn,s,1",
        # Channel counters and hex ids, next to letters or not.
        "PJSIP/trunk-00000012",
        "PJSIP/trunk-00000012;2",
        "/spool/0123456789abcdef0123456789abcdef.wav",
        "/spool/0123456789ABCDEF0123456789ABCDEF.wav.rgv",
        "sha1 0123456789abcdef0123456789abcdef01234567",
        "3f2a9c0d-5b7e-4f1a-8c6d-2e9b0a1f3c5d",
        # A date alone, as programs write it into names and paths.
        "/var/spool/asterisk/monitor/2026/11/29/x.wav",
        "rec-2026-11-29.wav",
        "error at 2026-11-28T10:12:03Z",
    ],
)
def test_what_is_not_a_number_stays(name: str) -> None:
    assert mask_numbers(name) == name


def test_a_hex_word_of_another_length_is_not_an_id() -> None:
    assert mask_numbers("fa0401234567") == f"fa{MASK}"
    assert mask_numbers("abcdef0401234567") == f"abcdef{MASK}"


def test_a_foreign_recording_named_after_a_number_reaches_ledger_and_log_masked(
        tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    ledger = Ledger.create(tmp_path / "ledger.sqlite3", recordings_dir=None)
    mixmonitors, log = FakeMixMonitors(recordings), CapturingLog()
    guard = Guard(policy=load_policy(default_policy_path()), control=FakeCallControl(),
                  mixmonitors=mixmonitors, ledger=ledger, decision_log=log, hash_secret="s" * 40,
                  lanes=1, workers=1)
    try:
        mon = tmp_path / "mon"
        mon.mkdir()
        mixmonitors.start_any("c1", mon / "+386 40 123 456.wav")  # outside: kept, but logged
        guard.on_ami_event(mixmonitor_start("c1", channel_name="PJSIP/from040123456-0000001a",
                                            context="from-pstn", exten="040/123-456"))
        guard.wait_idle(10)
        (entry,) = ledger.unauthorized_log()
        assert entry.file == f"{mon}/{MASK}.wav"
        assert entry.channel == f"PJSIP/from{MASK}-0000001a"
        assert entry.started_by == f"dialplan from-pstn,{MASK},3"
        (event,) = [e for e in log.lines if e["event"] == "unauthorized_recording"]
        shown = json.dumps(event)
        assert "123" not in shown and "456" not in shown
    finally:
        guard.shutdown(10)
        ledger.close()


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
