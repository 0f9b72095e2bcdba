"""Files named by a person or a setting: only a regular file is read, never
more than a limit, and every failure is one line. A FIFO must not hang a
command, /dev/zero must not fill the memory, a TOML nested thousands deep must
not raise RecursionError, and an endless log line must not be read whole."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from asterisk_recguard import prompts
from asterisk_recguard.cli import main
from asterisk_recguard.commands import logs
from asterisk_recguard.errors import UserError
from asterisk_recguard.policy import PolicyError, load_policy, parse_policy
from asterisk_recguard.settings import SettingsError, load_settings
from asterisk_recguard.vault import Keyring, VaultError

REQUIRED = (
    "RECGUARD_ARI_USER=recguard\nRECGUARD_ARI_PASSWORD=ari-pw\nRECGUARD_AMI_USER=recguard\n"
    "RECGUARD_AMI_SECRET=ami-pw\nRECGUARD_HASH_SECRET=" + "h" * 40 + "\n"
)
POLICY_HEAD = '[policy]\nname = "n"\nversion = "1"\n'


def fifo(tmp_path: Path, name: str = "fifo") -> Path:
    path = tmp_path / name
    os.mkfifo(path, 0o600)
    return path


def finishing(call: Callable[[], Any], fifo_path: Path | None = None, timeout: float = 5.0) -> Any:
    """``call()``'s result, or the exception it raised; fails if it is still
    running after ``timeout`` (a reader blocked on ``fifo_path`` is released)."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        if fifo_path is not None:
            # A writer that comes and goes gives the blocked reader an end of file.
            os.close(os.open(fifo_path, os.O_WRONLY | os.O_NONBLOCK))
            thread.join(timeout)
        pytest.fail(f"still running after {timeout} s: it blocks on the file")
    return outcome[0]


def one_line_error(outcome: Any, kind: type[UserError] = UserError) -> str:
    assert isinstance(outcome, kind), repr(outcome)
    message = str(outcome)
    assert "\n" not in message
    return message


# --- the reader itself ------------------------------------------------------------


def test_a_regular_file_is_read(tmp_path: Path) -> None:
    from asterisk_recguard.safefile import read_regular_file

    path = tmp_path / "f"
    path.write_bytes("ž".encode() * 50)
    assert read_regular_file(path, "test file", 100, missing="gone") == "ž" * 50


def test_more_than_the_limit_is_refused_even_when_the_size_lies(tmp_path: Path) -> None:
    from asterisk_recguard.safefile import read_regular_file

    path = tmp_path / "f"
    path.write_bytes(b"x" * 101)
    message = one_line_error(_refusal(lambda: read_regular_file(path, "test file", 100, missing="gone")))
    assert message == (f"test file {path}: is larger than 100 bytes, too large for a test file; "
                       "check that the path names the right file")
    # /proc files say they are empty; what is read counts, not what stat says.
    proc = Path("/proc/self/status")
    assert os.stat(proc).st_size == 0
    message = one_line_error(_refusal(lambda: read_regular_file(proc, "test file", 100, missing="")))
    assert "is larger than 100 bytes" in message


def _refusal(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(UserError) as info:
        call()
    return info.value


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda tmp: fifo(tmp), "a FIFO"),
        (lambda tmp: Path("/dev/zero"), "a character device"),
        (lambda tmp: tmp, "a directory"),
    ],
    ids=["fifo", "dev-zero", "directory"],
)
def test_anything_but_a_regular_file_is_refused(
        tmp_path: Path, make: Callable[[Path], Path], kind: str) -> None:
    from asterisk_recguard.safefile import read_regular_file

    path = make(tmp_path)
    outcome = finishing(lambda: read_regular_file(path, "test file", 100, missing="gone"), path)
    assert one_line_error(outcome) == (
        f"test file {path}: is {kind}, not a regular file; give the path of the test file itself")


def test_a_missing_file_gets_the_callers_message(tmp_path: Path) -> None:
    from asterisk_recguard.safefile import read_regular_file

    with pytest.raises(VaultError, match="^no file here; make one$"):
        read_regular_file(tmp_path / "none", "test file", 100, missing="no file here; make one",
                          error=VaultError)


def test_an_unreadable_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asterisk_recguard import safefile
    from asterisk_recguard.safefile import read_regular_file

    path = tmp_path / "f"
    path.write_text("x")
    path.chmod(0)
    real_open = os.open

    def refused(name: object, flags: int, *args: object) -> int:
        # What the kernel answers a user without the permission (root is never refused).
        if os.fspath(name) == os.fspath(path):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_open(name, flags, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(safefile.os, "open", refused)
    message = one_line_error(_refusal(lambda: read_regular_file(path, "test file", 100, missing="")))
    assert message == f"test file {path}: cannot read the test file: Permission denied"


# --- the policy ----------------------------------------------------------------


def test_a_fifo_as_the_policy_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path, "policy.toml")
    message = one_line_error(finishing(lambda: load_policy(path), path), PolicyError)
    assert message.startswith(f"{path}: is a FIFO, not a regular file")


def test_dev_zero_as_the_policy_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--policy", "/dev/zero"]) == 2
    assert capsys.readouterr().err == (
        "recguard: error: /dev/zero: is a character device, not a regular file; "
        "give the path of the policy file itself\n")


def test_a_policy_larger_than_a_mebibyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY_HEAD + "#" * (1 << 20) + "\n")
    message = one_line_error(_refusal(lambda: load_policy(path)), PolicyError)
    assert message.startswith(f"{path}: is larger than 1048576 bytes")


@pytest.mark.parametrize(
    "text",
    [
        "a = " + "[" * 3000 + "]" * 3000,
        "a = " + "{b = " * 3000 + "1" + "}" * 3000,
        POLICY_HEAD + "[purposes.x]\nbasis = \"evidence\"\ndescription = \"d\"\n"
        + "[purposes.x.retention_days" + ".a" * 3000 + "]\n",
        POLICY_HEAD + "[purposes.x]\nbasis = \"evidence\"\ndescription = \"d\"\nretention_days."
        + ".".join(["a"] * 3000) + " = 1\n",
    ],
    ids=["arrays", "inline-tables", "dotted-table", "dotted-key"],
)
def test_a_policy_nested_thousands_deep_is_one_line(text: str) -> None:
    message = one_line_error(_refusal(lambda: parse_policy(text, "deep.toml")), PolicyError)
    assert message.startswith("deep.toml: ")
    assert "nested more than" in message


def test_a_number_too_long_to_read_is_one_line() -> None:
    message = one_line_error(_refusal(lambda: parse_policy("a = " + "1" * 5000, "big.toml")),
                             PolicyError)
    assert message.startswith("big.toml: invalid TOML: ")


# --- the key file ----------------------------------------------------------------


def test_a_fifo_as_the_key_file_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path, "keys")
    message = one_line_error(finishing(lambda: Keyring.load(path), path), VaultError)
    assert message.startswith(f"key file {path}: is a FIFO, not a regular file")


def test_dev_zero_as_the_key_file_is_refused(tmp_path: Path) -> None:
    message = one_line_error(_refusal(lambda: Keyring.load("/dev/zero")), VaultError)
    assert "not a regular file" in message


# --- the env file -------------------------------------------------------------------


def test_a_fifo_as_the_env_file_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path, "recguard.env")
    outcome = finishing(lambda: load_settings(path, environ={}), path)
    assert "is a FIFO, not a regular file" in one_line_error(outcome, SettingsError)


def test_an_env_file_larger_than_a_mebibyte_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recguard.env"
    path.write_text(REQUIRED + ("# padding\n" * 110_000))
    path.chmod(0o600)
    message = one_line_error(_refusal(lambda: load_settings(path, environ={})), SettingsError)
    assert message.startswith(f"env file {path} (given with --env-file): is larger than")


def test_an_env_file_that_is_not_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "recguard.env"
    path.write_bytes(REQUIRED.encode() + b"RECGUARD_ARI_APP=caf\xe9\n")
    path.chmod(0o600)
    message = one_line_error(_refusal(lambda: load_settings(path, environ={})), SettingsError)
    assert "not UTF-8 text" in message and str(path) in message


# --- prompt texts ------------------------------------------------------------------------


def test_a_fifo_as_a_prompt_text_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path, "notice.txt")
    outcome = finishing(lambda: prompts.cache_key(path, "sl"), path)
    assert "is a FIFO, not a regular file" in one_line_error(outcome)


# --- the decision log read by `recguard logs` ---------------------------------------------


def run_logs(argv: list[str]) -> tuple[int, list[str], list[str]]:
    out: list[str] = []
    err: list[str] = []

    def call() -> int:
        logs.show(Path(argv[0]), as_json="--json" in argv, out=out.append, err=err.append)
        return 0

    outcome = finishing(call, Path(argv[0]) if stat.S_ISFIFO(_mode(argv[0])) else None)
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome, out, err


def _mode(path: str) -> int:
    try:
        return os.stat(path).st_mode
    except OSError:
        return 0


def test_logs_refuses_a_fifo_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path, "decisions.jsonl")
    with pytest.raises(UserError) as info:
        run_logs([str(path)])
    assert str(info.value).startswith(f"decision log {path}: is a FIFO, not a regular file")


def test_logs_refuses_dev_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs", "--log", "/dev/zero"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("recguard: error: decision log /dev/zero: is a character device")
    assert len(err.splitlines()) == 1


def test_logs_names_a_line_too_long_to_read_and_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    good = '{"ts":"2026-11-28T10:00:00.000000Z","event":"decision","call_id":"1.1","decision":"skip"}'
    with open(path, "w") as f:
        f.write(good + "\n")
        f.write('{"event":"x","pad":"' + "A" * (3 << 20) + '"}\n')
        f.write(good.replace("1.1", "2.2") + "\n")
        f.write("B" * (2 << 20))  # an endless last line, no newline
    _, out, err = run_logs([str(path)])
    assert len(out) == 4
    assert "call 1.1" in out[0] and "call 2.2" in out[2]
    assert out[1] == "? line 2 is longer than 1048576 bytes; not shown"
    assert out[3] == "? line 4 is longer than 1048576 bytes; not shown"
    assert err == []


def test_logs_json_sends_the_too_long_note_to_stderr(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text("C" * ((1 << 20) + 1) + "\n" + '{"event":"decision"}\n')
    _, out, err = run_logs([str(path), "--json"])
    assert out == ['{"event":"decision"}']
    assert err == ["? line 1 is longer than 1048576 bytes; not shown"]


def test_a_line_of_exactly_the_limit_is_shown(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text("D" * (1 << 20) + "\n")
    _, out, err = run_logs([str(path)])
    # Read, not refused as too long; shown shortened, as every damaged line is.
    (line,) = out
    assert line.startswith("? DDDD") and line.endswith(f"({(1 << 20) + 2} chars)")
    assert not any("longer than" in e for e in err)


def test_follow_does_not_gather_an_endless_line(tmp_path: Path) -> None:
    path = tmp_path / "decisions.jsonl"
    path.write_text("")
    seen: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=lambda: logs.show(
        path, follow_on=True, out=seen.append, err=seen.append, stop=stop.is_set, poll=0.01),
        daemon=True)
    thread.start()
    try:
        with open(path, "a") as f:
            for _ in range(3):  # written in pieces, as a runaway writer would
                f.write("E" * (1 << 19))
                f.flush()
            f.write("\n" + '{"event":"decision","call_id":"3.3","decision":"skip"}\n')
        deadline = threading.Event()
        for _ in range(500):
            if len(seen) >= 2:
                break
            deadline.wait(0.01)
    finally:
        stop.set()
        thread.join(5)
    assert seen[0] == "? line 1 is longer than 1048576 bytes; not shown"
    assert "call 3.3" in seen[1] and len(seen) == 2
