"""Real SIP calls at call-centre rates: recguard's gate against the alternatives.

    .venv/bin/python bench/bench_sip_load.py [--rates 5,10,20,30,40,60] [--seconds 60] [--call-seconds 15]
                                             [--postgresql]

SIPp (Debian's sip-tester) places calls with audio on the sandbox's PJSIP
endpoint, at each rate for ``--seconds`` (calls of ``--call-seconds``), in
three ways one after the other on the same Asterisk:

  recguard  the example gate (Gosub recguard-gate) declaring `order` after a
            complete notice, with `recguard run` as its own process;
  plain     a dialplan MixMonitor() (what a call centre does without recguard);
  minimal   the least an ARI gate can do: a few lines that, on StasisStart,
            start MixMonitor through AMI and continue the call. The floor any
            ARI gate can reach on this machine.

The dialplan measures each gate around itself (STRFTIME with milliseconds,
logged with Log(NOTICE)). Per rate and way it prints SIPp's successful and
failed calls, the decisions (record / skip / unavailable), recguard's
`gate_failed` and `gate_shed` lines, the gate's added time median / p95 / p99
/ max, the CPU (in % of one core) of recguard (and its memory), Asterisk and
SIPp, and how busy the whole machine was (all cores, in % of one). It
ends with the highest rate at which every recguard call got its lawful
decision (`record`) and SIPp saw no failure.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from asterisk_recguard.ami import AmiClient  # noqa: E402
from asterisk_recguard.ari import AriClient, EventStream, wait_until  # noqa: E402
from asterisk_recguard.devtools.pgcluster import Cluster, server_bin  # noqa: E402
from asterisk_recguard.devtools.rtppcap import CallerMedia  # noqa: E402
from asterisk_recguard.devtools.sandbox import Sandbox  # noqa: E402
from asterisk_recguard.ledger import Ledger  # noqa: E402
from integration import sipp  # noqa: E402

WAYS = {"recguard": "801", "plain": "802", "minimal": "803"}
MINIMAL_APP = "bench-minimal"
_MEASURE = re.compile(r"recguard-bench way=(\w+) ms=(-?\d+) decision=(\w*)")

DIALPLAN = """
; bench/bench_sip_load.py: three ways to start a recording, each timed around itself.
[recguard-sandbox-sip]
exten => 801,1,Answer()
 same => n,Set(RECGUARD_NOTICES=evidence-v1:complete)
 same => n,Set(BENCH_T0=${{STRFTIME(,,%s%3q)}})
 same => n,Gosub(recguard-gate,s,1(order))
 same => n,Log(NOTICE,recguard-bench way=recguard ms=$[${{STRFTIME(,,%s%3q)}} - ${{BENCH_T0}}] decision=${{RECGUARD_DECISION}})
 same => n,Wait({wait})
 same => n,Hangup()
exten => 802,1,Answer()
 same => n,Set(BENCH_T0=${{STRFTIME(,,%s%3q)}})
 same => n,MixMonitor({spool}/${{UNIQUEID}}.wav)
 same => n,Log(NOTICE,recguard-bench way=plain ms=$[${{STRFTIME(,,%s%3q)}} - ${{BENCH_T0}}] decision=record)
 same => n,Wait({wait})
 same => n,Hangup()
exten => 803,1,Answer()
 same => n,Set(BENCH_T0=${{STRFTIME(,,%s%3q)}})
 same => n,Stasis({minimal})
 same => n,Log(NOTICE,recguard-bench way=minimal ms=$[${{STRFTIME(,,%s%3q)}} - ${{BENCH_T0}}] decision=${{IF($[${{STASISSTATUS}} = SUCCESS]?record:unavailable)}})
 same => n,Wait({wait})
 same => n,Hangup()
"""


class MinimalGate:
    """On StasisStart: MixMonitor through AMI, then continue. Nothing else."""

    def __init__(self, env: dict[str, str], spool: Path, workers: int = 32, ami_sessions: int = 1) -> None:
        self.spool = spool
        self.ari = AriClient(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"], env["RECGUARD_ARI_PASSWORD"],
                             MINIMAL_APP, connections=workers + 2)
        # Asterisk runs each AMI session's actions one after another on the session's own thread.
        self.amis = [AmiClient(env["RECGUARD_AMI_HOST"], int(env["RECGUARD_AMI_PORT"]), env["RECGUARD_AMI_USER"],
                               env["RECGUARD_AMI_SECRET"], events="off") for _ in range(max(1, ami_sessions))]
        self.pool = ThreadPoolExecutor(max_workers=workers)
        self.stream = EventStream(self.ari, on_event=self._event)

    def __enter__(self) -> MinimalGate:
        for ami in self.amis:
            ami.start()
            ami.wait_connected(10)
        self.stream.start()
        self.stream.wait_connected(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.stop()
        self.pool.shutdown(wait=True)
        for ami in self.amis:
            ami.stop()

    def _event(self, event: dict) -> None:
        if event.get("type") == "StasisStart":
            self.pool.submit(self._gate, event["channel"]["id"])

    def _gate(self, channel_id: str) -> None:
        try:
            ami = self.amis[hash(channel_id) % len(self.amis)]
            ami.action("MixMonitor", timeout=2.0, Channel=channel_id,
                            File=str(self.spool / f"{channel_id}.wav"))
        finally:
            self.ari.continue_in_dialplan(channel_id)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> tuple[float, float]:
    """Busy and idle seconds of all cores together since boot (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields[:8]) - idle) / tick, idle / tick


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[int], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else float("nan")


@dataclass
class Phase:
    way: str
    rate: int
    ok: int = 0
    failed: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    gate_failed: int = 0
    gate_shed: int = 0
    ms: list[int] = field(default_factory=list)
    recguard_cpu: float = float("nan")
    recguard_rss: float = float("nan")
    asterisk_cpu: float = float("nan")
    sipp_cpu: float = float("nan")
    machine_busy: float = float("nan")  # of all cores together, in % of one core

    def row(self) -> str:
        lat = (f"{statistics.median(self.ms):.0f} / {percentile(self.ms, .95):.0f} / "
               f"{percentile(self.ms, .99):.0f} / {max(self.ms)}" if self.ms else "-")
        decided = ", ".join(f"{k} {v}" for k, v in sorted(self.decisions.items()))
        own = (f"{self.recguard_cpu:.0f}% {self.recguard_rss:.0f} MiB" if self.way == "recguard" else "-")
        return (f"| {self.rate} | {self.way} | {self.ok}/{self.ok + self.failed} | {decided} | "
                f"{self.gate_failed} / {self.gate_shed} | {lat} | {own} | {self.asterisk_cpu:.0f}% | "
                f"{self.sipp_cpu:.0f}% | {self.machine_busy:.0f}% |")

    @property
    def clean(self) -> bool:
        calls = self.ok + self.failed
        return (self.failed == 0 and self.gate_failed == 0 and self.gate_shed == 0
                and self.decisions.get("record", 0) == calls > 0)


def sipp_counts(stats: Path) -> tuple[int, int]:
    lines = [line for line in stats.read_text(errors="replace").splitlines() if line.strip()]
    header, last = lines[0].split(";"), lines[-1].split(";")
    values = dict(zip(header, last))
    return int(values.get("SuccessfulCall(C)", 0)), int(values.get("FailedCall(C)", 0))


def run_phase(way: str, rate: int, seconds: int, call_seconds: int, sandbox: Sandbox, work: Path,
              asterisk_pid: int, recguard_pid: int | None, log_offset: int, decision_log: Path) -> Phase:
    phase = Phase(way, rate)
    media = CallerMedia(call_seconds + 1).speak(0.0, call_seconds)
    pcap = work / f"media-{call_seconds}.pcap"
    if not pcap.exists():
        media.write(pcap)
    scenario = sipp.render("caller", work, display="bench", user=f"bench{rate}", name=f"bench {way}",
                           media=pcap, hangup_ms=call_seconds * 1000)
    calls = rate * seconds
    log_dir = work / f"{way}-{rate}"
    stats = log_dir / "stats.csv"
    log_dir.mkdir(parents=True, exist_ok=True)
    decisions_before = decision_log.stat().st_size if decision_log.exists() else 0
    cpu_before = (cpu_seconds(asterisk_pid), cpu_seconds(recguard_pid) if recguard_pid else 0.0)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)  # SIPp, once it has ended
    machine_before = machine_cpu_seconds()
    began = time.monotonic()
    info = sandbox.info()
    assert info is not None and info.sip_port
    command = ["sipp", f"{sipp.HOST}:{info.sip_port}", "-sf", str(scenario), "-s", WAYS[way],
               "-r", str(rate), "-m", str(calls), "-l", str(calls), "-i", sipp.HOST,
               "-p", str(sipp.free_port()), "-mi", sipp.HOST, "-mp", str(sipp.free_media_port()),
               "-nostdin", "-timeout", f"{seconds + call_seconds + 60}s", "-timeout_error",
               "-trace_stat", "-stf", str(stats), "-fd", "1", "-trace_err",
               "-error_file", str(log_dir / "errors.log")]
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=seconds + call_seconds + 90)
    elapsed = time.monotonic() - began
    phase.asterisk_cpu = 100 * (cpu_seconds(asterisk_pid) - cpu_before[0]) / elapsed
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    phase.sipp_cpu = 100 * (children.ru_utime + children.ru_stime
                            - children_before.ru_utime - children_before.ru_stime) / elapsed
    phase.machine_busy = 100 * (machine_cpu_seconds()[0] - machine_before[0]) / elapsed
    if recguard_pid:
        phase.recguard_cpu = 100 * (cpu_seconds(recguard_pid) - cpu_before[1]) / elapsed
        phase.recguard_rss = rss_mib(recguard_pid)
    phase.ok, phase.failed = sipp_counts(stats) if stats.exists() else (0, calls)
    errors = log_dir / "errors.log"
    if phase.failed and errors.exists():
        print(f"  ({way} at {rate}/s: SIPp says: {errors.read_text(errors='replace')[-600:].strip()})", file=sys.stderr)
    with open(sandbox.log_file, "rb") as log:
        log.seek(log_offset)
        for line in log.read().decode("utf-8", "replace").splitlines():
            found = _MEASURE.search(line)
            # Verbose logging shows the Log() application's arguments too: count the notice only.
            if found and found.group(1) == way and "Executing [" not in line:
                phase.ms.append(int(found.group(2)))
                decision = found.group(3) or "none"
                phase.decisions[decision] = phase.decisions.get(decision, 0) + 1
    if decision_log.exists():
        with open(decision_log, "rb") as log:
            log.seek(decisions_before)
            for raw in log.read().splitlines():
                event = json.loads(raw).get("event")
                phase.gate_failed += event == "gate_failed"
                phase.gate_shed += event == "gate_shed"
    return phase


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    bin_dir = server_bin()
    if bin_dir is None:
        raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")
    cluster = Cluster(bin_dir).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def new_ledger(cluster: Cluster, sandbox: Sandbox, env: dict[str, str]) -> str:
    """An empty database made a ledger, as `recguard ledger init` makes one; its URL."""
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE sipload")
    url = cluster.url("sipload")
    Ledger.create(url, recordings_dir=sandbox.recordings_dir, seal_secret=env["RECGUARD_HASH_SECRET"]).close()
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="5,10,20,30,40,60", help="calls per second, comma-separated")
    parser.add_argument("--seconds", type=int, default=60, help="how long each rate places calls (at most 120)")
    parser.add_argument("--call-seconds", type=int, default=15, help="how long each call lasts")
    parser.add_argument("--postgresql", action="store_true",
                        help="recguard's ledger in PostgreSQL (a throwaway cluster on this machine)")
    parser.add_argument("--ways", default=",".join(WAYS),
                        help=f"which ways to run, comma-separated (default: {','.join(WAYS)})")
    parser.add_argument("--minimal-ami-sessions", type=int, default=1, metavar="N",
                        help="AMI sessions the minimal gate spreads its MixMonitor actions over (default 1)")
    parser.add_argument("--asterisk-verbose", type=int, default=None, metavar="N",
                        help="Asterisk's verbose level for the run (`core set verbose N`; the sandbox "
                             "logs every dialplan step at 3; 0 is a quiet production server)")
    args = parser.parse_args()
    reason = sipp.unavailable_reason()
    if reason:
        print(f"bench_sip_load: {reason}", file=sys.stderr)
        return 2
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if not ways or any(w not in WAYS for w in ways):
        parser.error(f"--ways: choose from {', '.join(WAYS)}, not {args.ways!r}")
    seconds = min(args.seconds, 120)
    with tempfile.TemporaryDirectory(prefix="recguard-sipload-") as state:
        work = Path(state) / "work"
        work.mkdir()
        spool = Path(state) / "baseline"  # inside the state dir: Asterisk sees it at the same path
        spool.mkdir(parents=True)
        include = Path(state) / "sip_load.conf"
        include.write_text(DIALPLAN.format(wait=args.call_seconds + 30, spool=spool, minimal=MINIMAL_APP))
        sandbox = Sandbox(state_dir=Path(state) / "sandbox", http_port=58288, ami_port=55238)
        sandbox.up(includes=[include])
        if args.asterisk_verbose is not None:
            sandbox.cli(f"core set verbose {args.asterisk_verbose}")
        stack = contextlib.ExitStack()
        try:
            env = sandbox.credentials()
            guard_env = dict(os.environ)
            if args.postgresql:
                cluster = stack.enter_context(throwaway_cluster())
                guard_env["RECGUARD_LEDGER"] = new_ledger(cluster, sandbox, env)
            info = sandbox.info()
            assert info is not None
            asterisk_pid = info.pid
            decision_log = Path(env["RECGUARD_DECISION_LOG"])
            print(f"SIPp against Asterisk {sandbox.cli('core show version').split()[1]} on 127.0.0.1:"
                  f"{info.sip_port}; calls of {args.call_seconds} s for {seconds} s per rate; "
                  f"{os.cpu_count()} cores shared by SIPp, Asterisk and the gate; recguard's ledger: "
                  f"{'PostgreSQL 15 on this machine' if args.postgresql else 'SQLite'}\n")
            print("| calls/s | way | SIPp ok | decisions | gate_failed / gate_shed | gate ms median / p95 / p99 / max "
                  f"| recguard CPU, RSS | Asterisk CPU | SIPp CPU | machine busy (of {100 * (os.cpu_count() or 1)}%) |")
            print("|---|---|---|---|---|---|---|---|---|---|")
            clean_rates: list[int] = []
            for rate in rates:
                for way in ways:
                    offset = sandbox.log_file.stat().st_size
                    guard: subprocess.Popen[bytes] | None = None
                    if way == "recguard":
                        guard = subprocess.Popen(
                            [sys.executable, "-m", "asterisk_recguard", "run", "--env-file", str(sandbox.env_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT, env=guard_env)
                        ari = AriClient(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"],
                                        env["RECGUARD_ARI_PASSWORD"], "recguard")
                        wait_until(lambda: ari.app_registered("recguard"), 20)
                    try:
                        if way == "minimal":
                            with MinimalGate(env, spool, ami_sessions=args.minimal_ami_sessions):
                                phase = run_phase(way, rate, seconds, args.call_seconds, sandbox, work,
                                                  asterisk_pid, None, offset, decision_log)
                        else:
                            phase = run_phase(way, rate, seconds, args.call_seconds, sandbox, work,
                                              asterisk_pid, guard.pid if guard else None, offset, decision_log)
                    finally:
                        if guard is not None:
                            guard.send_signal(signal.SIGTERM)
                            guard.wait(60)
                    print(phase.row(), flush=True)
                    if way == "recguard" and phase.clean:
                        clean_rates.append(rate)
            best = max(clean_rates, default=None)
            print(f"\nhighest rate at which every call got its lawful decision: "
                  f"{f'{best} calls/s' if best else 'none of the rates tried'}")
        finally:
            stack.close()
            sandbox.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
