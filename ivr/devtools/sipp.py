"""sipp as a caller for the test PBX: RTP speech it can send, and its command line.

sipp can send recorded RTP (``<exec play_pcap_audio="file.pcap"/>``) but the only audio pcap
Debian ships is G.711 A-law, which the test PBX's endpoint (``allow = ulaw``) does not take.
``write_rtp_pcap`` turns any 8 kHz mono PCM into a μ-law RTP pcap, so a SIP caller can speak a
description that Asterisk's RECORD FILE really records. sipp replays pcaps only as root, which
the test PBX needs anyway.
"""

from __future__ import annotations

import shutil
import socket
import struct
import wave
from pathlib import Path

from ivr.devtools.testpbx import free_port

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
"""20 ms per RTP packet, the ptime the scenarios' SDP offers."""


def _ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 μ-law (the ITU table's algorithm)."""
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), clip) + bias
    exponent = 7
    for exp in range(7, -1, -1):
        if magnitude & (0x4000 >> (7 - exp)):
            exponent = exp
            break
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def read_pcm(path: Path, seconds: float | None = None) -> bytes:
    """16-bit mono 8 kHz PCM frames of a wav (the prompts' own format), cut to ``seconds``."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(f"{path}: not 8 kHz mono 16-bit PCM")
        frames = w.getnframes() if seconds is None else int(seconds * SAMPLE_RATE)
        return w.readframes(frames)


def write_rtp_pcap(path: Path, pcm: bytes, payload_type: int = 0, ssrc: int = 0x1240124) -> float:
    """Write ``pcm`` (16-bit little-endian mono 8 kHz) as μ-law RTP packets in a pcap file.

    Addresses and ports in the file do not matter: sipp sends the payloads to the call's media
    address with the pcap's timing. Returns the audio's length in seconds.
    """
    count = len(pcm) // 2
    samples = struct.unpack(f"<{count}h", pcm[: count * 2])
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # Ethernet
    for n, start in enumerate(range(0, count - FRAME_SAMPLES + 1, FRAME_SAMPLES)):
        payload = bytes(_ulaw(s) for s in samples[start : start + FRAME_SAMPLES])
        rtp = struct.pack("!BBHII", 0x80, payload_type, n & 0xFFFF, start, ssrc) + payload
        udp = struct.pack("!HHHH", 40000, 40000, 8 + len(rtp), 0) + rtp
        ip = struct.pack(
            "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0,
            bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
        )  # fmt: skip
        frame = b"\x00" * 12 + b"\x08\x00" + ip + udp
        micros = n * 20_000
        out += struct.pack("<IIII", micros // 1_000_000, micros % 1_000_000, len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return count / SAMPLE_RATE


def sipp_command(
    scenario: Path,
    sip_port: int,
    *,
    service: str = "124",
    calls: int = 1,
    rate: float = 1.0,
    limit: int | None = None,
    timeout_s: int = 60,
    variables: dict[str, str] | None = None,
) -> list[str]:
    """sipp placing ``calls`` calls at ``rate`` per second to ``service`` on the test PBX.

    Loopback only, with free ports for SIP, media and sipp's control socket (its default
    control port 8888 would collide with a second sipp), no keyboard, errors traced to
    ``*_errors.log`` in the working directory.
    """
    sipp = shutil.which("sipp")
    if sipp is None:
        raise FileNotFoundError("sipp is not installed: apt-get install sip-tester")
    cmd = [
        sipp, f"127.0.0.1:{sip_port}",
        "-sf", str(scenario),
        "-s", service,
        "-m", str(calls),
        "-r", f"{rate:g}",
        "-l", str(limit if limit is not None else calls),
        "-i", "127.0.0.1",
        "-p", str(free_port(socket.SOCK_DGRAM)),
        "-mi", "127.0.0.1",
        "-mp", str(_even_free_udp_port()),
        "-cp", str(free_port(socket.SOCK_DGRAM)),
        "-timeout", f"{timeout_s}s",
        "-timeout_error",
        "-nostdin",
        "-trace_err",
    ]  # fmt: skip
    for name, value in (variables or {}).items():
        cmd += ["-set", name, value]
    return cmd


def _even_free_udp_port() -> int:
    """RTP wants an even port with the odd one above it free for RTCP."""
    for _ in range(50):
        port = free_port(socket.SOCK_DGRAM)
        if port % 2 == 0 and port < 65534:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
            return port
    return free_port(socket.SOCK_DGRAM)
