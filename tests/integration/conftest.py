"""Integration tests place real calls on a real Asterisk (the sandbox).

They skip, saying why, only where neither root nor an ``asterisk`` 20+ binary
is available. Under CI (``CI=true``) or with ``RECGUARD_REQUIRE_INTEGRATION=1``
an unavailable sandbox fails the run instead: skipped integration tests would
prove nothing. The same holds for the SIP tests and SIPp (``sip-tester``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from asterisk_recguard.devtools.callsim import CallerSimulator
from asterisk_recguard.devtools.sandbox import Sandbox, host_asterisk

from . import sipp

DIALPLAN = Path(__file__).parent / "dialplan"
HTTP_PORT = int(os.environ.get("RECGUARD_TEST_HTTP_PORT", "18088"))
AMI_PORT = int(os.environ.get("RECGUARD_TEST_AMI_PORT", "15038"))


def _unavailable_reason() -> str | None:
    if host_asterisk():
        return None
    if os.geteuid() == 0:
        return None
    return (
        "integration tests need either root (to build and chroot into a Debian sid root "
        "with Asterisk 22 via mmdebstrap) or an asterisk 20+ binary on PATH; "
        "this machine has neither"
    )


def _must_run() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes") or os.environ.get(
        "RECGUARD_REQUIRE_INTEGRATION"
    ) == "1"


def _unavailable(reason: str) -> None:
    if _must_run():
        pytest.fail(reason + " (and CI requires the integration tests to run)", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    reason = _unavailable_reason()
    if reason:
        _unavailable(reason)
    state = tmp_path_factory.mktemp("sandbox")
    box = Sandbox(state_dir=state, http_port=HTTP_PORT, ami_port=AMI_PORT)
    box.up(includes=sorted(DIALPLAN.glob("*.conf")), timeout=90)
    try:
        yield box
    finally:
        box.down()
        if not os.environ.get("RECGUARD_KEEP_SANDBOX"):
            shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="session")
def sandbox_env(sandbox: Sandbox) -> dict[str, str]:
    return sandbox.credentials()


@pytest.fixture(scope="session")
def callers(sandbox: Sandbox, sandbox_env: dict[str, str]) -> Iterator[CallerSimulator]:
    sim = CallerSimulator(
        sandbox_env["RECGUARD_ARI_URL"], sandbox_env["RECGUARD_ARI_USER"], sandbox_env["RECGUARD_ARI_PASSWORD"]
    )
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def idle(callers: CallerSimulator) -> CallerSimulator:
    """A simulator on an Asterisk with no calls left over from an earlier test."""
    return idle_callers(callers)


def idle_callers(callers: CallerSimulator) -> CallerSimulator:
    """Hang up every channel left on the simulator's Asterisk and wait until none is."""
    for channel in callers.client.channels():
        try:
            callers.client.hangup(channel["id"])
        except Exception:
            pass
    assert callers.wait_idle(10), "channels from an earlier test did not go away"
    return callers


@pytest.fixture(scope="session")
def sipp_ready(sandbox: Sandbox) -> Sandbox:
    """The sandbox, once SIPp can call it (see ``sipp.unavailable_reason``)."""
    reason = sipp.unavailable_reason()
    if reason:
        _unavailable(reason)
    return sandbox
