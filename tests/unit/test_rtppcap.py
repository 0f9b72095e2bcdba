"""devtools.rtppcap: the caller media SIPp plays. Keys must reach Asterisk in
order whatever they are, so their RTP timestamps and sequence numbers only
go up; the file must be a capture SIPp can read."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from asterisk_recguard.devtools.rtppcap import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    KEY_SECONDS,
    PCMA,
    SILENCE,
    TELEPHONE_EVENT,
    CallerMedia,
    RtpPacket,
    alaw,
    read_pcap,
    write_pcap,
)


def events(packets: list[RtpPacket]) -> list[RtpPacket]:
    return [p for p in packets if p.payload_type == TELEPHONE_EVENT]


@pytest.mark.parametrize(
    ("sample", "code"),
    # ITU-T G.711 A-law, as the reference implementation (and Python's audioop) encode them.
    [(0, 0xD5), (-1, 0x55), (15, 0xD5), (16, 0xD4), (-16, 0x55), (-17, 0x54), (255, 0xDA), (256, 0xC5),
     (1000, 0xFA), (-1000, 0x7A), (4095, 0x9A), (4096, 0x85), (32767, 0xAA), (-32768, 0x2A), (40000, 0xAA)],
)
def test_alaw_matches_g711(sample: int, code: int) -> None:
    assert alaw(sample) == code


def test_a_4_then_a_1_both_arrive_in_order() -> None:
    """The keys SIPp ships carry fixed timestamps (the 1's is older than the 4's),
    and Asterisk drops a key that is not newer than the last: here each key
    takes the timestamp of its moment."""
    packets = CallerMedia(3.0).key(0.5, "4").key(1.5, "1").packets()
    four, one = [p for p in events(packets) if p.event()[0] == 4], [p for p in events(packets) if p.event()[0] == 1]
    assert four and one
    assert {p.timestamp for p in four} == {four[0].timestamp}  # one event, one timestamp
    assert one[0].timestamp > four[0].timestamp
    assert one[0].sequence > four[-1].sequence
    assert four[0].marker and one[0].marker


def test_sequence_and_timestamp_rise_through_audio_and_keys() -> None:
    packets = CallerMedia(4.0).key(0.3, "0").key(0.9, "9").speak(1.0, 2.0).key(2.0, "#").packets()
    assert len({p.ssrc for p in packets}) == 1
    distinct = [p for i, p in enumerate(packets) if i == 0 or p.sequence != packets[i - 1].sequence]
    assert all(b.sequence == a.sequence + 1 for a, b in zip(distinct, distinct[1:]))
    assert all(b.timestamp >= a.timestamp for a, b in zip(packets, packets[1:]))
    assert all(b.at >= a.at for a, b in zip(packets, packets[1:]))
    audio = [p for p in packets if p.payload_type == PCMA]
    # An audio packet's timestamp is its moment on the 8 kHz clock.
    assert all(p.timestamp - audio[0].timestamp == round(p.at / FRAME_SECONDS) * FRAME_SAMPLES for p in audio)


def test_a_key_is_held_then_ended_three_times() -> None:
    press = events(CallerMedia(1.0).key(0.2, "5").packets())
    held = [p for p in press if not p.event()[1]]
    ended = [p for p in press if p.event()[1]]
    assert [p.event()[2] for p in held] == [FRAME_SAMPLES * (n + 1) for n in range(len(held))]
    assert len(held) * FRAME_SECONDS == pytest.approx(KEY_SECONDS)
    assert len(ended) == 3 and len({p.sequence for p in ended}) == 1
    assert ended[0].event() == (5, True, len(held) * FRAME_SAMPLES)
    assert press[0].at == pytest.approx(0.2)


def test_silence_except_while_speaking() -> None:
    packets = CallerMedia(2.0).speak(1.0, 0.5).packets()
    spoken = [p for p in packets if p.payload != SILENCE]
    assert spoken and all(1.0 <= p.at < 1.5 for p in spoken)
    assert packets[-1].at == pytest.approx(2.0 - FRAME_SECONDS)


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="'x'"):
        CallerMedia(1.0).key(0.1, "x")


def test_a_written_capture_reads_back_the_same(tmp_path: Path) -> None:
    packets = CallerMedia(1.5).key(0.4, "7").speak(0.8, 0.5).packets()
    path = tmp_path / "caller.pcap"
    write_pcap(path, packets)
    assert read_pcap(path) == packets


def test_the_capture_is_what_sipp_reads(tmp_path: Path) -> None:
    """Ethernet link type, microsecond timestamps that do not start at zero
    (SIPp takes a zero time for "nothing sent yet"), right UDP and IP lengths,
    and a valid IP header checksum."""
    path = CallerMedia(0.1).write(tmp_path / "c.pcap")
    data = path.read_bytes()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, link) == (0xA1B2C3D4, 1)
    seconds, _, length, original = struct.unpack("<IIII", data[24:40])
    assert seconds > 0 and length == original
    frame = data[40:40 + length]
    assert frame[12:14] == b"\x08\x00"
    ip = frame[14:34]
    assert struct.unpack("!H", ip[2:4])[0] == length - 14
    words = sum(struct.unpack("!10H", ip))
    assert (words & 0xFFFF) + (words >> 16) == 0xFFFF
    assert struct.unpack("!H", frame[38:40])[0] == length - 34  # UDP length
