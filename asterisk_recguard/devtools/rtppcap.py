"""What a simulated SIP caller's phone sends, as a pcap file that SIPp plays
with ``<exec play_pcap_audio="..."/>``: one RTP stream, one SSRC, a packet
every 20 ms whose sequence numbers and timestamps only go up, carrying G.711
A-law audio (silence, or a tone while the caller speaks) and RFC 4733 key
events at chosen moments. Also reads such a file back, for tests.

Why not the key pcaps SIPp ships: each carries a fixed RTP timestamp, and
Asterisk drops a key whose timestamp is not newer than the last key's (a 4
then a 1 loses the 1). Here every key takes the timestamp of the moment it is
pressed, so keys arrive in order whatever they are.

SIPp sends the packets at the pcap's own times relative to the first one, so
the timeline starts at 0 and a key "at 21.5 s" leaves 21.5 s after the play
started. SIPp rewrites the UDP ports and addresses, and only those.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_SAMPLES = 160
PCMA = 8  # static payload type of G.711 A-law
TELEPHONE_EVENT = 101  # the dynamic payload type the scenarios' SDP gives RFC 4733 events
KEY_SECONDS = 0.16  # how long a key is held
KEY_EVENTS = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}

_PCAP_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1
# SIPp treats an all-zero packet time as "no packet yet": the file's clock starts here.
_EPOCH = 1_000_000
_MAC = bytes(6)


def alaw(sample: int) -> int:
    """One signed 16-bit linear sample as G.711 A-law (ITU-T G.711)."""
    value = max(-32768, min(sample, 32767)) >> 3  # A-law codes 13-bit values
    sign = 0x80 if value >= 0 else 0x00
    magnitude = value if value >= 0 else -value - 1
    if magnitude < 32:
        code = magnitude >> 1
    else:
        exponent = magnitude.bit_length() - 5  # 1..7
        code = (exponent << 4) | ((magnitude >> exponent) & 0x0F)
    return (sign | code) ^ 0x55


SILENCE = bytes([alaw(0)]) * FRAME_SAMPLES


def tone_frame(index: int, frequency: float = 440.0, level: float = 0.3) -> bytes:
    """Frame ``index`` of a continuous sine tone, A-law encoded."""
    first = index * FRAME_SAMPLES
    return bytes(
        alaw(int(level * 32767 * math.sin(2 * math.pi * frequency * (first + n) / SAMPLE_RATE)))
        for n in range(FRAME_SAMPLES)
    )


@dataclass(frozen=True)
class RtpPacket:
    at: float  # seconds from the first packet
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes

    def event(self) -> tuple[int, bool, int]:
        """An RFC 4733 payload as (event, end, duration in samples)."""
        code, flags, duration = struct.unpack("!BBH", self.payload[:4])
        return code, bool(flags & 0x80), duration


@dataclass
class CallerMedia:
    """The caller's side of the media, on a timeline from 0 to ``length`` seconds."""

    length: float
    keys: list[tuple[float, str]] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)

    def key(self, at: float, digit: str) -> CallerMedia:
        if digit not in KEY_EVENTS:
            raise ValueError(f"no RFC 4733 event for key {digit!r}")
        self.keys.append((at, digit))
        return self

    def speak(self, at: float, seconds: float) -> CallerMedia:
        self.speech.append((at, seconds))
        return self

    def packets(self, ssrc: int = 0x5EC0_4D01, sequence: int = 1000, timestamp: int = 8000) -> list[RtpPacket]:
        frames = round(self.length / FRAME_SECONDS)
        starts = {round(at / FRAME_SECONDS): digit for at, digit in self.keys}
        key_frames = round(KEY_SECONDS / FRAME_SECONDS)
        out: list[RtpPacket] = []
        frame = 0
        marker = True  # the first packet of a talk spurt
        while frame < frames:
            at = round(frame * FRAME_SECONDS, 6)  # whole microseconds, as a pcap keeps them
            stamp = (timestamp + frame * FRAME_SAMPLES) & 0xFFFFFFFF
            if frame in starts:
                press = list(_key_packets(KEY_EVENTS[starts[frame]], at, stamp, sequence, ssrc, key_frames))
                out.extend(press)
                sequence = press[-1].sequence + 1
                frame += key_frames + 1
                marker = True
                continue
            payload = tone_frame(frame) if self._speaking(at) else SILENCE
            out.append(RtpPacket(at, PCMA, marker, sequence & 0xFFFF, stamp, ssrc, payload))
            sequence += 1
            marker = False
            frame += 1
        return out

    def write(self, path: Path) -> Path:
        write_pcap(path, self.packets())
        return path

    def _speaking(self, at: float) -> bool:
        return any(start <= at < start + seconds for start, seconds in self.speech)


def _key_packets(
    code: int, at: float, stamp: int, sequence: int, ssrc: int, frames: int
) -> Iterator[RtpPacket]:
    """One key press: updates every 20 ms, all with the press's timestamp, then
    the end packet three times (RFC 4733, 2.5.1.4) at the next 20 ms tick,
    under one sequence number, as Asterisk's own phones send it."""
    volume = 10
    for n in range(frames):
        payload = struct.pack("!BBH", code, volume, (n + 1) * FRAME_SAMPLES)
        yield RtpPacket(round(at + n * FRAME_SECONDS, 6), TELEPHONE_EVENT, n == 0, (sequence + n) & 0xFFFF, stamp, ssrc,
                        payload)
    end = struct.pack("!BBH", code, 0x80 | volume, frames * FRAME_SAMPLES)
    for _ in range(3):
        yield RtpPacket(round(at + frames * FRAME_SECONDS, 6), TELEPHONE_EVENT, False, (sequence + frames) & 0xFFFF, stamp,
                        ssrc, end)


# -- the pcap file ------------------------------------------------------------

def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(packet: RtpPacket, src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    rtp = struct.pack(
        "!BBHII", 0x80, (0x80 if packet.marker else 0) | packet.payload_type, packet.sequence, packet.timestamp,
        packet.ssrc,
    ) + packet.payload
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(rtp), 0) + rtp
    addresses = bytes(map(int, src[0].split("."))) + bytes(map(int, dst[0].split(".")))
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + addresses
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return _MAC + _MAC + b"\x08\x00" + ip + udp


def write_pcap(
    path: Path, packets: list[RtpPacket],
    src: tuple[str, int] = ("127.0.0.1", 40000), dst: tuple[str, int] = ("127.0.0.1", 40002),
) -> None:
    """Write ``packets`` as an Ethernet/IPv4/UDP capture (the kind SIPp reads)."""
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", _PCAP_MAGIC, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
        for packet in packets:
            data = _frame(packet, src, dst)
            micros = round(packet.at * 1_000_000)
            out.write(struct.pack("<IIII", _EPOCH + micros // 1_000_000, micros % 1_000_000, len(data), len(data)))
            out.write(data)


def read_pcap(path: Path) -> list[RtpPacket]:
    """The RTP packets of an Ethernet/IPv4/UDP capture, times from its first packet."""
    data = Path(path).read_bytes()
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", data[:24])
    if magic != _PCAP_MAGIC or link != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: not a microsecond Ethernet pcap")
    packets: list[RtpPacket] = []
    offset = 24
    first: float | None = None
    while offset + 16 <= len(data):
        seconds, micros, length, _ = struct.unpack("<IIII", data[offset:offset + 16])
        frame = data[offset + 16:offset + 16 + length]
        offset += 16 + length
        ip = frame[14:]
        rtp = ip[(ip[0] & 0x0F) * 4 + 8:]
        flags, kind, sequence, timestamp, ssrc = struct.unpack("!BBHII", rtp[:12])
        when = seconds + micros / 1_000_000
        first = when if first is None else first
        packets.append(RtpPacket(round(when - first, 6), kind & 0x7F, bool(kind & 0x80), sequence, timestamp, ssrc,
                                 rtp[12:]))
    return packets
