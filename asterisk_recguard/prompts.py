"""The spoken notices: text in ``config/prompts/<lang>/<name>.txt``, sound in
``<sounds>/<lang>/recguard/<name>.wav``.

The shipped prompts are synthesised with espeak-ng and converted by sox to
what Asterisk plays without transcoding surprises: 8 kHz, mono, 16-bit
signed WAV. An administrator may replace any of them with a recorded voice
under the same name; the dialplan plays ``recguard/<name>`` in the channel's
language either way.

Builds are cached by a hash of the text and the voice, so installing the
prompts at every sandbox start costs nothing once they exist.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path, PurePosixPath

from . import resources
from .errors import UserError
from .safefile import read_regular_file

# espeak-ng voice per prompt language (the folder name under config/prompts).
VOICES = {"sl": "sl", "en": "en"}
WORDS_PER_MINUTE = 165
SAMPLE_RATE = 8000
# Part of the cache key: change it when the build itself changes.
BUILD_RECIPE = f"espeak-ng -s {WORDS_PER_MINUTE} | sox -r {SAMPLE_RATE} -c 1 -b 16 -e signed-integer"
TOOLS = ("espeak-ng", "sox")
PROMPT_DIR_NAME = "recguard"
_MAX_SYMLINKS = 40
# A notice is read in well under a minute; this is far more than that.
MAX_TEXT_BYTES = 1 << 16


def texts_dir() -> Path:
    """The shipped prompt texts, one folder per language."""
    return resources.config_dir() / "prompts"


def languages() -> list[str]:
    """The languages that have prompt texts."""
    base = texts_dir()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if p.is_dir() and any(p.glob("*.txt")))


def text_files(language: str | None = None) -> list[tuple[str, Path]]:
    """``(language, text file)`` for every prompt, or those of one language."""
    wanted = [language] if language else languages()
    found: list[tuple[str, Path]] = []
    for lang in wanted:
        folder = texts_dir() / lang
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        if not files:
            raise UserError(f"no prompt texts for language {lang!r} in {texts_dir()}")
        found.extend((lang, path) for path in files)
    return found


def voice_for(language: str) -> str:
    try:
        return VOICES[language]
    except KeyError:
        raise UserError(
            f"no espeak-ng voice for prompt language {language!r} (known: {', '.join(sorted(VOICES))})"
        ) from None


def require_tools() -> None:
    """Fail with the install line when espeak-ng or sox is missing."""
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        raise UserError(
            f"{' and '.join(missing)} not found; the notice prompts are synthesised with them: "
            f"apt-get install {' '.join(TOOLS)}"
        )


def _read_text(text_file: Path) -> str:
    text = read_regular_file(text_file, "prompt text", MAX_TEXT_BYTES,
                             missing=f"prompt text {text_file} does not exist")
    # Line breaks in the files are for people; the voice reads one paragraph.
    return " ".join(text.split())


def build(text_file: Path, out_wav: Path, language: str) -> Path:
    """Speak ``text_file`` in ``language`` into ``out_wav`` (8 kHz mono 16-bit WAV)."""
    require_tools()
    text = _read_text(text_file)
    if not text:
        raise UserError(f"{text_file}: the prompt text is empty")
    voice = voice_for(language)
    speech = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(WORDS_PER_MINUTE), "--stdin", "--stdout"],
        input=text.encode("utf-8"),
        capture_output=True,
    )
    if speech.returncode != 0 or not speech.stdout:
        raise UserError(
            f"espeak-ng could not speak {text_file} with voice {voice!r}: "
            f"{speech.stderr.decode(errors='replace').strip() or f'exit {speech.returncode}'}"
        )
    make_folder(out_wav.parent)
    # Written under a temporary name and renamed, so that a reader (Asterisk,
    # or another sandbox installing the same prompt) never sees half a file.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out_wav.stem}.", suffix=".wav", dir=out_wav.parent)
    os.close(fd)
    try:
        converted = subprocess.run(
            ["sox", "-V1", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16",
             "-e", "signed-integer", "-t", "wav", tmp_name],
            input=speech.stdout,
            capture_output=True,
        )
        if converted.returncode != 0:
            raise UserError(
                f"sox could not convert the speech for {text_file}: "
                f"{converted.stderr.decode(errors='replace').strip() or f'exit {converted.returncode}'}"
            )
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, out_wav)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return out_wav


def make_folder(folder: Path) -> None:
    """``mkdir -p`` with a failure as one line. A sounds directory often holds
    language links (``en -> en_US_f_Allison``); one whose target is gone is
    named, with its target, rather than reported as "File exists"."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for part in (folder, *folder.parents):
            if part.is_symlink() and not part.exists():
                raise UserError(
                    f"cannot create {folder}: {part} is a symbolic link to {os.readlink(part)}, "
                    "which does not exist; create that directory or remove the link"
                ) from None
        raise UserError(f"cannot create {folder}: {exc.strerror or exc}") from None


def cache_key(text_file: Path, language: str) -> str:
    """sha256 of what decides the sound: the text, the voice and the recipe."""
    material = "\n".join((BUILD_RECIPE, voice_for(language), _read_text(text_file)))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def duration(wav_file: Path) -> float:
    """Length of a WAV prompt in seconds."""
    with wave.open(str(wav_file)) as sound:
        return sound.getnframes() / float(sound.getframerate())


def resolve_in_root(path: Path, root: Path) -> Path:
    """The host path of ``path`` as a process chrooted into ``root`` sees it.

    Symbolic links are followed the way the kernel would follow them inside
    the chroot: an absolute target starts again at ``root``, a relative one
    from the link's folder, and ``..`` never climbs above ``root``. The part
    of the path that does not exist yet is kept as it is.
    """
    inside = PurePosixPath(path)
    if not inside.is_absolute():
        raise ValueError(f"{path} is not an absolute path inside the root")
    pending = list(inside.parts[1:])
    resolved: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        if candidate.is_symlink():
            links += 1
            if links > _MAX_SYMLINKS:
                raise UserError(f"too many levels of symbolic links at {candidate}")
            target = PurePosixPath(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
                pending = list(target.parts[1:]) + pending
            else:
                pending = list(target.parts) + pending
            continue
        resolved.append(part)
    return root.joinpath(*resolved)


def prompt_dir(sounds_dir: Path, language: str, root: Path | None = None) -> Path:
    """Where the prompts of ``language`` go, as a host path."""
    inside = Path(sounds_dir) / language / PROMPT_DIR_NAME
    return resolve_in_root(inside, root) if root is not None else inside


def _same_content(a: Path, b: Path) -> bool:
    try:
        if a.stat().st_size != b.stat().st_size:
            return False
    except FileNotFoundError:
        return False
    return a.read_bytes() == b.read_bytes()


def _copy_atomically(source: Path, target: Path) -> None:
    make_folder(target.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".wav", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def install(sounds_dir: Path, root: Path | None = None, cache_dir: Path | None = None) -> list[Path]:
    """Build every shipped prompt and put it in ``<sounds_dir>/<lang>/recguard/``.

    With ``root`` (a chroot), ``sounds_dir`` is a path inside it. Returns the
    installed files as host paths. Only prompts not yet in the cache are
    synthesised, so espeak-ng and sox are needed only then.
    """
    installed: list[Path] = []
    for language, text_file in text_files():
        target = prompt_dir(sounds_dir, language, root) / f"{text_file.stem}.wav"
        if cache_dir is None:
            build(text_file, target, language)
        else:
            cached = Path(cache_dir) / f"{cache_key(text_file, language)}.wav"
            if not cached.is_file():
                build(text_file, cached, language)
            if not _same_content(cached, target):
                _copy_atomically(cached, target)
        installed.append(target)
    return installed
