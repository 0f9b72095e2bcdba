"""sandbox: the parts that need no Asterisk — directories, mode and the rendered config."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from asterisk_recguard import channelfacts
from asterisk_recguard.devtools.sandbox import (
    TEMPLATES,
    Sandbox,
    SandboxError,
    default_cache_dir,
    default_state_dir,
    machine_debian_mirror,
)


def conf_sections(path: Path) -> dict[str, dict[str, str]]:
    """The ``[section]`` / ``key = value`` lines of one Asterisk config file."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif "=" in line:
            key, _, value = line.partition("=")
            current[key.strip()] = value.strip()
    return sections


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv("RECGUARD_SANDBOX_MODE", raising=False)
    return Sandbox(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", http_port=1234, ami_port=4321)


# --------------------------------------------------------------------------
# environment overrides


def test_mirror_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECGUARD_SANDBOX_MIRROR", "http://mirror.example/debian")
    assert machine_debian_mirror() == "http://mirror.example/debian"


def test_state_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECGUARD_SANDBOX_DIR", str(tmp_path / "sb"))
    assert default_state_dir() == tmp_path / "sb"


def test_cache_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECGUARD_SANDBOX_CACHE", str(tmp_path / "cache"))
    assert default_cache_dir() == tmp_path / "cache"


def test_sandbox_uses_the_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECGUARD_SANDBOX_DIR", str(tmp_path / "sb"))
    monkeypatch.setenv("RECGUARD_SANDBOX_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("RECGUARD_SANDBOX_MODE", raising=False)
    box = Sandbox()
    assert box.state_dir == (tmp_path / "sb").resolve()
    assert box.cache_dir == (tmp_path / "cache").resolve()
    assert box.mode == "auto"


# --------------------------------------------------------------------------
# mode


def test_bogus_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="bogus"):
        Sandbox(state_dir=tmp_path, cache_dir=tmp_path, mode="bogus")


def test_bogus_mode_from_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECGUARD_SANDBOX_MODE", "docker")
    with pytest.raises(SandboxError, match="docker"):
        Sandbox(state_dir=tmp_path, cache_dir=tmp_path)


@pytest.mark.parametrize("mode", ["auto", "host", "chroot"])
def test_known_modes(tmp_path: Path, mode: str) -> None:
    assert Sandbox(state_dir=tmp_path, cache_dir=tmp_path, mode=mode).mode == mode


# --------------------------------------------------------------------------
# the rendered configuration


def test_http_and_manager_bind_to_loopback_on_the_given_ports(sandbox: Sandbox) -> None:
    creds = sandbox._render_config([])
    http = conf_sections(sandbox.etc_dir / "http.conf")["general"]
    assert http["enabled"] == "yes"
    assert http["bindaddr"] == "127.0.0.1"
    assert http["bindport"] == "1234"
    manager = conf_sections(sandbox.etc_dir / "manager.conf")
    assert manager["general"]["bindaddr"] == "127.0.0.1"
    assert manager["general"]["port"] == "4321"
    assert manager[creds["RECGUARD_AMI_USER"]]["permit"] == "127.0.0.1/255.255.255.255"
    assert creds["RECGUARD_ARI_URL"] == "http://127.0.0.1:1234/ari"
    assert creds["RECGUARD_AMI_HOST"] == "127.0.0.1"
    assert creds["RECGUARD_AMI_PORT"] == "4321"


def test_credentials_are_in_the_config(sandbox: Sandbox) -> None:
    creds = sandbox._render_config([])
    ari = (sandbox.etc_dir / "ari.conf").read_text()
    manager = (sandbox.etc_dir / "manager.conf").read_text()
    assert f"[{creds['RECGUARD_ARI_USER']}]" in ari
    assert f"password = {creds['RECGUARD_ARI_PASSWORD']}" in ari
    assert f"[{creds['RECGUARD_AMI_USER']}]" in manager
    assert f"secret = {creds['RECGUARD_AMI_SECRET']}" in manager
    # Fresh credentials at every render.
    again = sandbox._render_config([])
    assert again["RECGUARD_ARI_PASSWORD"] != creds["RECGUARD_ARI_PASSWORD"]
    assert again["RECGUARD_AMI_SECRET"] != creds["RECGUARD_AMI_SECRET"]


def test_ari_channelvars_carry_every_recguard_variable(sandbox: Sandbox) -> None:
    sandbox._render_config([])
    names = conf_sections(sandbox.etc_dir / "ari.conf")["general"]["channelvars"].split(",")
    expected = {
        *channelfacts.FACT_VARS,
        channelfacts.DECISION_VAR,
        channelfacts.RECORDING_ID_VAR,
    }
    assert set(names) == expected
    assert len(names) == len(expected)


def test_every_rendered_file_is_private(sandbox: Sandbox) -> None:
    sandbox._render_config([])
    for name in TEMPLATES:
        path = sandbox.etc_dir / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert "${" not in path.read_text(), f"{name} has an unrendered placeholder"


def test_rendering_tightens_a_loose_existing_file(sandbox: Sandbox) -> None:
    sandbox.etc_dir.mkdir(parents=True)
    loose = sandbox.etc_dir / "manager.conf"
    loose.write_text("old")
    loose.chmod(0o644)
    sandbox._render_config([])
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    assert "old" != loose.read_text()


def test_missing_include_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ivr.conf"
    with pytest.raises(SandboxError) as raised:
        sandbox._render_config([missing])
    assert str(missing) in str(raised.value)


def test_include_is_copied_and_included(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "my-ivr.conf"
    source.write_text("[my-ivr]\nexten => s,1,Answer()\n")
    sandbox._render_config([source])
    include_dir = sandbox.etc_dir / "include"
    (copy,) = [p for p in include_dir.iterdir() if p.name.endswith("-my-ivr.conf")]
    assert copy.read_text() == source.read_text()
    extensions = (sandbox.etc_dir / "extensions.conf").read_text()
    assert f'#include "{copy}"' in extensions
    # The user's file comes after recguard's own snippets.
    lines = [line for line in extensions.splitlines() if line.startswith("#include")]
    assert lines[-1] == f'#include "{copy}"'
    assert any("recguard.conf" in line for line in lines[:-1])


def test_a_stale_include_is_removed_at_the_next_render(sandbox: Sandbox, tmp_path: Path) -> None:
    source = tmp_path / "old-ivr.conf"
    source.write_text("[old]\n")
    sandbox._render_config([source])
    sandbox._render_config([])
    include_dir = sandbox.etc_dir / "include"
    assert not [p for p in include_dir.iterdir() if p.name.endswith("-old-ivr.conf")]
    assert "old-ivr.conf" not in (sandbox.etc_dir / "extensions.conf").read_text()
