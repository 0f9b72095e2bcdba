"""``recguard keys``: create, rotate and list the keys that encrypt recordings at rest.

Prints key ids only, never key material.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import vault
from ._common import add_command

# One paragraph, re-flowed to the terminal's width.
DESCRIPTION = """\
Manage the key file for encryption at rest. The last key in the file encrypts
new recordings; every key decrypts the recordings made with it, so never
remove a key while such recordings are kept."""

def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "keys", "create, rotate and list the encryption keys for recordings",
                         DESCRIPTION, wrap=True)
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    generate = add_command(actions, "generate", "create a new key file (mode 600) with one key",
                           func=_generate)
    rotate = add_command(actions, "rotate", "add a new key; it encrypts new recordings from now on",
                         func=_rotate)
    list_ = add_command(actions, "list", "list the key ids; the active one is marked with *", func=_list)
    for action in (generate, rotate, list_):
        action.add_argument(
            "--key-file", required=True, type=Path, metavar="PATH", help="the key file"
        )


def _generate(args: argparse.Namespace) -> int:
    key_id = vault.generate_key_file(args.key_file)
    print(f"created {args.key_file} with key {key_id} (active)")
    print("back it up: recordings encrypted with its keys cannot be read without it")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    key_id = vault.rotate(args.key_file)
    print(
        f"added key {key_id} to {args.key_file}; it is now the active key, older keys still decrypt"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    keyring = vault.Keyring.load(args.key_file)
    active = keyring.active_key_id
    for key_id in keyring.key_ids:
        marker = "*" if key_id == active else " "
        suffix = "  (active)" if key_id == active else ""
        print(f"{marker} {key_id}{suffix}")
    return 0
