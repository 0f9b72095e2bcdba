"""The consistency audit finds each kind of disagreement between the
recordings directory, the ledger and the policy, and nothing when they agree."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard.audit import audit
from asterisk_recguard.ledger import utcnow
from asterisk_recguard.policy import Policy, load_policy
from asterisk_recguard.resources import default_policy_path

from .recfixtures import T0, World

FUTURE = utcnow() + timedelta(days=1000)


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy(default_policy_path())


def run(world: World, policy: Policy, **kw):
    return audit(world.ledger, policy, world.recordings, orphan_grace=kw.pop("grace", 3600), **kw)


def kinds(report) -> list[str]:
    return sorted(p.kind for p in report.problems)


def old(path: Path, seconds: float = 86400) -> None:
    then = utcnow().timestamp() - seconds
    os.utime(path, (then, then))


def test_consistent(world: World, policy: Policy) -> None:
    world.add(deadline=FUTURE, seed=1)
    world.add(deadline=FUTURE, seed=2, encrypted=False)
    report = run(world, policy)
    assert report.ok and report.problems == []
    assert (report.recordings_checked, report.files_checked) == (2, 2)
    assert report.summary().startswith("2 recordings and 2 files consistent")


def test_orphans_and_in_progress_files(world: World, policy: Policy) -> None:
    world.add(deadline=FUTURE)
    young = world.recordings / "new.wav"
    young.write_bytes(b"x")
    report = run(world, policy)
    assert report.ok and [e.path for e in report.in_progress] == [str(young)]

    report = run(world, policy, clock=lambda: utcnow() + timedelta(hours=2))
    assert kinds(report) == ["orphan"]
    assert report.problems[0].file == str(young) and "no ledger entry" in report.problems[0].message


def test_a_directory_in_the_recordings_dir_is_reported(world: World, policy: Policy) -> None:
    (world.recordings / "sub").mkdir()
    assert kinds(run(world, policy)) == ["not_a_file"]


def test_a_missing_file_and_a_clear_copy(world: World, policy: Policy) -> None:
    gone = world.add(deadline=FUTURE, seed=1)
    Path(gone.stored_path).unlink()
    copy = world.add(deadline=FUTURE, seed=2)
    Path(copy.path).write_bytes(b"RIFF clear copy")
    report = run(world, policy)
    assert kinds(report) == ["clear_copy", "missing_file"]
    by_kind = {p.kind: p for p in report.problems}
    assert by_kind["missing_file"].recording_id == gone.recording_id
    assert by_kind["clear_copy"].file == copy.path


def test_a_recording_its_final_facts_do_not_justify(world: World, policy: Policy) -> None:
    facts = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
             "consent": "none", "outcome": "no_transaction"}
    rec = world.add(deadline=FUTURE, facts=facts)
    report = run(world, policy)
    assert kinds(report) == ["unjustified"]
    assert report.problems[0].recording_id == rec.recording_id
    assert "order" in report.problems[0].message and policy.label in report.problems[0].message


def test_a_recording_under_legal_hold_is_kept_whatever_its_final_facts(world: World, policy: Policy) -> None:
    facts = {"purposes": ["order"], "notices": {"evidence-v1": "complete"},
             "consent": "none", "outcome": "no_transaction"}
    rec = world.add(deadline=FUTURE, facts=facts)
    world.ledger.set_hold(rec.recording_id, reason="court case P 7/2026", actor="dpo")
    assert run(world, policy).ok


def test_a_quality_recording_without_consent_is_unjustified(world: World, policy: Policy) -> None:
    facts = {"purposes": ["order", "quality"],
             "notices": {"evidence-v1": "complete", "quality-consent-v1": "complete"},
             "consent": "withdrawn", "outcome": "unknown"}
    world.add(deadline=FUTURE, facts=facts, purposes=("order", "quality"))
    report = run(world, policy)
    assert kinds(report) == ["unjustified"] and "quality" in report.problems[0].message
    world.add(deadline=FUTURE, facts=facts, purposes=("order",), seed=3)
    assert len(run(world, policy).problems) == 1  # the order-only one is fine


def test_kept_past_the_deadline_without_a_hold(world: World, policy: Policy) -> None:
    overdue = world.add(deadline=utcnow() - timedelta(days=2), seed=1)
    world.add(deadline=utcnow() - timedelta(minutes=10), seed=2)  # the next purge is due
    held = world.add(deadline=utcnow() - timedelta(days=2), seed=3)
    world.ledger.set_hold(held.recording_id, reason="court", actor="bob")
    report = run(world, policy)
    assert kinds(report) == ["overdue"] and report.problems[0].recording_id == overdue.recording_id


def test_stuck_in_deleting(world: World, policy: Policy) -> None:
    rec = world.add(deadline=FUTURE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired")
    report = run(world, policy)
    assert kinds(report) == ["stuck_deleting"] and "recguard purge" in report.problems[0].message


def test_a_deletion_in_flight_is_not_stuck(world: World, policy: Policy) -> None:
    rec = world.add(deadline=FUTURE, finalize=False)
    world.ledger.mark_deleting(rec.recording_id, reason="no_transaction")  # just now
    assert run(world, policy).ok


def test_a_recording_never_finalized_after_its_call_ended(world: World, policy: Policy) -> None:
    rec = world.add(deadline=FUTURE, finalize=False)
    world.ledger.end_call(rec.call_id, ended_at=T0)
    report = run(world, policy)
    assert kinds(report) == ["not_finalized"] and rec.recording_id in report.problems[0].message


def test_a_live_recording_is_fine(world: World, policy: Policy) -> None:
    world.add(deadline=FUTURE, finalize=False)
    assert run(world, policy).ok


def test_deleted_recordings_are_not_checked(world: World, policy: Policy) -> None:
    rec = world.add(deadline=FUTURE)
    world.ledger.mark_deleting(rec.recording_id, reason="retention_expired")
    Path(rec.stored_path).unlink()
    world.ledger.mark_deleted(rec.recording_id)
    report = run(world, policy)
    assert report.ok and report.recordings_checked == 0


def test_to_json(world: World, policy: Policy) -> None:
    (world.recordings / "stray").write_bytes(b"x")
    old(world.recordings / "stray")
    data = run(world, policy, clock=lambda: utcnow() + timedelta(hours=2)).to_json()
    assert data["ok"] is False and data["problems"][0]["kind"] == "orphan"


def test_overdue_recordings_of_every_server_are_reported_naming_the_server(
        world: World, policy: Policy) -> None:
    late = utcnow() - timedelta(days=2)
    world.ledger.server_id = "pbx-a"
    mine = world.add(deadline=late, seed=1)
    world.ledger.server_id = "pbx-b"  # a server that is down: its guard purges nothing
    theirs = world.add(deadline=late, seed=2)
    report = run(world, policy)
    by_id = {p.recording_id: p for p in report.problems}
    assert kinds(report) == ["overdue", "overdue"]
    assert (by_id[mine.recording_id].server, by_id[theirs.recording_id].server) == ("pbx-a", "pbx-b")
    assert "of server pbx-b" in by_id[theirs.recording_id].message
    assert "recguard purge --server pbx-b" in by_id[theirs.recording_id].message


def test_another_servers_recording_whose_file_is_not_here_is_no_missing_file(
        world: World, policy: Policy) -> None:
    world.ledger.server_id = "pbx-b"
    theirs = world.add(deadline=FUTURE, seed=1)
    late = world.add(deadline=utcnow() - timedelta(days=2), seed=2)
    for rec in (theirs, late):
        Path(rec.file_path).unlink()  # on pbx-b's own disk, not here
    world.ledger.server_id = "pbx-a"
    report = run(world, policy)
    assert [(p.kind, p.recording_id, p.server) for p in report.problems] == [
        ("overdue", late.recording_id, "pbx-b")]
    # This server's own recording without its file is still a problem.
    ours = world.add(deadline=FUTURE, seed=3)
    Path(ours.file_path).unlink()
    assert ("missing_file", ours.recording_id) in [(p.kind, p.recording_id)
                                                   for p in run(world, policy).problems]
