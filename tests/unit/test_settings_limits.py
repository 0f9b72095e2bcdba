"""Settings a mistake or an attacker could get past the parsers: digits that
are not ASCII, numbers too large to compute with, relative paths, a missing
recordings directory and credentials inside the ARI URL. Each is one line
naming the key, never a traceback and never accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_recguard import daemon
from asterisk_recguard.cli import main
from asterisk_recguard.errors import UserError
from asterisk_recguard.settings import SettingsError, load_settings
from asterisk_recguard.vault import generate_key_file

REQUIRED = {
    "RECGUARD_ARI_USER": "recguard",
    "RECGUARD_ARI_PASSWORD": "ari-pw",
    "RECGUARD_AMI_USER": "recguard",
    "RECGUARD_AMI_SECRET": "ami-pw",
    "RECGUARD_HASH_SECRET": "h" * 40,
}


def error_of(key: str, value: str) -> str:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={**REQUIRED, f"RECGUARD_{key}": value})
    message = str(info.value)
    assert message.startswith(f"RECGUARD_{key} in the environment: ")
    assert "\n" not in message
    assert "; set it to" in message
    return message


pytestmark = pytest.mark.usefixtures("clean_env")


# --- numbers -------------------------------------------------------------------

# Superscript two, Arabic-Indic three, full-width digits, Devanagari five:
# str.isdigit() says yes to all of them, and int() takes some of them.
UNICODE_DIGITS = ["\u00b2", "\u0663", "\uff15\uff10\uff13\uff18", "\u096b", "5\u00b9"]


@pytest.mark.parametrize("value", UNICODE_DIGITS)
@pytest.mark.parametrize("key", ["AMI_PORT", "PURGE_INTERVAL", "ORPHAN_GRACE"])
def test_non_ascii_digits_are_refused_in_every_whole_number(key: str, value: str) -> None:
    message = error_of(key, value)
    assert "is not" in message


@pytest.mark.parametrize("value", ["\u0663", "\uff12", "1\u00b2"])
def test_non_ascii_digits_are_refused_in_the_gate_timeout(value: str) -> None:
    assert "not a number of seconds" in error_of("GATE_TIMEOUT", value)


@pytest.mark.parametrize("key", ["PURGE_INTERVAL", "ORPHAN_GRACE"])
@pytest.mark.parametrize("value", ["9" * 30, "31536001", "9" * 5000])
def test_seconds_beyond_a_year_are_refused_with_the_allowed_range(key: str, value: str) -> None:
    assert "(0-31536000)" in error_of(key, value)


@pytest.mark.parametrize("key", ["PURGE_INTERVAL", "ORPHAN_GRACE"])
def test_a_year_of_seconds_is_still_accepted(key: str) -> None:
    settings = load_settings(environ={**REQUIRED, f"RECGUARD_{key}": "31536000"})
    assert getattr(settings, key.lower()) == 31536000


def test_a_30_digit_orphan_grace_never_reaches_the_audit() -> None:
    # It used to pass check-config and make `audit` raise OverflowError.
    assert "RECGUARD_ORPHAN_GRACE" in error_of("ORPHAN_GRACE", "1" * 30)


# --- paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["LEDGER", "DECISION_LOG", "RECORDINGS_DIR", "POLICY", "KEY_FILE", "MONITOR_DIR"]
)
@pytest.mark.parametrize("value", ["ledger.sqlite3", "./var/x", "../etc/x", "var/lib/recguard/x"])
def test_relative_paths_are_refused_with_a_hint(key: str, value: str) -> None:
    message = error_of(key, value)
    assert "not an absolute path" in message
    assert "starts with /" in message


@pytest.mark.parametrize("key", ["LEDGER", "DECISION_LOG", "POLICY", "KEY_FILE"])
def test_absolute_and_home_paths_are_accepted(key: str) -> None:
    settings = load_settings(environ={**REQUIRED, f"RECGUARD_{key}": "/srv/recguard/x"})
    assert getattr(settings, key.lower()) == Path("/srv/recguard/x")
    settings = load_settings(environ={**REQUIRED, f"RECGUARD_{key}": "~/x"})
    assert getattr(settings, key.lower()).is_absolute()


# --- the recordings directory ---------------------------------------------------


def _env_file(tmp_path: Path, spool: Path) -> Path:
    keys = tmp_path / "keys"
    if not keys.exists():
        generate_key_file(keys)
    values = {**REQUIRED, "RECGUARD_KEY_FILE": str(keys), "RECGUARD_RECORDINGS_DIR": str(spool),
              "RECGUARD_LEDGER": str(tmp_path / "ledger.sqlite3"),
              "RECGUARD_DECISION_LOG": str(tmp_path / "decisions.jsonl")}
    path = tmp_path / "recguard.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


def test_check_config_reports_a_missing_recordings_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "no-spool"
    assert main(["check-config", "--env-file", str(_env_file(tmp_path, spool))]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"recguard: error: RECGUARD_RECORDINGS_DIR {spool} does not exist; create it so that "
        "Asterisk can write and recguard read it, e.g. "
        f"install -d -o asterisk -g asterisk -m 2770 {spool}\n"
    )


def test_check_config_reports_a_recordings_directory_that_is_a_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    spool.write_text("")
    assert main(["check-config", "--env-file", str(_env_file(tmp_path, spool))]) == 2
    err = capsys.readouterr().err
    assert f"RECGUARD_RECORDINGS_DIR {spool} is not a directory" in err
    assert "install -d" in err and len(err.splitlines()) == 1


def test_run_refuses_a_missing_recordings_directory_with_the_same_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "no-spool"
    assert main(["run", "--env-file", str(_env_file(tmp_path, spool))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recguard: error: RECGUARD_RECORDINGS_DIR {spool} does not exist;")
    assert "install -d -o asterisk -g asterisk -m 2770" in err and len(err.splitlines()) == 1
    # Refused before anything was created for the run.
    assert not (tmp_path / "ledger.sqlite3").exists()


def test_the_daemon_and_check_config_share_one_check(tmp_path: Path) -> None:
    from asterisk_recguard.settings import check_recordings_dir

    settings = load_settings(_env_file(tmp_path, tmp_path / "none"), environ={})
    with pytest.raises(SettingsError) as from_check:
        check_recordings_dir(settings.recordings_dir)
    with pytest.raises(UserError) as from_daemon:
        daemon.Daemon(settings)
    assert str(from_daemon.value) == str(from_check.value)
    (tmp_path / "none").mkdir()
    check_recordings_dir(settings.recordings_dir)  # no error once it exists


# --- the ARI URL --------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://recguard:s3cret-pw@127.0.0.1:8088/ari",
        "https://recguard:s3cret-pw@pbx.example/ari",
        "http://s3cret-pw@127.0.0.1:8088/ari",
        "http://recguard:s3cret-pw@127.0.0.1:99999/ari",  # also a bad port
        "ftp://recguard:s3cret-pw@pbx/ari",  # also not http
        "http://recguard:s3cret-pw@pbx/ari?x=1",  # also a query
    ],
)
def test_credentials_in_the_ari_url_are_refused_and_never_printed(url: str) -> None:
    message = error_of("ARI_URL", url)
    assert "s3cret-pw" not in message
    assert "RECGUARD_ARI_USER" in message and "RECGUARD_ARI_PASSWORD" in message


@pytest.mark.parametrize("url", ["http://[::1/ari", "http://[zz]:8088/ari", "http://pbx:8088:1/ari"])
def test_a_malformed_ari_url_is_one_line_not_a_traceback(url: str) -> None:
    assert "RECGUARD_ARI_URL" in error_of("ARI_URL", url)


def test_an_ari_url_without_credentials_is_kept() -> None:
    settings = load_settings(environ={**REQUIRED, "RECGUARD_ARI_URL": "http://[::1]:8088/ari/"})
    assert settings.ari_url == "http://[::1]:8088/ari"
