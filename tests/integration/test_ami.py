"""The AMI client against a real Asterisk: login, variables, MixMonitor by id, refusal of CR/LF."""

from __future__ import annotations

import time
import wave
from collections.abc import Iterator

import pytest

from asterisk_recguard.ami import AmiClient, AmiError, AmiInjectionError
from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox


@pytest.fixture
def ami(sandbox_env: dict[str, str]) -> Iterator[AmiClient]:
    events: list[dict[str, str]] = []
    client = AmiClient(
        sandbox_env["RECGUARD_AMI_HOST"],
        int(sandbox_env["RECGUARD_AMI_PORT"]),
        sandbox_env["RECGUARD_AMI_USER"],
        sandbox_env["RECGUARD_AMI_SECRET"],
        on_event=events.append,
    )
    client.received = events  # type: ignore[attr-defined]
    client.start()
    assert client.wait_connected(10), client.last_error
    yield client
    client.stop()


def test_wrong_secret_is_refused_with_a_clear_reason(sandbox_env: dict[str, str]) -> None:
    client = AmiClient(sandbox_env["RECGUARD_AMI_HOST"], int(sandbox_env["RECGUARD_AMI_PORT"]),
                       sandbox_env["RECGUARD_AMI_USER"], "not-the-secret")
    client.start()
    try:
        assert not client.wait_connected(1.5)
        assert "refused" in client.last_error
    finally:
        client.stop()


def test_setvar_getvar_and_mixmonitor_by_id(sandbox: Sandbox, ami: AmiClient, idle: CallerSimulator) -> None:
    call = idle.call("recguard-test-smoke", "hold")
    call.wait_answered()
    channel = call.centre_channel()["name"]

    ami.action("Setvar", Channel=channel, Variable="RECGUARD_TEST", Value="hello")
    assert ami.action("Getvar", Channel=channel, Variable="RECGUARD_TEST").get("Value") == "hello"

    target = sandbox.recordings_dir / "ami-test.wav"
    target.unlink(missing_ok=True)
    started = ami.action("MixMonitor", Channel=channel, File=str(target), Options="i(RECGUARD_TEST_MIXMON)")
    mixmonitor_id = started.get("MixMonitorID") or ami.action(
        "Getvar", Channel=channel, Variable="RECGUARD_TEST_MIXMON").get("Value")
    assert mixmonitor_id
    assert wait_until(lambda: any(e.get("Event") == "MixMonitorStart" for e in ami.received), 3)  # type: ignore[attr-defined]
    time.sleep(1.0)
    ami.action("StopMixMonitor", Channel=channel, MixMonitorID=mixmonitor_id)
    assert wait_until(lambda: any(e.get("Event") == "MixMonitorStop" for e in ami.received), 3)  # type: ignore[attr-defined]
    assert wait_until(lambda: target.exists() and target.stat().st_size > 44, 5)
    with wave.open(str(target)) as recording:
        assert recording.getnframes() > 8000 * 0.5
    call.hangup()
    call.wait_ended()
    target.unlink()


def test_stop_by_unknown_id_fails(ami: AmiClient, idle: CallerSimulator) -> None:
    call = idle.call("recguard-test-smoke", "hold")
    call.wait_answered()
    with pytest.raises(AmiError):
        ami.action("StopMixMonitor", Channel=call.centre_channel()["name"], MixMonitorID="0xdeadbeef")
    call.hangup()


@pytest.mark.parametrize("value", ["x\r\nAction: Originate", "x\nAction: Command", "x\r"])
def test_cr_or_lf_in_a_value_is_refused_and_nothing_sent(ami: AmiClient, value: str) -> None:
    with pytest.raises(AmiInjectionError):
        ami.action("Setvar", Channel="Local/none", Variable="X", Value=value)
    # The connection is still fine afterwards.
    assert ami.action("Ping").ok
