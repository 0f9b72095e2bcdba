"""Settings: sources and precedence, validation with one clear message per
problem, env-file warnings, redaction, and the documented example file."""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asterisk_recguard.errors import UserError
from asterisk_recguard.resources import config_dir, default_policy_path
from asterisk_recguard.settings import (
    DEFAULT_DECISION_LOG,
    DEFAULT_LEDGER,
    DEFAULT_RECORDINGS_DIR,
    KNOWN_KEYS,
    REDACTED,
    Settings,
    SettingsError,
    load_settings,
    raw_value,
)

SECRET = "s3cr3t-hash-key-0123456789abcdefghijklmnop"
REQUIRED = {
    "RECGUARD_ARI_USER": "recguard",
    "RECGUARD_ARI_PASSWORD": "ari-pw",
    "RECGUARD_AMI_USER": "recguard",
    "RECGUARD_AMI_SECRET": "ami-pw",
    "RECGUARD_HASH_SECRET": SECRET,
}


def write_env(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    os.chmod(path, mode)
    return path


def env_text(values: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in values.items())


def error_of(**kwargs: object) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, UserError)
    assert info.value.exit_code == 2
    return str(info.value)


def test_defaults_with_only_the_required_keys() -> None:
    s = load_settings(environ=REQUIRED)
    assert s.ari_url == "http://127.0.0.1:8088/ari"
    assert s.ari_app == "recguard"
    assert (s.ami_host, s.ami_port) == ("127.0.0.1", 5038)
    assert s.policy == default_policy_path()
    assert s.ledger == DEFAULT_LEDGER
    assert s.recordings_dir == DEFAULT_RECORDINGS_DIR
    assert s.decision_log == DEFAULT_DECISION_LOG
    assert s.encryption is True
    assert s.key_file == Path("/etc/recguard/keys")
    assert s.purge_interval == 3600
    assert s.default_country_code == "386"
    assert s.unauthorized_recordings == "enforce" and s.enforce_unauthorized
    assert s.orphan_grace == 3600
    assert s.gate_timeout == 2.0
    assert s.env_file is None
    assert s.warnings == ()


def test_env_file_values_are_typed(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({
        **REQUIRED,
        "RECGUARD_ARI_URL": "https://pbx.example:8089/ari/",
        "RECGUARD_ARI_APP": "rec-guard_2",
        "RECGUARD_AMI_PORT": "5039",
        "RECGUARD_RECORDINGS_DIR": "/srv/rec",
        "RECGUARD_ENCRYPTION": "OFF",
        "RECGUARD_PURGE_INTERVAL": "0",
        "RECGUARD_DEFAULT_COUNTRY_CODE": "44",
        "RECGUARD_UNAUTHORIZED_RECORDINGS": "log",
        "RECGUARD_ORPHAN_GRACE": "60",
        "RECGUARD_GATE_TIMEOUT": "0.5",
    }))
    s = load_settings(env, environ={})
    assert s.ari_url == "https://pbx.example:8089/ari"  # trailing slash dropped
    assert s.ari_app == "rec-guard_2"
    assert s.ami_port == 5039
    assert s.recordings_dir == Path("/srv/rec")
    assert s.encryption is False
    assert s.purge_interval == 0
    assert s.default_country_code == "44"
    assert not s.enforce_unauthorized
    assert s.orphan_grace == 60
    assert s.gate_timeout == 0.5
    assert s.env_file == env
    assert any("RECGUARD_ENCRYPTION is off" in w for w in s.warnings)


def test_environment_overrides_env_file_and_is_not_modified(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({**REQUIRED, "RECGUARD_AMI_PORT": "5039"}))
    before = dict(os.environ)
    s = load_settings(env, environ={"RECGUARD_AMI_PORT": "6000"})
    assert s.ami_port == 6000
    assert s.ari_password == "ari-pw"
    assert dict(os.environ) == before


def test_empty_environment_value_does_not_hide_the_file(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({**REQUIRED, "RECGUARD_AMI_PORT": "5039"}))
    assert load_settings(env, environ={"RECGUARD_AMI_PORT": ""}).ami_port == 5039


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("RECGUARD_"):
            monkeypatch.delenv(key)
    for key, value in REQUIRED.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("RECGUARD_AMI_HOST", "10.0.0.5")
    assert load_settings().ami_host == "10.0.0.5"


def test_env_file_named_by_recguard_env_file(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({**REQUIRED, "RECGUARD_ARI_APP": "fromfile"}))
    s = load_settings(environ={"RECGUARD_ENV_FILE": str(env)})
    assert s.ari_app == "fromfile"
    assert s.env_file == env


def test_missing_env_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.env"
    message = error_of(env_file=missing, environ=REQUIRED)
    assert str(missing) in message and "does not exist" in message
    message = error_of(environ={**REQUIRED, "RECGUARD_ENV_FILE": str(missing)})
    assert "RECGUARD_ENV_FILE" in message


def test_env_file_that_is_a_directory_is_an_error(tmp_path: Path) -> None:
    assert "not a regular file" in error_of(env_file=tmp_path, environ=REQUIRED)


def test_bad_port_in_env_file_is_one_line_naming_key_file_problem_and_fix(tmp_path: Path) -> None:
    env = write_env(tmp_path / "recguard.env", env_text({**REQUIRED, "RECGUARD_AMI_PORT": "50x8"}))
    message = error_of(env_file=env, environ={})
    assert message == (
        f'RECGUARD_AMI_PORT in {env}: "50x8" is not a port number (1-65535); '
        "set it to the port in manager.conf"
    )


def test_bad_value_from_environment_says_so() -> None:
    message = error_of(environ={**REQUIRED, "RECGUARD_AMI_PORT": "70000"})
    assert message.startswith("RECGUARD_AMI_PORT in the environment:")
    assert "\n" not in message


def test_missing_required_key(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({k: v for k, v in REQUIRED.items()
                                                  if k != "RECGUARD_AMI_SECRET"}))
    message = error_of(env_file=env, environ={})
    assert message.startswith(f"RECGUARD_AMI_SECRET is not set in {env} or the environment;")
    assert "manager.conf" in message


def test_several_problems_summary_then_one_line_each() -> None:
    message = error_of(environ={"RECGUARD_AMI_PORT": "x"})
    lines = message.splitlines()
    assert lines[0] == "6 problems in the recguard configuration:"
    assert len(lines) == 7
    for key in ("ARI_USER", "ARI_PASSWORD", "AMI_USER", "AMI_SECRET", "HASH_SECRET", "AMI_PORT"):
        assert sum(f"RECGUARD_{key} " in line for line in lines[1:]) == 1


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("ARI_URL", "ftp://pbx/ari", "is not an http:// or https:// URL"),
        ("ARI_URL", "localhost:8088", "is not an http:// or https:// URL"),
        ("ARI_URL", "http://pbx:99999/ari", "bad port"),
        ("ARI_APP", "rec guard", "may contain only letters"),
        ("AMI_HOST", "pbx;rm", "not a host name"),
        ("AMI_PORT", "0", "not a port number"),
        ("AMI_PORT", "65536", "not a port number"),
        ("ARI_USER", "   ", "is empty"),
        ("ARI_PASSWORD", " pw", "leading or trailing spaces"),
        ("RECORDINGS_DIR", "spool/rec", "not an absolute path"),
        ("HASH_SECRET", "x" * 31, "31 characters long, at least 32"),
        ("HASH_SECRET", "CHANGE-ME-" + "x" * 40, "placeholder"),
        ("ENCRYPTION", "yes", 'neither "on" nor "off"'),
        ("PURGE_INTERVAL", "-1", "whole number of seconds"),
        ("PURGE_INTERVAL", "1h", "whole number of seconds"),
        ("DEFAULT_COUNTRY_CODE", "+386", "country calling code"),
        ("DEFAULT_COUNTRY_CODE", "0386", "country calling code"),
        ("DEFAULT_COUNTRY_CODE", "3861", "country calling code"),
        ("UNAUTHORIZED_RECORDINGS", "stop", 'neither "enforce" nor "log"'),
        ("ORPHAN_GRACE", "abc", "whole number of seconds"),
        ("GATE_TIMEOUT", "0", "between 0 and 30"),
        ("GATE_TIMEOUT", "nan", "between 0 and 30"),
        ("GATE_TIMEOUT", "31", "between 0 and 30"),
        ("GATE_TIMEOUT", "soon", "not a number of seconds"),
    ],
)
def test_bad_values(key: str, value: str, expected: str) -> None:
    message = error_of(environ={**REQUIRED, f"RECGUARD_{key}": value})
    assert message.startswith(f"RECGUARD_{key} in the environment: ")
    assert expected in message
    assert "; set it to" in message  # every message says how to fix it
    assert "\n" not in message


@pytest.mark.parametrize(("key", "value"), [
    ("ORPHAN_GRACE", "9" * 30),
    ("ORPHAN_GRACE", "31536001"),
    ("PURGE_INTERVAL", "9" * 30),
    ("PURGE_INTERVAL", "1" + "0" * 5000),
    ("AMI_PORT", "1" + "0" * 5000),
    ("ORPHAN_GRACE", "0" * 5000 + "31536001"),
])
def test_numbers_beyond_what_can_be_computed_with_are_refused(key: str, value: str) -> None:
    message = error_of(environ={**REQUIRED, f"RECGUARD_{key}": value})
    assert message.startswith(f"RECGUARD_{key} in the environment: ")
    assert "; set it to" in message and "\n" not in message


def test_the_largest_numbers_accepted_are_ones_dates_and_waits_can_use() -> None:
    s = load_settings(environ={**REQUIRED, "RECGUARD_ORPHAN_GRACE": "31536000",
                               "RECGUARD_PURGE_INTERVAL": "31536000"})
    assert (s.orphan_grace, s.purge_interval) == (31536000, 31536000)
    # What the audit and the daemon's purge timer do with them.
    assert datetime.now(timezone.utc) - timedelta(seconds=s.orphan_grace) > datetime(1, 1, 2, tzinfo=timezone.utc)
    assert s.purge_interval < threading.TIMEOUT_MAX


def test_line_break_in_a_value_is_refused(tmp_path: Path) -> None:
    # A quoted value may span lines in an env file; in an AMI header that is an injection.
    env = write_env(tmp_path / "r.env",
                    env_text({k: v for k, v in REQUIRED.items() if k != "RECGUARD_AMI_SECRET"})
                    + 'RECGUARD_AMI_SECRET="pw\nAction: Originate"\n')
    message = error_of(env_file=env, environ={})
    assert message.startswith(f"RECGUARD_AMI_SECRET in {env} contains a line break")


def test_dollar_in_a_password_is_literal(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env",
                    env_text({k: v for k, v in REQUIRED.items() if k != "RECGUARD_ARI_PASSWORD"})
                    + "RECGUARD_ARI_PASSWORD=pa${HOME}ss\n")
    assert load_settings(env, environ={"HOME": "/root"}).ari_password == "pa${HOME}ss"


def test_unparsable_env_file_line_is_an_error_with_its_line_number(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text(REQUIRED) + 'RECGUARD_ARI_APP="unterminated\n')
    message = error_of(env_file=env, environ={})
    assert f"{env} line 6: cannot parse" in message


def test_empty_optional_value_takes_the_default(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({**REQUIRED, "RECGUARD_AMI_PORT": ""}))
    assert load_settings(env, environ={}).ami_port == 5038


def test_group_or_world_readable_env_file_warns(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text(REQUIRED), mode=0o640)
    s = load_settings(env, environ={})
    assert len(s.warnings) == 1
    assert f"chmod 600 {env}" in s.warnings[0]
    os.chmod(env, 0o600)
    assert load_settings(env, environ={}).warnings == ()


def test_unknown_keys_warn_with_a_suggestion(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", env_text({**REQUIRED, "RECGUARD_AMI_PROT": "5039",
                                                  "OTHER_TOOL_SETTING": "x"}))
    s = load_settings(env, environ={"RECGUARD_GATE_TIMOUT": "1"})
    assert s.ami_port == 5038
    assert len(s.warnings) == 2
    assert any("RECGUARD_AMI_PROT" in w and str(env) in w and "RECGUARD_AMI_PORT" in w
               for w in s.warnings)
    assert any("RECGUARD_GATE_TIMOUT" in w and "the environment" in w for w in s.warnings)


def test_settings_are_frozen_and_secrets_never_shown() -> None:
    s = load_settings(environ=REQUIRED)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.ami_port = 1  # type: ignore[misc]
    shown = repr(s)
    redacted = s.redacted()
    for secret in ("ari-pw", "ami-pw", SECRET):
        assert secret not in shown
        assert secret not in str(redacted)
    assert redacted["ari_password"] == redacted["ami_secret"] == redacted["hash_secret"] == REDACTED
    assert redacted["ami_port"] == 5038
    assert redacted["ledger"] == str(DEFAULT_LEDGER)
    assert redacted["ari_user"] == "recguard"


def test_raw_value_ignores_other_problems(tmp_path: Path) -> None:
    env = write_env(tmp_path / "r.env", "RECGUARD_DECISION_LOG=/tmp/d.jsonl\n")
    assert raw_value("RECGUARD_DECISION_LOG", env, environ={}) == "/tmp/d.jsonl"
    assert raw_value("RECGUARD_DECISION_LOG", env,
                     environ={"RECGUARD_DECISION_LOG": "/x"}) == "/x"
    assert raw_value("RECGUARD_LEDGER", env, environ={}) is None


@given(st.integers(min_value=-100_000, max_value=200_000))
def test_port_range_property(port: int) -> None:
    environ = {**REQUIRED, "RECGUARD_AMI_PORT": str(port)}
    if 1 <= port <= 65535:
        assert load_settings(environ=environ).ami_port == port
    else:
        with pytest.raises(SettingsError):
            load_settings(environ=environ)


# --- the example file ---------------------------------------------------------


EXAMPLE = config_dir() / "recguard.env.example"


def test_example_documents_every_key_with_a_comment() -> None:
    lines = EXAMPLE.read_text().splitlines()
    keys: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = re.match(r"#?(RECGUARD_[A-Z_]+)=", line)
        if match:
            keys[match.group(1)] = index
    assert set(keys) == KNOWN_KEYS - {"RECGUARD_ENV_FILE"}
    for key, index in keys.items():
        # The comment may sit above a group of keys (AMI host and port).
        above = index - 1
        while re.match(r"#?RECGUARD_[A-Z_]+=", lines[above]):
            above -= 1
        assert lines[above].startswith("# "), f"{key} has no comment above it"


def test_example_placeholders_are_refused_until_filled_in() -> None:
    message = error_of(env_file=EXAMPLE, environ={})
    assert "RECGUARD_ARI_PASSWORD" in message and "placeholder" in message
    assert "RECGUARD_HASH_SECRET" in message
    filled = load_settings(EXAMPLE, environ={
        "RECGUARD_ARI_PASSWORD": "a", "RECGUARD_AMI_SECRET": "b", "RECGUARD_HASH_SECRET": SECRET,
    })
    assert isinstance(filled, Settings)
    assert filled.ami_port == 5038
    assert filled.recordings_dir == DEFAULT_RECORDINGS_DIR


def test_the_server_id_defaults_to_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "pbx-7.example")
    assert load_settings(environ=REQUIRED).server_id == "pbx-7.example"
    assert load_settings(environ={**REQUIRED, "RECGUARD_SERVER_ID": "pbx-a"}).server_id == "pbx-a"


@pytest.mark.parametrize("value", ["pbx a", "x" * 65, "pbx/1", "ünï"])
def test_a_bad_server_id_is_one_line(value: str) -> None:
    message = error_of(environ={**REQUIRED, "RECGUARD_SERVER_ID": value})
    assert message.startswith("RECGUARD_SERVER_ID in the environment: ")
    assert "is not a server id" in message and "; set it to" in message and "\n" not in message


def test_a_host_name_that_is_no_server_id_asks_for_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "my host")
    message = error_of(environ=REQUIRED)
    assert message.startswith("RECGUARD_SERVER_ID is not set, and its default ")
    assert "set it to a short name of this Asterisk server" in message
