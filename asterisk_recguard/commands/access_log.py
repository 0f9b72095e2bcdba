"""``recguard access-log``: who exported, held, released, erased, looked up
or purged which recordings, when and why."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..display import printable
from ..ledger import AccessEntry, format_ts
from . import _dpo
from ._common import add_command

HELP = f"""\
Shows the access log kept in the ledger: every export, erasure, legal hold
and release, data-subject look-up and purge, with the OS user who ran it
(and the sudo user behind root), the time, the recording and the reason.
The log is append-only: the ledger refuses changes to it.

{_dpo.CONFIG_NOTE}

examples:
  recguard access-log                       everything, oldest first
  recguard access-log --since 2026-11-01    from that day on
  recguard access-log --limit 20            the 20 most recent entries
  recguard access-log --json | jq 'select(.action == "export")'
"""

ACTION_WIDTH = 7


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "access-log", "who accessed, exported, held, erased or purged what, and why",
                         HELP, func=_dpo.one_line_errors(run))
    parser.add_argument("--since", type=_dpo.timestamp, metavar="TS",
                        help="only entries at or after this time (ISO 8601, UTC by default)")
    parser.add_argument("--limit", type=_dpo.positive, metavar="N",
                        help="only the N most recent entries")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per line, with every field")
    _dpo.add_env_file(parser)


def to_json(entry: AccessEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": format_ts(entry.at), "actor": entry.actor,
            "action": entry.action, "recording_id": entry.recording_id,
            "call_id": entry.call_id, "reason": entry.reason, "detail": entry.detail,
            "server": entry.server_id}


def _value(key: str, value: Any) -> str:
    if key == "caller_hash" and isinstance(value, str):
        return value[:12] + "..."
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def format_entry(entry: AccessEntry) -> str:
    """One entry on one line; what it quotes (actor, reason, details) escaped."""
    parts = [_dpo.when(entry.at), entry.action.ljust(ACTION_WIDTH), entry.actor]
    if entry.server_id:
        parts.append(f"on {entry.server_id}")
    if entry.recording_id:
        parts.append(f"rec {entry.recording_id}")
    parts.append(f"reason: {json.dumps(entry.reason, ensure_ascii=False)}")
    parts.extend(f"{k}={_value(k, v)}" for k, v in entry.detail.items() if v is not None)
    return printable("  ".join(parts))


def run(args: argparse.Namespace) -> int:
    settings = _dpo.settings(args)
    with _dpo.open_ledger(settings) as ledger:
        entries = ledger.access_log(limit=args.limit, since=args.since)
    for entry in entries:
        print(json.dumps(to_json(entry), ensure_ascii=False) if args.json else format_entry(entry))
    if not entries and not args.json:
        print("no access log entries" + (" since then" if args.since else ""))
    return 0
