"""The sandbox is a real Asterisk 22 that answers ARI, runs dialplan, records and reads DTMF."""

from __future__ import annotations

import wave
from pathlib import Path

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox


def test_ari_answers_with_asterisk_22(sandbox: Sandbox, callers: CallerSimulator) -> None:
    info = callers.client.asterisk_info()
    assert info["system"]["version"].startswith("22.")
    status = sandbox.status()
    assert status["running"] and status["ari_answers"]


def test_ari_and_ami_listen_on_loopback_only(sandbox: Sandbox) -> None:
    http = (sandbox.etc_dir / "http.conf").read_text()
    manager = (sandbox.etc_dir / "manager.conf").read_text()
    assert "bindaddr = 127.0.0.1" in http
    assert "bindaddr = 127.0.0.1" in manager
    assert oct(sandbox.env_file.stat().st_mode & 0o777) == "0o600"


def test_originated_call_runs_through_the_dialplan(idle: CallerSimulator) -> None:
    call = idle.call("recguard-test-smoke", "answer")
    call.wait_answered()
    assert call.wait_centre_variable("SMOKE_REACHED") == "yes"
    call.hangup()
    call.wait_ended()


def test_mixmonitor_writes_a_non_empty_wav(sandbox: Sandbox, idle: CallerSimulator) -> None:
    target = sandbox.recordings_dir / "smoke-test.wav"
    target.unlink(missing_ok=True)
    call = idle.call("recguard-test-smoke", "mixmonitor", variables={"SMOKE_FILE": str(target)})
    call.wait_answered()
    assert call.wait_centre_variable("SMOKE_DONE", timeout=15) == "yes"
    call.hangup()
    call.wait_ended()
    # MixMonitor closes the file on its own thread after StopMixMonitor.
    assert wait_until(lambda: target.exists() and target.stat().st_size > 44, 5)
    with wave.open(str(target)) as recording:
        assert recording.getframerate() == 8000
        assert recording.getnframes() > 8000 * 0.5  # hello-world lasts about a second
    target.unlink()


def test_digit_pressed_by_the_caller_is_read_by_the_centre(idle: CallerSimulator) -> None:
    call = idle.call("recguard-test-smoke", "read")
    call.wait_answered()
    call.press("5")
    assert call.wait_centre_variable("SMOKE_DIGIT") == "5"
    assert call.centre_variable("SMOKE_READSTATUS") == "OK"
    call.hangup()
    call.wait_ended()


def test_asterisk_log_is_readable_and_clean(sandbox: Sandbox) -> None:
    text = Path(sandbox.log_file).read_text()
    assert "Asterisk Ready" in text
    # Only the modules recguard needs are loaded, and none of them complains.
    assert " ERROR[" not in text


def test_env_file_has_the_keys_recguard_run_reads(sandbox: Sandbox) -> None:
    env = sandbox.credentials()
    for key in ("RECGUARD_ARI_URL", "RECGUARD_ARI_USER", "RECGUARD_ARI_PASSWORD", "RECGUARD_AMI_HOST",
                "RECGUARD_AMI_PORT", "RECGUARD_AMI_USER", "RECGUARD_AMI_SECRET", "RECGUARD_RECORDINGS_DIR",
                "RECGUARD_HASH_SECRET"):
        assert env.get(key), key
    assert env["RECGUARD_AMI_PORT"] == str(sandbox.ami_port)


def test_second_sandbox_up_and_down_leaves_nothing_behind(sandbox: Sandbox, tmp_path: Path) -> None:
    other = Sandbox(state_dir=tmp_path / "other", cache_dir=sandbox.cache_dir,
                    http_port=sandbox.http_port + 1, ami_port=sandbox.ami_port + 1)
    info = other.up(timeout=60)
    assert other.status()["ari_answers"]
    if info.root:
        assert info.root == str(sandbox.root_dir)  # the cached root is reused, not rebuilt
    other.down()
    assert not Path(f"/proc/{info.pid}").exists() or "Z" in Path(f"/proc/{info.pid}/stat").read_text().split()[2]
    mounts = Path("/proc/self/mounts").read_text()
    assert str(other.state_dir) not in mounts
    assert other.status() == {"running": False, "state_dir": str(other.state_dir)}
