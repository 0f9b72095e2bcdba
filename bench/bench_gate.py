"""How long the gate holds a call: from StasisStart received to `continue`
answered by Asterisk, over 100 calls through a real Asterisk (the sandbox).

    .venv/bin/python bench/bench_gate.py [--calls 100]

Prints the median and the 99th percentile, for calls that are recorded (the
gate starts MixMonitor, writes the ledger, sets two variables) and for calls
that are not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from asterisk_recguard.devtools.callsim import CallerSimulator  # noqa: E402
from asterisk_recguard.devtools.sandbox import Sandbox  # noqa: E402
from integration.guardrun import guard_in_process  # noqa: E402

FACTS = {
    "record": {"RECGUARD_PURPOSE": "order", "RECGUARD_NOTICES": "evidence-v1:complete"},
    "skip": {"RECGUARD_PURPOSE": "general_info", "RECGUARD_NOTICES": "evidence-v1:complete"},
}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="recguard-bench-") as state:
        sandbox = Sandbox(state_dir=Path(state), http_port=58088, ami_port=55038)
        sandbox.up(includes=sorted((ROOT / "tests/integration/dialplan").glob("*.conf")))
        try:
            env = sandbox.credentials()
            with CallerSimulator(env["RECGUARD_ARI_URL"], env["RECGUARD_ARI_USER"], env["RECGUARD_ARI_PASSWORD"]) as sim, \
                    guard_in_process(sandbox.env_file) as guard:
                for kind, facts in FACTS.items():
                    guard.guard.gate_seconds.clear()
                    for _ in range(args.calls):
                        call = sim.call("recguard-test-guard", "direct", variables=facts)
                        call.wait_answered()
                        call.wait_centre_variable("TEST_AFTER_GATE")
                        call.hangup()
                        call.wait_ended()
                    guard.guard.wait_idle(60)
                    timings = [t * 1000 for t in guard.guard.gate_seconds]
                    print(f"gate ({kind:6}): {len(timings)} calls, median {statistics.median(timings):.1f} ms, "
                          f"p99 {percentile(timings, 0.99):.1f} ms, max {max(timings):.1f} ms")
        finally:
            sandbox.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
