"""sandbox: never signal a process that is not ours; never let two builds of the root collide.

Nothing here starts Asterisk or runs the real mmdebstrap: the "Asterisk" is a
sleeping Python whose command line names (or does not name) the sandbox's
``asterisk.conf``, and mmdebstrap is a shell script early on PATH.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from asterisk_recguard.devtools.sandbox import Sandbox, SandboxError, SandboxInfo, _pid_alive

SLEEPER = "import time; time.sleep(30)"


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv("RECGUARD_SANDBOX_MODE", raising=False)
    # Port 1 answers nothing, so status() does not find some unrelated ARI.
    return Sandbox(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", http_port=1, ami_port=2)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process a test starts is killed at its end, whatever happened."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=5)


def write_info(box: Sandbox, pid: int) -> None:
    info = SandboxInfo(
        mode="host", pid=pid, http_port=box.http_port, ami_port=box.ami_port, state_dir=str(box.state_dir)
    )
    box.state_dir.mkdir(parents=True, exist_ok=True)
    box.info_file.write_text(json.dumps(asdict(info)))


# --------------------------------------------------------------------------
# the pid in sandbox.json


def foreign_commands(box: Sandbox) -> list[list[str]]:
    other_conf = box.state_dir.parent / "other" / "etc" / "asterisk.conf"
    return [
        ["sleep", "30"],
        # Another sandbox's Asterisk: a different asterisk.conf.
        [sys.executable, "-c", SLEEPER, "-f", "-n", "-C", str(other_conf)],
        # Our path as a mere prefix of an argument is not ours either.
        [sys.executable, "-c", SLEEPER, "-C", str(box.config_file) + ".old"],
    ]


@pytest.mark.parametrize("which", range(3), ids=["sleep", "other-sandbox", "prefix"])
def test_a_reused_pid_is_not_a_running_sandbox_and_is_not_killed(
    sandbox: Sandbox, processes: list[subprocess.Popen[bytes]], which: int
) -> None:
    # Its own session, like the real Asterisk: killpg(pid) would reach it.
    stranger = subprocess.Popen(foreign_commands(sandbox)[which], start_new_session=True)
    processes.append(stranger)
    write_info(sandbox, stranger.pid)

    assert not sandbox.is_running()
    assert sandbox.status()["running"] is False
    with pytest.raises(SandboxError, match="no sandbox runs"):
        sandbox.cli("core show version")

    sandbox.down(timeout=1.5)

    time.sleep(0.1)  # a signal sent would have landed by now
    assert stranger.poll() is None, "down() signalled a process that is not the sandbox's Asterisk"
    assert _pid_alive(stranger.pid)
    assert not sandbox.info_file.exists(), "a stale sandbox.json is left behind"


def test_the_stale_info_is_cleared_by_up_s_cleanup_too(
    sandbox: Sandbox, processes: list[subprocess.Popen[bytes]]
) -> None:
    stranger = subprocess.Popen(["sleep", "30"], start_new_session=True)
    processes.append(stranger)
    write_info(sandbox, stranger.pid)
    sandbox._cleanup_stale()
    assert not sandbox.info_file.exists()
    assert stranger.poll() is None


def test_our_own_asterisk_is_running_and_is_stopped(
    sandbox: Sandbox, processes: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = subprocess.Popen(
        [sys.executable, "-c", SLEEPER, "-f", "-n", "-C", str(sandbox.config_file)], start_new_session=True
    )
    processes.append(ours)
    write_info(sandbox, ours.pid)
    deadline = time.monotonic() + 3
    # Right after fork the child's cmdline may still be the parent's.
    while not sandbox.is_running() and time.monotonic() < deadline:
        time.sleep(0.02)

    assert sandbox.is_running()
    assert sandbox.status()["running"] is True

    asked: list[str] = []

    def no_cli(command: str, timeout: float = 15.0) -> str:
        asked.append(command)
        raise SandboxError("no CLI in this test")

    monkeypatch.setattr(sandbox, "cli", no_cli)
    started = time.monotonic()
    sandbox.down(timeout=1.5)

    assert asked == ["core stop now"]
    assert time.monotonic() - started < 1.4, "SIGTERM was not sent"
    assert not _pid_alive(ours.pid)
    assert not sandbox.info_file.exists()
    assert not sandbox.is_running()


# --------------------------------------------------------------------------
# building the root: one builder at a time

FAKE_MMDEBSTRAP = textwrap.dedent(
    """\
    #!/bin/sh
    # Stands in for mmdebstrap: `... sid TARGET [MIRROR]`.
    echo "$@" >> "$FAKE_CALLS"
    if [ ! -e "$FAKE_REQUIRE" ]; then
        echo "fake mmdebstrap: ran while another process held the build lock"
        exit 3
    fi
    prev=""
    for arg in "$@"; do
        if [ "$prev" = sid ]; then target="$arg"; fi
        prev="$arg"
    done
    mkdir -p "$target/usr/sbin" && : > "$target/usr/sbin/asterisk"
    """
)

LOCK_HOLDER = textwrap.dedent(
    """\
    import fcntl, os, sys, time
    lock, hold, released, watch, build = sys.argv[1:6]
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(float(hold))
    if watch:
        print("intact" if os.path.exists(watch) else "removed", flush=True)
    if build:
        os.makedirs(build + ".building/usr/sbin")
        open(build + ".building/usr/sbin/asterisk", "w").close()
        os.rename(build + ".building", build)
    open(released, "w").close()
    fcntl.flock(fd, fcntl.LOCK_UN)
    """
)


@pytest.fixture
def fake_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mmdebstrap"
    script.write_text(FAKE_MMDEBSTRAP)
    script.chmod(0o755)
    paths = {"calls": tmp_path / "mmdebstrap-calls", "released": tmp_path / "lock-released"}
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(paths["calls"]))
    monkeypatch.setenv("FAKE_REQUIRE", str(paths["released"]))
    monkeypatch.setenv("RECGUARD_SANDBOX_MIRROR", "http://mirror.invalid/debian")
    return paths


def hold_lock(
    box: Sandbox, released: Path, hold: float, watch: Path | None = None, build: bool = False
) -> subprocess.Popen[str]:
    box.cache_dir.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            LOCK_HOLDER,
            str(box.build_lock_file),
            str(hold),
            str(released),
            str(watch or ""),
            str(box.root_dir) if build else "",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "locked\n"
    return holder


def test_a_build_waits_for_the_lock_and_leaves_the_other_builder_s_work_alone(
    sandbox: Sandbox, fake_mmdebstrap: dict[str, Path], processes: list[subprocess.Popen[bytes]]
) -> None:
    # The other process's half-built root, as it is while mmdebstrap runs.
    in_progress = sandbox.cache_dir / "sid-asterisk-root.building" / "var" / "half-done"
    in_progress.mkdir(parents=True)
    holder = hold_lock(sandbox, fake_mmdebstrap["released"], hold=0.6, watch=in_progress)
    processes.append(holder)  # type: ignore[arg-type]

    started = time.monotonic()
    root = sandbox.ensure_root()
    waited = time.monotonic() - started

    out, _ = holder.communicate(timeout=5)
    assert out.strip() == "intact", "the waiting build removed the holder's .building directory"
    assert waited >= 0.4, "ensure_root() did not wait for the lock"
    assert root == sandbox.root_dir
    assert (root / "usr/sbin/asterisk").exists()
    # Built once, after the release; the stale .building was cleared first.
    assert len(fake_mmdebstrap["calls"].read_text().splitlines()) == 1
    assert not (sandbox.cache_dir / "sid-asterisk-root.building").exists()


def test_a_build_finished_by_the_lock_holder_is_reused_not_rebuilt(
    sandbox: Sandbox, fake_mmdebstrap: dict[str, Path], processes: list[subprocess.Popen[bytes]]
) -> None:
    holder = hold_lock(sandbox, fake_mmdebstrap["released"], hold=0.5, build=True)
    processes.append(holder)  # type: ignore[arg-type]
    # Before the holder finishes, the root is missing: ensure_root() must wait.
    assert not (sandbox.root_dir / "usr/sbin/asterisk").exists()

    root = sandbox.ensure_root()

    assert root == sandbox.root_dir
    assert (root / "usr/sbin/asterisk").exists()
    assert not fake_mmdebstrap["calls"].exists(), "mmdebstrap ran although the root had just been built"
    holder.communicate(timeout=5)
    assert holder.returncode == 0


def test_a_builder_killed_with_sigkill_releases_the_lock(
    sandbox: Sandbox, fake_mmdebstrap: dict[str, Path], processes: list[subprocess.Popen[bytes]]
) -> None:
    holder = hold_lock(sandbox, fake_mmdebstrap["released"], hold=30)
    processes.append(holder)  # type: ignore[arg-type]

    def kill_holder() -> None:
        fake_mmdebstrap["released"].touch()  # before the kill: the lock is held until then
        holder.kill()

    timer = threading.Timer(0.3, kill_holder)
    timer.start()
    try:
        root = sandbox.ensure_root()
    finally:
        timer.cancel()
    assert (root / "usr/sbin/asterisk").exists()
    assert holder.wait(timeout=5) == -signal.SIGKILL
    assert len(fake_mmdebstrap["calls"].read_text().splitlines()) == 1


def test_an_orphaned_builder_of_a_stale_building_dir_is_ended_before_the_rebuild(
    sandbox: Sandbox, fake_mmdebstrap: dict[str, Path], processes: list[subprocess.Popen[bytes]]
) -> None:
    building = sandbox.cache_dir / "sid-asterisk-root.building"
    (building / "usr").mkdir(parents=True)
    # An mmdebstrap whose recguard died (the lock went with it) still writes there.
    orphan = subprocess.Popen([sys.executable, "-c", SLEEPER, "sid", str(building)])
    processes.append(orphan)
    fake_mmdebstrap["released"].touch()  # nobody holds the lock

    root = sandbox.ensure_root()

    assert orphan.wait(timeout=5) == -signal.SIGKILL
    assert (root / "usr/sbin/asterisk").exists()


def test_the_ready_root_is_returned_without_mmdebstrap_or_lock(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    (sandbox.root_dir / "usr/sbin").mkdir(parents=True)
    (sandbox.root_dir / "usr/sbin/asterisk").touch()
    monkeypatch.setenv("PATH", "/nonexistent")
    assert sandbox.ensure_root() == sandbox.root_dir
    assert not sandbox.build_lock_file.exists()
