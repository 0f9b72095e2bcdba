"""`recguard run`'s Prometheus endpoint on real calls: scraped during a call
and after it, and absent with RECGUARD_METRICS=off."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from asterisk_recguard.ari import wait_until
from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox

from .guardrun import guard_process, wait_app_registered

ORDER_FACTS = {
    "RECGUARD_PURPOSE": "order,general_info",
    "RECGUARD_NOTICES": "evidence-v1:complete",
    "RECGUARD_CONSENT": "none",
    "RECGUARD_OUTCOME": "unknown",
}
CALLER = "+38640123456"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> tuple[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[key] = sample.value
    return text, samples


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (from /proc: its sockets' inodes)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_endpoint_counts_a_real_call_during_and_after_it(sandbox: Sandbox, idle: CallerSimulator) -> None:
    port = free_port()
    output = sandbox.env_file.parent / "recguard-run.out"
    offset = output.stat().st_size if output.exists() else 0
    with guard_process(sandbox.env_file, RECGUARD_METRICS=f"127.0.0.1:{port}") as process:
        assert wait_app_registered(idle.client), "recguard run did not register its app"
        assert wait_until(lambda: listening_ports(process.pid) == {port}, 5), listening_ports(process.pid)
        assert wait_until(lambda: f"metrics on http://127.0.0.1:{port}/metrics"
                          in output.read_bytes()[offset:].decode(), 5)
        _, before = scrape(port)
        assert before["recguard_connection_up,link=ari"] == 1
        assert before["recguard_connection_up,link=ami"] == 1
        assert before["recguard_gate_duration_seconds_count"] == 0

        call = idle.call("recguard-test-guard", "direct", variables=ORDER_FACTS, caller_id=CALLER)
        call.wait_answered()
        assert call.wait_centre_variable("TEST_AFTER_GATE") == "yes"
        assert call.centre_variable("RECGUARD_DECISION") == "record"
        recording_id = call.centre_variable("RECGUARD_RECORDING_ID")
        assert recording_id
        text, during = scrape(port)
        assert during["recguard_recordings_in_progress"] == before["recguard_recordings_in_progress"] + 1
        assert during["recguard_decisions_total,decision=record,trigger=gate"] == 1
        assert during["recguard_rejections_total,purpose=general_info,reason=purpose_forbidden"] == 1
        assert during["recguard_recordings_started_total"] == 1
        assert during["recguard_calls_tracked"] == 1
        # No number, id or channel in any label.
        channel_id = call.centre_channel()["id"]
        for secret in (CALLER.lstrip("+"), "40123456", recording_id, channel_id):
            assert secret not in text

        call.hangup()
        call.wait_ended()
        after = wait_until(lambda: (s := scrape(port)[1])["recguard_recordings_finalized_total"] == 1 and s, 15)
        assert after, "the finalized recording was not counted"
        assert after["recguard_recordings_in_progress"] == before["recguard_recordings_in_progress"]
        assert after["recguard_gate_duration_seconds_count"] == 1
        assert 0 < after["recguard_gate_duration_seconds_sum"] < 2.0  # within RECGUARD_GATE_TIMEOUT
        assert after["recguard_ledger_commit_duration_seconds_count"] >= 1
        assert after["recguard_decisions_total,decision=record,trigger=hangup"] == 1
        assert after["recguard_gates_shed_total"] == 0 and after["recguard_gates_failed_total"] == 0
        assert after["recguard_recordings_overdue"] == 0
        # The guard's own purge ran at start, without failures.
        assert after["recguard_purges_total,result=ok"] >= 1
        assert 0 <= after["recguard_purge_age_seconds"] < 120
        assert process.poll() is None


def test_metrics_off_serves_nothing(sandbox: Sandbox, idle: CallerSimulator) -> None:
    with guard_process(sandbox.env_file, RECGUARD_METRICS="off") as process:
        assert wait_app_registered(idle.client), "recguard run did not register its app"
        assert listening_ports(process.pid) == set()
        assert process.poll() is None


def test_a_taken_port_is_a_warning_and_the_guard_still_guards(sandbox: Sandbox, idle: CallerSimulator) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = sandbox.env_file.parent / "recguard-run.out"
        offset = output.stat().st_size if output.exists() else 0
        with guard_process(sandbox.env_file, RECGUARD_METRICS=f"127.0.0.1:{port}") as process:
            assert wait_app_registered(idle.client), "recguard run did not register its app"
            assert process.poll() is None
            said = output.read_bytes()[offset:].decode()
            assert f"recguard: warning: metrics not served: cannot listen on 127.0.0.1:{port}" in said
            assert "Traceback" not in said
