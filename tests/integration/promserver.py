"""A throwaway Prometheus server for tests: its config and TSDB in a temporary
directory, scraping and evaluating rules every second, queried through its
HTTP API, always stopped at the end; its log is kept for failure messages."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asterisk_recguard.ari import wait_until

from .guardrun import stop_process


def unavailable_reason() -> str | None:
    if shutil.which("prometheus"):
        return None
    return "prometheus not found; install Debian's prometheus package (make system-deps)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A running server: ``query`` and friends return the API's ``data``."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector; an invalid expression raises (HTTP 400)."""
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def values(self, expr: str) -> list[float]:
        return [float(item["value"][1]) for item in self.query(expr)]

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        return list(self.api("alerts")["alerts"])

    def targets_metadata(self) -> list[dict[str, Any]]:
        return list(self.api("targets/metadata"))

    def wait_scraped(self, expr: str, timeout: float = 15.0) -> bool:
        """Wait until ``expr`` returns at least one sample."""
        return bool(wait_until(lambda: self.query(expr), timeout, interval=0.25))


def write_config(directory: Path, target: str, rule_files: Sequence[Path]) -> Path:
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(path.resolve()) for path in rule_files],
        "scrape_configs": [{"job_name": "recguard", "static_configs": [{"targets": [target]}]}],
    }
    path = directory / "prometheus.yml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


@contextmanager
def prometheus_server(directory: Path, target: str, rule_files: Sequence[Path]) -> Iterator[Prometheus]:
    """Prometheus scraping ``target`` as job "recguard" with ``rule_files``, ready to query."""
    binary = shutil.which("prometheus")
    assert binary, unavailable_reason()
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory, target, rule_files)
    port = free_port()
    log_path = directory / "prometheus.log"
    with open(log_path, "ab") as output:
        process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--web.enable-lifecycle", "--log.level=info"],
            stdout=output, stderr=subprocess.STDOUT, cwd=directory,
        )
    server = Prometheus(port, log_path)
    try:
        assert wait_until(lambda: process.poll() is not None or _ready(server.url), 30, interval=0.2), (
            "Prometheus did not become ready:\n" + server.log())
        assert process.poll() is None, f"Prometheus exited with {process.returncode}:\n" + server.log()
        yield server
    finally:
        stop_process(process)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
