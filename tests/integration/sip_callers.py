"""Callers and an agent on real SIP, for the tests of the example IVR: a row
of the IVR table (``devtools.scenarios.IvrCaller``) becomes a SIPp call to the
sandbox whose media presses each key a moment after the prompt before it
ends, and the call's channel is followed over ARI for its facts.

A SIPp caller cannot hear, so the moments come from the prompts' lengths
(``PromptTimes``) plus a margin; the facts each test checks (a notice heard
``complete``, the consent given) show whether the keys came at the right time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

from asterisk_recguard.ari import AriClient, wait_until
from asterisk_recguard.devtools.rtppcap import CallerMedia
from asterisk_recguard.devtools.sandbox import Sandbox, sip
from asterisk_recguard.devtools.scenarios import MENU, IvrCaller

from . import sipp
from .dialplan_support import seconds, sound_file

# A key comes this long after the prompt before it ends: prompts start a few
# milliseconds after the answer, and a loaded machine plays them a little late.
MARGIN = 2.0
CONSENT_TIMEOUT = 5.0  # how long recguard-consent waits for the answer (its default)
HANGUP_IN_NOTICE = 1.5  # when a caller who does not listen hangs up
CALLER_CHANNEL = "PJSIP/test-client-"
FACTS = ("RECGUARD_PURPOSE", "RECGUARD_NOTICES", "RECGUARD_CONSENT", "RECGUARD_OUTCOME")
_runs = count(1)


@dataclass(frozen=True)
class PromptTimes:
    """How long the example IVR's prompts play, in the caller's language."""

    notice: float
    question: float

    @classmethod
    def of(cls, sandbox: Sandbox, language: str = "sl") -> PromptTimes:
        return cls(
            notice=seconds(sound_file(sandbox, f"{language}/recguard/evidence-v1.wav")),
            question=seconds(sound_file(sandbox, f"{language}/recguard/quality-consent-v1.wav")),
        )


@dataclass
class SipCaller:
    """One row of the IVR table, called over SIP."""

    ivr: IvrCaller
    number: str  # the From user: unique per call, it is how the test finds the call's channel
    display: str = "SIPp caller"
    # (seconds after the caller starts talking to the agent, key): e.g. 9 to withdraw consent
    keys_while_talking: tuple[tuple[float, str], ...] = ()
    # Answers a second into the consent question: the answer counts, the question is "interrupted".
    answers_during_question: bool = False


@dataclass
class SipCallResult:
    caller: SipCaller
    call_id: str | None = None
    channel: str | None = None
    facts: dict[str, str | None] = field(default_factory=dict)
    decision: str | None = None
    recording_id: str | None = None
    sipp: sipp.SippResult | None = None
    error: str | None = None


def caller_media(caller: SipCaller, prompts: PromptTimes) -> CallerMedia:
    """What the caller sends from the answer on: keys at the right moments, then speech."""
    row = caller.ivr
    if row.hangup_during_notice:
        return CallerMedia(HANGUP_IN_NOTICE)
    media = CallerMedia(0.0)
    if row.key_during_notice:
        media.key(HANGUP_IN_NOTICE, "0")
        choice_at = HANGUP_IN_NOTICE + 1.0  # while the menu plays
    else:
        choice_at = prompts.notice + MARGIN
    media.key(choice_at, MENU[row.choice])
    asked = choice_at + prompts.question  # the choice cuts the menu short; the question follows
    if row.consent_key is not None and caller.answers_during_question:
        media.key(choice_at + 1.0, row.consent_key)
        gate = choice_at + 1.0
    elif row.consent_key is not None:
        media.key(asked + MARGIN, row.consent_key)
        gate = asked + MARGIN
    else:
        gate = asked + CONSENT_TIMEOUT
    talk = gate + 1.0
    media.speak(talk, row.talk_seconds)
    for after, key in caller.keys_while_talking:
        media.key(talk + after, key)
    media.length = talk + row.talk_seconds
    return media


class SipIvr:
    """Places SIP calls on the sandbox's IVR number and follows them over ARI."""

    def __init__(self, sandbox: Sandbox, ari: AriClient, workdir: Path) -> None:
        self.target = sip_target(sandbox)
        self.env = sandbox.credentials()
        self.ari = ari
        self.workdir = workdir
        self.prompts = PromptTimes.of(sandbox)

    def call(self, caller: SipCaller) -> SipCallResult:
        """Place one call and play the caller's part; returns once SIPp is done."""
        result = SipCallResult(caller)
        row = caller.ivr
        media = caller_media(caller, self.prompts)
        where = self.workdir / row.name
        where.mkdir(parents=True, exist_ok=True)
        scenario = sipp.render(
            "caller", where, name=row.name, user=caller.number, display=sipp.sip_quoted(caller.display),
            media=media.write(where / "caller.pcap"), hangup_ms=round(media.length * 1000),
        )
        process = sipp.start(row.name, scenario, where / "sipp", timeout=media.length + 30, target=self.target,
                             service=self.env[sip.IVR_KEY])
        try:
            self._follow(result, media)
        except Exception as exc:  # reported with the row's name
            result.error = f"{row.name}: {type(exc).__name__}: {exc}"
        result.sipp = process.wait()
        if not result.sipp.ok:
            result.error = f"{result.error or row.name}: the SIP call did not go as scripted\n{result.sipp.report()}"
        return result

    def _follow(self, result: SipCallResult, media: CallerMedia) -> None:
        channel = wait_until(lambda: self.caller_channel(result.caller.number), 10, 0.2)
        if not channel:
            raise TimeoutError("no channel for the call appeared in Asterisk")
        result.call_id, result.channel = channel["id"], channel["name"]
        row = result.caller.ivr
        if row.hangup_during_notice:
            return
        decision = wait_until(lambda: self.variable(result, "RECGUARD_DECISION"), media.length + 5, 0.25)
        if not decision:
            raise TimeoutError("the call never came back from the gate")
        result.decision = decision
        result.recording_id = self.variable(result, "RECGUARD_RECORDING_ID")
        result.facts = {name: self.variable(result, name) for name in FACTS}
        if row.during_call is not None:
            time.sleep(1.0 + row.talk_seconds / 2)  # halfway through the talk
            row.during_call(result.channel)

    def caller_channel(self, number: str) -> dict | None:
        for channel in self.ari.channels():
            if channel["name"].startswith(CALLER_CHANNEL) and channel.get("caller", {}).get("number") == number:
                return channel
        return None

    def variable(self, result: SipCallResult, name: str) -> str | None:
        assert result.call_id is not None
        return self.ari.get_variable(result.call_id, name)

    def call_all(self, callers: list[SipCaller], timeout: float = 240) -> dict[str, SipCallResult]:
        """All calls at once; each result under its row's name."""
        results: dict[str, SipCallResult] = {}

        def place(caller: SipCaller) -> None:
            results[caller.ivr.name] = self.call(caller)

        threads = [threading.Thread(target=place, args=(c,)) for c in callers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout)
        return results


@contextmanager
def sip_agent(
    sandbox: Sandbox, workdir: Path, calls: int, timeout: float, *, extension: str = "agent",
    media: CallerMedia | None = None, scenario: str = "agent", **values: object,
) -> Iterator[sipp.SippProcess]:
    """One of the sandbox's agent extensions registered to a SIPp that answers
    ``calls`` calls with ``scenario`` (agent.xml: stays on each until the far
    end hangs up) and plays ``media`` from each answer (silence if none);
    unregistered afterwards. The process is handed out so that the test can
    ``wait()`` for its result; ``values`` fill the scenario's other placeholders."""
    port = sipp.free_port()
    where = workdir / extension
    registered = register(sandbox, where, extension, port, expires=300)
    assert registered.ok, registered.report()
    played = (media or CallerMedia(timeout)).write(where / f"{extension}.pcap")
    user = sandbox.credentials()[sip.user_key(extension)]
    rendered = sipp.render(scenario, where, user=user, media=played, **values)
    process = sipp.start(extension, rendered, where / "answer", timeout=timeout, port=port, calls=calls)
    try:
        yield process
    finally:
        process.stop()
        register(sandbox, where, extension, port, expires=0)


def sip_target(sandbox: Sandbox) -> str:
    info = sandbox.info()
    assert info is not None and info.sip_port is not None, "the sandbox does not speak SIP"
    return f"{sip.HOST}:{info.sip_port}"


def register(
    sandbox: Sandbox, workdir: Path, extension: str, port: int, expires: int, password: str | None = None
) -> sipp.SippResult:
    """REGISTER one of the sandbox's extensions from ``port`` (its password from
    the env file unless another is given); ``expires=0`` unregisters."""
    env = sandbox.credentials()
    scenario = sipp.render(
        "register", workdir, user=env[sip.user_key(extension)],
        password=env[sip.password_key(extension)] if password is None else password, expires=expires,
    )
    return sipp.start(f"register-{extension}-{expires}", scenario, workdir / f"register-{next(_runs)}", timeout=10,
                      target=sip_target(sandbox), port=port).wait()


def answered_at(agent_log: Path, number: str) -> datetime:
    """When the agent's SIPp began to play its media on the call from caller
    ``number``: the ACK of the INVITE whose From user is ``number``."""
    found = sipp.messages(agent_log)
    call_ids = {m.header("Call-ID") for m in found if m.received and m.first_line.startswith("INVITE ")
                and f"sip:{number}@" in (m.header("From") or "")}
    acks = [m.at for m in found if m.received and m.first_line.startswith("ACK ") and m.header("Call-ID") in call_ids]
    assert acks, f"no answered call from {number} in {agent_log}"
    return acks[0]
