"""A local Asterisk for trying recguard and for its integration tests.

The sandbox runs a real Asterisk (20 or newer) with a configuration rendered
from ``config/sandbox/``: HTTP/ARI, AMI and SIP (UDP) on 127.0.0.1 only, fresh
credentials at every ``up`` written to an env file in the key names that
``recguard run`` reads, two SIP extensions for softphones, only the modules
recguard needs, Asterisk's log in a file, and the recordings spool in a known
directory.

Where no ``asterisk`` binary is on PATH (Debian 12 has no package), the
sandbox builds a Debian sid root containing Asterisk 22 with ``mmdebstrap``
once, caches it, and runs Asterisk inside it with ``chroot``. The sandbox's
state directory is bind-mounted into the root at the same absolute path, so
Asterisk and recguard see every file under one name.

This module is the facade (`Sandbox`: up, down, status, cli); its paths, the root,
the processes and mounts, the rendered configuration and its SIP side have
modules of their own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import requests

from . import processes, render, root, sip
from .processes import pid_alive, port_free, runs_config
from .render import CHANNEL_VARS, TEMPLATES
from .root import ASTERISK_MIN_MAJOR, ROOT_PACKAGES, host_asterisk, machine_debian_mirror
from .state import SandboxError, SandboxInfo, SandboxPaths, default_cache_dir, default_state_dir

__all__ = [
    "ASTERISK_MIN_MAJOR",
    "CHANNEL_VARS",
    "ROOT_PACKAGES",
    "TEMPLATES",
    "Sandbox",
    "SandboxError",
    "SandboxInfo",
    "default_cache_dir",
    "default_state_dir",
    "host_asterisk",
    "machine_debian_mirror",
    "pid_alive",
]

# The name the tests have always used.
_pid_alive = pid_alive


class Sandbox(SandboxPaths):
    """One sandbox Asterisk, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path | None = None,
        cache_dir: Path | None = None,
        http_port: int = 8088,
        ami_port: int = 5038,
        mode: str | None = None,
        sip_port: int | None = None,
    ) -> None:
        super().__init__(
            (state_dir or default_state_dir()).resolve(), (cache_dir or default_cache_dir()).resolve()
        )
        self.http_port = http_port
        self.ami_port = ami_port
        # None: a free UDP port, chosen at each `up`.
        self.sip_port = sip_port
        self.mode = mode or os.environ.get("RECGUARD_SANDBOX_MODE", "auto")
        if self.mode not in ("auto", "host", "chroot"):
            raise SandboxError(
                f"RECGUARD_SANDBOX_MODE={self.mode!r} is not one of auto, host, chroot"
            )

    def _runs(self, pid: int) -> bool:
        """The saved pid is alive and still this sandbox's Asterisk."""
        return runs_config(pid, self.config_file)

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
            if not port_free(port):
                raise SandboxError(
                    f"port {port} on 127.0.0.1 is taken (another Asterisk?); "
                    "choose others with --http-port/--ami-port"
                )
        sip_port = sip.choose_port(self.sip_port)
        mode, runner = root.choose_runtime(self.mode, self)
        credentials = self._render_config(includes, sip_port)
        for sub in ("run", "log", "lib", "cache", "spool/monitor", "recguard"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True)
        # Recordings are personal data: only their owner may list or read them.
        self.recordings_dir.chmod(0o700)
        render.ensure_ledger(Path(credentials["RECGUARD_LEDGER"]), self.recordings_dir)
        if self.log_file.exists():
            self.log_file.unlink()

        mounts: list[str] = []
        created: list[str] = []
        root_dir = None
        if mode == "chroot":
            root_dir = self.root_dir
            mounts, created = processes.mount_into(root_dir, self.state_dir)
        render.install_prompts(root_dir, self.cache_dir)
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
            processes.unmount(mounts, created)
            raise SandboxError(f"could not start Asterisk ({' '.join(runner)}): {exc}")
        finally:
            console.close()
        info = SandboxInfo(
            mode=mode,
            pid=process.pid,
            http_port=self.http_port,
            ami_port=self.ami_port,
            state_dir=str(self.state_dir),
            root=str(root_dir) if root_dir else None,
            mounts=mounts,
            created_dirs=created,
            started_at=time.time(),
            includes=[str(Path(p).resolve()) for p in includes],
            sip_port=sip_port,
        )
        render.write_private(self.info_file, json.dumps(asdict(info), indent=2) + "\n")
        try:
            self._wait_ready(process, credentials, timeout)
        except SandboxError:
            self.down()
            raise
        render.ensure_key_file(Path(credentials["RECGUARD_KEY_FILE"]))
        render.write_env(self.env_file, credentials)
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
            processes.wait_exit(info.pid, self.config_file, timeout / 3)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                # Checked again right before each signal, as the pid may have
                # exited and been reused while we waited.
                if not self._runs(info.pid):
                    break
                try:
                    os.killpg(info.pid, sig)
                except ProcessLookupError:
                    break
                processes.wait_exit(info.pid, self.config_file, timeout / 3)
            if self._runs(info.pid):
                raise SandboxError(f"Asterisk (pid {info.pid}) did not stop; kill it by hand")
        self._release(info)

    def status(self) -> dict[str, object]:
        info = self.info()
        if info is None:
            return {"running": False, "state_dir": str(self.state_dir)}
        alive = self._runs(info.pid)
        answers = False
        version = None
        creds = self.credentials()
        if alive:
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
            **sip.status_fields(info.sip_port, creds),
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
        return render.read_env(self.env_file)

    def will_build_root(self) -> bool:
        """True when the next `up` has to build the Debian sid root first (about 20 s)."""
        return root.will_build_root(self.mode, self)

    def ensure_root(self) -> Path:
        """Build the cached Debian sid root with Asterisk once, under the build lock; reuse it later."""
        return root.ensure_root(self)

    # -- helpers -------------------------------------------------------------

    def _render_config(self, includes: Sequence[Path], sip_port: int | None = None) -> dict[str, str]:
        port = sip_port if sip_port is not None else sip.choose_port(self.sip_port)
        return render.render_config(self, self.http_port, self.ami_port, includes, port)

    def _release(self, info: SandboxInfo) -> None:
        """End our processes left in the root, unmount, and forget the saved info."""
        if info.root:
            processes.kill_own_processes(Path(info.root), self.config_file)
        processes.unmount(info.mounts, info.created_dirs)
        self.info_file.unlink(missing_ok=True)

    def _cleanup_stale(self) -> None:
        """Mounts or an info file left by a sandbox that died without `down`."""
        info = self.info()
        if info is not None and not self._runs(info.pid):
            self._release(info)

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
