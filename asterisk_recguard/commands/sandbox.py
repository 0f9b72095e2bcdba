"""`recguard sandbox up | down | status | cli`: a local Asterisk to try recguard on."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ..devtools.sandbox import Sandbox, sip
from ._common import add_command

HELP = """\
A local Asterisk 22 for trying recguard and for its tests. It uses an
`asterisk` (20+) on PATH if there is one; otherwise, as root, it builds a
Debian sid root with Asterisk once (mmdebstrap, cached) and runs it with chroot.
ARI, AMI and SIP (UDP) listen on 127.0.0.1 only; fresh credentials are
written at every `up` to STATE_DIR/recguard.env, in the keys `recguard run`
reads. SIP: three extensions for softphones, "caller", "agent" and "agent2"
(passwords generated once, printed by `up` and `status`, kept in the env file
as SANDBOX_SIP_*); the caller dials 100 for the example IVR, which hands the
call to the agent after the gate, and the agent transfers to 200, agent2. Test clients on 127.0.0.1 (SIPp) call without
registering.

examples:
  recguard sandbox up
  recguard sandbox up --include my-ivr.conf --http-port 18088 --ami-port 15038
  recguard sandbox up --sip-port 5062
  recguard sandbox cli "core show channels"
  recguard run --env-file "$(recguard sandbox status --json | jq -r .env_file)"
  recguard sandbox down

environment: RECGUARD_SANDBOX_DIR (state), RECGUARD_SANDBOX_CACHE (cached root),
RECGUARD_SANDBOX_MODE (auto|host|chroot), RECGUARD_SANDBOX_MIRROR (Debian mirror;
default: the one this machine's apt uses).
"""


def _sandbox(args: argparse.Namespace) -> Sandbox:
    return Sandbox(
        state_dir=args.state_dir,
        cache_dir=args.cache_dir,
        http_port=getattr(args, "http_port", 8088),
        ami_port=getattr(args, "ami_port", 5038),
        sip_port=getattr(args, "sip_port", None),
    )


def _up(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    began = time.monotonic()
    if sandbox.will_build_root():
        print(f"building a Debian sid root with Asterisk 22 in {sandbox.root_dir} (once; about 20 s)...",
              flush=True)
    info = sandbox.up(includes=args.include, timeout=args.timeout)
    status = sandbox.status()
    print(f"sandbox up in {time.monotonic() - began:.1f} s: {status['asterisk_version']} ({info.mode}, pid {info.pid})")
    print(f"  ARI        {info.ari_url}")
    print(f"  AMI        127.0.0.1:{info.ami_port}")
    print(f"  env file   {sandbox.env_file}")
    print(f"  Asterisk log {sandbox.log_file}")
    print(f"  recordings {sandbox.recordings_dir}")
    if info.sip_port is not None:
        print("A softphone on this machine can call the example IVR:")
        for line in sip.softphone_lines(info.sip_port, sandbox.credentials()):
            print(line)
    return 0


def _down(args: argparse.Namespace) -> int:
    sandbox = _sandbox(args)
    was_running = sandbox.is_running()
    sandbox.down()
    print("sandbox stopped" if was_running else "no sandbox was running; nothing left behind")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = _sandbox(args).status()
    if args.json:
        print(json.dumps(status))
    elif not status["running"]:
        print(f"not running (state directory {status['state_dir']})")
    else:
        for key, value in status.items():
            print(f"{key:17} {value}")
    return 0 if status["running"] else 1


def _cli(args: argparse.Namespace) -> int:
    print(_sandbox(args).cli(args.asterisk_command), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "sandbox", "a local Asterisk 22 to try recguard on (up, down, status, cli)",
                         HELP)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", type=Path, help="where config, logs and recordings live")
    common.add_argument("--cache-dir", type=Path, help="where the Debian sid root is cached")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = add_command(actions, "up", "start Asterisk; returns when ARI answers", func=_up, parents=[common])
    up.add_argument("--include", action="append", type=Path, default=[], metavar="FILE.conf",
                    help="add your own dialplan file (repeatable)")
    up.add_argument("--http-port", type=int, default=8088, help="HTTP/ARI port (default 8088)")
    up.add_argument("--ami-port", type=int, default=5038, help="AMI port (default 5038)")
    up.add_argument("--sip-port", type=int, default=None,
                    help="SIP port, UDP on 127.0.0.1 (default: a free one, shown by up and status)")
    up.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for ARI (default 60)")

    add_command(actions, "down", "stop Asterisk; no process or mount left", func=_down, parents=[common])

    status = add_command(actions, "status", "what runs where (exit 1 if not running)", func=_status,
                         parents=[common])
    status.add_argument("--json", action="store_true", help="one JSON object")

    cli = add_command(actions, "cli", 'run an Asterisk CLI command, e.g. "core show channels"', func=_cli,
                      parents=[common])
    cli.add_argument("asterisk_command", metavar="COMMAND")
