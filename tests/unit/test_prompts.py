"""The prompt builder: where prompts go inside a chroot, caching, the tools."""

from __future__ import annotations

import os
import wave
from pathlib import Path

import pytest

from asterisk_recguard import cli, prompts
from asterisk_recguard.errors import UserError


def debian_like_root(tmp_path: Path) -> Path:
    """sounds/en -> /etc/alternatives/asterisk-prompt-en -> .../en_US_f_Allison, as in Debian."""
    root = tmp_path / "root"
    sounds = root / "usr/share/asterisk/sounds"
    (sounds / "en_US_f_Allison").mkdir(parents=True)
    (root / "etc/alternatives").mkdir(parents=True)
    os.symlink("/usr/share/asterisk/sounds/en_US_f_Allison", root / "etc/alternatives/asterisk-prompt-en")
    os.symlink("/etc/alternatives/asterisk-prompt-en", sounds / "en")
    (root / "usr/local/share/asterisk/sounds").mkdir(parents=True)
    os.symlink("../../../local/share/asterisk/sounds", sounds / "custom")
    return root


def test_absolute_symlinks_are_followed_inside_the_root(tmp_path: Path) -> None:
    root = debian_like_root(tmp_path)
    resolved = prompts.resolve_in_root(Path("/usr/share/asterisk/sounds/en/recguard"), root)
    assert resolved == root / "usr/share/asterisk/sounds/en_US_f_Allison/recguard"
    # The host's /etc/alternatives is never consulted.
    assert str(resolved).startswith(str(root))


def test_relative_symlinks_are_followed_from_the_link_folder(tmp_path: Path) -> None:
    root = debian_like_root(tmp_path)
    resolved = prompts.resolve_in_root(Path("/usr/share/asterisk/sounds/custom/x.wav"), root)
    assert resolved == root / "usr/local/share/asterisk/sounds/x.wav"


def test_missing_parts_are_kept_and_dotdot_stops_at_the_root(tmp_path: Path) -> None:
    root = debian_like_root(tmp_path)
    assert prompts.resolve_in_root(Path("/usr/share/asterisk/sounds/sl/recguard"), root) == (
        root / "usr/share/asterisk/sounds/sl/recguard"
    )
    assert prompts.resolve_in_root(Path("/../../etc/./alternatives/../passwd"), root) == root / "etc/passwd"
    os.symlink("/../../../outside", root / "escape")
    assert prompts.resolve_in_root(Path("/escape/file"), root) == root / "outside/file"


def test_symlink_loops_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("/b", root / "a")
    os.symlink("/a", root / "b")
    with pytest.raises(UserError, match="too many levels of symbolic links"):
        prompts.resolve_in_root(Path("/a/x"), root)


def test_relative_path_inside_a_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        prompts.resolve_in_root(Path("usr/share"), tmp_path)


def test_prompt_dir_without_root_is_the_plain_path(tmp_path: Path) -> None:
    assert prompts.prompt_dir(tmp_path / "sounds", "sl") == tmp_path / "sounds/sl/recguard"


def fake_build(calls: list[str]):  # type: ignore[no-untyped-def]
    def build(text_file: Path, out_wav: Path, language: str) -> Path:
        calls.append(f"{language}/{text_file.stem}")
        out_wav.parent.mkdir(parents=True, exist_ok=True)
        out_wav.write_bytes(f"{language}:{text_file.read_text(encoding='utf-8')}".encode())
        return out_wav

    return build


def test_install_puts_every_prompt_into_the_resolved_folders_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = debian_like_root(tmp_path)
    calls: list[str] = []
    monkeypatch.setattr(prompts, "build", fake_build(calls))
    cache = tmp_path / "cache"
    sounds = Path("/usr/share/asterisk/sounds")

    installed = prompts.install(sounds, root=root, cache_dir=cache)

    expected = {
        root / "usr/share/asterisk/sounds/en_US_f_Allison/recguard" / f"{name}.wav"
        for name in ("evidence-v1", "quality-consent-v1", "example-menu")
    } | {
        root / "usr/share/asterisk/sounds/sl/recguard" / f"{name}.wav"
        for name in ("evidence-v1", "quality-consent-v1", "example-menu")
    }
    assert set(installed) == expected
    assert all(path.is_file() for path in expected)
    # sounds/en is still the distribution's symlink, not replaced by a folder.
    assert (root / "usr/share/asterisk/sounds/en").is_symlink()
    assert len(calls) == 6

    # A second install builds nothing; a file changed by hand is put back.
    (root / "usr/share/asterisk/sounds/sl/recguard/evidence-v1.wav").write_bytes(b"stale")
    again = prompts.install(sounds, root=root, cache_dir=cache)
    assert set(again) == expected
    assert len(calls) == 6
    assert (root / "usr/share/asterisk/sounds/sl/recguard/evidence-v1.wav").read_bytes().startswith(b"sl:")


def test_cache_key_changes_with_text_and_voice(tmp_path: Path) -> None:
    text = tmp_path / "n.txt"
    text.write_text("Ta klic snemamo.\n", encoding="utf-8")
    sl = prompts.cache_key(text, "sl")
    assert sl == prompts.cache_key(text, "sl")
    assert sl != prompts.cache_key(text, "en")
    text.write_text("Ta klic  snemamo.", encoding="utf-8")  # same words, other spacing
    assert prompts.cache_key(text, "sl") == sl
    text.write_text("Ta klic ne snemamo.", encoding="utf-8")
    assert prompts.cache_key(text, "sl") != sl


def test_missing_tools_are_a_user_error_with_the_install_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    text = tmp_path / "n.txt"
    text.write_text("Hello.", encoding="utf-8")
    with pytest.raises(UserError, match="apt-get install espeak-ng sox"):
        prompts.build(text, tmp_path / "n.wav", "en")


def test_missing_tools_do_not_matter_when_everything_is_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(prompts, "build", fake_build(calls))
    prompts.install(tmp_path / "sounds", cache_dir=tmp_path / "cache")
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    installed = prompts.install(tmp_path / "sounds2", cache_dir=tmp_path / "cache")
    assert len(installed) == 6 and all(path.is_file() for path in installed)


def test_unknown_language_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "n.txt"
    text.write_text("Hallo.", encoding="utf-8")
    with pytest.raises(UserError, match="no espeak-ng voice for prompt language 'de'"):
        prompts.build(text, tmp_path / "n.wav", "de")


def test_build_makes_an_8khz_mono_16bit_wav(tmp_path: Path) -> None:
    out = prompts.build(prompts.texts_dir() / "sl" / "example-menu.txt", tmp_path / "menu.wav", "sl")
    with wave.open(str(out)) as sound:
        assert (sound.getframerate(), sound.getnchannels(), sound.getsampwidth()) == (8000, 1, 2)
        frames = sound.getnframes()
    assert frames > 8000 * 5  # five spoken menu choices
    assert prompts.duration(out) == pytest.approx(frames / 8000)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_cli_builds_one_language(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["prompts", "build", "--to", str(tmp_path), "--lang", "en"])
    out = capsys.readouterr().out
    assert status == 0
    built = sorted(p.name for p in (tmp_path / "en/recguard").iterdir())
    assert built == ["evidence-v1.wav", "example-menu.wav", "quality-consent-v1.wav"]
    assert not (tmp_path / "sl").exists()
    assert "evidence-v1.wav" in out


def test_cli_names_a_dangling_language_link_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Sounds directories link languages to voices (en -> en_US_f_Allison).
    (tmp_path / "en").symlink_to(tmp_path / "en_US_gone")
    status = cli.main(["prompts", "build", "--to", str(tmp_path), "--lang", "en"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{tmp_path / 'en'} is a symbolic link to {tmp_path / 'en_US_gone'}, which does not exist" in err
    assert not (tmp_path / "en_US_gone").exists()


def test_shipped_texts_say_what_the_law_asks() -> None:
    sl = {p.stem: p.read_text(encoding="utf-8") for p in (prompts.texts_dir() / "sl").glob("*.txt")}
    en = {p.stem: p.read_text(encoding="utf-8") for p in (prompts.texts_dir() / "en").glob("*.txt")}
    assert set(sl) == set(en) == {"evidence-v1", "quality-consent-v1", "example-menu"}
    evidence = sl["evidence-v1"]
    for word in ("snemamo", "naročila", "spremembe", "odpovedi", "reklamacije", "hranimo", "izpodbijati", "prekinete"):
        assert word in evidence, word
    consent = sl["quality-consent-v1"]
    for word in ("kakovosti", "90 dni", "prostovoljna", "tipko 1", "prekličete", "tipko 9"):
        assert word in consent, word
    assert "press 1" in en["quality-consent-v1"] and "pressing 9" in en["quality-consent-v1"]
