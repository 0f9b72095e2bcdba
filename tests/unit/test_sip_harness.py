"""The SIPp harness of the integration tests, without SIPp or Asterisk: the
scenario files and their placeholders, and when a SIP caller presses what."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime
from pathlib import Path

import pytest

from asterisk_recguard.devtools.rtppcap import CallerMedia
from asterisk_recguard.devtools.scenarios import MENU, IvrCaller

from ..integration import sipp
from ..integration.sip_callers import (
    CONSENT_TIMEOUT, HANGUP_IN_NOTICE, MARGIN, PromptTimes, SipCaller, answered_at, caller_media,
)

PROMPTS = PromptTimes(notice=20.0, question=22.0)
VALUES: dict[str, dict[str, object]] = {
    "caller": {"name": "row", "user": "5550101", "display": "A caller", "media": "/tmp/c.pcap", "hangup_ms": 1000},
    "register": {"user": "agent", "password": "secret", "expires": 60},
    "agent": {"user": "agent", "media": "/tmp/a.pcap"},
    "agent-refer": {"user": "agent", "media": "/tmp/a.pcap", "password": "secret", "target": "200",
                    "registrar": "127.0.0.1:5099", "refer_ms": 3000},
    "agent-hangup": {"user": "agent", "media": "/tmp/a.pcap", "hangup_ms": 9000},
}


def keys(media: CallerMedia) -> list[tuple[float, str]]:
    return sorted(media.keys)


@pytest.mark.parametrize("scenario", sorted(VALUES))
def test_every_scenario_renders_to_xml_sipp_can_read(scenario: str, tmp_path: Path) -> None:
    path = sipp.render(scenario, tmp_path, **VALUES[scenario])
    text = path.read_text()
    assert "{{" not in text
    root = ElementTree.fromstring(text)
    assert root.tag == "scenario"
    for value in VALUES[scenario].values():
        assert str(value) in text


def test_every_scenario_file_is_covered() -> None:
    assert sorted(p.stem for p in sipp.SCENARIOS.glob("*.xml")) == sorted(VALUES)


def test_a_missing_or_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="password"):
        sipp.render("register", tmp_path, user="agent", expires=60)
    with pytest.raises(ValueError, match="extra"):
        sipp.render("register", tmp_path, user="agent", password="x", expires=60, extra=1)


def test_a_value_that_sipp_would_read_as_a_keyword_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keyword"):
        sipp.render("agent", tmp_path, user="[call_id]", media="/tmp/a.pcap")


def test_display_names_are_quoted_for_sip() -> None:
    assert sipp.sip_quoted('$(touch /tmp/pwned)";../../x') == '$(touch /tmp/pwned)\\";../../x'
    assert sipp.sip_quoted("a\\b") == "a\\\\b"


def test_without_sipp_the_reason_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sipp.shutil, "which", lambda name: None)
    assert "sip-tester" in (sipp.unavailable_reason() or "")


def test_a_listening_caller_presses_after_each_prompt() -> None:
    media = caller_media(SipCaller(IvrCaller("r", choice="complaint", consent_key="1", talk_seconds=3), "1"), PROMPTS)
    choice = PROMPTS.notice + MARGIN
    consent = choice + PROMPTS.question + MARGIN
    assert keys(media) == [(choice, MENU["complaint"]), (consent, "1")]
    assert media.speech == [(consent + 1.0, 3)]
    assert media.length == consent + 1.0 + 3


def test_a_silent_caller_waits_out_the_question() -> None:
    media = caller_media(SipCaller(IvrCaller("r", choice="general_info", consent_key=None), "1"), PROMPTS)
    assert keys(media) == [(PROMPTS.notice + MARGIN, MENU["general_info"])]
    talk_from = PROMPTS.notice + MARGIN + PROMPTS.question + CONSENT_TIMEOUT + 1.0
    assert media.speech == [(talk_from, 2.0)]


def test_a_caller_who_does_not_listen() -> None:
    gone = caller_media(SipCaller(IvrCaller("r", hangup_during_notice=True), "1"), PROMPTS)
    assert gone.keys == [] and gone.length == HANGUP_IN_NOTICE < PROMPTS.notice
    hurried = caller_media(
        SipCaller(IvrCaller("r", key_during_notice=True, choice="order", consent_key="2"), "1",
                  answers_during_question=True),
        PROMPTS,
    )
    assert [key for _, key in keys(hurried)] == ["0", MENU["order"], "2"]
    assert keys(hurried)[-1][0] < PROMPTS.notice  # all of it within what the notice alone would take


def test_keys_while_talking_come_after_the_gate() -> None:
    media = caller_media(
        SipCaller(IvrCaller("r", choice="general_info", consent_key="1", talk_seconds=5), "1",
                  keys_while_talking=((2.0, "9"),)),
        PROMPTS,
    )
    (talk_from, _), = media.speech
    assert keys(media)[-1] == (talk_from + 2.0, "9")
    assert media.length == talk_from + 5


TRACE = """\
----------------------------------------------- 2026-11-29 09:34:13.212130
UDP message received [100] bytes :

INVITE sip:agent@127.0.0.1:38226 SIP/2.0
From: "A caller" <sip:5550402@127.0.0.1>;tag=a
Call-ID: one

----------------------------------------------- 2026-11-29 09:34:13.213630
UDP message sent (50 bytes):

SIP/2.0 200 OK
Call-ID: one

----------------------------------------------- 2026-11-29 09:34:13.214017
UDP message received [60] bytes :

ACK sip:agent@127.0.0.1:38226 SIP/2.0
Call-ID: one

"""


def test_the_message_log_gives_each_message_with_its_time_and_direction(tmp_path: Path) -> None:
    (tmp_path / "messages.log").write_text(TRACE)
    found = sipp.messages(tmp_path)
    assert [(m.first_line.split()[0], m.received) for m in found] == [("INVITE", True), ("SIP/2.0", False),
                                                                      ("ACK", True)]
    assert found[0].header("call-id") == "one" and found[0].header("Contact") is None
    assert found[2].at == datetime(2026, 11, 29, 9, 34, 13, 214017).astimezone()
    assert answered_at(tmp_path, "5550402") == found[2].at
    with pytest.raises(AssertionError, match="5550499"):
        answered_at(tmp_path, "5550499")
