"""Exports: recordings export decrypted and verified with a manifest; a
tampered one fails loudly leaving nothing behind; both keys work after a
rotation; an export serves only a purpose its recordings were made for."""

from __future__ import annotations

import hashlib
import json
import stat
import wave
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from asterisk_recguard import vault
from asterisk_recguard.errors import UserError
from asterisk_recguard.exporting import (
    MANIFEST,
    REQUEST_RECORDING,
    REQUEST_SUBJECT,
    ExportFailed,
    ExportRefused,
    export_recordings,
    offset_in_file,
)
from asterisk_recguard.subjects import subject_hash

from .recfixtures import NUMBER, SECRET, T0, World, export, non_empty_dir

ACTOR = "alice"
DEADLINE = T0 + timedelta(days=1095)


def caller_hash() -> str:
    return subject_hash(NUMBER, SECRET, "386")


# --- export ------------------------------------------------------------------------------


def test_export_decrypts_verifies_and_writes_a_manifest(world: World, tmp_path: Path) -> None:
    recs = [world.add(deadline=DEADLINE, seed=i) for i in range(2)]
    to = tmp_path / "dsar" / "17"
    result = export(world, recs, to, caller_hash=caller_hash())

    assert stat.S_IMODE(to.stat().st_mode) == 0o700
    assert sorted(p.name for p in to.iterdir()) == sorted(
        [MANIFEST] + [f"{r.recording_id}.wav" for r in recs])
    for rec in recs:
        out = to / f"{rec.recording_id}.wav"
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert hashlib.sha256(out.read_bytes()).hexdigest() == rec.sha256
        with wave.open(str(out)) as audio:
            assert audio.getframerate() == 8000 and audio.getnframes() == 4000
    assert stat.S_IMODE((to / MANIFEST).stat().st_mode) == 0o600

    manifest = json.loads((to / MANIFEST).read_text())
    assert manifest["exported_by"] == ACTOR and manifest["reason"] == "DSAR-17"
    assert manifest["request"] == REQUEST_SUBJECT
    assert [e["recording_id"] for e in manifest["recordings"]] == [r.recording_id for r in recs]
    entry = manifest["recordings"][0]
    assert entry["purposes"] == ["order"] and entry["bases"] == {"order": "evidence"}
    assert entry["sha256"] == recs[0].sha256 and entry["size_bytes"] == recs[0].size_bytes
    assert entry["deadline"] == "2028-01-10T10:00:00.000000Z"
    assert entry["call_date"] == "2025-01-10T09:57:00.000000Z"
    assert entry["duration_s"] == 0.5
    text = (to / MANIFEST).read_text()
    assert "caller_hash" not in text and caller_hash() not in text
    assert "for_purpose" not in manifest  # the data subject's own request has no purpose

    exports = [e for e in world.ledger.access_log() if e.action == "export"]
    assert sorted(e.recording_id for e in exports) == sorted(r.recording_id for r in recs)
    assert all(e.actor == ACTOR and e.reason == "DSAR-17" for e in exports)
    assert exports[0].detail["caller_hash"] == caller_hash()
    assert len(world.events("export")) == 2
    assert result.files == [to / f"{r.recording_id}.wav" for r in recs]


def test_the_manifest_lists_each_pause_in_utc_and_in_seconds_into_the_recording(world: World,
                                                                                 tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    assert rec.stopped_at == T0 and rec.duration_s == 0.5
    world.ledger.pause_started(rec.recording_id, by="agent_key", at=T0 - timedelta(seconds=0.4))
    world.ledger.pauses_closed(rec.recording_id, by="crm", at=T0 - timedelta(seconds=0.25))
    world.ledger.pause_started(rec.recording_id, by="crm", at=T0 - timedelta(seconds=0.1))
    world.ledger.pauses_closed(rec.recording_id, by="hangup", at=T0)
    unpaused = world.add(deadline=DEADLINE, seed=1)
    to = tmp_path / "export"
    export(world, [rec, unpaused], to)
    paused_entry, unpaused_entry = json.loads((to / MANIFEST).read_text())["recordings"]
    assert paused_entry["pauses"] == [
        {"paused_at": "2025-01-10T09:59:59.600000Z", "resumed_at": "2025-01-10T09:59:59.750000Z",
         "paused_by": "agent_key", "resumed_by": "crm", "from_s": 0.1, "to_s": 0.25},
        {"paused_at": "2025-01-10T09:59:59.900000Z", "resumed_at": "2025-01-10T10:00:00.000000Z",
         "paused_by": "crm", "resumed_by": "hangup", "from_s": 0.4, "to_s": 0.5},
    ]
    assert unpaused_entry["pauses"] == []


def test_a_pause_is_placed_in_the_file_back_from_its_end_once_the_end_is_known(world: World) -> None:
    rec = world.add(deadline=DEADLINE, finalize=False)
    paused = rec.started_at + timedelta(seconds=3)
    assert offset_in_file(rec, paused) == 3.0  # still recording: from its start
    # MixMonitor's file began 0.4 s "early": 10.4 s of audio for 10 s of the clock.
    done = replace(rec, stopped_at=rec.started_at + timedelta(seconds=10), duration_s=10.4)
    assert offset_in_file(done, paused) == 3.4
    assert offset_in_file(done, done.stopped_at) == 10.4
    assert offset_in_file(done, rec.started_at - timedelta(seconds=1)) == 0.0  # never outside the file
    assert offset_in_file(done, None) is None


def test_unencrypted_recording_exports_as_a_verified_copy(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE, encrypted=False)
    export_recordings(world.ledger, world.log, [rec], tmp_path / "out", reason="review",
                      actor=ACTOR, keyring=lambda: pytest.fail("no key is needed"),
                      request=REQUEST_RECORDING, for_purpose="order")
    out = tmp_path / "out" / f"{rec.recording_id}.wav"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == rec.sha256
    assert Path(rec.path).exists()  # the recording itself stays


def test_tampered_ciphertext_fails_loudly_and_leaves_nothing(world: World, tmp_path: Path) -> None:
    good = world.add(deadline=DEADLINE, seed=1)
    bad = world.add(deadline=DEADLINE, seed=2)
    data = bytearray(Path(bad.stored_path).read_bytes())
    data[-30] ^= 0x01
    Path(bad.stored_path).write_bytes(bytes(data))

    to = tmp_path / "out"
    with pytest.raises(ExportFailed) as info:
        export(world, [good, bad], to)
    assert info.value.exit_code == 1
    assert bad.recording_id in str(info.value) and "authentication failed" in str(info.value)
    assert good.recording_id not in str(info.value)
    assert not to.exists()  # nothing, not even the good one: the export is all or nothing
    assert list(tmp_path.glob("**/*.part")) == []

    failed = [e for e in world.ledger.access_log() if e.action == "export"]
    assert [(e.recording_id, e.detail["outcome"]) for e in failed] == [(bad.recording_id, "failed")]
    assert world.events("export_failed")[0]["level"] == "error"
    assert world.events("export") == []


def test_a_valid_ciphertext_of_another_recording_is_caught(world: World, tmp_path: Path) -> None:
    a = world.add(deadline=DEADLINE, seed=1)
    b = world.add(deadline=DEADLINE, seed=2)
    Path(a.stored_path).write_bytes(Path(b.stored_path).read_bytes())  # swapped in
    with pytest.raises(ExportFailed, match="not the recording that was finalized"):
        export(world, [a], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_missing_file_fails_the_export(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    Path(rec.stored_path).unlink()
    with pytest.raises(ExportFailed, match="missing"):
        export(world, [rec], tmp_path / "out")


def test_export_needs_a_reason(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    for blank in ("", "  "):
        with pytest.raises(UserError, match="reason") as info:
            export(world, [rec], tmp_path / "out", reason=blank)
        assert info.value.exit_code == 2
    assert not (tmp_path / "out").exists()
    assert world.ledger.access_log() == []


def test_export_into_a_non_empty_directory_is_refused(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    to = non_empty_dir(tmp_path)
    with pytest.raises(UserError, match="not empty"):
        export(world, [rec], to)
    assert sorted(p.name for p in to.iterdir()) == ["other.txt"]


def test_an_existing_empty_directory_is_made_private(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    to = tmp_path / "out"
    to.mkdir(mode=0o755)
    export(world, [rec], to)
    assert stat.S_IMODE(to.stat().st_mode) == 0o700


def test_a_recording_still_being_made_is_not_exported(world: World, tmp_path: Path) -> None:
    done = world.add(deadline=DEADLINE, seed=1)
    live = world.add(deadline=DEADLINE, seed=2, finalize=False)
    with pytest.raises(ExportFailed, match="still recording"):
        export(world, [done, live], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_after_key_rotation_old_and_new_recordings_export(world: World, tmp_path: Path) -> None:
    old = world.add(deadline=DEADLINE, seed=1)
    new_key = vault.rotate(world.key_file)
    new = world.add(deadline=DEADLINE, seed=2)
    assert old.key_id != new.key_id == new_key
    assert world.keyring.active_key_id == new_key

    export(world, [old, new], tmp_path / "out")
    for rec in (old, new):
        data = (tmp_path / "out" / f"{rec.recording_id}.wav").read_bytes()
        assert hashlib.sha256(data).hexdigest() == rec.sha256


def test_nothing_to_export_is_still_logged(world: World, tmp_path: Path) -> None:
    result = export(world, [], tmp_path / "out", caller_hash=caller_hash())
    assert result.files == [] and not (tmp_path / "out").exists()
    (entry,) = world.ledger.access_log()
    assert entry.action == "export" and entry.detail["outcome"] == "nothing_found"


# --- purpose limitation ------------------------------------------------------------------


def test_an_export_for_a_purpose_the_recording_has_records_it(world: World,
                                                              tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE, purposes=("complaint",))
    to = tmp_path / "out"
    export(world, [rec], to, reason="complaint review 4711", request=REQUEST_RECORDING,
           for_purpose="complaint")
    manifest = json.loads((to / MANIFEST).read_text())
    assert manifest["request"] == REQUEST_RECORDING and manifest["for_purpose"] == "complaint"
    (entry,) = world.ledger.access_log()
    assert entry.detail == {"request": REQUEST_RECORDING, "to": str(to), "sha256": rec.sha256,
                            "for_purpose": "complaint"}
    (event,) = world.events("export")
    assert event["for_purpose"] == "complaint" and event["recording_id"] == rec.recording_id


def test_an_evidence_recording_is_not_reused_for_quality_review(world: World,
                                                                tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)  # order only
    to = tmp_path / "out"
    with pytest.raises(ExportRefused) as info:
        export(world, [rec], to, reason="quality review", request=REQUEST_RECORDING,
               for_purpose="quality")
    assert info.value.exit_code == 1 and "\n" not in str(info.value)
    assert str(info.value) == (
        f"export refused: recording {rec.recording_id} may not be used for quality: it was "
        "recorded for order, and a recording is used only for the purposes it was recorded "
        "for; nothing was written")
    assert info.value.failures == [(rec.recording_id, "it was recorded for order, not for quality")]
    assert not to.exists()

    (entry,) = world.ledger.access_log()
    assert (entry.action, entry.actor, entry.reason, entry.recording_id) == (
        "export", ACTOR, "quality review", rec.recording_id)
    assert entry.detail == {"request": REQUEST_RECORDING, "for_purpose": "quality",
                            "purposes": ["order"], "outcome": "refused"}
    (event,) = world.events("export_failed")
    assert event["level"] == "warning" and event["outcome"] == "refused"
    assert event["purposes"] == ["order"] and event["for_purpose"] == "quality"
    assert event["error"] == "it was recorded for order, not for quality"


def test_one_recording_without_the_purpose_refuses_the_whole_export(world: World,
                                                                   tmp_path: Path) -> None:
    consented = world.add(deadline=DEADLINE, purposes=("order", "quality"), seed=1)
    evidence = world.add(deadline=DEADLINE, purposes=("order", "change"), seed=2)
    to = tmp_path / "out"
    with pytest.raises(ExportRefused) as info:
        export(world, [consented, evidence], to, reason="quality review",
               request=REQUEST_RECORDING, for_purpose="quality")
    assert str(info.value).startswith(
        f"export refused: recording {evidence.recording_id} may not be used for quality: "
        "it was recorded for order and change,")
    assert not to.exists()  # not even the consented one: all or nothing
    refused = [(e.recording_id, e.detail["outcome"]) for e in world.ledger.access_log()]
    assert refused == [(evidence.recording_id, "refused")]

    complaint = world.add(deadline=DEADLINE, purposes=("complaint",), seed=3)
    with pytest.raises(ExportRefused) as info:
        export(world, [consented, evidence, complaint], to, reason="quality review",
               request=REQUEST_RECORDING, for_purpose="quality")
    assert str(info.value).splitlines() == [
        "export refused: 2 recording(s) may not be used for quality (a recording is used only "
        "for the purposes it was recorded for); nothing was written",
        f"  {evidence.recording_id}: it was recorded for order and change, not for quality",
        f"  {complaint.recording_id}: it was recorded for complaint, not for quality",
    ]
    assert not to.exists()


def test_the_purpose_is_checked_before_the_recording_is_read(world: World,
                                                             tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    Path(rec.stored_path).unlink()
    with pytest.raises(ExportRefused):
        export(world, [rec], tmp_path / "out", reason="quality review",
               request=REQUEST_RECORDING, for_purpose="quality")
    assert world.events("export_failed")[0]["outcome"] == "refused"


def test_an_export_of_a_recording_needs_a_purpose(world: World, tmp_path: Path) -> None:
    rec = world.add(deadline=DEADLINE)
    with pytest.raises(UserError, match="--for PURPOSE") as info:
        export(world, [rec], tmp_path / "out", reason="review", request=REQUEST_RECORDING)
    assert info.value.exit_code == 2
    assert not (tmp_path / "out").exists()
    assert world.ledger.access_log() == [] and world.log_lines() == []


def test_a_data_subject_export_is_not_limited_by_purpose(world: World, tmp_path: Path) -> None:
    recs = [world.add(deadline=DEADLINE, purposes=(p,), seed=i)
            for i, p in enumerate(("order", "complaint", "quality"))]
    result = export(world, recs, tmp_path / "dsar", caller_hash=caller_hash())
    assert len(result.files) == 3
    assert all("for_purpose" not in e.detail for e in world.ledger.access_log())
