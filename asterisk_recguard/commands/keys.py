"""``recguard keys``: create, rotate and list the keys that encrypt recordings at rest.

Prints key ids only, never key material.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import vault


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "keys",
        help="create, rotate and list the encryption keys for recordings",
        description=(
            "Manage the key file for encryption at rest. The last key in the file "
            "encrypts new recordings; every key decrypts the recordings made with it, "
            "so never remove a key while such recordings are kept."
        ),
    )
    actions = parser.add_subparsers(dest="keys_action", metavar="ACTION", required=True)

    generate = actions.add_parser("generate", help="create a new key file (mode 600) with one key")
    generate.set_defaults(func=_generate)

    rotate = actions.add_parser(
        "rotate", help="add a new key; it encrypts new recordings from now on"
    )
    rotate.set_defaults(func=_rotate)

    list_ = actions.add_parser("list", help="list the key ids; the active one is marked with *")
    list_.set_defaults(func=_list)

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
