"""A local Asterisk for trying recguard and for its integration tests.

The sandbox runs a real Asterisk (20 or newer) with a configuration rendered
from ``config/sandbox/``: HTTP/ARI and AMI on 127.0.0.1 only, fresh
credentials at every ``up`` written to an env file in the key names that
``recguard run`` reads, only the modules recguard needs, Asterisk's log in a
file, and the recordings spool in a known directory.

Where no ``asterisk`` binary is on PATH (Debian 12 has no package), the
sandbox builds a Debian sid root containing Asterisk 22 with ``mmdebstrap``
once, caches it, and runs Asterisk inside it with ``chroot``. The sandbox's
state directory is bind-mounted into the root at the same absolute path, so
Asterisk and recguard see every file under one name.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from ... import resources
from ...errors import UserError

ASTERISK_MIN_MAJOR = 20
ROOT_PACKAGES = ("asterisk", "asterisk-core-sounds-en", "asterisk-moh-opsound-wav")
# Facts the dialplan snippets set and the guard reads from every ARI event.
CHANNEL_VARS = (
    "RECGUARD_PURPOSE",
    "RECGUARD_NOTICES",
    "RECGUARD_CONSENT",
    "RECGUARD_OUTCOME",
    "RECGUARD_DECISION",
    "RECGUARD_RECORDING_ID",
)
TEMPLATES = (
    "asterisk.conf",
    "modules.conf",
    "http.conf",
    "ari.conf",
    "manager.conf",
    "logger.conf",
    "extensions.conf",
    "musiconhold.conf",
    "features.conf",
    "queues.conf",
    "indications.conf",
    "cdr.conf",
    "cel.conf",
    "ccss.conf",
    "acl.conf",
    "udptl.conf",
    "websocket_client.conf",
)


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

    @property
    def ari_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/ari"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def default_state_dir() -> Path:
    env = os.environ.get("RECGUARD_SANDBOX_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/recguard/sandbox")
    return _xdg("XDG_STATE_HOME", ".local/state") / "recguard" / "sandbox"


def default_cache_dir() -> Path:
    env = os.environ.get("RECGUARD_SANDBOX_CACHE")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/cache/recguard")
    return _xdg("XDG_CACHE_HOME", ".cache") / "recguard"


def _pid_alive(pid: int) -> bool:
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


def _runs_config(pid: int, config: Path) -> bool:
    """True when ``pid`` is alive and was started with ``config`` among its arguments.

    A pid saved in ``sandbox.json`` may, after a reboot or once it is reused,
    name an unrelated process; only one whose command line names this
    sandbox's ``asterisk.conf`` is the sandbox's Asterisk.
    """
    if not _pid_alive(pid):
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        # Gone meanwhile, or hidden from us: either way not provably ours.
        return False
    return os.fsencode(str(config)) in arguments


def _mounted_points() -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        # Mount points escape spaces as \040; the sandbox paths have none.
        return [line.split()[1] for line in mounts]


def _processes_in_root(root: Path) -> list[int]:
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


def _processes_naming(path: Path) -> list[int]:
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


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


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


class Sandbox:
    """One sandbox Asterisk, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path | None = None,
        cache_dir: Path | None = None,
        http_port: int = 8088,
        ami_port: int = 5038,
        mode: str | None = None,
    ) -> None:
        self.state_dir = (state_dir or default_state_dir()).resolve()
        self.cache_dir = (cache_dir or default_cache_dir()).resolve()
        self.http_port = http_port
        self.ami_port = ami_port
        self.mode = mode or os.environ.get("RECGUARD_SANDBOX_MODE", "auto")
        if self.mode not in ("auto", "host", "chroot"):
            raise SandboxError(
                f"RECGUARD_SANDBOX_MODE={self.mode!r} is not one of auto, host, chroot"
            )

    # -- paths -------------------------------------------------------------

    @property
    def etc_dir(self) -> Path:
        return self.state_dir / "etc"

    @property
    def log_file(self) -> Path:
        """Asterisk's full log (notices, warnings, verbose, DTMF)."""
        return self.state_dir / "log" / "full"

    @property
    def recordings_dir(self) -> Path:
        """Where MixMonitor writes, for recguard and for the tests."""
        return self.state_dir / "spool" / "monitor"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "recguard.env"

    @property
    def info_file(self) -> Path:
        return self.state_dir / "sandbox.json"

    @property
    def root_dir(self) -> Path:
        return self.cache_dir / "sid-asterisk-root"

    @property
    def config_file(self) -> Path:
        """The ``asterisk.conf`` this sandbox's Asterisk is started with (``-C``)."""
        return self.etc_dir / "asterisk.conf"

    def _runs(self, pid: int) -> bool:
        """The saved pid is alive and still this sandbox's Asterisk."""
        return _runs_config(pid, self.config_file)

    # -- public operations ---------------------------------------------------

    def info(self) -> SandboxInfo | None:
        try:
            data = json.loads(self.info_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SandboxError(f"{self.info_file}: unreadable ({exc}); remove it and run `recguard sandbox down`")
        return SandboxInfo(**data)

    def is_running(self) -> bool:
        info = self.info()
        return bool(info and self._runs(info.pid))

    def up(self, includes: Sequence[Path] = (), timeout: float = 60.0) -> SandboxInfo:
        """Start Asterisk and return once ARI answers."""
        if self.is_running():
            raise SandboxError(
                f"a sandbox already runs from {self.state_dir}; `recguard sandbox down` first"
            )
        self._cleanup_stale()
        for port in (self.http_port, self.ami_port):
            if not _port_free(port):
                raise SandboxError(
                    f"port {port} on 127.0.0.1 is taken (another Asterisk?); "
                    "choose others with --http-port/--ami-port"
                )
        mode, runner = self._choose_runtime()
        credentials = self._render_config(includes)
        for sub in ("run", "log", "lib", "cache", "spool/monitor", "recguard"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        # Recordings are personal data: only their owner may list or read them.
        self.recordings_dir.chmod(0o700)
        if self.log_file.exists():
            self.log_file.unlink()

        mounts: list[str] = []
        created: list[str] = []
        root = None
        if mode == "chroot":
            root = self.root_dir
            mounts, created = self._mount_into(root)
        self._install_prompts(root)
        console = open(self.state_dir / "log" / "console", "wb")
        try:
            process = subprocess.Popen(
                [*runner, "-f", "-n", "-C", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            self._unmount(mounts, created)
            raise SandboxError(f"could not start Asterisk ({' '.join(runner)}): {exc}")
        finally:
            console.close()
        info = SandboxInfo(
            mode=mode,
            pid=process.pid,
            http_port=self.http_port,
            ami_port=self.ami_port,
            state_dir=str(self.state_dir),
            root=str(root) if root else None,
            mounts=mounts,
            created_dirs=created,
            started_at=time.time(),
            includes=[str(Path(p).resolve()) for p in includes],
        )
        self._write_private(self.info_file, json.dumps(asdict(info), indent=2) + "\n")
        try:
            self._wait_ready(process, credentials, timeout)
        except SandboxError:
            self.down()
            raise
        self._ensure_key_file(Path(credentials["RECGUARD_KEY_FILE"]))
        self._write_env(credentials)
        return info

    def down(self, timeout: float = 15.0) -> None:
        """Stop Asterisk; leave no process and no mount behind."""
        info = self.info()
        if info is None:
            self._cleanup_stale()
            return
        # A pid that is gone or now names another program (reboot, pid reuse)
        # is never signalled: the sandbox is stale and only cleaned up.
        if self._runs(info.pid):
            try:
                self.cli("core stop now", timeout=5)
            except SandboxError:
                pass
            self._wait_exit(info.pid, timeout / 3)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                # Checked again right before each signal, as the pid may have
                # exited and been reused while we waited.
                if not self._runs(info.pid):
                    break
                try:
                    os.killpg(info.pid, sig)
                except ProcessLookupError:
                    break
                self._wait_exit(info.pid, timeout / 3)
            if self._runs(info.pid):
                raise SandboxError(f"Asterisk (pid {info.pid}) did not stop; kill it by hand")
        if info.root:
            self._kill_own_processes(Path(info.root))
        self._unmount(info.mounts, info.created_dirs)
        self.info_file.unlink(missing_ok=True)

    def status(self) -> dict[str, object]:
        info = self.info()
        if info is None:
            return {"running": False, "state_dir": str(self.state_dir)}
        alive = self._runs(info.pid)
        answers = False
        version = None
        if alive:
            creds = self._read_env()
            try:
                reply = requests.get(
                    f"{info.ari_url}/asterisk/info",
                    auth=(creds.get("RECGUARD_ARI_USER", ""), creds.get("RECGUARD_ARI_PASSWORD", "")),
                    timeout=3,
                )
                answers = reply.status_code == 200
                if answers:
                    version = reply.json().get("system", {}).get("version")
            except requests.RequestException:
                answers = False
        return {
            "running": alive,
            "ari_answers": answers,
            "asterisk_version": version,
            "mode": info.mode,
            "pid": info.pid,
            "ari_url": info.ari_url,
            "ami": f"127.0.0.1:{info.ami_port}",
            "state_dir": info.state_dir,
            "root": info.root,
            "env_file": str(self.env_file),
            "asterisk_log": str(self.log_file),
            "recordings_dir": str(self.recordings_dir),
            "includes": info.includes,
        }

    def cli(self, command: str, timeout: float = 15.0) -> str:
        """Run one Asterisk CLI command in the running sandbox and return its output."""
        info = self.info()
        if info is None or not self._runs(info.pid):
            raise SandboxError(f"no sandbox runs from {self.state_dir}; start one with `recguard sandbox up`")
        runner = ["chroot", info.root, "asterisk"] if info.root else [host_asterisk() or "asterisk"]
        try:
            done = subprocess.run(
                [*runner, "-C", str(self.config_file), "-rx", command],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(f"the Asterisk CLI did not answer {command!r} within {timeout:.0f} s")
        except OSError as exc:
            # `down` falls back to signals on a SandboxError; a vanished binary must not stop it.
            raise SandboxError(f"could not run the Asterisk CLI ({' '.join(runner)}): {exc}")
        if done.returncode != 0:
            raise SandboxError(f"the Asterisk CLI failed on {command!r}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_file.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        console = self.state_dir / "log" / "console"
        if console.exists():
            text += console.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def credentials(self) -> dict[str, str]:
        """The env file's keys, as ``recguard run`` will read them."""
        return self._read_env()

    # -- runtime -------------------------------------------------------------

    def _choose_runtime(self) -> tuple[str, list[str]]:
        binary = host_asterisk() if self.mode in ("auto", "host") else None
        if binary:
            return "host", [binary]
        if self.mode == "host":
            raise SandboxError(
                f"RECGUARD_SANDBOX_MODE=host but no asterisk {ASTERISK_MIN_MAJOR}+ is on PATH"
            )
        if os.geteuid() != 0:
            raise SandboxError(
                f"no asterisk {ASTERISK_MIN_MAJOR}+ on PATH, and building the Debian sid root "
                "with mmdebstrap and running it with chroot needs root; "
                "install Asterisk or run as root"
            )
        self.ensure_root()
        return "chroot", ["chroot", str(self.root_dir), "/usr/sbin/asterisk"]

    def will_build_root(self) -> bool:
        """True when the next `up` has to build the Debian sid root first (about 20 s)."""
        if self.mode != "chroot" and host_asterisk():
            return False
        return not (self.root_dir / "usr/sbin/asterisk").exists()

    @property
    def build_lock_file(self) -> Path:
        """Held (``flock``) by whichever process builds the root; never removed."""
        return self.cache_dir / "sid-asterisk-root.lock"

    def _ready_root(self) -> Path | None:
        root = self.root_dir
        if not (root / "usr/sbin/asterisk").exists():
            return None
        tmp = root / "tmp"
        if not tmp.is_dir():
            tmp.mkdir(exist_ok=True)
            tmp.chmod(0o1777)
        return root

    def ensure_root(self) -> Path:
        """Build the cached Debian sid root with Asterisk once; reuse it later.

        Two `up`s at once must not both build, nor the second one kill and
        delete the first one's half-built root: building is serialised by an
        exclusive lock on a file in the cache directory. The kernel releases
        the lock when its holder ends, however it ends, so a leftover
        ``.building`` directory found while holding the lock is stale.
        """
        ready = self._ready_root()
        if ready is not None:
            return ready
        if not shutil.which("mmdebstrap"):
            raise SandboxError(
                "no asterisk on PATH and no mmdebstrap to build a Debian sid root with one; "
                "apt-get install mmdebstrap (or install Asterisk 20+)"
            )
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # os.open's descriptor is not inherited, so mmdebstrap does not hold the lock.
        lock_fd = os.open(self.build_lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # Blocks while another process builds (about 20 s on a first `up`).
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            # The process we waited for may just have built it.
            ready = self._ready_root()
            if ready is not None:
                return ready
            return self._build_root()
        finally:
            os.close(lock_fd)  # releases the lock

    def _build_root(self) -> Path:
        """Run mmdebstrap; only with the build lock held."""
        root = self.root_dir
        building = self.cache_dir / "sid-asterisk-root.building"
        if building.exists():
            # Left by a builder that died: we hold the lock, so no live
            # `recguard` builds now. Its mmdebstrap may outlive it (the lock
            # goes with the process that took it), and only the builder ever
            # runs in a half-built root: both are ended before the removal.
            leftovers = set(_processes_in_root(building)) | set(_processes_naming(building))
            leftovers.discard(os.getpid())
            for pid in leftovers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while any(_pid_alive(pid) for pid in leftovers) and time.monotonic() < deadline:
                time.sleep(0.05)
            self._unmount([p for p in _mounted_points() if p.startswith(str(building) + "/")])
            shutil.rmtree(building)
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
        log_path = self.cache_dir / "mmdebstrap.log"
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

    def _mount_into(self, root: Path) -> tuple[list[str], list[str]]:
        mounts: list[str] = []
        inner = Path(str(root) + str(self.state_dir))
        created = [str(p) for p in [inner, *inner.parents] if root in p.parents and not p.exists()]
        try:
            proc = root / "proc"
            subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True, capture_output=True)
            mounts.append(str(proc))
            inner.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                ["mount", "--bind", str(self.state_dir), str(inner)], check=True, capture_output=True
            )
            mounts.append(str(inner))
        except subprocess.CalledProcessError as exc:
            self._unmount(mounts, created)
            raise SandboxError(f"could not mount into {root}: {exc.stderr.decode(errors='replace').strip()}")
        return mounts, created

    @staticmethod
    def _unmount(mounts: Iterable[str], created_dirs: Iterable[str] = ()) -> None:
        for point in reversed(list(mounts)):
            while point in _mounted_points():
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

    def _kill_own_processes(self, root: Path) -> None:
        """This sandbox's processes still in the chroot (a stuck CLI, say) are ended.

        The root is shared by every sandbox, so a process counts as ours only
        when its command line names this sandbox's configuration.
        """
        own_config = str(self.etc_dir / "asterisk.conf")
        for pid in _processes_in_root(root):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if own_config.encode() in cmdline:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                continue

    def _cleanup_stale(self) -> None:
        """Mounts or an info file left by a sandbox that died without `down`."""
        info = self.info()
        if info is not None and not self._runs(info.pid):
            if info.root:
                self._kill_own_processes(Path(info.root))
            self._unmount(info.mounts, info.created_dirs)
            self.info_file.unlink(missing_ok=True)

    def _wait_exit(self, pid: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # Reap it if it is our child (the tests start it in-process).
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            except ChildProcessError:
                pass
            if not self._runs(pid):
                return
            time.sleep(0.05)

    def _wait_ready(self, process: subprocess.Popen[bytes], creds: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.http_port}/ari/asterisk/info"
        auth = (creds["RECGUARD_ARI_USER"], creds["RECGUARD_ARI_PASSWORD"])
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SandboxError(
                    f"Asterisk exited at start (status {process.returncode}); its last log lines:\n"
                    + self.log_tail()
                )
            try:
                if requests.get(url, auth=auth, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise SandboxError(
            f"ARI did not answer at {url} within {timeout:.0f} s; Asterisk's last log lines:\n"
            + self.log_tail()
        )

    # -- configuration -------------------------------------------------------

    def _render_config(self, includes: Sequence[Path]) -> dict[str, str]:
        previous = self._read_env()
        creds = {
            "RECGUARD_ARI_URL": f"http://127.0.0.1:{self.http_port}/ari",
            "RECGUARD_ARI_USER": "recguard",
            "RECGUARD_ARI_PASSWORD": secrets.token_urlsafe(24),
            "RECGUARD_AMI_HOST": "127.0.0.1",
            "RECGUARD_AMI_PORT": str(self.ami_port),
            "RECGUARD_AMI_USER": "recguard",
            "RECGUARD_AMI_SECRET": secrets.token_urlsafe(24),
            "RECGUARD_RECORDINGS_DIR": str(self.recordings_dir),
            "RECGUARD_LEDGER": str(self.state_dir / "recguard" / "ledger.sqlite3"),
            "RECGUARD_DECISION_LOG": str(self.state_dir / "recguard" / "decisions.jsonl"),
            "RECGUARD_KEY_FILE": str(self.state_dir / "recguard" / "keys"),
            # Kept across `up`s: a new secret would make old caller hashes unfindable.
            "RECGUARD_HASH_SECRET": previous.get("RECGUARD_HASH_SECRET") or secrets.token_hex(32),
        }
        for missing in [Path(p) for p in includes if not Path(p).is_file()]:
            raise SandboxError(f"--include {missing}: no such file")
        self.etc_dir.mkdir(parents=True, exist_ok=True)
        include_dir = self.etc_dir / "include"
        if include_dir.exists():
            shutil.rmtree(include_dir)
        include_dir.mkdir()
        include_lines = []
        features_lines = []
        # recguard's own snippets first, then the user's, copied in so that a
        # chrooted Asterisk can read them.
        shipped = sorted(resources.dialplan_dir().glob("*.conf"))
        for index, source in enumerate([*shipped, *map(Path, includes)]):
            target = include_dir / f"{index:02d}-{source.name}"
            shutil.copyfile(source, target)
            target.chmod(0o600)
            if source.name.endswith("-features.conf"):
                features_lines.append(f'#include "{target}"')
            else:
                include_lines.append(f'#include "{target}"')
        values = {
            "state": str(self.state_dir),
            "http_port": str(self.http_port),
            "ami_port": str(self.ami_port),
            "ari_user": creds["RECGUARD_ARI_USER"],
            "ari_password": creds["RECGUARD_ARI_PASSWORD"],
            "ami_user": creds["RECGUARD_AMI_USER"],
            "ami_secret": creds["RECGUARD_AMI_SECRET"],
            "channelvars": ",".join(CHANNEL_VARS),
            "includes": "\n".join(include_lines),
            "applicationmap": "\n".join(features_lines),
        }
        templates = resources.config_dir() / "sandbox"
        for name in TEMPLATES:
            text = string.Template((templates / name).read_text(encoding="utf-8")).substitute(values)
            self._write_private(self.etc_dir / name, text)
        return creds

    @staticmethod
    def _ensure_key_file(path: Path) -> None:
        """Recordings are encrypted at rest; the sandbox has its own key, kept across `up`s."""
        if not path.exists():
            from ...vault import generate_key_file

            generate_key_file(path)

    def _write_env(self, creds: dict[str, str]) -> None:
        lines = ["# Written by `recguard sandbox up`; new ARI/AMI credentials at every up."]
        lines += [f"{key}={value}" for key, value in creds.items()]
        self._write_private(self.env_file, "\n".join(lines) + "\n")

    def _read_env(self) -> dict[str, str]:
        try:
            text = self.env_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
        return {key.strip(): value.strip() for key, value in pairs}

    @staticmethod
    def _write_private(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(path, 0o600)

    def _install_prompts(self, root: Path | None) -> None:
        """Build recguard's notice prompts and put them where Asterisk looks for sounds."""
        try:
            from ... import prompts
        except ImportError:
            return
        sounds = Path("/usr/share/asterisk/sounds")
        if root is None:
            sounds = Path(os.environ.get("RECGUARD_SANDBOX_SOUNDS", str(sounds)))
        prompts.install(sounds, root=root, cache_dir=self.cache_dir / "prompts")
