"""The sandbox's SIP side with SIPp: loopback only, extensions that take only
their own password, and a SIP call through the example IVR while recguard is
not running, which the gate lets through unrecorded (``unavailable``)."""

from __future__ import annotations

from pathlib import Path

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox, sip
from asterisk_recguard.devtools.scenarios import IvrCaller

from . import sipp
from .dialplan_support import AsteriskLog
from .sip_callers import SipCaller, SipIvr, register


def endpoint_state(callers: CallerSimulator, extension: str) -> str:
    return callers.client.request("GET", f"/endpoints/PJSIP/{extension}")["state"]


def test_sip_listens_on_loopback_only(sipp_ready: Sandbox) -> None:
    info = sipp_ready.info()
    assert info is not None and info.sip_port is not None
    transports = sipp_ready.cli("pjsip show transports")
    assert f"127.0.0.1:{info.sip_port}" in transports
    assert "0.0.0.0" not in transports
    env = sipp_ready.credentials()
    assert env[sip.PORT_KEY] == str(info.sip_port)
    assert env[sip.password_key("caller")] and env[sip.password_key("agent")]
    assert env[sip.password_key("caller")] != env[sip.password_key("agent")]


def test_an_extension_registers_with_its_password_only(
    sipp_ready: Sandbox, callers: CallerSimulator, tmp_path: Path
) -> None:
    port = sipp.free_port()
    refused = register(sipp_ready, tmp_path, "caller", port, expires=60, password="not-the-password")
    assert not refused.ok, refused.report()
    assert endpoint_state(callers, "caller") == "offline"

    accepted = register(sipp_ready, tmp_path, "caller", port, expires=60)
    assert accepted.ok, accepted.report()
    assert wait_until(lambda: endpoint_state(callers, "caller") == "online", 3)
    gone = register(sipp_ready, tmp_path, "caller", port, expires=0)
    assert gone.ok, gone.report()
    assert wait_until(lambda: endpoint_state(callers, "caller") == "offline", 3)


def test_with_recguard_down_a_sip_call_goes_on_unrecorded(
    sipp_ready: Sandbox, idle: CallerSimulator, tmp_path: Path
) -> None:
    log = AsteriskLog(sipp_ready)
    before = set(sipp_ready.recordings_dir.iterdir())
    # Cuts the notice short and answers during the question: the quickest way to the gate.
    row = IvrCaller("recguard_down", key_during_notice=True, choice="order", consent_key="2", talk_seconds=3)
    outcome = SipIvr(sipp_ready, idle.client, tmp_path).call(
        SipCaller(row, "5550201", answers_during_question=True)
    )
    assert outcome.error is None, outcome.error  # the call went on until the caller hung up
    assert outcome.decision == "unavailable" and outcome.recording_id is None
    assert outcome.facts == {
        "RECGUARD_PURPOSE": "order,quality",
        "RECGUARD_NOTICES": "evidence-v1:interrupted,quality-consent-v1:interrupted",
        "RECGUARD_CONSENT": "refused",
        "RECGUARD_OUTCOME": "unknown",
    }
    assert log.warnings('Stasis application "recguard" is not available')
    assert set(sipp_ready.recordings_dir.iterdir()) == before

