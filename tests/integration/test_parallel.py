"""Fifty calls at once, each changing its mind at random, through one guard.

The guard runs as its own process, as an administrator runs it, so the fifty
simulated callers of this test do not share an interpreter with it.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from asterisk_recguard.ami import AmiClient
from asterisk_recguard.ari import wait_until
from asterisk_recguard.audit import audit
from asterisk_recguard.devtools.callsim import CallerSimulator, SimulatedCall
from asterisk_recguard.channelfacts import facts_from_channelvars
from asterisk_recguard.policy import decide, load_policy
from asterisk_recguard.devtools.sandbox import Sandbox
from asterisk_recguard.ledger import Ledger
from asterisk_recguard.lifecycle import CallStatus, RecordingStatus
from asterisk_recguard.settings import Settings, load_settings

from .guardrun import guard_process, wait_app_registered

CALLS = 50
SEED = int(os.environ.get("RECGUARD_TEST_SEED", "20261128"))
PURPOSES = ["order", "change", "cancellation", "complaint", "general_info"]
NOTICES = "evidence-v1:complete,quality-consent-v1:complete"


@contextmanager
def ami_session(settings: Settings) -> Iterator[AmiClient]:
    """The CRM's side: an AMI connection of its own that sets call variables."""
    ami = AmiClient(settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_secret, events="off")
    ami.start()
    try:
        assert ami.wait_connected(10), ami.last_error
        yield ami
    finally:
        ami.stop()


def test_fifty_parallel_calls_with_random_changes(sandbox: Sandbox, idle: CallerSimulator) -> None:
    rng = random.Random(SEED)
    plans = []
    for _ in range(CALLS):
        purpose = rng.choice(PURPOSES)
        consent = rng.choice(["given", "refused"])
        changes = rng.sample(["reclassify", "withdraw", "no_transaction", "transaction"], k=rng.randint(0, 2))
        plans.append((purpose, consent, changes, rng.uniform(0.5, 2.0), rng.randint(0, 2**32)))

    settings = load_settings(sandbox.env_file, environ={})
    with guard_process(sandbox.env_file), Ledger(settings.ledger) as ledger, ami_session(settings) as ami:
        assert wait_app_registered(idle.client)
        calls: list[SimulatedCall] = []
        final_vars: dict[str, dict[str, str]] = {}
        errors: list[BaseException] = []

        def caller(index: int) -> None:
            purpose, consent, changes, talk, seed = plans[index]
            local = random.Random(seed)
            try:
                facts = {"RECGUARD_PURPOSE": f"{purpose},quality", "RECGUARD_NOTICES": NOTICES,
                         "RECGUARD_CONSENT": consent}
                call = idle.call("recguard-test-guard", "direct", variables=facts)
                calls.append(call)
                call.wait_answered(20)
                assert call.wait_centre_variable("TEST_AFTER_GATE", 20) == "yes"
                channel = call.centre_channel()["name"]
                state = dict(facts, RECGUARD_OUTCOME="unknown")
                for change in changes:
                    time.sleep(local.uniform(0.1, 0.6))
                    if change == "withdraw":
                        call.press("9")
                        if state["RECGUARD_CONSENT"] == "given":
                            state["RECGUARD_CONSENT"] = "withdrawn"
                    else:
                        if change == "reclassify":
                            variable, value = "RECGUARD_PURPOSE", local.choice(PURPOSES) + ",quality"
                        else:
                            variable, value = "RECGUARD_OUTCOME", change
                        ami.action("Setvar", Channel=channel, Variable=variable, Value=value)
                        state[variable] = value
                time.sleep(talk)
                time.sleep(0.3)  # let the last change land before the hangup
                final_vars[call.centre_channel()["id"]] = state
                call.hangup()
                call.wait_ended(20)
            except BaseException as exc:  # reported below with the call's index
                errors.append(exc)

        threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLS)]
        for thread in threads:
            thread.start()
            time.sleep(0.02)
        for thread in threads:
            thread.join(60)
        assert not errors, errors[:3]

        def settled() -> bool:
            # Every call ended in the ledger, and every recording finalized or deleted.
            for call_id in final_vars:
                call = ledger.call(call_id)
                if call is None or call.status != CallStatus.ENDED:
                    return False
                if any(RecordingStatus(r.status) not in (RecordingStatus.FINALIZED, RecordingStatus.DELETED)
                       for r in ledger.recordings_for_call(call_id)):
                    return False
            return True

        assert wait_until(settled, 60, interval=0.5)

        policy = load_policy(settings.policy)
        lawful = 0
        for call_id, variables in final_vars.items():
            call = ledger.call(call_id)
            assert call is not None and call.status == "ended", call_id
            decisions = ledger.decisions_for_call(call_id)
            assert decisions[0].trigger == "gate" and decisions[-1].trigger == "hangup"
            expected = decide(facts_from_channelvars(variables), policy)
            recordings = ledger.recordings_for_call(call_id)
            kept = [r for r in recordings if r.status == "finalized"]
            for rec in recordings:
                if rec.status == "deleted":
                    assert not Path(rec.path).exists() and not (rec.stored_path and Path(rec.stored_path).exists())
                else:
                    assert rec.status == "finalized", (call_id, rec.status)
                    # No recording without a basis: every purpose it is kept for is justified at the end.
                    assert set(rec.purposes) <= set(expected.purposes), (call_id, rec.purposes, expected)
                    assert Path(rec.file_path).exists()
            if expected.record:
                # No lawful recording lost: the last one is kept for exactly the justified purposes.
                assert kept and kept[-1].purposes == list(expected.purposes), (call_id, variables, recordings)
                lawful += 1
            else:
                assert not kept, (call_id, variables, kept)
        assert lawful > 0 and lawful < CALLS  # the random plan exercised both outcomes
        report = audit(ledger, policy, settings.recordings_dir, orphan_grace=3600)
        assert report.ok, report.problems
