"""``recguard decide``: the exact command-line contract, JSON and text output,
and where the policy comes from."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from asterisk_recguard.cli import main
from asterisk_recguard.commands.decide import DECIDE_EPILOG
from asterisk_recguard.resources import default_policy_path

LABEL = "sl-call-centre 2026-11"


@pytest.fixture(autouse=True)
def no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECGUARD_POLICY", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    status, out, err = run(capsys, "decide", *argv, "--json")
    assert (status, err) == (0, "")
    assert out.count("\n") == 1  # one JSON object on one line
    return json.loads(out)


JSON_CASES = [
    (["--purpose", "order", "--notice", "evidence-v1"],
     {"record": True, "purposes": ["order"], "rejected": [], "retention_days": 1095}),
    (["--purpose", "order", "--notice-interrupted", "evidence-v1"],
     {"record": False, "purposes": [],
      "rejected": [{"purpose": "order", "reason": "notice_interrupted"}], "retention_days": None}),
    (["--purpose", "general_info", "--purpose", "quality", "--notice", "quality-consent-v1",
      "--consent", "given"],
     {"record": True, "purposes": ["quality"],
      "rejected": [{"purpose": "general_info", "reason": "purpose_forbidden"}], "retention_days": 90}),
    (["--purpose", "quality", "--notice", "quality-consent-v1"],
     {"record": False, "purposes": [],
      "rejected": [{"purpose": "quality", "reason": "consent_missing"}], "retention_days": None}),
    (["--purpose", "complaint", "--purpose", "order", "--notice", "evidence-v1",
      "--outcome", "no_transaction"],
     {"record": False, "purposes": [],
      "rejected": [{"purpose": "complaint", "reason": "no_transaction"},
                   {"purpose": "order", "reason": "no_transaction"}], "retention_days": None}),
    (["--purpose", "complaint", "--purpose", "quality", "--notice", "evidence-v1",
      "--notice", "quality-consent-v1", "--consent", "given", "--outcome", "transaction"],
     {"record": True, "purposes": ["complaint", "quality"], "rejected": [], "retention_days": 730}),
    (["--purpose", "quality", "--notice", "quality-consent-v1", "--consent", "withdrawn"],
     {"record": False, "purposes": [],
      "rejected": [{"purpose": "quality", "reason": "consent_withdrawn"}], "retention_days": None}),
    (["--purpose", "order", "--purpose", "order", "--notice", "evidence-v1"],
     {"record": True, "purposes": ["order"], "rejected": [], "retention_days": 1095}),
    (["--purpose", "marketing"],
     {"record": False, "purposes": [],
      "rejected": [{"purpose": "marketing", "reason": "purpose_unknown"}], "retention_days": None}),
]


@pytest.mark.parametrize("argv, expected", JSON_CASES, ids=[" ".join(c[0]) for c in JSON_CASES])
def test_json_output(capsys: pytest.CaptureFixture[str], argv: list[str], expected: dict[str, object]) -> None:
    assert run_json(capsys, *argv) == {**expected, "policy": LABEL}


def test_json_keys_are_in_contract_order(capsys: pytest.CaptureFixture[str]) -> None:
    data = run_json(capsys, "--purpose", "order")
    assert list(data) == ["record", "purposes", "rejected", "retention_days", "policy"]


def test_text_output_for_a_recorded_call(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "decide", "--purpose", "order", "--purpose", "deterrence", "--notice", "evidence-v1"
    )
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "Call: purposes deterrence, order; notices evidence-v1 (played to the end); "
        "consent none; outcome unknown.",
        f"RECORD this call (policy {LABEL}).",
        "Recorded for:",
        "  order — ordering a service or goods (naročilo)",
        "    basis: evidence of a business transaction; its retention: 1095 days",
        "Kept for 1095 days after the call ends, then deleted.",
        "If the call ends with no transaction, the evidence purposes lapse;",
        "with no other purpose left, the recording is deleted at once.",
        "Not recorded for:",
        "  deterrence — deterring abusive, threatening or repetitive calls",
        "    why: the law does not allow recording calls for this purpose",
    ]


def test_text_output_for_a_call_not_recorded(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        capsys, "decide", "--purpose", "quality", "--notice-interrupted", "quality-consent-v1",
        "--consent", "refused",
    )
    assert status == 0
    assert out.splitlines()[0] == (
        "Call: purposes quality; notices quality-consent-v1 (cut short); consent refused; "
        "outcome unknown."
    )
    assert out.splitlines()[1] == f"DO NOT RECORD this call (policy {LABEL})."
    assert "why: the notice about this purpose was cut short" in out
    assert "Kept for" not in out


# --- where the policy comes from -------------------------------------------

OTHER_POLICY = """\
[policy]
name = "other"
version = "7"

[purposes.order]
basis = "evidence"
retention_days = 10
description = "ordering"

[notices.short]
covers = ["order"]
prompt = "x/short"
text = "short.txt"
accept_interrupted = true
"""


def test_env_overrides_the_shipped_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "other.toml"
    path.write_text(OTHER_POLICY)
    (tmp_path / "short.txt").write_text("the short notice\n")
    monkeypatch.setenv("RECGUARD_POLICY", str(path))
    data = run_json(capsys, "--purpose", "order", "--notice-interrupted", "short")
    assert data == {
        "record": True, "purposes": ["order"], "rejected": [], "retention_days": 10,
        "policy": "other 7",
    }
    status, out, _ = run(capsys, "check-config")
    assert (status, out) == (0, f"{path}: OK — policy other 7, 1 purpose (1 record, 0 never), 1 notice\n")


def test_policy_option_beats_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RECGUARD_POLICY", str(tmp_path / "missing.toml"))
    data = run_json(capsys, "--purpose", "order", "--policy", str(default_policy_path()))
    assert data["policy"] == LABEL


def test_bad_policy_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(OTHER_POLICY.replace("retention_days = 10", "retention_days = 0"))
    status, out, err = run(capsys, "decide", "--purpose", "order", "--policy", str(path))
    assert (status, out) == (2, "")
    assert err == (
        f"recguard: error: {path}: purposes.order.retention_days: must be a positive whole "
        "number of days, not 0\n"
    )


def test_a_retention_no_date_can_hold_is_a_one_line_error(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(OTHER_POLICY.replace(
        "retention_days = 10", 'retention_days = 3000000\njustification = "kept for good"'))
    status, out, err = run(capsys, "decide", "--purpose", "order", "--policy", str(path))
    assert (status, out) == (2, "")
    assert err == (
        f"recguard: error: {path}: purposes.order.retention_days: 3000000 days is longer than any "
        "recording may be kept (3653 days, ten years, even with a justification); shorten it\n"
    )


# --- arguments ---------------------------------------------------------------


def test_a_notice_cannot_be_both_complete_and_interrupted(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        capsys, "decide", "--purpose", "order", "--notice", "evidence-v1",
        "--notice-interrupted", "evidence-v1",
    )
    assert (status, out) == (2, "")
    assert err == (
        "recguard: error: notice 'evidence-v1' is given both as --notice and "
        "--notice-interrupted; give each notice once, with how it played\n"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["decide"],
        ["decide", "--purpose", "order", "--consent", "maybe"],
        ["decide", "--purpose", "order", "--outcome", "sold"],
    ],
    ids=["no purpose", "bad consent", "bad outcome"],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "usage: recguard decide" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["decide", "check-config"])
def test_help_has_examples(capsys: pytest.CaptureFixture[str], command: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"  recguard {command}" in out
    assert "--policy PATH" in out


def test_help_examples_do_what_they_say(capsys: pytest.CaptureFixture[str]) -> None:
    commands = []
    current = ""
    for line in DECIDE_EPILOG.splitlines():
        if line.startswith("  recguard ") or current:
            current += line.strip().removesuffix("\\")
            if not line.endswith("\\"):
                commands.append(shlex.split(current)[1:])
                current = ""
    assert len(commands) == 3
    results = []
    for argv in commands:
        status = main(argv if "--json" in argv else [*argv, "--json"])
        assert status == 0
        results.append(json.loads(capsys.readouterr().out))
    assert [(r["record"], r["purposes"], r["retention_days"]) for r in results] == [
        (True, ["order"], 1095),
        (True, ["quality"], 90),
        (False, [], None),
    ]


def test_installed_command_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "asterisk_recguard", "decide", "--purpose", "cancellation",
         "--notice", "evidence-v1", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["retention_days"] == 1095
