"""Reading and validating a policy file: TOML in, a ``Policy`` or one clear
``PolicyError`` line out. Only ``load_policy`` touches the file system, and it
reads only a regular file of a sane size (``safefile``).

What an error quotes from the file (a key, an id, a value) is escaped and
shortened: a key may hold a line break or ten thousand characters."""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..display import ECHO_LIMIT, printable, quoted
from ..errors import UserError
from ..safefile import read_regular_file
from .model import MAX_ID_LENGTH, MAX_JUSTIFIED_RETENTION_DAYS, MAX_RETENTION_DAYS, Basis, Notice, Policy, Purpose


class PolicyError(UserError):
    """A policy file that cannot be used: the message names the file, the key,
    and what to do."""


MAX_POLICY_BYTES = 1 << 20
# A policy nests four levels at most; far deeper would exhaust the recursion
# of whatever walks it next (a repr() in an error message).
MAX_NESTING = 16

_ID_RE = re.compile(r"[a-z][a-z0-9_-]*\Z")
_PROMPT_RE = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*\Z")
_WILDCARD_CHARS = frozenset("*?%[]{}!^$+|\\")
# Words that would name a "record everything" switch or purpose.
_RECORD_ALL_WORDS = frozenset(
    {
        "all",
        "any",
        "always",
        "every",
        "everything",
        "every_call",
        "all_calls",
        "record_all",
        "record_all_calls",
        "record_every_call",
        "record_everything",
        "catch_all",
        "catchall",
        "default",
        "defaults",
        "default_purpose",
        "fallback",
        "wildcard",
    }
)

_TOP_KEYS = ("policy", "purposes", "notices")
_POLICY_KEYS = ("name", "version", "description")
_PURPOSE_KEYS = ("basis", "retention_days", "description", "justification")
_NOTICE_KEYS = ("covers", "prompt", "text", "accept_interrupted")

_INDISCRIMINATE = (
    "there is no setting to record every call: the law forbids indiscriminate "
    "recording; declare each purpose with its own basis, retention and notice instead"
)

# Where a problem is: a table, an id of up to 64 characters and a key.
_WHERE_LIMIT = 2 * ECHO_LIMIT

_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_TWICE = re.compile(r"^Cannot declare \((?P<path>.*)\) twice$")
_KEY_AT_LINE = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_.'"\- ]+?)\s*=""")


def _is_record_all(key: str) -> bool:
    normalised = key.strip().lower().replace("-", "_")
    return normalised in _RECORD_ALL_WORDS or any(char in _WILDCARD_CHARS for char in key)


class _Validator:
    """Walks the parsed TOML and raises the first problem as one line."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str) -> PolicyError:
        return PolicyError(f"{self.source}: {printable(where, _WHERE_LIMIT)}: {printable(problem)}")

    def check_keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            path = f"{where}.{key}" if where else key
            if _is_record_all(key):
                raise self.fail(path, _INDISCRIMINATE)
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise self.fail(
                    path,
                    f"unknown key; {hint}allowed here: {', '.join(allowed)}; "
                    "fix the spelling or remove it",
                )

    def table(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"must be a table ([{where}]), not {_kind(value)}")
        return value

    def text(self, table: Mapping[str, Any], key: str, where: str) -> str:
        """A required, non-empty string, stripped."""
        value = table.get(key)
        if value is None:
            raise self.fail(f"{where}.{key}", f'missing; add {key} = "…" to [{where}]')
        if not isinstance(value, str) or not value.strip():
            raise self.fail(f"{where}.{key}", f'must be a non-empty quoted string, e.g. {key} = "…"')
        return value.strip()

    def optional_text(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        return None if table.get(key) is None else self.text(table, key, where)

    def ids(self, table: Mapping[str, Any], where: str) -> None:
        """Ids must look alike in the file, the dialplan and the log."""
        seen: dict[str, str] = {}
        for key in table:
            path = f"{where}.{key}"
            if _is_record_all(key):
                raise self.fail(path, _INDISCRIMINATE)
            folded = key.lower().replace("-", "_")
            if folded in seen:
                raise self.fail(
                    path,
                    f"duplicate id: differs from {quoted(seen[folded])} only by case or '-'/'_'; "
                    "keep one of them",
                )
            seen[folded] = key
            if not _ID_RE.match(key):
                raise self.fail(
                    path,
                    "invalid id: use lower-case letters, digits, '_' and '-', "
                    "starting with a letter (e.g. order, evidence-v1)",
                )
            if len(key) > MAX_ID_LENGTH:
                raise self.fail(
                    path,
                    f"id is {len(key)} characters long, at most {MAX_ID_LENGTH} are allowed: "
                    "the channel variables carry no longer ids, so it could never match a "
                    "call; shorten it",
                )

    def policy(self, data: Mapping[str, Any]) -> tuple[str, str]:
        if "policy" not in data:
            raise self.fail(
                "policy", 'missing table; add [policy] with name = "…" and version = "…"'
            )
        table = self.table(data["policy"], "policy")
        self.check_keys(table, "policy", _POLICY_KEYS)
        name = self.text(table, "name", "policy")
        version = self.text(table, "version", "policy")
        return name, version

    def purpose(self, purpose_id: str, raw: Any) -> Purpose:
        where = f"purposes.{purpose_id}"
        table = self.table(raw, where)
        self.check_keys(table, where, _PURPOSE_KEYS)
        if "basis" not in table:
            raise self.fail(
                f"{where}.basis",
                'missing; add basis = "evidence", "consent" or "forbidden"',
            )
        try:
            basis = Basis(table["basis"])
        except (ValueError, TypeError):
            raise self.fail(
                f"{where}.basis",
                f"invalid basis {quoted(table['basis'])}; use \"evidence\", \"consent\" or \"forbidden\"",
            ) from None
        description = self.text(table, "description", where)
        justification = self.optional_text(table, "justification", where)
        retention = table.get("retention_days")
        if basis is Basis.FORBIDDEN:
            if retention is not None:
                raise self.fail(
                    f"{where}.retention_days",
                    "a forbidden purpose is never recorded, so it keeps nothing; "
                    "remove retention_days",
                )
            if justification is not None:
                raise self.fail(
                    f"{where}.justification",
                    "a forbidden purpose is never recorded, so there is no retention "
                    "to justify; remove justification",
                )
            return Purpose(purpose_id, basis, None, description, None)
        if retention is None:
            raise self.fail(
                f"{where}.retention_days",
                f"missing; a purpose with basis {basis.value!r} records, so it needs "
                "retention_days = <days> (a positive whole number)",
            )
        if isinstance(retention, bool) or not isinstance(retention, int) or retention <= 0:
            raise self.fail(
                f"{where}.retention_days",
                f"must be a positive whole number of days, not {quoted(retention)}",
            )
        if retention > MAX_JUSTIFIED_RETENTION_DAYS:
            # No justification helps here, so this is said first.
            raise self.fail(
                f"{where}.retention_days",
                f"{retention} days is longer than any recording may be kept "
                f"({MAX_JUSTIFIED_RETENTION_DAYS} days, ten years, even with a justification); "
                "shorten it",
            )
        if retention > MAX_RETENTION_DAYS and justification is None:
            raise self.fail(
                f"{where}.retention_days",
                f"{retention} days is longer than the general limitation period "
                f"({MAX_RETENTION_DAYS} days); shorten it, or add "
                'justification = "…" saying why the recording must be kept that long',
            )
        return Purpose(purpose_id, basis, retention, description, justification)

    def notice(self, notice_id: str, raw: Any, purposes: Mapping[str, Purpose]) -> Notice:
        where = f"notices.{notice_id}"
        table = self.table(raw, where)
        self.check_keys(table, where, _NOTICE_KEYS)
        covers = table.get("covers")
        if covers is None:
            raise self.fail(
                f"{where}.covers",
                'missing; list the purposes this notice tells the caller about, '
                'e.g. covers = ["order"]',
            )
        if isinstance(covers, str) and _is_record_all(covers):
            raise self.fail(f"{where}.covers", _INDISCRIMINATE)
        if not isinstance(covers, list) or not covers or not all(isinstance(c, str) for c in covers):
            raise self.fail(
                f"{where}.covers",
                'must be a non-empty list of purpose ids, e.g. covers = ["order"]',
            )
        for purpose_id in covers:
            if _is_record_all(purpose_id):
                raise self.fail(f"{where}.covers", f"{quoted(purpose_id)}: {_INDISCRIMINATE}")
            purpose = purposes.get(purpose_id)
            if purpose is None:
                raise self.fail(
                    f"{where}.covers",
                    f"unknown purpose {quoted(purpose_id)}; "
                    f"declare [purposes.{printable(purpose_id, ECHO_LIMIT)}] "
                    "or remove it from covers",
                )
            if purpose.basis is Basis.FORBIDDEN:
                raise self.fail(
                    f"{where}.covers",
                    f"purpose {quoted(purpose_id)} is forbidden and is never recorded, so no "
                    "notice may announce recording for it; remove it from covers",
                )
        prompt = self.text(table, "prompt", where)
        if not _PROMPT_RE.match(prompt):
            raise self.fail(
                f"{where}.prompt",
                f"{quoted(prompt)} is not an Asterisk sound name; use letters, digits, '_', "
                "'-' and '/', without extension (e.g. recguard/evidence-v1)",
            )
        text = self.text(table, "text", where)
        text_path = PurePosixPath(text)
        if text_path.is_absolute() or ".." in text_path.parts or "\\" in text:
            raise self.fail(
                f"{where}.text",
                f"{quoted(text)} must be a path relative to the policy file's folder, "
                "inside it (e.g. prompts/sl/evidence-v1.txt)",
            )
        accept = table.get("accept_interrupted", False)
        if not isinstance(accept, bool):
            raise self.fail(
                f"{where}.accept_interrupted", f"must be true or false, not {quoted(accept)}"
            )
        return Notice(notice_id, frozenset(covers), prompt, text, accept)

    def run(self, data: Mapping[str, Any]) -> Policy:
        self.check_keys(data, "", _TOP_KEYS)
        name, version = self.policy(data)
        if "purposes" not in data or not data["purposes"]:
            raise self.fail(
                "purposes",
                "no purposes; declare each one as [purposes.<id>] with its basis",
            )
        raw_purposes = self.table(data["purposes"], "purposes")
        self.ids(raw_purposes, "purposes")
        purposes = {pid: self.purpose(pid, raw) for pid, raw in raw_purposes.items()}
        raw_notices = self.table(data.get("notices", {}), "notices")
        self.ids(raw_notices, "notices")
        notices = {nid: self.notice(nid, raw, purposes) for nid, raw in raw_notices.items()}
        covered = {pid for notice in notices.values() for pid in notice.covers}
        for purpose in purposes.values():
            if purpose.records and purpose.id not in covered:
                raise self.fail(
                    f"purposes.{purpose.id}",
                    f"no notice covers this {purpose.basis.value} purpose, so the caller "
                    "could never be told and it could never be recorded; add it to a "
                    "notice's covers, or make its basis \"forbidden\"",
                )
        return Policy(name, version, purposes, notices, self.source)


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
    }.get(type(value), type(value).__name__)


def _toml_error(source: str, text: str, error: tomllib.TOMLDecodeError) -> PolicyError:
    """One line from tomllib's message, naming the spot and what is wrong."""
    message = str(error)
    if message.endswith(" (at end of document)"):
        problem = message.removesuffix(" (at end of document)")
        return PolicyError(
            f"{source}: end of file: invalid TOML: {problem}; something was left open "
            "(a string, list or table header): close it"
        )
    match = _TOML_POSITION.match(message)
    if not match:
        return PolicyError(f"{source}: invalid TOML: {message}; fix the syntax")
    line, column, problem = int(match["line"]), match["col"], match["msg"]
    where = f"{source}: line {line}, column {column}"
    twice = _TOML_TWICE.match(problem)
    if twice:
        parts = re.findall(r"'([^']*)'", twice["path"])
        table = ".".join(parts)
        return PolicyError(
            f"{where}: duplicate id: [{table}] is declared twice; each table and id may "
            "appear only once: merge the two or rename one"
        )
    if problem == "Cannot overwrite a value":
        lines = text.splitlines()
        key_match = _KEY_AT_LINE.match(lines[line - 1]) if 0 < line <= len(lines) else None
        key = f" {quoted(key_match['key'].strip())}" if key_match else ""
        return PolicyError(
            f"{where}: duplicate key{key}: it is already set in this table; keep only one"
        )
    return PolicyError(f"{where}: invalid TOML: {problem}; fix the syntax there")


def _too_deep(source: str, where: str) -> PolicyError:
    return PolicyError(
        f"{source}: {where}: lists or tables nested more than {MAX_NESTING} levels deep; "
        "a policy needs four at most: remove the extra brackets or dots"
    )


def _first_too_deep(data: Mapping[str, Any]) -> str | None:
    """The first keys above a list or table nested too deep, or None; walked
    without recursion, since the depth is what is in doubt."""
    stack: list[tuple[Any, tuple[str, ...], int]] = [(data, (), 0)]
    while stack:
        value, keys, depth = stack.pop()
        if depth > MAX_NESTING:
            return ".".join(keys[:3]) + "…"
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            if isinstance(child, (dict, list)):
                shown = (keys + (str(key),)) if len(keys) < 3 else keys
                stack.append((child, shown, depth + 1))
    return None


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate the text of a policy file. Pure: ``source`` only names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _toml_error(source, text, error) from None
    except RecursionError:  # tomllib reads nested lists and inline tables recursively
        raise _too_deep(source, "invalid TOML") from None
    except ValueError as error:  # Python's own limits, e.g. an integer of 4301 digits
        reason = str(error).split(";")[0]
        raise PolicyError(f"{source}: invalid TOML: {reason}; shorten that value") from None
    deep = _first_too_deep(data)
    if deep is not None:
        raise _too_deep(source, deep)
    return _Validator(source).run(data)


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raises ``PolicyError`` with one clear line."""
    source = str(path)
    text = read_regular_file(
        path, "policy file", MAX_POLICY_BYTES, where=source, error=PolicyError,
        missing=f"{source}: no such policy file; give --policy PATH or set RECGUARD_POLICY",
    )
    return parse_policy(text, source)
