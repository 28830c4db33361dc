"""Classic pcap: write/read round trip, the exact file layout, and tcpdump reading our files."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from simtcp.errors import ParseError
from simtcp.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, Ipv4Packet
from simtcp.wire.pcap import DEFAULT_SNAPLEN, PcapWriter, read_pcap
from simtcp.wire.tcp import SYN, MssOption, TcpSegment

MAC_A = bytes.fromhex("525400123456")
MAC_B = bytes.fromhex("525400abcdef")
HOST_A = 0x0A000002
HOST_B = 0x0A000001


def _echo_frame() -> bytes:
    icmp = IcmpMessage.echo_request(0x1241, 7, b"simtcp!").build()
    ip = Ipv4Packet(HOST_A, HOST_B, PROTOCOL_ICMP, icmp, identification=1).build()
    return EthernetFrame(MAC_B, MAC_A, ETHERTYPE_IPV4, ip).build()


def _syn_frame() -> bytes:
    tcp = TcpSegment(40000, 80, 1000, 0, SYN, 64240, (MssOption(1460),)).build(HOST_A, HOST_B)
    ip = Ipv4Packet(HOST_A, HOST_B, PROTOCOL_TCP, tcp, dont_fragment=True).build()
    return EthernetFrame(MAC_B, MAC_A, ETHERTYPE_IPV4, ip).build()


def _write(records: list[tuple[int, bytes]], **kwargs: int) -> bytes:
    stream = io.BytesIO()
    writer = PcapWriter(stream, **kwargs)
    for timestamp_us, frame in records:
        writer.write(timestamp_us, frame)
    writer.flush()
    return stream.getvalue()


def test_file_layout() -> None:
    frame = _echo_frame()
    raw = _write([(1_500_000_123, frame)])
    assert struct.unpack("<IHHiIII", raw[:24]) == (
        0xA1B2C3D4,
        2,
        4,
        0,
        0,
        DEFAULT_SNAPLEN,
        1,
    )
    assert struct.unpack("<IIII", raw[24:40]) == (1500, 123, len(frame), len(frame))
    assert raw[40:] == frame


def test_round_trip_keeps_order_timestamps_and_bytes() -> None:
    records = [
        (0, _echo_frame()),
        (999_999, _syn_frame()),
        (1_000_000, b""),
        (2**32 * 1_000_000 - 1, bytes(range(256)) * 6),
    ]
    assert list(read_pcap(io.BytesIO(_write(records)))) == records


def test_snaplen_truncates_but_keeps_the_original_length() -> None:
    frame = _echo_frame()
    raw = _write([(5, frame)], snaplen=20)
    assert struct.unpack("<IIII", raw[24:40]) == (0, 5, 20, len(frame))
    assert list(read_pcap(io.BytesIO(raw))) == [(5, frame[:20])]


def test_big_endian_file_is_read() -> None:
    frame = _syn_frame()
    raw = (
        struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        + struct.pack(">IIII", 7, 250_000, len(frame), len(frame))
        + frame
    )
    assert list(read_pcap(io.BytesIO(raw))) == [(7_250_000, frame)]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\xd4\xc3\xb2\xa1\x02\x00",
        struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1),  # nanosecond pcap
        b"\x0a\x0d\x0d\x0a" + bytes(20),  # pcapng
    ],
    ids=["empty", "short-header", "nanosecond", "pcapng"],
)
def test_bad_file_header(raw: bytes) -> None:
    with pytest.raises(ParseError):
        list(read_pcap(io.BytesIO(raw)))


def test_truncated_records() -> None:
    raw = _write([(1, _echo_frame()), (2, _syn_frame())])
    assert len(list(read_pcap(io.BytesIO(raw)))) == 2
    for cut in (1, 10, 17, len(_syn_frame()) + 15):
        with pytest.raises(ParseError):
            list(read_pcap(io.BytesIO(raw[:-cut])))
    assert list(read_pcap(io.BytesIO(raw[:24]))) == []


def test_tcpdump_reads_our_file(tmp_path: Path) -> None:
    tcpdump = shutil.which("tcpdump")
    if tcpdump is None:
        pytest.skip("tcpdump is not installed")
    path = tmp_path / "simtcp.pcap"
    path.write_bytes(_write([(1_000_000, _echo_frame()), (1_250_000, _syn_frame())]))
    result = subprocess.run(
        [tcpdump, "-r", str(path), "-nn", "-tt", "-v"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "1.000000" in output and "1.250000" in output
    assert "10.0.0.2 > 10.0.0.1: ICMP echo request, id 4673, seq 7, length 15" in output
    assert "10.0.0.2.40000 > 10.0.0.1.80: Flags [S]" in output
    assert "(correct)" in output
    assert "incorrect" not in output and "bad cksum" not in output
    assert "options [mss 1460]" in output
