"""Where the sandbox's Asterisk comes from: an ``asterisk`` 20+ on PATH, or a
Debian sid root with Asterisk 22 that ``mmdebstrap`` builds once into the
cache (one builder at a time, under a lock) from this machine's mirror."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from .processes import mounted_points, pid_alive, processes_in_root, processes_naming, unmount
from .state import SandboxError, SandboxPaths

ASTERISK_MIN_MAJOR = 20
ROOT_PACKAGES = ("asterisk", "asterisk-core-sounds-en", "asterisk-moh-opsound-wav")


def host_asterisk() -> str | None:
    """An ``asterisk`` binary on PATH of version 20 or newer, if there is one."""
    binary = shutil.which("asterisk")
    if not binary:
        return None
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Asterisk (\d+)\.", out)
    if match and int(match.group(1)) >= ASTERISK_MIN_MAJOR:
        return binary
    return None


def machine_debian_mirror() -> str | None:
    """The Debian mirror this machine's apt already uses, so the repo never names one."""
    if env := os.environ.get("RECGUARD_SANDBOX_MIRROR"):
        return env
    candidates: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip().lower().startswith("uris:"):
                candidates.extend(line.split(":", 1)[1].split())
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.split()
            if parts and parts[0] == "deb":
                candidates.extend(p for p in parts[1:] if "://" in p)
    for uri in candidates:
        if uri.rstrip("/").endswith("/debian"):
            return uri.rstrip("/")
    return None


def choose_runtime(mode: str, paths: SandboxPaths) -> tuple[str, list[str]]:
    """The mode ("host" or "chroot") and the command that starts Asterisk in it."""
    binary = host_asterisk() if mode in ("auto", "host") else None
    if binary:
        return "host", [binary]
    if mode == "host":
        raise SandboxError(f"RECGUARD_SANDBOX_MODE=host but no asterisk {ASTERISK_MIN_MAJOR}+ is on PATH")
    if os.geteuid() != 0:
        raise SandboxError(
            f"no asterisk {ASTERISK_MIN_MAJOR}+ on PATH, and building the Debian sid root "
            "with mmdebstrap and running it with chroot needs root; "
            "install Asterisk or run as root"
        )
    ensure_root(paths)
    return "chroot", ["chroot", str(paths.root_dir), "/usr/sbin/asterisk"]


def will_build_root(mode: str, paths: SandboxPaths) -> bool:
    """True when the next `up` has to build the Debian sid root first (about 20 s)."""
    if mode != "chroot" and host_asterisk():
        return False
    return not (paths.root_dir / "usr/sbin/asterisk").exists()


def _ready_root(paths: SandboxPaths) -> Path | None:
    root = paths.root_dir
    if not (root / "usr/sbin/asterisk").exists():
        return None
    tmp = root / "tmp"
    if not tmp.is_dir():
        tmp.mkdir(exist_ok=True)
        tmp.chmod(0o1777)
    return root


def ensure_root(paths: SandboxPaths) -> Path:
    """Build the cached Debian sid root with Asterisk once; reuse it later.

    Two `up`s at once must not both build, nor the second one kill and
    delete the first one's half-built root: building is serialised by an
    exclusive lock on a file in the cache directory. The kernel releases
    the lock when its holder ends, however it ends, so a leftover
    ``.building`` directory found while holding the lock is stale.
    """
    ready = _ready_root(paths)
    if ready is not None:
        return ready
    if not shutil.which("mmdebstrap"):
        raise SandboxError(
            "no asterisk on PATH and no mmdebstrap to build a Debian sid root with one; "
            "apt-get install mmdebstrap (or install Asterisk 20+)"
        )
    paths.cache_dir.mkdir(parents=True, exist_ok=True)
    # os.open's descriptor is not inherited, so mmdebstrap does not hold the lock.
    lock_fd = os.open(paths.build_lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        # Blocks while another process builds (about 20 s on a first `up`).
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        # The process we waited for may just have built it.
        ready = _ready_root(paths)
        if ready is not None:
            return ready
        return _build_root(paths)
    finally:
        os.close(lock_fd)  # releases the lock


def _clear_stale_build(building: Path) -> None:
    """Remove a ``.building`` left by a builder that died; only with the build lock held.

    We hold the lock, so no live `recguard` builds now. Its mmdebstrap may
    outlive it (the lock goes with the process that took it), and only the
    builder ever runs in a half-built root: both are ended before the removal.
    """
    leftovers = set(processes_in_root(building)) | set(processes_naming(building))
    leftovers.discard(os.getpid())
    for pid in leftovers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(pid_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
        time.sleep(0.05)
    unmount([p for p in mounted_points() if p.startswith(str(building) + "/")])
    shutil.rmtree(building)


def _build_root(paths: SandboxPaths) -> Path:
    """Run mmdebstrap; only with the build lock held."""
    root = paths.root_dir
    building = paths.cache_dir / "sid-asterisk-root.building"
    if building.exists():
        _clear_stale_build(building)
    command = [
        "mmdebstrap",
        "--variant=apt",
        "--aptopt=Acquire::Check-Valid-Until \"false\"",
        f"--include={','.join(ROOT_PACKAGES)}",
        "sid",
        str(building),
    ]
    mirror = machine_debian_mirror()
    if mirror:
        command.append(mirror)
    log_path = paths.cache_dir / "mmdebstrap.log"
    with open(log_path, "wb") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise SandboxError(
            f"mmdebstrap could not build the Asterisk root (exit {done.returncode}); "
            f"full log in {log_path}:\n{tail}"
        )
    # Renamed only when complete, so a half-built root is never used.
    building.rename(root)
    return root
