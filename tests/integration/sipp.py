"""SIPp from the integration tests: a scenario from tests/integration/sipp/
with its ``{{placeholders}}`` filled in, run against the sandbox from free
ports on 127.0.0.1 with a timeout, and a result that says whether the call
went as scripted and, when not, what SIPp saw.

What a party sends (silence, speech, keys) is a pcap written by
``asterisk_recguard.devtools.rtppcap`` and played by the scenario's
``play_pcap_audio``. SIPp plays pcaps through a raw socket, which needs root.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from pathlib import Path

from asterisk_recguard.devtools.sandbox.sip import free_udp_port, udp_port_free

SCENARIOS = Path(__file__).parent / "sipp"
HOST = "127.0.0.1"
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_serial = count(1)
# Ports handed out in this run, never handed out twice: calls start in parallel.
_handed_out: set[int] = set()
_ports_lock = threading.Lock()
# A SIPp whose port was taken between our check and its bind exits at once; it is started again.
BIND_ATTEMPTS = 3


def unavailable_reason() -> str | None:
    """Why SIPp calls cannot be placed here, or None when they can."""
    if shutil.which("sipp") is None:
        return "SIPp is not installed (Debian package sip-tester: apt-get install sip-tester)"
    if os.geteuid() != 0:
        return "SIPp plays the callers' RTP through a raw socket, which needs root"
    return None


def free_port() -> int:
    """A free UDP port for SIPp's SIP side (the kernel's choice)."""
    with _ports_lock:
        while True:
            port = free_udp_port()
            if port not in _handed_out:
                _handed_out.add(port)
                return port


def free_media_port() -> int:
    """A port that is free with the three above it (SIPp binds it and it + 2),
    above the RTP ports an Asterisk takes by default (up to 31000)."""
    with _ports_lock:
        for _ in range(200):
            port = random.randrange(40000, 60000, 4)
            if port not in _handed_out and all(udp_port_free(port + n) for n in range(4)):
                _handed_out.add(port)
                return port
    raise RuntimeError("no free UDP ports for SIPp's media")


def render(scenario: str, into: Path, **values: object) -> Path:
    """``sipp/<scenario>.xml`` with its placeholders filled in, written under ``into``."""
    text = (SCENARIOS / f"{scenario}.xml").read_text(encoding="utf-8")
    wanted = set(_PLACEHOLDER.findall(text))
    if wanted != set(values):
        raise ValueError(f"{scenario}.xml takes {sorted(wanted)}, got {sorted(values)}")
    for key, value in values.items():
        if "]]>" in str(value) or "[" in str(value):
            raise ValueError(f"{key}={value!r} would break the scenario (CDATA end or a SIPp [keyword])")
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{scenario}-{next(_serial)}.xml"
    path.write_text(_PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), text), encoding="utf-8")
    return path


def sip_quoted(text: str) -> str:
    """``text`` for the inside of a SIP quoted string (a display name)."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class SippResult:
    name: str
    returncode: int | None  # None: still running at its timeout, and killed
    seconds: float
    log_dir: Path

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def report(self, lines: int = 40) -> str:
        """What went wrong, for an assertion message: SIPp's errors and its last messages."""
        status = "killed at its timeout" if self.returncode is None else f"exit {self.returncode}"
        parts = [f"sipp {self.name}: {status} after {self.seconds:.1f} s (logs in {self.log_dir})"]
        for log in ("errors.log", "messages.log", "screen.log"):
            path = self.log_dir / log
            if path.exists():
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(parts)


@dataclass(frozen=True)
class SipMessage:
    at: datetime  # when SIPp sent or received it, timezone-aware
    received: bool
    text: str

    def header(self, name: str) -> str | None:
        for line in self.text.splitlines()[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()


_TRACE_HEAD = re.compile(r"^-{40,} (\d{4}-\d\d-\d\d[ \t]\d\d:\d\d:\d\d\.\d{6})", re.M)


def messages(log_dir: Path) -> list[SipMessage]:
    """The SIP messages of a run's ``-trace_msg`` log, in order, with SIPp's
    (local) times."""
    text = (log_dir / "messages.log").read_text(encoding="utf-8", errors="replace")
    heads = list(_TRACE_HEAD.finditer(text))
    found = []
    for head, following in zip(heads, [*heads[1:], None]):
        body = text[head.end():following.start() if following else len(text)].strip("\n")
        kind, _, message = body.partition("\n")
        when = datetime.strptime(head.group(1).replace("\t", " "), "%Y-%m-%d %H:%M:%S.%f").astimezone()
        found.append(SipMessage(when, "received" in kind, message.strip()))
    return found


class SippProcess:
    """One SIPp run in the background; ``wait`` gives its result."""

    def __init__(self, name: str, command: list[str], log_dir: Path, timeout: float) -> None:
        self.name = name
        self.log_dir = log_dir
        self.timeout = timeout
        self.started = time.monotonic()
        with open(log_dir / "screen.log", "wb") as screen:
            self.process = subprocess.Popen(
                command, cwd=log_dir, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT
            )

    def failed_to_bind(self) -> bool:
        """SIPp exited at once because a port was taken (it exits within milliseconds)."""
        try:
            returncode = self.process.wait(0.3)
        except subprocess.TimeoutExpired:
            return False
        screen = (self.log_dir / "screen.log").read_text(encoding="utf-8", errors="replace")
        return returncode != 0 and "Unable to bind" in screen

    def wait(self) -> SippResult:
        # SIPp ends itself at -timeout; this is the safety net if it does not.
        left = self.timeout + 10 - (time.monotonic() - self.started)
        try:
            returncode: int | None = self.process.wait(max(left, 0.1))
        except subprocess.TimeoutExpired:
            self.stop()
            returncode = None
        return SippResult(self.name, returncode, time.monotonic() - self.started, self.log_dir)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def start(
    name: str,
    scenario: Path,
    log_dir: Path,
    *,
    timeout: float,
    target: str | None = None,
    service: str | None = None,
    port: int | None = None,
    calls: int = 1,
) -> SippProcess:
    """Run ``scenario`` in the background for ``calls`` calls.

    With ``target`` (``host:port``) SIPp is a client that places the calls;
    without, a server that answers them on ``port``. It gives up, and fails,
    after ``timeout`` seconds.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    for _ in range(BIND_ATTEMPTS):
        command = [
            "sipp",
            *([target] if target else []),
            "-sf", str(scenario),
            "-m", str(calls),
            "-i", HOST, "-p", str(port or free_port()), "-bind_local",
            "-mi", HOST, "-mp", str(free_media_port()),
            "-nostdin",
            "-timeout", f"{max(1, round(timeout))}s", "-timeout_error",
            "-trace_err", "-error_file", str(log_dir / "errors.log"),
            "-trace_msg", "-message_file", str(log_dir / "messages.log"),
        ]
        if service is not None:
            command += ["-s", service]
        if target:
            command += ["-l", str(calls)]
        process = SippProcess(name, command, log_dir, timeout)
        if not process.failed_to_bind():
            break
    return process

