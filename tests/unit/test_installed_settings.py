"""What an installed command finds by itself: the env file at its default
place, and of its keys only those the command needs (the ARI and AMI
credentials are the guard's alone)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import envfile
from asterisk_recguard.settings import SettingsError, load_settings

from .cli_support import run
from .recfixtures import NUMBER, T0, World, env_file

CREDENTIALS = ("RECGUARD_ARI_USER", "RECGUARD_ARI_PASSWORD", "RECGUARD_AMI_USER",
               "RECGUARD_AMI_SECRET")

pytestmark = pytest.mark.usefixtures("clean_env")


def without_credentials(world: World) -> Path:
    """The world's env file with no ARI or AMI key in it, as a DPO's copy may be."""
    path = env_file(world)
    kept = [line for line in path.read_text().splitlines() if not line.startswith(CREDENTIALS)]
    path.write_text("".join(f"{line}\n" for line in kept))
    return path


def dpo_commands(world: World, rec_id: str, export_to: Path) -> list[list[str]]:
    reason = ["--reason", "access request DSAR-1"]
    return [
        ["audit"],
        ["purge", "--dry-run"],
        ["purge", "--orphans"],
        ["subject", "find", "--caller", NUMBER, *reason],
        ["hold", rec_id, "--reason", "court case P 1/2026"],
        ["release", rec_id, "--reason", "case closed"],
        ["export", rec_id, "--to", str(export_to), "--for", "order", *reason],
        ["access-log"],
        ["logs", "-n", "5"],
    ]


def test_dpo_commands_need_no_ari_or_ami_credentials(world: World, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=T0 + timedelta(days=1095))
    path = without_credentials(world)
    for argv in dpo_commands(world, rec.recording_id, tmp_path / "export"):
        status, out, err = run(capsys, *argv, "--env-file", str(path))
        assert status == 0, (argv, err)
        assert "RECGUARD_A" not in err and out


def test_installed_commands_find_the_default_env_file(world: World, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    rec = world.add(deadline=T0 + timedelta(days=1095))
    monkeypatch.setattr(envfile, "DEFAULT_ENV_FILE", without_credentials(world))
    for argv in dpo_commands(world, rec.recording_id, tmp_path / "export"):
        status, _, err = run(capsys, *argv)
        assert status == 0, (argv, err)
    after = world.ledger.recording(rec.recording_id)
    assert after is not None and after.held_at is None  # held, then released


def test_the_default_env_file_gives_way_to_one_named(world: World, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    installed = env_file(world)
    monkeypatch.setattr(envfile, "DEFAULT_ENV_FILE", installed)
    assert load_settings().env_file == installed
    named = tmp_path / "other.env"
    named.write_text(installed.read_text())
    named.chmod(0o600)
    assert load_settings(environ={"RECGUARD_ENV_FILE": str(named)}).env_file == named
    assert load_settings(named, environ={}).env_file == named


def test_a_default_env_file_that_is_absent_is_no_error(world: World) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(environ={})
    assert "RECGUARD_HASH_SECRET is not set in the environment" in str(raised.value)


def test_credentials_left_as_placeholders_do_not_stop_a_dpo_command(world: World) -> None:
    path = env_file(world, RECGUARD_ARI_PASSWORD="CHANGE-ME-ari-password")
    settings = load_settings(path, environ={}, need_asterisk=False)
    assert settings.ari_password == settings.ami_secret == ""
    with pytest.raises(SettingsError, match="RECGUARD_ARI_PASSWORD"):
        load_settings(path, environ={})


def test_the_guard_still_refuses_without_credentials(world: World,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = without_credentials(world)
    for argv in (["run"], ["check-config"]):
        status, _, err = run(capsys, *argv, "--env-file", str(path))
        assert status == 2, argv
        assert "4 problems in the recguard configuration" in err
        assert all(key in err for key in CREDENTIALS)


def test_the_guard_reads_the_default_env_file_too(world: World, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(envfile, "DEFAULT_ENV_FILE", without_credentials(world))
    status, _, err = run(capsys, "run")
    assert status == 2 and "RECGUARD_ARI_USER is not set in " in err
    assert str(envfile.DEFAULT_ENV_FILE) in err
