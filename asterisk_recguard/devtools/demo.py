"""The main job, shown end to end on the sandbox: ``make demo`` / ``recguard demo``.

Brings up the sandbox Asterisk with the example IVR, starts ``recguard run``
against it as a separate process (as an administrator would), places a few
simulated calls of different kinds at once, stops the guard, and shows the
decision log and which calls left a recording.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..ari import AriClient, wait_until
from ..commands.logs import format_record, parse_line
from ..ledger import Ledger
from ..lifecycle import RecordingStatus
from .callsim import CallerSimulator
from .sandbox import Sandbox
from .scenarios import IvrCaller, IvrResult, run_caller


def _scenarios(ami_setvar: Callable[[str, str, str], object]) -> list[tuple[str, IvrCaller]]:
    return [
        ("order; refuses quality monitoring", IvrCaller("order", choice="order", consent_key="2")),
        ("complaint; consents to quality monitoring", IvrCaller("complaint", choice="complaint", consent_key="1")),
        ("general information; refuses", IvrCaller("info-refused", choice="general_info", consent_key="2")),
        ("general information; consents", IvrCaller("info-consents", choice="general_info", consent_key="1")),
        ("hangs up during the notice", IvrCaller("hangs-up", hangup_during_notice=True)),
        ("order; the CRM then marks it 'no transaction'",
         IvrCaller("no-transaction", choice="order", consent_key="2", talk_seconds=3,
                   during_call=lambda channel: ami_setvar(channel, "RECGUARD_OUTCOME", "no_transaction"))),
    ]


def run_demo(language: str = "sl", keep: bool = False) -> int:
    sandbox = Sandbox()
    started_here = not sandbox.is_running()
    if started_here:
        if sandbox.will_build_root():
            print(f"Building a Debian sid root with Asterisk 22 in {sandbox.root_dir} (once; about 20 s)...")
        print("Starting the sandbox Asterisk...", flush=True)
        sandbox.up()
    env = sandbox.credentials()
    print(f"Asterisk {sandbox.status()['asterisk_version']} runs; the example IVR is loaded.")
    guard = subprocess.Popen(
        [sys.executable, "-m", "asterisk_recguard", "run", "--env-file", str(sandbox.env_file)],
        env={k: v for k, v in os.environ.items() if not k.startswith("RECGUARD_")},
    )
    try:
        client = AriClient(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"], env["RECGUARD_ARI_PASSWORD"], "recguard")
        if not wait_until(client.app_registered, 15):
            print("recguard run did not register its ARI app; see the lines above", file=sys.stderr)
            return 1
        log_path = Path(env["RECGUARD_DECISION_LOG"])
        log_start = log_path.stat().st_size if log_path.exists() else 0
        results: dict[str, IvrResult] = {}
        with CallerSimulator(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"], env["RECGUARD_ARI_PASSWORD"]) as sim:
            from ..ami import AmiClient

            ami = AmiClient(env["RECGUARD_AMI_HOST"], int(env["RECGUARD_AMI_PORT"]),
                            env["RECGUARD_AMI_USER"], env["RECGUARD_AMI_SECRET"])
            ami.start()
            ami.wait_connected(10)
            scenarios = _scenarios(lambda ch, var, val: ami.action("Setvar", Channel=ch, Variable=var, Value=val))
            print(f"\nPlacing {len(scenarios)} calls at once through the example IVR ({language} prompts);")
            print("each caller listens to the recording notice and the consent question (about 45 s)...\n")
            threads = []
            for title, caller in scenarios:
                caller.language = language

                def play(title: str = title, caller: IvrCaller = caller) -> None:
                    results[title] = outcome = run_caller(sim, caller)
                    print(f"  done: {title:48} -> {outcome.error or outcome.decision or 'hung up'}", flush=True)

                threads.append(threading.Thread(target=play))
                threads[-1].start()
            for thread in threads:
                thread.join(180)
            ami.stop()
        time.sleep(1.0)
    finally:
        guard.send_signal(signal.SIGTERM)
        guard.wait(30)
    print("\nThe decision log (recguard logs):\n")
    with open(log_path, "rb") as log:
        log.seek(log_start)
        for raw in log.read().decode("utf-8", errors="replace").splitlines():
            record = parse_line(raw)
            if record and record.get("event") not in ("started", "stopped", "ami_connected", "ari_connected"):
                print("  " + format_record(record))
    print("\nWhich calls left a recording (from the ledger):\n")
    with Ledger(env["RECGUARD_LEDGER"]) as ledger:
        for title, _ in scenarios:
            outcome = results[title]
            line = "no call reached the gate"
            if outcome.call_id and ledger.call(outcome.call_id):
                recordings = ledger.recordings_for_call(outcome.call_id)
                if not recordings:
                    line = "not recorded"
                for rec in recordings:
                    if rec.status == RecordingStatus.FINALIZED:
                        line = (f"KEPT {rec.recording_id[:8]}… for {', '.join(rec.purposes)}, "
                                f"{rec.duration_s:.0f} s, encrypted, delete by {rec.deadline:%Y-%m-%d}")
                    else:
                        line = f"recorded, then DELETED ({rec.deletion_reason})"
            print(f"  {title:48} {line}")
    print(f"\nLedger {env['RECGUARD_LEDGER']}\nDecision log {log_path}")
    if started_here and not keep:
        sandbox.down()
        print("Sandbox stopped. Keep it running with `recguard demo --keep` to try more calls.")
    return 0 if all(r.error is None for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(run_demo())
