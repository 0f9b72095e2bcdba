"""Running the guard against the sandbox from a test, in-process or as a real process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asterisk_recguard.ari import wait_until
from asterisk_recguard.daemon import Daemon
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.settings import load_settings


def read_log(path: Path, settle: float = 0.05) -> list[dict[str, Any]]:
    """The decision log's lines, once it has stopped growing for ``settle``
    seconds (at most 2 s): the daemon writes it from a thread of its own, so
    a line may follow the ledger row it goes with by a moment."""
    if not path.exists():
        return []
    deadline = time.monotonic() + 2.0
    size = path.stat().st_size
    while time.monotonic() < deadline:
        time.sleep(settle)
        now = path.stat().st_size
        if now == size:
            break
        size = now
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextmanager
def guard_in_process(env_file: Path, **overrides: str) -> Iterator[Daemon]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    environ.update(overrides)
    daemon = Daemon(load_settings(env_file, environ=environ))
    daemon.start()
    assert daemon.events.connected.is_set(), "the guard did not connect to ARI"
    assert daemon.ami.connected.is_set(), "the guard did not connect to AMI"
    try:
        yield daemon
    finally:
        daemon.stop()


def spawn_guard(env_file: Path, **overrides: str) -> subprocess.Popen[bytes]:
    """`recguard run` as a separate process, as an administrator runs it.

    Its output goes to a file beside the env file, never to a pipe nobody
    reads (a full pipe would block the guard).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")}
    env.update(overrides)
    with open(env_file.parent / "recguard-run.out", "ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "asterisk_recguard", "run", "--env-file", str(env_file)],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def guard_process(env_file: Path, **overrides: str) -> Iterator[subprocess.Popen[bytes]]:
    process = spawn_guard(env_file, **overrides)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], wait: float = 15) -> None:
    """SIGTERM, and SIGKILL if it has not ended within ``wait`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_app_registered(ari_client: Any, app: str = "recguard", timeout: float = 10.0) -> bool:
    return bool(wait_until(lambda: ari_client.app_registered(app), timeout))


def open_ledger(env: dict[str, str]) -> Ledger:
    return Ledger(env["RECGUARD_LEDGER"])
