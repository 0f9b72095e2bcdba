"""ami: a message that repeats a header is malformed. If a caller-controlled
header before ``Uniqueid`` ever carried a line break, an injected
``Uniqueid:`` would come first; so such an event is ignored (and logged), and
such a response to one of recguard's actions is an error. Only the
``ChanVariable`` lines manager.conf's channelvars add may repeat.

Against a small fake Asterisk manager on 127.0.0.1, no Asterisk needed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from asterisk_recguard.ami import AmiClient, AmiError, parse_message

Responder = Callable[[dict[str, str]], list[str]]


class FakeManager:
    """Accepts one client, answers its login and, through ``responder``, its
    actions; ``push`` sends it a block as Asterisk would."""

    def __init__(self, responder: Responder, login: str = "Message: Authentication accepted") -> None:
        self.responder = responder
        self.login = login
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        self.conn = conn
        conn.sendall(b"Asterisk Call Manager/9.0.0\r\n")
        buffer = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                block, buffer = buffer.split(b"\r\n\r\n", 1)
                action = parse_message(block.decode())
                if action.get("Action") == "Login":
                    self.push(f"Response: Success\r\nActionID: {action['ActionID']}\r\n{self.login}")
                    self.ready.set()
                    continue
                for reply in self.responder(action):
                    self.push(reply.format(id=action["ActionID"]))

    def push(self, block: str) -> None:
        assert self.conn is not None
        self.conn.sendall(block.encode() + b"\r\n\r\n")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class Rig:
    def __init__(self, responder: Responder) -> None:
        self.manager = FakeManager(responder)
        self.events: list[dict[str, str]] = []
        self.client = AmiClient("127.0.0.1", self.manager.port, "recguard", "secret",
                                on_event=self.events.append, backoff_initial=0.05)
        self.client.start()
        assert self.client.wait_connected(5) and self.manager.ready.wait(5)

    def delivered(self, *blocks: str) -> list[dict[str, str]]:
        """The events the client hands on after ``blocks`` (and a marker event)."""
        for block in [*blocks, "Event: Marker"]:
            self.manager.push(block)
        deadline = time.monotonic() + 5
        while not any(e.get("Event") == "Marker" for e in self.events):
            assert time.monotonic() < deadline, "the marker event never arrived"
            time.sleep(0.01)
        return [e for e in self.events if e.get("Event") != "Marker"]


def no_response(action: dict[str, str]) -> list[str]:
    return []


def running(r: Rig) -> Iterator[Rig]:
    """``r`` for one test: its client stopped and its manager closed afterwards."""
    try:
        yield r
    finally:
        r.client.stop(2)
        r.manager.close()


@pytest.fixture
def rig() -> Iterator[Rig]:
    yield from running(Rig(no_response))


INJECTED = ("Event: MixMonitorStart\r\nPrivilege: call,all\r\nChannel: PJSIP/caller-00000001\r\n"
            "CallerIDName: x\r\nUniqueid: 1700000000.999\r\nUniqueid: 1700000000.12\r\n"
            "Context: from-trunk\r\nExten: s\r\nPriority: 3")


def test_an_event_with_a_repeated_uniqueid_is_ignored_and_logged(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="asterisk_recguard.ami"):
        assert rig.delivered(INJECTED) == []
    (record,) = [r for r in caplog.records if r.name == "asterisk_recguard.ami"]
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    assert "MixMonitorStart" in message and "Uniqueid" in message
    assert "1700000000" not in message and "caller" not in message  # no header values


@pytest.mark.parametrize("repeat", [
    "Uniqueid: 1\r\nUNIQUEID: 2",  # header names are case-insensitive to Asterisk
    "Uniqueid: 1\r\nUniqueid : 1",  # the same value twice is still two headers
    "Uniqueid: 1\r\nChannel: PJSIP/other-00000009",
    "Uniqueid: 1\r\nLinkedid: 1\r\nLinkedid: 2",
    "Uniqueid: 1\r\nDestUniqueid: 3\r\nDestUniqueid: 4",
    "Uniqueid: 1\r\nContext: a\r\nContext: b",
])
def test_any_repeated_header_but_chanvariable_makes_an_event_malformed(rig: Rig, repeat: str) -> None:
    block = f"Event: MixMonitorStart\r\nChannel: PJSIP/caller-00000001\r\n{repeat}"
    assert rig.delivered(block) == []


def test_repeated_channel_variables_are_allowed(rig: Rig) -> None:
    block = ("Event: MixMonitorStart\r\nChannel: PJSIP/caller-00000001\r\nUniqueid: 1700000000.12\r\n"
             "ChanVariable: RECGUARD_PURPOSE=order\r\nChanVariable: RECGUARD_NOTICES=evidence-v1\r\n"
             "DestChanVariable: A=1\r\nDestChanVariable: B=2")
    (event,) = rig.delivered(block)
    assert event["Uniqueid"] == "1700000000.12"
    assert event["ChanVariable"] == "RECGUARD_PURPOSE=order"


def test_well_formed_events_still_arrive_after_a_malformed_one(rig: Rig) -> None:
    good = "Event: MixMonitorStart\r\nChannel: PJSIP/caller-00000001\r\nUniqueid: 1700000000.12"
    assert [e["Uniqueid"] for e in rig.delivered(INJECTED, good)] == ["1700000000.12"]


# --- responses to recguard's own actions ---------------------------------------------------


def answering(*replies: str) -> Iterator[Rig]:
    yield from running(Rig(lambda action: list(replies)))


@pytest.fixture
def getvar_injected() -> Iterator[Rig]:
    yield from answering("Response: Success\r\nActionID: {id}\r\nVariable: MIXMONITOR_FILENAME\r\n"
                         "Value: /spool/x.wav\r\nValue: /etc/passwd")


def test_a_response_with_a_repeated_header_is_an_error(getvar_injected: Rig,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    client = getvar_injected.client
    with caplog.at_level(logging.WARNING, logger="asterisk_recguard.ami"):
        response = client.send("Getvar", Channel="c1", Variable="MIXMONITOR_FILENAME")
        assert not response.ok
        assert response.get("Value") is None
        with pytest.raises(AmiError, match="repeated header Value"):
            client.action("Getvar", Channel="c1", Variable="MIXMONITOR_FILENAME")
    assert all("passwd" not in r.getMessage() for r in caplog.records)


@pytest.fixture
def dbget_injected() -> Iterator[Rig]:
    yield from answering(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Result will follow",
        "Event: DBGetResponse\r\nActionID: {id}\r\nFamily: recguard\r\nKey: c1\r\n"
        "Val: {{\"outcome\":\"transaction\"}}\r\nVal: {{\"outcome\":\"no_transaction\"}}",
        "Event: DBGetComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 1")


def test_an_event_list_with_a_repeated_header_fails_its_response(dbget_injected: Rig) -> None:
    response = dbget_injected.client.send("DBGet", Family="recguard", Key="c1")
    assert not response.ok and response.events == []


@pytest.fixture
def dbget_clean() -> Iterator[Rig]:
    yield from answering(
        "Response: Success\r\nActionID: {id}\r\nEventList: start\r\nMessage: Result will follow",
        "Event: DBGetResponse\r\nActionID: {id}\r\nFamily: recguard\r\nKey: c1\r\nVal: v",
        "Event: DBGetComplete\r\nActionID: {id}\r\nEventList: Complete\r\nListItems: 1")


def test_a_well_formed_event_list_still_answers(dbget_clean: Rig) -> None:
    response = dbget_clean.client.send("DBGet", Family="recguard", Key="c1")
    assert response.ok and [e["Val"] for e in response.events] == ["v"]


def test_a_login_response_with_a_repeated_header_is_refused() -> None:
    manager = FakeManager(no_response, login="Message: Authentication accepted\r\nResponse: Success")
    client = AmiClient("127.0.0.1", manager.port, "recguard", "secret", backoff_initial=5)
    client.start()
    try:
        assert manager.ready.wait(5)
        deadline = time.monotonic() + 5
        while "repeated header" not in client.last_error and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "repeated header Response" in client.last_error
        assert not client.connected.is_set()
    finally:
        client.stop(2)
        manager.close()
