"""The sandbox's processes and mounts: whether a pid is still this sandbox's
Asterisk, which processes run in a root, mounting the state directory into
the root and unmounting it, and ending only this sandbox's own processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from .state import SandboxError


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is gone for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def runs_config(pid: int, config: Path) -> bool:
    """True when ``pid`` is alive and was started with ``config`` among its arguments.

    A pid saved in ``sandbox.json`` may, after a reboot or once it is reused,
    name an unrelated process; only one whose command line names this
    sandbox's ``asterisk.conf`` is the sandbox's Asterisk.
    """
    if not pid_alive(pid):
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        # Gone meanwhile, or hidden from us: either way not provably ours.
        return False
    return os.fsencode(str(config)) in arguments


def wait_exit(pid: int, config: Path, timeout: float) -> None:
    """Wait until ``pid`` is no longer this sandbox's Asterisk, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # Reap it if it is our child (the tests start it in-process).
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        if not runs_config(pid, config) and not _exiting(pid):
            return
        time.sleep(0.05)


def _exiting(pid: int) -> bool:
    """Alive but with its memory already released: on its way out, not yet a zombie
    (its command line reads empty then, so it no longer looks like ours)."""
    try:
        return pid_alive(pid) and not Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def mounted_points() -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        # Mount points escape spaces as \040; the sandbox paths have none.
        return [line.split()[1] for line in mounts]


def processes_in_root(root: Path) -> list[int]:
    target = str(root.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "root") == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def processes_naming(path: Path) -> list[int]:
    """Processes with ``path`` as one of their arguments (an orphaned mmdebstrap, say)."""
    wanted = os.fsencode(str(path))
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if wanted in (entry / "cmdline").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def kill_own_processes(root: Path, config: Path) -> None:
    """This sandbox's processes still in the chroot (a stuck CLI, say) are ended.

    The root is shared by every sandbox, so a process counts as ours only
    when its command line names this sandbox's configuration.
    """
    own_config = str(config)
    for pid in processes_in_root(root):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if own_config.encode() in cmdline:
                os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def mount_into(root: Path, state_dir: Path) -> tuple[list[str], list[str]]:
    """Mount ``/proc`` in ``root`` and bind ``state_dir`` at the same path inside it.

    Returns the mount points and the folders made inside the root for them.
    """
    mounts: list[str] = []
    inner = Path(str(root) + str(state_dir))
    created = [str(p) for p in [inner, *inner.parents] if root in p.parents and not p.exists()]
    try:
        proc = root / "proc"
        subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True, capture_output=True)
        mounts.append(str(proc))
        inner.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "--bind", str(state_dir), str(inner)], check=True, capture_output=True)
        mounts.append(str(inner))
    except subprocess.CalledProcessError as exc:
        unmount(mounts, created)
        raise SandboxError(f"could not mount into {root}: {exc.stderr.decode(errors='replace').strip()}")
    return mounts, created


def unmount(mounts: Iterable[str], created_dirs: Iterable[str] = ()) -> None:
    for point in reversed(list(mounts)):
        while point in mounted_points():
            done = subprocess.run(["umount", point], capture_output=True)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True)
                break
    # Deepest first; a folder another sandbox still uses is not empty and stays.
    for folder in sorted(created_dirs, key=len, reverse=True):
        try:
            Path(folder).rmdir()
        except OSError:
            pass
