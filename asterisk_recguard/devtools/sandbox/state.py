"""What a sandbox is on disk: its default directories, the paths under them,
the ``sandbox.json`` it saves while running, and the error it raises."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import UserError


class SandboxError(UserError):
    """The sandbox could not do what was asked; the message says why and what to do."""


@dataclass
class SandboxInfo:
    """What runs where; saved as ``sandbox.json`` in the state directory."""

    mode: str  # "host" or "chroot"
    pid: int
    http_port: int
    ami_port: int
    state_dir: str
    root: str | None = None
    mounts: list[str] = field(default_factory=list)
    # Folders made inside the shared root for the bind mount; removed at `down`.
    created_dirs: list[str] = field(default_factory=list)
    started_at: float = 0.0
    includes: list[str] = field(default_factory=list)
    # None for a sandbox started before it spoke SIP.
    sip_port: int | None = None

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/ari"


def _default_dir(override: str, as_root: str, xdg: str, xdg_fallback: str, under_xdg: str) -> Path:
    """``$override`` if set; a system folder for root; else under the user's XDG folder."""
    if value := os.environ.get(override):
        return Path(value)
    if os.geteuid() == 0:
        return Path(as_root)
    base = os.environ.get(xdg)
    return (Path(base) if base else Path.home() / xdg_fallback) / under_xdg


def default_state_dir() -> Path:
    return _default_dir(
        "RECGUARD_SANDBOX_DIR", "/var/lib/recguard/sandbox",
        "XDG_STATE_HOME", ".local/state", "recguard/sandbox",
    )


def default_cache_dir() -> Path:
    return _default_dir(
        "RECGUARD_SANDBOX_CACHE", "/var/cache/recguard",
        "XDG_CACHE_HOME", ".cache", "recguard",
    )


class SandboxPaths:
    """Where one sandbox keeps its files: the state directory (its own) and
    the cache directory (the Debian sid root and prompts, shared by all)."""

    def __init__(self, state_dir: Path, cache_dir: Path) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir
        self.etc_dir = state_dir / "etc"
        # Asterisk's full log (notices, warnings, verbose, DTMF).
        self.log_file = state_dir / "log" / "full"
        # Where MixMonitor writes, for recguard and for the tests.
        self.recordings_dir = state_dir / "spool" / "monitor"
        self.env_file = state_dir / "recguard.env"
        self.info_file = state_dir / "sandbox.json"
        # The `asterisk.conf` this sandbox's Asterisk is started with (-C).
        self.config_file = self.etc_dir / "asterisk.conf"
        self.root_dir = cache_dir / "sid-asterisk-root"
        # Held (flock) by whichever process builds the root; never removed.
        self.build_lock_file = cache_dir / "sid-asterisk-root.lock"
