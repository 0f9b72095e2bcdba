"""``recguard decide`` and ``recguard check-config``: ask the policy what it
would do with a call, and validate the policy file."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .. import policy as pol
from ..display import printable, quoted
from ..errors import UserError
from ..resources import default_policy_path
from ._common import add_command

DECIDE_EPILOG = """\
Each --purpose is a purpose id from the policy. Each --notice names a notice
that played to the end; --notice-interrupted one that was cut short. Consent
is "none" unless the caller actively opted in (silence is not consent).

examples:
  recguard decide --purpose order --notice evidence-v1
      an order after the evidence notice: recorded, kept 1095 days
  recguard decide --purpose general_info --purpose quality \\
                  --notice quality-consent-v1 --consent given
      a general-information call with consent: recorded for quality only
  recguard decide --purpose order --notice-interrupted evidence-v1 --json
      the caller cut the notice short: not recorded; one JSON object

exit status: 0 whether or not the call would be recorded; 2 on a bad policy
or bad arguments.
"""

CHECK_EPILOG = """\
Refuses, with one line naming the file, the key and what to do: TOML syntax
errors, unknown keys, a purpose without a basis, a recording purpose without a
positive retention, retention over 1825 days without a justification, a notice
covering an unknown or forbidden purpose, a recording purpose no notice
covers, duplicate ids, and any attempt to record every call.

With --env-file (or RECGUARD_ENV_FILE) it also validates the settings as
`recguard run` reads them, opens the encryption key file, and warns about
what is allowed but unwise (encryption off, an env file others can read).

examples:
  recguard check-config
  recguard check-config --policy /etc/recguard/policy.toml
  recguard check-config --env-file /etc/recguard/recguard.env

exit status: 0 if the policy is valid, 2 if not.
"""


def _policy_default() -> str:
    return os.environ.get("RECGUARD_POLICY") or str(default_policy_path())


def _add_policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="PATH",
        default=None,
        help="the policy file (default: $RECGUARD_POLICY, else the shipped config/policy.toml)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    decide = add_command(
        subparsers, "decide", "ask the policy whether a call would be recorded, and why",
        "Apply the policy to the facts of a call and say whether it may be\n"
        "recorded, for which purposes, for how long, and why not.",
        epilog=DECIDE_EPILOG, func=run_decide)
    decide.add_argument(
        "--purpose",
        dest="purposes",
        action="append",
        required=True,
        metavar="P",
        help="a purpose declared for the call (repeat for several)",
    )
    for flag, dest, how in (("--notice", "notices", "played to the end"),
                            ("--notice-interrupted", "notices_interrupted", "was cut short")):
        decide.add_argument(flag, dest=dest, action="append", default=[], metavar="ID",
                            help=f"a notice that {how} (repeatable)")
    decide.add_argument(
        "--consent",
        choices=[c.value for c in pol.Consent],
        default=pol.Consent.NONE.value,
        help="the caller's answer to the consent question (default: none)",
    )
    decide.add_argument(
        "--outcome",
        choices=[o.value for o in pol.Outcome],
        default=pol.Outcome.UNKNOWN.value,
        help="whether the call led to a transaction (default: unknown)",
    )
    _add_policy_option(decide)
    decide.add_argument("--json", action="store_true", help="print one JSON object")

    check = add_command(
        subparsers, "check-config", "validate the policy file (and, with --env-file, the settings)",
        "Validate the policy file and summarise it in one line.",
        epilog=CHECK_EPILOG, func=run_check_config)
    _add_policy_option(check)
    check.add_argument(
        "--env-file",
        metavar="PATH",
        help="also validate the daemon's settings in this env file (default: $RECGUARD_ENV_FILE if set)",
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def run_decide(args: argparse.Namespace) -> int:
    both = sorted(set(args.notices) & set(args.notices_interrupted))
    if both:
        raise UserError(
            f"notice {quoted(both[0])} is given both as --notice and --notice-interrupted; "
            "give each notice once, with how it played"
        )
    policy = pol.load_policy(args.policy or _policy_default())
    notices = {notice_id: pol.NoticeStatus.COMPLETE for notice_id in args.notices}
    notices.update(
        {notice_id: pol.NoticeStatus.INTERRUPTED for notice_id in args.notices_interrupted}
    )
    facts = pol.CallFacts(
        purposes=frozenset(args.purposes),
        notices=notices,
        consent=pol.Consent(args.consent),
        outcome=pol.Outcome(args.outcome),
    )
    decision = pol.decide(facts, policy)
    if args.json:
        print(json.dumps(decision.to_json_dict(), ensure_ascii=False))
    else:
        print(pol.explain(decision, policy, facts))
    return 0


def _check_settings(env_file: str | None) -> tuple[str | None, list[str]]:
    """With an env file (--env-file or RECGUARD_ENV_FILE), validate the daemon's
    settings as `recguard run` would; return its policy path and the warnings."""
    if not env_file and not os.environ.get("RECGUARD_ENV_FILE"):
        return None, []
    from ..settings import check_recordings_dir, load_settings
    from ..vault import Keyring

    settings = load_settings(env_file)
    check_recordings_dir(settings.recordings_dir)
    warnings = list(settings.warnings)
    if settings.encryption:
        keys = Keyring.load(settings.key_file)
        print(printable(f"{settings.env_file or 'environment'}: OK — encryption at rest with "
                        f"{_count(len(keys.key_ids), 'key')}, new recordings under "
                        f"{keys.active_key_id}"))
    else:
        print(printable(f"{settings.env_file or 'environment'}: OK"))
        warnings.append(
            "RECGUARD_ENCRYPTION=off: recordings stay as clear WAV files in "
            f"{settings.recordings_dir}; turn it on (and create a key with `recguard keys generate "
            f"--key-file {settings.key_file}`) unless the disk itself is encrypted"
        )
    return str(settings.policy), warnings


def run_check_config(args: argparse.Namespace) -> int:
    settings_policy, warnings = _check_settings(args.env_file)
    path = args.policy or settings_policy or _policy_default()
    policy = pol.load_policy(path)
    for notice_id in sorted(policy.notices):
        text = policy.text_path(notice_id)
        if not text.is_file():
            # The text is the record of what callers were told; a notice without it cannot be shown.
            raise UserError(
                f"{path}: notices.{notice_id}.text: {text} does not exist; keep the text of every "
                "notice next to the policy (it is what callers hear, and what you show the regulator)"
            )
    recording = sum(1 for purpose in policy.purposes.values() if purpose.records)
    never = len(policy.purposes) - recording
    print(printable(
        f"{path}: OK — policy {policy.label}, {_count(len(policy.purposes), 'purpose')} "
        f"({recording} record, {never} never), {_count(len(policy.notices), 'notice')}"
    ))
    for warning in warnings:
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return 0

