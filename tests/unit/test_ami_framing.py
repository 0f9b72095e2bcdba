"""ami: the wire framing of actions and messages, and its injection guard."""

from __future__ import annotations

import pytest

from asterisk_recguard.ami import (
    AmiClient,
    AmiError,
    AmiInjectionError,
    AmiResponse,
    encode_action,
    parse_message,
)

# --------------------------------------------------------------------------
# encode_action


def test_simple_action_exact_bytes() -> None:
    assert encode_action("Ping", "rg1-7", {}) == b"Action: Ping\r\nActionID: rg1-7\r\n\r\n"


def test_action_with_headers_exact_bytes() -> None:
    payload = encode_action(
        "StopMixMonitor", "a1", {"Channel": "PJSIP/alice-00000001", "MixMonitorID": "0x55d0"}
    )
    assert payload == (
        b"Action: StopMixMonitor\r\n"
        b"ActionID: a1\r\n"
        b"Channel: PJSIP/alice-00000001\r\n"
        b"MixMonitorID: 0x55d0\r\n"
        b"\r\n"
    )


def test_list_values_become_repeated_headers() -> None:
    payload = encode_action(
        "Originate", "a2", {"Channel": "Local/s@x", "Variable": ["A=1", "B=2", "C=3"]}
    )
    assert payload == (
        b"Action: Originate\r\n"
        b"ActionID: a2\r\n"
        b"Channel: Local/s@x\r\n"
        b"Variable: A=1\r\n"
        b"Variable: B=2\r\n"
        b"Variable: C=3\r\n"
        b"\r\n"
    )


def test_utf8_values() -> None:
    assert encode_action("Setvar", "a3", {"Value": "čšž"}).endswith("Value: čšž\r\n\r\n".encode())


@pytest.mark.parametrize(
    "value",
    [
        "x\r\nAction: Hangup\r\nChannel: PJSIP/victim",
        "x\n",
        "x\r",
        "\r\n",
        "before\nafter",
    ],
)
def test_cr_or_lf_in_a_value_is_refused(value: str) -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Setvar", "a4", {"Variable": "RECGUARD_PURPOSE", "Value": value})


def test_cr_or_lf_in_one_item_of_a_list_is_refused() -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Originate", "a5", {"Variable": ["A=1", "B=2\r\nAction: Logoff"]})


def test_cr_or_lf_in_the_action_or_its_id_is_refused() -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Ping\r\nAction: Logoff", "a6", {})
    with pytest.raises(AmiInjectionError):
        encode_action("Ping", "a6\nAction: Logoff", {})


@pytest.mark.parametrize(
    "name", ["", "Bad Name", "Bad:Name", "Value\r\nAction", "Name\n", "Na/me", "x=y"]
)
def test_bad_header_name_is_refused(name: str) -> None:
    with pytest.raises(AmiInjectionError):
        encode_action("Setvar", "a7", {name: "ok"})


def test_injection_error_is_an_ami_error_and_a_value_error() -> None:
    assert issubclass(AmiInjectionError, AmiError)
    assert issubclass(AmiInjectionError, ValueError)


# --------------------------------------------------------------------------
# parse_message


def test_parse_message_strips_keys_and_values() -> None:
    assert parse_message("Response:  Success \r\n ActionID :a1\r\nMessage: Pong") == {
        "Response": "Success",
        "ActionID": "a1",
        "Message": "Pong",
    }


def test_parse_message_keeps_the_first_of_a_repeated_key() -> None:
    message = parse_message("Event: VarSet\r\nVariable: FIRST\r\nVariable: SECOND")
    assert message["Variable"] == "FIRST"


def test_parse_message_ignores_lines_without_a_colon() -> None:
    assert parse_message("Response: Follows\r\nsome command output\r\n\r\n--END COMMAND--") == {
        "Response": "Follows"
    }


def test_parse_message_keeps_colons_in_values() -> None:
    assert parse_message("Message: Channel not found: PJSIP/x") == {
        "Message": "Channel not found: PJSIP/x"
    }


def test_parse_empty_message() -> None:
    assert parse_message("") == {}


# --------------------------------------------------------------------------
# AmiResponse.ok


@pytest.mark.parametrize(
    ("response", "ok"),
    [
        ("Success", True),
        ("success", True),
        ("Follows", True),
        ("Goodbye", True),
        ("Error", False),
        ("", False),
    ],
)
def test_response_ok(response: str, ok: bool) -> None:
    assert AmiResponse({"Response": response}).ok is ok


def test_response_without_a_response_header_is_not_ok() -> None:
    response = AmiResponse({"Event": "FullyBooted"})
    assert response.ok is False
    assert response.get("Event") == "FullyBooted"
    assert response.get("Missing", "d") == "d"


# --------------------------------------------------------------------------
# AmiClient credentials


@pytest.mark.parametrize(
    ("user", "secret"),
    [
        ("recguard\r\nAction: Originate", "s3cret"),
        ("recguard\n", "s3cret"),
        ("recguard", "s3cret\r\nEvents: on"),
        ("recguard", "s3cret\r"),
    ],
)
def test_client_refuses_credentials_with_cr_or_lf(user: str, secret: str) -> None:
    with pytest.raises(AmiInjectionError):
        AmiClient("127.0.0.1", 5038, user, secret)


def test_client_accepts_plain_credentials_without_connecting() -> None:
    client = AmiClient("127.0.0.1", 5038, "recguard", "s3cret-+/=")
    assert client.user == "recguard"
    assert not client.connected.is_set()
