"""`recguard check-config --env-file`: the daemon's settings are validated too."""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk_recguard.cli import main
from asterisk_recguard.vault import generate_key_file


def _env_file(tmp_path: Path, **extra: str) -> Path:
    keys = tmp_path / "keys"
    if not keys.exists():
        generate_key_file(keys)
    (tmp_path / "spool").mkdir(exist_ok=True)  # check-config refuses a missing one, as run does
    values = {
        "RECGUARD_ARI_USER": "recguard",
        "RECGUARD_ARI_PASSWORD": "ari-secret",
        "RECGUARD_AMI_USER": "recguard",
        "RECGUARD_AMI_SECRET": "ami-secret",
        "RECGUARD_HASH_SECRET": "h" * 40,
        "RECGUARD_KEY_FILE": str(keys),
        "RECGUARD_RECORDINGS_DIR": str(tmp_path / "spool"),
        **extra,
    }
    path = tmp_path / "recguard.env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    return path


pytestmark = pytest.mark.usefixtures("clean_env")


def test_valid_settings_and_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--env-file", str(_env_file(tmp_path))]) == 0
    out = capsys.readouterr()
    assert "encryption at rest with 1 key" in out.out
    assert "OK — policy sl-call-centre" in out.out
    assert out.err == ""


def test_encryption_off_is_allowed_with_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--env-file", str(_env_file(tmp_path, RECGUARD_ENCRYPTION="off"))]) == 0
    err = capsys.readouterr().err
    assert "warning: RECGUARD_ENCRYPTION=off" in err


def test_missing_key_file_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env_file(tmp_path, RECGUARD_KEY_FILE=str(tmp_path / "no-such-keys"))
    assert main(["check-config", "--env-file", str(env)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recguard: error:") and "no-such-keys" in err and "Traceback" not in err


def test_bad_setting_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env_file(tmp_path, RECGUARD_AMI_PORT="50x8")
    assert main(["check-config", "--env-file", str(env)]) == 2
    assert "RECGUARD_AMI_PORT" in capsys.readouterr().err


def test_env_file_readable_by_others_draws_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env_file(tmp_path)
    env.chmod(0o644)
    assert main(["check-config", "--env-file", str(env)]) == 0
    assert "chmod 600" in capsys.readouterr().err


def test_a_notice_whose_text_file_is_missing_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from asterisk_recguard.resources import default_policy_path

    policy = tmp_path / "policy.toml"
    policy.write_text(default_policy_path().read_text())  # its prompts/ folder is not beside it here
    assert main(["check-config", "--policy", str(policy)]) == 2
    err = capsys.readouterr().err
    assert "notices.evidence-v1.text" in err and "does not exist" in err


def test_the_shipped_policy_has_all_its_notice_texts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 0
    assert "OK — policy" in capsys.readouterr().out
