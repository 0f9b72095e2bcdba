"""The sandbox's SIP side: its UDP port on 127.0.0.1, the extensions a
softphone registers to ("caller", "agent", and "agent2" to transfer calls to)
with passwords kept across `up`s, the values pjsip.conf and extensions.conf are rendered with, and what
``up`` and ``status`` tell a softphone user."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping

from .state import SandboxError

HOST = "127.0.0.1"
TRANSPORT = "udp"
# The number that reaches the example IVR (then the agent); see extensions.conf.
IVR_NUMBER = "100"
# The number that rings "agent2": where an agent transfers a caller to.
TRANSFER_NUMBER = "200"
EXTENSIONS = ("caller", "agent", "agent2")

# Env-file keys. Not RECGUARD_*: `recguard run` neither reads nor warns about them.
HOST_KEY = "SANDBOX_SIP_HOST"
PORT_KEY = "SANDBOX_SIP_PORT"
IVR_KEY = "SANDBOX_SIP_IVR"
TRANSFER_KEY = "SANDBOX_SIP_TRANSFER"


def user_key(extension: str) -> str:
    return f"SANDBOX_SIP_{extension.upper()}_USER"


def password_key(extension: str) -> str:
    return f"SANDBOX_SIP_{extension.upper()}_PASSWORD"


def udp_port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing uses now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def choose_port(requested: int | None) -> int:
    """The port asked for if it is free; a free one when none was asked for."""
    if requested is None:
        return free_udp_port()
    if not 0 < requested < 65536:
        raise SandboxError(f"--sip-port {requested}: not a port number")
    if not udp_port_free(requested):
        raise SandboxError(
            f"UDP port {requested} on 127.0.0.1 is taken; choose another with --sip-port, "
            "or leave it out for a free one"
        )
    return requested


def settings(port: int, previous: Mapping[str, str]) -> dict[str, str]:
    """The env-file keys of the SIP side.

    The passwords are generated once and kept from ``previous`` (the env file
    of the last `up`), so a softphone set up once keeps working.
    """
    values = {HOST_KEY: HOST, PORT_KEY: str(port), IVR_KEY: IVR_NUMBER, TRANSFER_KEY: TRANSFER_NUMBER}
    for extension in EXTENSIONS:
        values[user_key(extension)] = extension
        values[password_key(extension)] = previous.get(password_key(extension)) or secrets.token_urlsafe(12)
    return values


def template_values(sip: Mapping[str, str]) -> dict[str, str]:
    """The placeholders of pjsip.conf and extensions.conf."""
    values = {"sip_port": sip[PORT_KEY], "sip_ivr": sip[IVR_KEY],
              "sip_transfer": sip.get(TRANSFER_KEY, TRANSFER_NUMBER)}
    for extension in EXTENSIONS:
        values[f"{extension}_password"] = sip[password_key(extension)]
    return values


def status_fields(port: int | None, env: Mapping[str, str]) -> dict[str, str]:
    """What `status` shows of the SIP side; nothing for a sandbox started without it."""
    if port is None or not env.get(password_key("caller")):
        return {}
    fields = {"sip": f"{HOST}:{port} ({TRANSPORT.upper()})"}
    for extension in EXTENSIONS:
        fields[f"sip_{extension}"] = f"{env.get(user_key(extension), extension)} / {env[password_key(extension)]}"
    fields["sip_dial"] = f"{env.get(IVR_KEY, IVR_NUMBER)} (the example IVR, then the agent)"
    fields["sip_transfer"] = f"{env.get(TRANSFER_KEY, TRANSFER_NUMBER)} (agent2: where the agent transfers to)"
    return fields


def softphone_lines(port: int, env: Mapping[str, str]) -> list[str]:
    """How to point a softphone at the sandbox, as `up` prints it."""
    ivr = env.get(IVR_KEY, IVR_NUMBER)
    lines = [f"  SIP        {HOST}:{port}, {TRANSPORT.upper()}, on this machine only"]
    for extension in EXTENSIONS:
        user = env.get(user_key(extension), extension)
        lines.append(f"  {extension:10} user {user}, password {env.get(password_key(extension), '?')}")
    lines.append(
        f"  dial {ivr} from the caller: the example IVR; after the gate the call rings the agent"
    )
    lines.append(
        f"  transfer to {env.get(TRANSFER_KEY, TRANSFER_NUMBER)} from the agent (#1 blind, *2 attended): "
        "rings agent2"
    )
    return lines
