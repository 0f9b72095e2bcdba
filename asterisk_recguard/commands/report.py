"""``recguard report``: the data-protection officer's report for a period,
as text, JSON, or one self-contained HTML page with charts."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..display import printable, quoted
from ..errors import UserError
from ..ledger import utcnow
from ..policy import Policy, load_policy
from ..report import gather, render_html, render_text, to_json
from ..safefile import read_regular_file
from . import _dpo
from ._common import add_command

# A notice's words are a few sentences; more is not a notice.
MAX_NOTICE_BYTES = 64 * 1024

HELP = f"""\
The report a data-protection officer keeps for the regulator (GDPR art. 5(2)
and 30), for one period of whole UTC days; it only reads the ledger and the
policy file:

  record of processing  the purposes of the policy in force now, their legal
                        bases, retention and notices (with the notices' words),
                        and the policy versions decisions were made under;
  calls                 calls that started in the period: decided, recorded
                        by purpose, recorded then deleted, not recorded by
                        reason, consent given / refused / withdrawn;
  recordings            deleted in the period by reason, and the longest delay
                        past a deadline; kept now by purpose and by year of
                        deadline; past their deadline now (must be 0); holds;
  requests, incidents   data-subject requests answered (from the access log),
                        exports as evidence, unauthorized recordings found.
  integrity             whether the ledger's hash chains hold, checked as
                        `recguard audit` does, and the hash each ends with.

The period is --since DAY to --until DAY, BOTH DAYS INCLUDED (YYYY-MM-DD, UTC),
or a whole --month YYYY-MM (--month last: the month before this one). A call
counts in the period it started in, by the last decision made about it. No
caller number or hash appears in the report.
What the ledger cannot tell is said at the end of the report, not guessed.

Without --html or --json the report is plain text on standard output. --html
FILE writes one HTML page that opens offline: inline CSS and SVG charts
(calls per day, deletions per day, reasons for not recording), no script.

{_dpo.CONFIG_NOTE}

examples:
  recguard report --month 2026-11
  recguard report --month last --html /srv/dpo/last-month.html   (monthly, from cron)
  recguard report --since 2026-11-01 --until 2026-11-30 --html /srv/dpo/2026-11.html
  recguard report --month 2026-11 --json | jq .overdue_now

exit status: 0 when the report was made; 2 on a bad date or a configuration error.
"""


def register(subparsers: Any) -> None:
    parser = add_command(subparsers, "report", "the DPO's report for a period, as text or HTML",
                         HELP, func=_dpo.one_line_errors(run))
    parser.add_argument("--since", type=day_arg, metavar="DAY",
                        help="first day of the period, YYYY-MM-DD (UTC), included")
    parser.add_argument("--until", type=day_arg, metavar="DAY",
                        help="last day of the period, YYYY-MM-DD (UTC), included")
    parser.add_argument("--month", type=month_arg, metavar="YYYY-MM",
                        help="the whole month instead of --since and --until; "
                             "'last' for the month before this one")
    parser.add_argument("--html", type=Path, metavar="FILE",
                        help="write the report as one self-contained HTML page to FILE")
    parser.add_argument("--json", action="store_true",
                        help="the figures as one JSON object on standard output")
    _dpo.add_env_file(parser)


def day_arg(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not a day; write it as YYYY-MM-DD, e.g. 2026-11-01") from None


def month_arg(text: str) -> date:
    """A month as its first day; ``last`` is the month before this one (UTC)."""
    if text.strip() == "last":
        return (utcnow().date().replace(day=1) - timedelta(days=1)).replace(day=1)
    try:
        return date.fromisoformat(text.strip() + "-01")
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{quoted(text)} is not a month; write it as YYYY-MM, e.g. 2026-11") from None


def period(args: argparse.Namespace) -> tuple[date, date]:
    """The first and last day of the period asked for, or a UserError saying what to give."""
    if args.month is not None:
        if args.since is not None or args.until is not None:
            raise UserError("give either --month or --since and --until, not both")
        first: date = args.month
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return first, following - timedelta(days=1)
    if args.since is None or args.until is None:
        raise UserError("say which period: --since DAY --until DAY (both included), "
                        "or --month YYYY-MM")
    if args.until < args.since:
        raise UserError(f"--until {args.until} is before --since {args.since}; the period "
                        "runs from --since to --until, both days included")
    return args.since, args.until


def notice_words(policy: Policy) -> Any:
    """A reader of each notice's words from the file the policy names, or why not."""
    def read(notice_id: str) -> str:
        path = policy.text_path(notice_id)
        try:
            return read_regular_file(path, "notice text", MAX_NOTICE_BYTES,
                                     missing=f"{path}: no such file").strip()
        except UserError as exc:
            return f"(the words could not be read: {exc})"
    return read


def run(args: argparse.Namespace) -> int:
    since, until = period(args)
    if args.html is not None and args.json:
        raise UserError("give --html FILE or --json, not both")
    settings = _dpo.settings(args)
    policy = load_policy(settings.policy)
    with _dpo.open_ledger(settings) as ledger:
        figures = gather(ledger, policy, since, until, now=utcnow(),
                         read_words=notice_words(policy))
    if args.json:
        print(json.dumps(to_json(figures), ensure_ascii=False))
    elif args.html is not None:
        write_file(args.html, render_html(figures))
        print(printable(f"report for {since} to {until} written to {args.html}"))
    else:
        print(render_text(figures), end="")
    return 0


def write_file(path: Path, text: str) -> None:
    """``text`` at ``path``, whole or not at all: written beside it, then renamed."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise UserError(f"--html {path}: no such directory {directory}; create it first")
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o640)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
