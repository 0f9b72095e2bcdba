"""sandbox: the SIP side without Asterisk — the rendered pjsip.conf and dialplan,
the extensions' passwords, the port, and what `up` and `status` print."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from asterisk_recguard.cli import build_parser
from asterisk_recguard.devtools.sandbox import Sandbox, SandboxError, render, sip
from asterisk_recguard.settings import load_settings


def sections(path: Path) -> list[tuple[str, dict[str, str]]]:
    """The sections of an Asterisk config file in order; a name may repeat
    (pjsip.conf names an endpoint, its auth and its aor alike)."""
    found: list[tuple[str, dict[str, str]]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("["):
            found.append((line[1:line.index("]")], {}))
        elif "=" in line and found:
            key, _, value = line.partition("=")
            found[-1][1][key.strip()] = value.strip()
    return found


def of_type(path: Path, kind: str) -> dict[str, dict[str, str]]:
    return {name: values for name, values in sections(path) if values.get("type") == kind}


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv("RECGUARD_SANDBOX_MODE", raising=False)
    return Sandbox(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", http_port=1234, ami_port=4321)


def test_sip_binds_to_loopback_on_the_chosen_port(sandbox: Sandbox) -> None:
    creds = sandbox._render_config([], sip_port=5099)
    pjsip = sandbox.etc_dir / "pjsip.conf"
    (transport,) = of_type(pjsip, "transport").values()
    assert transport["protocol"] == "udp" and transport["bind"] == "127.0.0.1:5099"
    assert creds[sip.PORT_KEY] == "5099" and creds[sip.HOST_KEY] == "127.0.0.1"
    # RTP too stays on loopback, and goes through Asterisk.
    assert "media_address = 127.0.0.1" in pjsip.read_text()
    assert "bind_rtp_to_media_address = yes" in pjsip.read_text()
    assert "direct_media = no" in pjsip.read_text()


def test_a_free_port_is_chosen_when_none_is_given(sandbox: Sandbox) -> None:
    creds = sandbox._render_config([])
    port = int(creds[sip.PORT_KEY])
    assert 0 < port < 65536
    assert sip.udp_port_free(port)


def test_a_taken_port_is_refused_with_the_option_to_change_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        with pytest.raises(SandboxError, match="--sip-port"):
            sip.choose_port(taken.getsockname()[1])


def test_test_clients_come_in_by_address_and_extensions_by_name_with_a_password(sandbox: Sandbox) -> None:
    creds = sandbox._render_config([], sip_port=5099)
    pjsip = sandbox.etc_dir / "pjsip.conf"
    (settings,) = of_type(pjsip, "global").values()
    assert settings["endpoint_identifier_order"].split(",")[0] == "username"
    identify = of_type(pjsip, "identify")
    assert identify == {"test-client": {"type": "identify", "endpoint": "test-client", "match": "127.0.0.1"}}
    auths = of_type(pjsip, "auth")
    for extension in sip.EXTENSIONS:
        auth = auths[f"{extension}-auth"]
        assert auth["username"] == creds[sip.user_key(extension)] == extension
        assert auth["password"] == creds[sip.password_key(extension)]
        assert of_type(pjsip, "aor")[extension]["max_contacts"] == "1"
    # Each extension is an endpoint made from the shared template, with its own auth and aor.
    text = pjsip.read_text()
    for extension in sip.EXTENSIONS:
        endpoint = text[text.index(f"[{extension}](sandbox-endpoint)"):]
        assert endpoint.split("\n[", 1)[0].split("\n")[1:3] == [f"auth = {extension}-auth", f"aors = {extension}"]
    assert "[test-client](sandbox-endpoint)" in text
    assert "auth =" not in text[text.index("[test-client](sandbox-endpoint)"):].split("\n[", 1)[0]


def test_the_ivr_number_leads_to_the_example_ivr_and_then_the_agent(sandbox: Sandbox) -> None:
    sandbox._render_config([], sip_port=5099)
    extensions = (sandbox.etc_dir / "extensions.conf").read_text()
    context = extensions[extensions.index("[recguard-sandbox-sip]"):]
    assert f"exten => {sip.IVR_NUMBER},1,Set(EXAMPLE_AGENT=PJSIP/agent)" in context
    assert "Goto(recguard-example-inbound,s,1)" in context
    # The transfer number rings agent2, who gets the agent keys too.
    assert f"exten => {sip.TRANSFER_NUMBER},1,Dial(PJSIP/agent2,30,tb(recguard-agent-features^s^1))" in context
    assert "context = recguard-sandbox-sip" in (sandbox.etc_dir / "pjsip.conf").read_text()
    modules = (sandbox.etc_dir / "modules.conf").read_text()
    for module in ("chan_pjsip.so", "res_pjsip_endpoint_identifier_ip.so", "res_pjsip_registrar.so",
                   "res_rtp_asterisk.so"):
        assert f"load = {module}" in modules


def test_sip_passwords_are_kept_across_ups_but_ari_credentials_are_not(sandbox: Sandbox) -> None:
    first = sandbox._render_config([], sip_port=5099)
    render.write_env(sandbox.env_file, first)
    second = sandbox._render_config([], sip_port=5100)
    for extension in sip.EXTENSIONS:
        assert second[sip.password_key(extension)] == first[sip.password_key(extension)]
    assert first[sip.password_key("caller")] != first[sip.password_key("agent")]
    assert second["RECGUARD_ARI_PASSWORD"] != first["RECGUARD_ARI_PASSWORD"]
    assert second[sip.PORT_KEY] == "5100"


def test_recguard_run_reads_the_env_file_without_a_word_about_the_sip_keys(sandbox: Sandbox) -> None:
    render.write_env(sandbox.env_file, sandbox._render_config([], sip_port=5099))
    settings = load_settings(sandbox.env_file, environ={})
    assert not [w for w in settings.warnings if "SANDBOX_SIP" in w]


def test_up_and_status_tell_a_softphone_where_to_call() -> None:
    env = sip.settings(5099, {})
    lines = "\n".join(sip.softphone_lines(5099, env))
    assert "127.0.0.1:5099" in lines and "UDP" in lines
    for extension in sip.EXTENSIONS:
        assert f"user {extension}, password {env[sip.password_key(extension)]}" in lines
    assert f"dial {sip.IVR_NUMBER}" in lines
    fields = sip.status_fields(5099, env)
    assert fields["sip"] == "127.0.0.1:5099 (UDP)"
    assert fields["sip_agent"] == f"agent / {env[sip.password_key('agent')]}"
    assert fields["sip_dial"].startswith(sip.IVR_NUMBER)
    assert fields["sip_transfer"].startswith(sip.TRANSFER_NUMBER) and f"transfer to {sip.TRANSFER_NUMBER}" in lines
    # A sandbox started before it spoke SIP shows nothing of it.
    assert sip.status_fields(None, env) == {} and sip.status_fields(5099, {}) == {}


def test_sandbox_up_takes_a_sip_port() -> None:
    args = build_parser().parse_args(["sandbox", "up", "--sip-port", "5099"])
    assert args.sip_port == 5099
    assert build_parser().parse_args(["sandbox", "up"]).sip_port is None
