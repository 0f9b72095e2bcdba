"""Where the shipped files (default policy, prompts, dialplan and Asterisk
snippets) are, whether recguard runs from a wheel or from a source checkout.

A wheel carries the top-level ``config/`` and ``dialplan/`` folders inside the
package (see ``package_dir`` in setup.cfg); an editable install does not map
them, so the checkout's own folders are used then.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    inside = _PACKAGE_DIR / name
    if inside.is_dir():
        return inside
    return _PACKAGE_DIR.parent / name


def config_dir() -> Path:
    """The shipped ``config/`` folder."""
    return _shipped("config")


def dialplan_dir() -> Path:
    """The shipped ``dialplan/`` folder."""
    return _shipped("dialplan")


def default_policy_path() -> Path:
    return config_dir() / "policy.toml"
