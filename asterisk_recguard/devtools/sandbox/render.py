"""The sandbox's configuration: Asterisk's files rendered from
``config/sandbox/*.conf`` with fresh credentials, recguard's env file (with
the SIP extensions of sip.py), the encryption key file, the ledger, and the
notice prompts installed where Asterisk looks."""

from __future__ import annotations

import os
import secrets
import shutil
import string
from collections.abc import Sequence
from pathlib import Path

from ... import resources
from ...ledger import Ledger
from . import sip
from .state import SandboxError, SandboxPaths

# Facts the dialplan snippets set and the guard reads from every ARI event.
CHANNEL_VARS = (
    "RECGUARD_PURPOSE",
    "RECGUARD_NOTICES",
    "RECGUARD_CONSENT",
    "RECGUARD_OUTCOME",
    "RECGUARD_DECISION",
    "RECGUARD_RECORDING_ID",
)
TEMPLATES = (
    "asterisk.conf",
    "modules.conf",
    "http.conf",
    "ari.conf",
    "manager.conf",
    "logger.conf",
    "extensions.conf",
    "musiconhold.conf",
    "features.conf",
    "queues.conf",
    "indications.conf",
    "cdr.conf",
    "cel.conf",
    "ccss.conf",
    "acl.conf",
    "udptl.conf",
    "websocket_client.conf",
    "pjsip.conf",
    "pjproject.conf",
    "rtp.conf",
)


def render_config(
    paths: SandboxPaths, http_port: int, ami_port: int, includes: Sequence[Path], sip_port: int
) -> dict[str, str]:
    """Write Asterisk's configuration into ``paths.etc_dir``; return the
    credentials and paths for recguard, and the SIP extensions, in the env
    file's key names."""
    previous = read_env(paths.env_file)
    creds = {
        "RECGUARD_ARI_URL": f"http://127.0.0.1:{http_port}/ari",
        "RECGUARD_ARI_USER": "recguard",
        "RECGUARD_ARI_PASSWORD": secrets.token_urlsafe(24),
        "RECGUARD_AMI_HOST": "127.0.0.1",
        "RECGUARD_AMI_PORT": str(ami_port),
        "RECGUARD_AMI_USER": "recguard",
        "RECGUARD_AMI_SECRET": secrets.token_urlsafe(24),
        "RECGUARD_RECORDINGS_DIR": str(paths.recordings_dir),
        "RECGUARD_LEDGER": str(paths.state_dir / "recguard" / "ledger.sqlite3"),
        "RECGUARD_DECISION_LOG": str(paths.state_dir / "recguard" / "decisions.jsonl"),
        "RECGUARD_KEY_FILE": str(paths.state_dir / "recguard" / "keys"),
        # Kept across `up`s: a new secret would make old caller hashes unfindable.
        "RECGUARD_HASH_SECRET": previous.get("RECGUARD_HASH_SECRET") or secrets.token_hex(32),
        # Sandboxes run side by side (tests, several people); one fixed metrics
        # port would be taken by the first. Set RECGUARD_METRICS to turn it on.
        "RECGUARD_METRICS": previous.get("RECGUARD_METRICS") or "off",
    }
    creds.update(sip.settings(sip_port, previous))
    for missing in [Path(p) for p in includes if not Path(p).is_file()]:
        raise SandboxError(f"--include {missing}: no such file")
    include_lines, features_lines = _copy_includes(paths.etc_dir / "include", includes)
    values = {
        "state": str(paths.state_dir),
        "http_port": str(http_port),
        "ami_port": str(ami_port),
        "ari_user": creds["RECGUARD_ARI_USER"],
        "ari_password": creds["RECGUARD_ARI_PASSWORD"],
        "ami_user": creds["RECGUARD_AMI_USER"],
        "ami_secret": creds["RECGUARD_AMI_SECRET"],
        "channelvars": ",".join(CHANNEL_VARS),
        "includes": "\n".join(include_lines),
        "applicationmap": "\n".join(features_lines),
        **sip.template_values(creds),
    }
    templates = resources.config_dir() / "sandbox"
    for name in TEMPLATES:
        text = string.Template((templates / name).read_text(encoding="utf-8")).substitute(values)
        write_private(paths.etc_dir / name, text)
    return creds


def _copy_includes(include_dir: Path, includes: Sequence[Path]) -> tuple[list[str], list[str]]:
    """Copy recguard's own snippets, then the user's, into ``include_dir`` so
    that a chrooted Asterisk can read them; return the ``#include`` lines for
    extensions.conf and for features.conf."""
    include_dir.parent.mkdir(parents=True, exist_ok=True)
    if include_dir.exists():
        shutil.rmtree(include_dir)
    include_dir.mkdir()
    include_lines = []
    features_lines = []
    shipped = sorted(resources.dialplan_dir().glob("*.conf"))
    for index, source in enumerate([*shipped, *map(Path, includes)]):
        target = include_dir / f"{index:02d}-{source.name}"
        shutil.copyfile(source, target)
        target.chmod(0o600)
        if source.name.endswith("-features.conf"):
            features_lines.append(f'#include "{target}"')
        else:
            include_lines.append(f'#include "{target}"')
    return include_lines, features_lines


def ensure_key_file(path: Path) -> None:
    """Recordings are encrypted at rest; the sandbox has its own key, kept across `up`s."""
    if not path.exists():
        from ...vault import generate_key_file

        generate_key_file(path)


def ensure_ledger(path: Path, recordings_dir: Path) -> None:
    """A new sandbox gets its ledger before anything runs, so that recguard's
    commands work on it at once; an existing one is kept, and a lost one
    (recordings but no ledger) is refused as anywhere else."""
    if not os.path.lexists(path):
        Ledger.create(path, recordings_dir=recordings_dir).close()


def write_env(env_file: Path, creds: dict[str, str]) -> None:
    lines = [
        "# Written by `recguard sandbox up`; new ARI/AMI credentials at every up.",
        "# SANDBOX_SIP_*: where softphones and test clients call the sandbox (not read by recguard).",
    ]
    lines += [f"{key}={value}" for key, value in creds.items()]
    write_private(env_file, "\n".join(lines) + "\n")


def read_env(env_file: Path) -> dict[str, str]:
    try:
        text = env_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def install_prompts(root: Path | None, cache_dir: Path) -> None:
    """Build recguard's notice prompts and put them where Asterisk looks for sounds."""
    try:
        from ... import prompts
    except ImportError:
        return
    sounds = Path("/usr/share/asterisk/sounds")
    if root is None:
        sounds = Path(os.environ.get("RECGUARD_SANDBOX_SOUNDS", str(sounds)))
    prompts.install(sounds, root=root, cache_dir=cache_dir / "prompts")
