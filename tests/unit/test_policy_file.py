"""``recguard check-config`` and ``load_policy``: the shipped policy passes, and
each kind of bad policy is refused with its own one-line message and exit
status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asterisk_recguard.cli import main
from asterisk_recguard.errors import UserError
from asterisk_recguard.policy import PolicyError, load_policy, parse_policy
from asterisk_recguard.resources import default_policy_path

BASE = """\
[policy]
name = "test"
version = "1"

[purposes.order]
basis = "evidence"
retention_days = 1095
description = "ordering"

[purposes.quality]
basis = "consent"
retention_days = 90
description = "quality"

[purposes.general_info]
basis = "forbidden"
description = "general information"

[notices.evidence-v1]
covers = ["order"]
prompt = "recguard/evidence-v1"
text = "prompts/sl/evidence-v1.txt"

[notices.quality-consent-v1]
covers = ["quality"]
prompt = "recguard/quality-consent-v1"
text = "prompts/sl/quality-consent-v1.txt"
"""

INDISCRIMINATE = (
    "there is no setting to record every call: the law forbids indiscriminate "
    "recording; declare each purpose with its own basis, retention and notice instead"
)


def edit(old: str, new: str) -> str:
    assert old in BASE, old
    return BASE.replace(old, new, 1)


def check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    # The notice texts the test policies name, beside them as check-config wants.
    for name in ("evidence-v1.txt", "quality-consent-v1.txt"):
        text = path.parent / "prompts" / "sl" / name
        if path.parent != default_policy_path().parent and not text.exists():
            text.parent.mkdir(parents=True, exist_ok=True)
            text.write_text("notice text\n")
    status = main(["check-config", "--policy", str(path)])
    out, err = capsys.readouterr()
    return status, out, err


# --- accepted ---------------------------------------------------------------


def test_shipped_policy_is_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    path = default_policy_path()
    status, out, err = check_config(path, capsys)
    assert (status, err) == (0, "")
    assert out == (
        f"{path}: OK — policy sl-call-centre 2026-11, 8 purposes (5 record, 3 never), 2 notices\n"
    )


def test_base_policy_of_these_tests_is_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(BASE)
    assert check_config(path, capsys) == (
        0,
        f"{path}: OK — policy test 1, 3 purposes (2 record, 1 never), 2 notices\n",
        "",
    )


ACCEPTED = [
    ("long retention with a justification", edit(
        "retention_days = 1095\n",
        'retention_days = 3650\njustification = "tax law keeps contracts for ten years"\n')),
    ("interrupted notice accepted explicitly", edit(
        'text = "prompts/sl/evidence-v1.txt"\n',
        'text = "prompts/sl/evidence-v1.txt"\naccept_interrupted = true\n')),
    ("policy with only forbidden purposes and no notices",
     '[policy]\nname = "n"\nversion = "1"\n[purposes.spam]\nbasis = "forbidden"\ndescription = "d"\n'),
    ("retention of exactly the limit", edit("retention_days = 1095", "retention_days = 1825")),
    ("justified retention of exactly the ceiling", edit(
        "retention_days = 1095\n", 'retention_days = 3653\njustification = "ten years"\n')),
]


@pytest.mark.parametrize("text", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    assert load_policy(path).source == str(path)


def test_loaded_values(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(ACCEPTED[0][1])
    policy = load_policy(path)
    assert policy.purposes["order"].retention_days == 3650
    assert policy.purposes["order"].justification == "tax law keeps contracts for ten years"
    assert policy.purposes["quality"].justification is None
    assert policy.notices["evidence-v1"].accept_interrupted is False


# --- refused: one case per kind of bad policy ------------------------------

REFUSED = [
    # TOML itself
    ("syntax error", edit('basis = "evidence"', "basis = evidence"),
     'line 6, column 9: invalid TOML: Invalid value; fix the syntax there'),
    ("syntax error at the end of the file", BASE + 'extra = """never closed\n',
     "end of file: invalid TOML: Unterminated string; something was left open (a string, list "
     "or table header): close it"),
    ("duplicate purpose table", BASE + '\n[purposes.order]\nbasis = "evidence"\n',
     "line 29, column 16: duplicate id: [purposes.order] is declared twice; each table and id "
     "may appear only once: merge the two or rename one"),
    ("duplicate key in a table", edit('basis = "consent"\n', 'basis = "consent"\nbasis = "evidence"\n'),
     "line 12, column 19: duplicate key 'basis': it is already set in this table; keep only one"),
    # unknown keys at every level
    ("unknown top-level table", BASE + "[extras]\nx = 1\n",
     "extras: unknown key; allowed here: policy, purposes, notices; fix the spelling or remove it"),
    ("unknown key in [policy]", edit('version = "1"\n', 'version = "1"\nowner = "me"\n'),
     "policy.owner: unknown key; allowed here: name, version, description; "
     "fix the spelling or remove it"),
    ("unknown key in a purpose", edit("retention_days = 90", "retention = 90"),
     "purposes.quality.retention: unknown key; did you mean 'retention_days'? allowed here: "
     "basis, retention_days, description, justification; fix the spelling or remove it"),
    ("unknown key in a notice", edit('covers = ["order"]\n', 'covers = ["order"]\nlanguage = "sl"\n'),
     "notices.evidence-v1.language: unknown key; allowed here: covers, prompt, text, "
     "accept_interrupted; fix the spelling or remove it"),
    # the [policy] table
    ("no [policy] table", BASE.replace('[policy]\nname = "test"\nversion = "1"\n', ""),
     'policy: missing table; add [policy] with name = "…" and version = "…"'),
    ("policy without a name", edit('name = "test"\n', ""),
     'policy.name: missing; add name = "…" to [policy]'),
    ("policy version not a string", edit('version = "1"', "version = 1"),
     'policy.version: must be a non-empty quoted string, e.g. version = "…"'),
    # purposes
    ("no purposes at all", '[policy]\nname = "n"\nversion = "1"\n',
     "purposes: no purposes; declare each one as [purposes.<id>] with its basis"),
    ("purpose that is not a table", edit('[purposes.general_info]\nbasis = "forbidden"\n'
                                         'description = "general information"\n',
                                         '[purposes]\ngeneral_info = "forbidden"\n'),
     "purposes.general_info: must be a table ([purposes.general_info]), not a string"),
    ("purpose without basis", edit('basis = "forbidden"\n', ""),
     'purposes.general_info.basis: missing; add basis = "evidence", "consent" or "forbidden"'),
    ("invalid basis", edit('basis = "consent"', 'basis = "legitimate_interest"'),
     "purposes.quality.basis: invalid basis 'legitimate_interest'; use \"evidence\", "
     "\"consent\" or \"forbidden\""),
    ("purpose without description", edit('description = "ordering"\n', ""),
     'purposes.order.description: missing; add description = "…" to [purposes.order]'),
    ("recording purpose without retention", edit("retention_days = 90\n", ""),
     "purposes.quality.retention_days: missing; a purpose with basis 'consent' records, so it "
     "needs retention_days = <days> (a positive whole number)"),
    ("retention zero", edit("retention_days = 1095", "retention_days = 0"),
     "purposes.order.retention_days: must be a positive whole number of days, not 0"),
    ("retention negative", edit("retention_days = 1095", "retention_days = -1"),
     "purposes.order.retention_days: must be a positive whole number of days, not -1"),
    ("retention fractional", edit("retention_days = 1095", "retention_days = 30.5"),
     "purposes.order.retention_days: must be a positive whole number of days, not 30.5"),
    ("retention as text", edit("retention_days = 1095", 'retention_days = "3 years"'),
     "purposes.order.retention_days: must be a positive whole number of days, not '3 years'"),
    ("retention boolean", edit("retention_days = 1095", "retention_days = true"),
     "purposes.order.retention_days: must be a positive whole number of days, not True"),
    ("retention over the limit without justification", edit("retention_days = 1095", "retention_days = 1826"),
     "purposes.order.retention_days: 1826 days is longer than the general limitation period "
     '(1825 days); shorten it, or add justification = "…" saying why the recording must be '
     "kept that long"),
    ("retention no justification covers", edit(
        "retention_days = 1095\n", 'retention_days = 3000000\njustification = "forever"\n'),
     "purposes.order.retention_days: 3000000 days is longer than any recording may be kept "
     "(3653 days, ten years, even with a justification); shorten it"),
    ("retention one day past the ceiling", edit(
        "retention_days = 1095\n", 'retention_days = 3654\njustification = "ten years and a day"\n'),
     "purposes.order.retention_days: 3654 days is longer than any recording may be kept "
     "(3653 days, ten years, even with a justification); shorten it"),
    ("retention past the ceiling and no justification", edit("retention_days = 90", "retention_days = 10" + "0" * 20),
     f"purposes.quality.retention_days: 10{'0' * 20} days is longer than any recording may be kept "
     "(3653 days, ten years, even with a justification); shorten it"),
    ("empty justification", edit("retention_days = 1095\n", 'retention_days = 3650\njustification = " "\n'),
     'purposes.order.justification: must be a non-empty quoted string, e.g. justification = "…"'),
    ("forbidden purpose with a retention", edit('basis = "forbidden"\n', 'basis = "forbidden"\nretention_days = 30\n'),
     "purposes.general_info.retention_days: a forbidden purpose is never recorded, so it keeps "
     "nothing; remove retention_days"),
    ("forbidden purpose with a justification",
     edit('basis = "forbidden"\n', 'basis = "forbidden"\njustification = "just in case"\n'),
     "purposes.general_info.justification: a forbidden purpose is never recorded, so there is no "
     "retention to justify; remove justification"),
    # ids
    ("ids that differ only by case", edit("[purposes.general_info]", '[purposes.Quality]'),
     "purposes.Quality: duplicate id: differs from 'quality' only by case or '-'/'_'; keep one of them"),
    ("ids that differ only by - and _", edit("[purposes.general_info]", "[purposes.general-info]")
     + '\n[purposes.general_info]\nbasis = "forbidden"\ndescription = "d"\n',
     "purposes.general_info: duplicate id: differs from 'general-info' only by case or '-'/'_'; "
     "keep one of them"),
    ("upper-case id", edit("[purposes.general_info]", "[purposes.General_Info]"),
     "purposes.General_Info: invalid id: use lower-case letters, digits, '_' and '-', starting "
     "with a letter (e.g. order, evidence-v1)"),
    ("id starting with a digit", edit("[purposes.general_info]", "[purposes.1st_line]"),
     "purposes.1st_line: invalid id: use lower-case letters, digits, '_' and '-', starting "
     "with a letter (e.g. order, evidence-v1)"),
    ("notice id with a space", edit("[notices.quality-consent-v1]", '[notices."quality consent"]'),
     "notices.quality consent: invalid id: use lower-case letters, digits, '_' and '-', "
     "starting with a letter (e.g. order, evidence-v1)"),
    # notices
    ("notice covering an unknown purpose", edit('covers = ["order"]', 'covers = ["order", "sales"]'),
     "notices.evidence-v1.covers: unknown purpose 'sales'; declare [purposes.sales] or remove "
     "it from covers"),
    ("notice covering a forbidden purpose", edit('covers = ["order"]', 'covers = ["order", "general_info"]'),
     "notices.evidence-v1.covers: purpose 'general_info' is forbidden and is never recorded, so "
     "no notice may announce recording for it; remove it from covers"),
    ("notice without covers", edit('covers = ["order"]\n', ""),
     'notices.evidence-v1.covers: missing; list the purposes this notice tells the caller about, '
     'e.g. covers = ["order"]'),
    ("notice covering nothing", edit('covers = ["order"]', "covers = []"),
     'notices.evidence-v1.covers: must be a non-empty list of purpose ids, e.g. covers = ["order"]'),
    ("notice without prompt", edit('prompt = "recguard/evidence-v1"\n', ""),
     'notices.evidence-v1.prompt: missing; add prompt = "…" to [notices.evidence-v1]'),
    ("prompt that is not a sound name", edit('"recguard/evidence-v1"', '"recguard/evidence-v1.wav;rm"'),
     "notices.evidence-v1.prompt: 'recguard/evidence-v1.wav;rm' is not an Asterisk sound name; "
     "use letters, digits, '_', '-' and '/', without extension (e.g. recguard/evidence-v1)"),
    ("notice without text", edit('text = "prompts/sl/evidence-v1.txt"\n', ""),
     'notices.evidence-v1.text: missing; add text = "…" to [notices.evidence-v1]'),
    ("text outside the policy folder", edit('"prompts/sl/evidence-v1.txt"', '"../secret.txt"'),
     "notices.evidence-v1.text: '../secret.txt' must be a path relative to the policy file's "
     "folder, inside it (e.g. prompts/sl/evidence-v1.txt)"),
    ("text as an absolute path", edit('"prompts/sl/evidence-v1.txt"', '"/etc/passwd"'),
     "notices.evidence-v1.text: '/etc/passwd' must be a path relative to the policy file's "
     "folder, inside it (e.g. prompts/sl/evidence-v1.txt)"),
    ("accept_interrupted not a boolean",
     edit('text = "prompts/sl/evidence-v1.txt"\n', 'text = "prompts/sl/evidence-v1.txt"\naccept_interrupted = "yes"\n'),
     "notices.evidence-v1.accept_interrupted: must be true or false, not 'yes'"),
    ("recording purpose no notice covers", edit('covers = ["quality"]', 'covers = ["order"]'),
     "purposes.quality: no notice covers this consent purpose, so the caller could never be told "
     'and it could never be recorded; add it to a notice\'s covers, or make its basis "forbidden"'),
    ("recording purpose and no notices at all", BASE.split("[notices.evidence-v1]")[0],
     "purposes.order: no notice covers this evidence purpose, so the caller could never be told "
     'and it could never be recorded; add it to a notice\'s covers, or make its basis "forbidden"'),
    # any attempt to record every call
    ("record_all switch", "record_all = true\n" + BASE, f"record_all: {INDISCRIMINATE}"),
    ("record_all in [policy]", edit('version = "1"\n', 'version = "1"\nrecord_all = true\n'),
     f"policy.record_all: {INDISCRIMINATE}"),
    ("[defaults] table that records", BASE + '[defaults]\nbasis = "evidence"\nretention_days = 30\n',
     f"defaults: {INDISCRIMINATE}"),
    ("default_purpose", edit('version = "1"\n', 'version = "1"\ndefault_purpose = "order"\n'),
     f"policy.default_purpose: {INDISCRIMINATE}"),
    ("default key inside a purpose", edit('basis = "evidence"\n', 'basis = "evidence"\ndefault = true\n'),
     f"purposes.order.default: {INDISCRIMINATE}"),
    ("purpose named all", edit("[purposes.order]", "[purposes.all]").replace('["order"]', '["all"]'),
     f"purposes.all: {INDISCRIMINATE}"),
    ("purpose named catch_all", edit("[purposes.order]", "[purposes.catch_all]"),
     f"purposes.catch_all: {INDISCRIMINATE}"),
    ("purpose named default", edit("[purposes.order]", "[purposes.default]"),
     f"purposes.default: {INDISCRIMINATE}"),
    ("purpose named Record-All", edit("[purposes.order]", "[purposes.Record-All]"),
     f"purposes.Record-All: {INDISCRIMINATE}"),
    ("purpose named *", edit("[purposes.order]", '[purposes."*"]'),
     f"purposes.*: {INDISCRIMINATE}"),
    ("wildcard inside a purpose id", edit("[purposes.order]", '[purposes."order*"]'),
     f"purposes.order*: {INDISCRIMINATE}"),
    ("wildcard ? inside a purpose id", edit("[purposes.order]", '[purposes."ord?r"]'),
     f"purposes.ord?r: {INDISCRIMINATE}"),
    ("notice named all", edit("[notices.quality-consent-v1]", "[notices.all]"),
     f"notices.all: {INDISCRIMINATE}"),
    ("notice covering *", edit('covers = ["order"]', 'covers = ["*"]'),
     f"notices.evidence-v1.covers: '*': {INDISCRIMINATE}"),
    ("notice covering everything as a string", edit('covers = ["order"]', 'covers = "everything"'),
     f"notices.evidence-v1.covers: {INDISCRIMINATE}"),
]


@pytest.mark.parametrize(
    "text, message", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    status, out, err = check_config(path, capsys)
    assert status == 2
    assert out == ""
    assert err == f"recguard: error: {path}: {message}\n"


@pytest.mark.parametrize("text", [c[1] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_load_policy_raises_policy_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert isinstance(caught.value, UserError)
    assert caught.value.exit_code == 2
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"{path}: ")


def test_parse_policy_names_the_source_it_is_given() -> None:
    with pytest.raises(PolicyError, match=r"^site\.toml: purposes: no purposes"):
        parse_policy('[policy]\nname = "n"\nversion = "1"\n', "site.toml")


# --- the file itself -------------------------------------------------------


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "nope.toml"
    assert check_config(path, capsys) == (
        2,
        "",
        f"recguard: error: {path}: no such policy file; give --policy PATH or set RECGUARD_POLICY\n",
    )


def test_directory_instead_of_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config(tmp_path, capsys) == (
        2,
        "",
        f"recguard: error: {tmp_path}: is a directory, not a regular file; "
        "give the path of the policy file itself\n",
    )


def test_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.toml"
    path.write_bytes(BASE.replace("ordering", "naro\u010dilo").encode("cp1250"))
    assert check_config(path, capsys) == (
        2,
        "",
        f"recguard: error: {path}: not UTF-8 text (byte 115); save the policy file as UTF-8\n",
    )


def test_no_traceback_from_the_real_command(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(BASE + "[purposes.order]\n")
    result = subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", "check-config", "--policy", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"recguard: error: {path}: line ")
