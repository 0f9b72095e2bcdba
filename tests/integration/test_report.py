"""The DPO's report against what really happened on the sandbox: an order
recorded for a transaction, an order whose notice was cut short (not
recorded), and a quality call whose consent the caller withdrew with a key
press (recorded, then deleted). `recguard report` runs as an administrator
runs it, before and after the calls, and its figures move by exactly those
three calls."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.ledger import utcnow
from asterisk_recguard.policy import load_policy

from .guardrun import guard_in_process

ORDER = {"RECGUARD_PURPOSE": "order", "RECGUARD_NOTICES": "evidence-v1:complete",
         "RECGUARD_CONSENT": "none", "RECGUARD_OUTCOME": "transaction"}
CUT_SHORT = {**ORDER, "RECGUARD_NOTICES": "evidence-v1:interrupted"}
QUALITY = {"RECGUARD_PURPOSE": "quality", "RECGUARD_NOTICES": "quality-consent-v1:complete",
           "RECGUARD_CONSENT": "given"}


@pytest.fixture(scope="module")
def guard(sandbox: Sandbox) -> Iterator[Daemon]:
    with guard_in_process(sandbox.env_file) as daemon:
        yield daemon


def report(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    today = utcnow().date()
    # A day either side: a call near midnight UTC stays inside the period.
    period = ["--since", str(today - timedelta(days=1)), "--until", str(today + timedelta(days=1))]
    done = subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", "report", *period, *args,
         "--env-file", str(sandbox.env_file)],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done


def figures(sandbox: Sandbox) -> dict[str, Any]:
    return json.loads(report(sandbox, "--json").stdout)


def place(guard: Daemon, callers: CallerSimulator, facts: dict[str, str]) -> SimulatedCall:
    call = callers.call("recguard-test-guard", "direct", variables=facts)
    call.wait_answered()
    assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
    return call


def finish(guard: Daemon, call: SimulatedCall) -> None:
    wait_until(lambda: False, 1.0)  # a second of audio
    call.hangup()
    call.wait_ended()
    assert wait_until(lambda: guard.guard.tracked_calls() == 0, 5)
    guard.guard.wait_idle()


def moved(before: dict[str, Any], after: dict[str, Any], key: str) -> Any:
    """How a figure (a count, or a mapping of counts) changed."""
    if isinstance(after[key], dict):
        return {k: after[key][k] - before[key].get(k, 0) for k in after[key]
                if after[key][k] != before[key].get(k, 0)}
    return after[key] - before[key]


def test_the_report_counts_what_happened_on_real_calls(
        guard: Daemon, sandbox: Sandbox, idle: CallerSimulator, tmp_path: Path) -> None:
    before = figures(sandbox)

    recorded = place(guard, idle, ORDER)
    recording_id = recorded.centre_variable("RECGUARD_RECORDING_ID")
    assert recording_id, "the guard did not record an order after its notice"
    finish(guard, recorded)

    cut_short = place(guard, idle, CUT_SHORT)
    assert not cut_short.centre_variable("RECGUARD_RECORDING_ID")
    finish(guard, cut_short)

    withdrawn = place(guard, idle, QUALITY)
    assert withdrawn.centre_variable("RECGUARD_RECORDING_ID")
    withdrawn.press("9")
    assert wait_until(lambda: withdrawn.centre_variable("RECGUARD_CONSENT") == "withdrawn", 3)
    finish(guard, withdrawn)
    assert guard.ledger.recording(recording_id).status == "finalized"

    after = figures(sandbox)
    assert moved(before, after, "calls_decided") == 3
    assert moved(before, after, "calls_recorded") == 1
    assert moved(before, after, "calls_not_recorded") == 1
    assert moved(before, after, "calls_recording_deleted") == 1
    assert moved(before, after, "recorded_by_purpose") == {"order": 1}
    assert moved(before, after, "not_recorded_by_reason") == {"notice_interrupted": 1,
                                                              "consent_withdrawn": 1}
    assert moved(before, after, "consent") == {"given": 1, "withdrawn": 1}
    assert moved(before, after, "deleted_by_reason") == {"consent_withdrawn": 1}
    assert moved(before, after, "kept_now") == 1
    assert moved(before, after, "kept_by_purpose") == {"order": 1}
    assert after["overdue_now"] == 0
    assert load_policy(guard.settings.policy).label in [u["label"] for u in after["policies_used"]]

    # The same figures as text and as a self-contained page.
    text = report(sandbox).stdout
    assert f"{after['calls_decided']:>6}  calls decided" in text
    page = tmp_path / "report.html"
    report(sandbox, "--html", str(page))
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html and html.count("<svg") == 3
    assert f"<b>{after['calls_recorded']}</b>recorded and kept" in html
