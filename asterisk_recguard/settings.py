"""Turn RECGUARD_* environment variables and an env file into one typed,
validated, immutable :class:`Settings`, or one clear error.

Every command that talks to Asterisk or touches recordings calls
:func:`load_settings` before it connects to anything, so a typo in the
configuration is reported as ``RECGUARD_KEY in FILE: what is wrong; how to
fix it`` and exit status 2, never as a traceback or a half-started daemon.

The raw values and where each came from are read by :mod:`.envfile` (the
environment over the env file); an unset optional key takes its default below.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

# raw_value is re-exported: `recguard logs` reads one raw value from here even
# when the rest of the configuration is incomplete.
from .envfile import ENV_FILE_VARIABLE, PREFIX, SettingsError, raw_value, read_sources
from .ledger.location import DatabaseUrl
from .resources import default_policy_path
from ._settingvalues import (  # the parsers, and the limits they keep
    MAX_GATE_TIMEOUT,
    MAX_INTERVAL_SECONDS,
    _absolute_path,
    _app,
    _Bad,
    _country_code,
    _default_server_id,
    _gate_timeout,
    _hash_secret,
    _host,
    _ledger,
    _metrics,
    _port,
    _seconds,
    _secret,
    _server_id,
    _switch,
    _text,
    _unauthorized,
    _url,
)

DEFAULT_ARI_URL = "http://127.0.0.1:8088/ari"
DEFAULT_ARI_APP = "recguard"
DEFAULT_AMI_HOST = "127.0.0.1"
DEFAULT_AMI_PORT = 5038
DEFAULT_LEDGER = Path("/var/lib/recguard/ledger.sqlite3")
DEFAULT_RECORDINGS_DIR = Path("/var/spool/asterisk/recguard")
DEFAULT_DECISION_LOG = Path("/var/log/recguard/decisions.jsonl")
DEFAULT_KEY_FILE = Path("/etc/recguard/keys")
DEFAULT_PURGE_INTERVAL = 3600
DEFAULT_COUNTRY_CODE = "386"
DEFAULT_ORPHAN_GRACE = 3600
DEFAULT_MONITOR_DIR = Path("/var/spool/asterisk/monitor")
DEFAULT_GATE_TIMEOUT = 2.0
# Prometheus metrics: loopback only unless told otherwise; 9467 is no
# well-known port and not taken in Prometheus's list of exporter ports.
DEFAULT_METRICS = ("127.0.0.1", 9467)

SECRET_FIELDS = frozenset({"ari_password", "ami_secret", "hash_secret"})
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Settings:
    """The validated configuration. Secrets are left out of ``repr`` so that
    printing or logging a Settings by mistake does not leak them; use
    :meth:`redacted` for logging."""

    ari_user: str
    ari_password: str = field(repr=False)
    ami_user: str
    ami_secret: str = field(repr=False)
    hash_secret: str = field(repr=False)
    ari_url: str = DEFAULT_ARI_URL
    ari_app: str = DEFAULT_ARI_APP
    ami_host: str = DEFAULT_AMI_HOST
    ami_port: int = DEFAULT_AMI_PORT
    policy: Path = field(default_factory=default_policy_path)
    ledger: Path | DatabaseUrl = DEFAULT_LEDGER  # a file, or a PostgreSQL database
    recordings_dir: Path = DEFAULT_RECORDINGS_DIR
    decision_log: Path = DEFAULT_DECISION_LOG
    encryption: bool = True
    key_file: Path = DEFAULT_KEY_FILE
    purge_interval: int = DEFAULT_PURGE_INTERVAL
    default_country_code: str = DEFAULT_COUNTRY_CODE
    unauthorized_recordings: str = "enforce"
    orphan_grace: int = DEFAULT_ORPHAN_GRACE
    monitor_dir: Path = DEFAULT_MONITOR_DIR
    gate_timeout: float = DEFAULT_GATE_TIMEOUT
    metrics: tuple[str, int] | None = DEFAULT_METRICS  # None: no metrics endpoint
    # Which Asterisk server this guard and these commands act for (ledger rows carry it).
    server_id: str = "localhost"
    env_file: Path | None = None
    warnings: tuple[str, ...] = ()

    @property
    def enforce_unauthorized(self) -> bool:
        """True when recordings started behind the guard's back are stopped
        and deleted, False when they are only logged."""
        return self.unauthorized_recordings == "enforce"

    def redacted(self) -> dict[str, Any]:
        """All settings as plain JSON-able values, secrets masked, for logs."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = REDACTED
            elif isinstance(value, (Path, DatabaseUrl)):
                value = str(value)  # a database's URL without its password
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out


# --- parsing helpers -------------------------------------------------------
def check_recordings_dir(path: Path) -> None:
    """Refuse a recordings directory that is not there: Asterisk could not
    write a recording into it. Used by `recguard run` and `check-config`."""
    problem = "is not a directory" if path.exists() else "does not exist"
    if not path.is_dir():
        raise SettingsError(
            f"RECGUARD_RECORDINGS_DIR {path} {problem}; create it so that "
            "Asterisk can write and recguard read it, e.g. "
            f"install -d -o asterisk -g asterisk -m 2770 {path}"
        )


@dataclass(frozen=True)
class _Key:
    field: str
    parse: Callable[[str], Any]
    fix: str
    default: Callable[[], Any] | None = None  # None: the key is required


_KEYS: dict[str, _Key] = {
    "ARI_URL": _Key("ari_url", _url,
                    "set it to the ARI base URL from http.conf, e.g. http://127.0.0.1:8088/ari",
                    lambda: DEFAULT_ARI_URL),
    "ARI_USER": _Key("ari_user", _text, "set it to the user name of a [user] section in ari.conf"),
    "ARI_PASSWORD": _Key("ari_password", _secret, "set it to that user's password in ari.conf"),
    "ARI_APP": _Key("ari_app", _app,
                    "set it to the application name used in Stasis() by the recguard-gate snippet",
                    lambda: DEFAULT_ARI_APP),
    "AMI_HOST": _Key("ami_host", _host, "set it to the address manager.conf binds to",
                     lambda: DEFAULT_AMI_HOST),
    "AMI_PORT": _Key("ami_port", _port, "set it to the port in manager.conf",
                     lambda: DEFAULT_AMI_PORT),
    "AMI_USER": _Key("ami_user", _text, "set it to the user name of a section in manager.conf"),
    "AMI_SECRET": _Key("ami_secret", _secret, "set it to that user's secret in manager.conf"),
    "POLICY": _Key("policy", _absolute_path,
                   "set it to the absolute path of the policy TOML file, e.g. "
                   "/etc/recguard/policy.toml", default_policy_path),
    "LEDGER": _Key("ledger", _ledger, "set it to an absolute path for the SQLite "
                   f"ledger, e.g. {DEFAULT_LEDGER}, or to a postgresql:// URL",
                   lambda: DEFAULT_LEDGER),
    "RECORDINGS_DIR": _Key("recordings_dir", _absolute_path,
                           "set it to the absolute path of the directory MixMonitor writes to, "
                           f"e.g. {DEFAULT_RECORDINGS_DIR}", lambda: DEFAULT_RECORDINGS_DIR),
    "DECISION_LOG": _Key("decision_log", _absolute_path, "set it to an absolute path for the "
                         f"decision log, e.g. {DEFAULT_DECISION_LOG}", lambda: DEFAULT_DECISION_LOG),
    "HASH_SECRET": _Key("hash_secret", _hash_secret,
                        "set it to a long random string, e.g. the output of "
                        "`openssl rand -hex 32`, and never change it afterwards "
                        "(caller look-ups depend on it)"),
    "ENCRYPTION": _Key("encryption", _switch, "set it to on or off", lambda: True),
    "KEY_FILE": _Key("key_file", _absolute_path, "set it to the absolute path of the recording "
                     f"key file, e.g. {DEFAULT_KEY_FILE}", lambda: DEFAULT_KEY_FILE),
    "PURGE_INTERVAL": _Key("purge_interval", _seconds,
                           "set it to a number of seconds (0 turns the built-in purge off), "
                           f"at most {MAX_INTERVAL_SECONDS} (a year)",
                           lambda: DEFAULT_PURGE_INTERVAL),
    "DEFAULT_COUNTRY_CODE": _Key("default_country_code", _country_code,
                                 "set it to the digits of your country code, e.g. 386 for Slovenia",
                                 lambda: DEFAULT_COUNTRY_CODE),
    "UNAUTHORIZED_RECORDINGS": _Key("unauthorized_recordings", _unauthorized,
                                    "set it to enforce (stop and delete) or log (detect only)",
                                    lambda: "enforce"),
    "ORPHAN_GRACE": _Key("orphan_grace", _seconds, "set it to a number of seconds, e.g. 3600, "
                         f"at most {MAX_INTERVAL_SECONDS} (a year)", lambda: DEFAULT_ORPHAN_GRACE),
    "MONITOR_DIR": _Key("monitor_dir", _absolute_path,
                        "set it to Asterisk's monitor spool (astspooldir/monitor), "
                        f"e.g. {DEFAULT_MONITOR_DIR}", lambda: DEFAULT_MONITOR_DIR),
    "GATE_TIMEOUT": _Key("gate_timeout", _gate_timeout,
                         f"set it to a number of seconds greater than 0 and at most "
                         f"{MAX_GATE_TIMEOUT:g}, e.g. 2.0", lambda: DEFAULT_GATE_TIMEOUT),
    "METRICS": _Key("metrics", _metrics,
                    "set it to off, or to the address and port the Prometheus endpoint listens on, "
                    f"e.g. {DEFAULT_METRICS[0]}:{DEFAULT_METRICS[1]}", lambda: DEFAULT_METRICS),
    "SERVER_ID": _Key("server_id", _server_id,
                      "set it to a short name of this Asterisk server, unique among the servers "
                      "sharing the ledger, e.g. pbx-a", _default_server_id),
}

KNOWN_KEYS: frozenset[str] = frozenset(PREFIX + name for name in _KEYS) | {ENV_FILE_VARIABLE}
# Only the guard logs in to Asterisk; the commands that read the ledger and
# the files (purge, audit, the DPO's) must work without these.
ASTERISK_CREDENTIALS = frozenset({"ARI_USER", "ARI_PASSWORD", "AMI_USER", "AMI_SECRET"})


def load_settings(
    env_file: str | Path | None = None, environ: Mapping[str, str] | None = None,
    *, need_asterisk: bool = True,
) -> Settings:
    """Read, validate and return the settings, or raise SettingsError.

    ``environ`` defaults to ``os.environ``; it is read, never modified. Every
    problem is reported: one problem is one line; several are a summary line
    followed by one line each. With ``need_asterisk=False`` the ARI and AMI
    credentials are neither required nor checked, and are left empty.
    """
    values, path, warnings = read_sources(env_file, environ)
    problems: list[str] = []
    where_missing = f"{path} or the environment" if path else "the environment"

    kwargs: dict[str, Any] = {}
    for name, spec in _KEYS.items():
        if not need_asterisk and name in ASTERISK_CREDENTIALS:
            kwargs[spec.field] = ""
            continue
        key = PREFIX + name
        raw, source = values.get(key, (None, ""))
        if raw is None or (raw == "" and spec.default is not None):
            # An unset or empty optional key takes its default.
            if spec.default is None:
                problems.append(f"{key} is not set in {where_missing}; {spec.fix}")
                continue
            try:
                kwargs[spec.field] = spec.default()
            except _Bad as bad:  # a default taken from the host, e.g. its name
                problems.append(f"{key} is not set, and its default {bad}; {spec.fix}")
            continue
        if "\r" in raw or "\n" in raw or "\0" in raw:
            # Values end up in AMI headers and file names; a line break there
            # is an injection.
            problems.append(f"{key} in {source} contains a line break or NUL; {spec.fix}")
            continue
        try:
            kwargs[spec.field] = spec.parse(raw)
        except _Bad as bad:
            problems.append(f"{key} in {source}: {bad}; {spec.fix}")

    for key, (_, source) in sorted(values.items()):
        if key not in KNOWN_KEYS:
            hint = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
            did_you_mean = f"; did you mean {hint[0]}?" if hint else ""
            warnings.append(f"unknown setting {key} in {source} is ignored{did_you_mean}")

    if problems:
        if len(problems) == 1:
            raise SettingsError(problems[0])
        listing = "\n".join(f"  {p}" for p in problems)
        raise SettingsError(f"{len(problems)} problems in the recguard configuration:\n{listing}")

    if kwargs["encryption"] is False:
        warnings.append(
            "RECGUARD_ENCRYPTION is off: recordings are stored unencrypted on disk"
        )
    return Settings(**kwargs, env_file=path, warnings=tuple(warnings))
