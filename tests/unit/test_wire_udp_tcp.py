"""UDP and TCP against segments captured from Linux over a veth pair.

The sender's checksum offload leaves TCP and UDP checksums partial in a capture;
the fixtures carry the completed values (0x5f04 and 0x87aa, as tcpdump computes).
"""

from __future__ import annotations

import pytest

from simtcp.errors import DropReason, ParseError
from simtcp.wire.checksum import internet_checksum, pseudo_header_sum
from simtcp.wire.ipv4 import PROTOCOL_TCP, PROTOCOL_UDP, Ipv4Packet
from simtcp.wire.tcp import (
    ACK,
    FIN,
    PSH,
    RST,
    SYN,
    EndOfOptionList,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpSegment,
    TimestampsOption,
    UnknownOption,
    WindowScaleOption,
    build_options,
    flags_to_str,
    parse_options,
)
from simtcp.wire.udp import UdpDatagram

HOST_A = 0x0A000002
HOST_B = 0x0A000001

# `nc -z 10.0.0.1 80` from 10.0.0.2: Linux's SYN, options as it orders them.
SYN_IP_HEADER = bytes.fromhex("4500003c4f4740004006d7720a0000020a000001")
SYN_SEGMENT = bytes.fromhex(
    "9840 0050 07e8509c 00000000 a0 02 faf0 5f04 0000020405b4 0402 080a739a755600000000 01 03030a"
)
SYN_OPTIONS = (
    MssOption(1460),
    SackPermittedOption(),
    TimestampsOption(1939502422, 0),
    NopOption(),
    WindowScaleOption(10),
)
# The closed port's answer: RST|ACK, no options.
RST_SEGMENT = bytes.fromhex("0050 9840 00000000 07e8509d 50 14 0000 aab8 0000")

# `echo hi | nc -u 10.0.0.1 5353`.
UDP_DATAGRAM = bytes.fromhex("dcd8 14e9 000b 87aa 68690a")


def test_linux_syn_fields() -> None:
    segment = TcpSegment.parse(SYN_SEGMENT, source=HOST_A, destination=HOST_B)
    assert segment == TcpSegment(
        source_port=38976,
        destination_port=80,
        seq=132665500,
        ack=0,
        flags=SYN,
        window=64240,
        options=SYN_OPTIONS,
        payload=b"",
    )
    assert segment.checksum == 0x5F04
    assert (segment.mss, segment.window_scale, segment.sack_permitted) == (1460, 10, True)
    assert segment.timestamps == TimestampsOption(1939502422, 0)
    assert segment.sack_blocks == ()
    assert segment.segment_length == 1
    assert flags_to_str(segment.flags) == "S"


def test_linux_syn_rebuilds_byte_for_byte() -> None:
    segment = TcpSegment.parse(SYN_SEGMENT)
    assert segment.build(HOST_A, HOST_B) == SYN_SEGMENT
    fresh = TcpSegment(38976, 80, 132665500, 0, SYN, 64240, SYN_OPTIONS)
    assert fresh.build(HOST_A, HOST_B) == SYN_SEGMENT
    ip = Ipv4Packet(
        HOST_A,
        HOST_B,
        PROTOCOL_TCP,
        fresh.build(HOST_A, HOST_B),
        identification=0x4F47,
        dont_fragment=True,
    )
    assert ip.build() == SYN_IP_HEADER + SYN_SEGMENT


def test_rst_ack() -> None:
    segment = TcpSegment.parse(RST_SEGMENT, source=HOST_B, destination=HOST_A)
    assert segment == TcpSegment(80, 38976, 0, 132665501, RST | ACK, 0)
    assert segment.build(HOST_B, HOST_A) == RST_SEGMENT
    assert flags_to_str(segment.flags) == "R."


def test_checksum_offload_build_leaves_zero() -> None:
    raw = TcpSegment(38976, 80, 132665500, 0, SYN, 64240, SYN_OPTIONS).build(
        HOST_A, HOST_B, with_checksum=False
    )
    assert raw[16:18] == b"\x00\x00"
    assert raw[:16] + b"\x5f\x04" + raw[18:] == SYN_SEGMENT


def test_tcp_bad_checksum() -> None:
    corrupted = bytearray(SYN_SEGMENT)
    corrupted[4] ^= 0x80
    with pytest.raises(ParseError) as info:
        TcpSegment.parse(corrupted, source=HOST_A, destination=HOST_B)
    assert info.value.reason is DropReason.BAD_CHECKSUM
    with pytest.raises(ParseError):
        TcpSegment.parse(SYN_SEGMENT, source=HOST_A + 0x100, destination=HOST_B)
    assert TcpSegment.parse(corrupted).seq == 132665500 ^ 0x80000000


def test_data_segment_with_sack_and_odd_payload() -> None:
    segment = TcpSegment(
        5000,
        80,
        0xFFFFFFF0,
        12345,
        PSH | ACK | FIN,
        512,
        options=(
            NopOption(),
            NopOption(),
            TimestampsOption(1, 2),
            NopOption(),
            NopOption(),
            SackOption(((100, 200), (300, 0xFFFFFFFF))),
        ),
        payload=b"hello",
    )
    raw = segment.build(HOST_A, HOST_B)
    assert raw[12] >> 4 == (20 + 12 + 20) // 4
    parsed = TcpSegment.parse(raw, source=HOST_A, destination=HOST_B)
    assert parsed == segment
    assert parsed.sack_blocks == ((100, 200), (300, 0xFFFFFFFF))
    assert parsed.segment_length == 6
    assert "[FP.]" in parsed.describe()


def test_reserved_bits_and_urgent_pointer_round_trip() -> None:
    segment = TcpSegment(1, 2, 3, 4, 0xFF, 5, urgent_pointer=0xABCD, reserved=0x0F)
    raw = segment.build(HOST_A, HOST_B)
    assert raw[12] == 0x5F
    assert TcpSegment.parse(raw, source=HOST_A, destination=HOST_B) == segment
    assert flags_to_str(0) == "none"


def test_options_area_with_eol_and_padding() -> None:
    area = bytes.fromhex("020405b4 03030700")
    options = parse_options(area)
    assert options == (MssOption(1460), WindowScaleOption(7), EndOfOptionList(b""))
    assert build_options(options) == area
    assert build_options((MssOption(1460), WindowScaleOption(7))) == area
    trailing = bytes.fromhex("01 00 ab cd")
    assert parse_options(trailing) == (NopOption(), EndOfOptionList(b"\xab\xcd"))
    assert build_options(parse_options(trailing)) == trailing


def test_unknown_and_misshapen_options_kept_raw() -> None:
    area = bytes.fromhex("1e 06 01020304 02 03 07 05 02 08 03 aa 01 00")
    options = parse_options(area)
    assert options == (
        UnknownOption(30, bytes.fromhex("01020304")),
        UnknownOption(2, b"\x07"),  # an MSS option of length 3
        UnknownOption(5, b""),  # SACK with no blocks
        UnknownOption(8, b"\xaa"),  # timestamps of length 3
        NopOption(),
        EndOfOptionList(b""),
    )
    assert build_options(options) == area


@pytest.mark.parametrize(
    "area",
    ["02", "0204 05", "0201 0000", "0200 0000", "01 01 08 0a 0000", "1e ff 00 00"],
    ids=["no-length", "runs-off", "length-1", "length-0", "ts-runs-off", "unknown-runs-off"],
)
def test_malformed_options(area: str) -> None:
    with pytest.raises(ParseError):
        parse_options(bytes.fromhex(area))


def test_too_many_options_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        build_options([TimestampsOption(0, 0)] * 4 + [NopOption()])


def _with_offset(segment: bytes, offset_byte: int) -> bytes:
    return segment[:12] + bytes([offset_byte]) + segment[13:]


@pytest.mark.parametrize("data_offset", [0, 1, 4, 11, 15])
def test_bad_data_offset(data_offset: int) -> None:
    # The SYN is 40 bytes: offsets below 5 or above 10 words are malformed.
    with pytest.raises(ParseError) as info:
        TcpSegment.parse(_with_offset(SYN_SEGMENT, data_offset << 4))
    assert info.value.reason is DropReason.MALFORMED


@pytest.mark.parametrize("length", [0, 1, 19])
def test_truncated_tcp(length: int) -> None:
    with pytest.raises(ParseError) as info:
        TcpSegment.parse(SYN_SEGMENT[:length], source=HOST_A, destination=HOST_B)
    assert info.value.reason is DropReason.TRUNCATED


def test_options_running_past_the_data_offset() -> None:
    # Data offset 8 cuts the timestamps option in half.
    with pytest.raises(ParseError):
        TcpSegment.parse(_with_offset(SYN_SEGMENT, 0x80))


def test_linux_udp_datagram() -> None:
    datagram = UdpDatagram.parse(UDP_DATAGRAM, source=HOST_A, destination=HOST_B)
    assert datagram == UdpDatagram(56536, 5353, b"hi\n")
    assert datagram.checksum == 0x87AA
    assert datagram.build(HOST_A, HOST_B) == UDP_DATAGRAM
    ip = Ipv4Packet(
        HOST_A,
        HOST_B,
        PROTOCOL_UDP,
        datagram.build(HOST_A, HOST_B),
        identification=0xBEB4,
        dont_fragment=True,
    )
    assert ip.build() == bytes.fromhex("4500001fbeb44000401168170a0000020a000001") + UDP_DATAGRAM


def test_udp_checksum_zero_means_none() -> None:
    raw = UdpDatagram(56536, 5353, b"hi\n").build(HOST_A, HOST_B, with_checksum=False)
    assert raw == UDP_DATAGRAM[:6] + b"\x00\x00" + UDP_DATAGRAM[8:]
    assert UdpDatagram.parse(raw, source=HOST_A + 9, destination=HOST_B).checksum == 0


def test_udp_computed_zero_is_sent_as_all_ones() -> None:
    # Choose the payload word so that the checksum over everything comes out 0.
    header_sum = pseudo_header_sum(HOST_A, HOST_B, PROTOCOL_UDP, 10) + 1 + 2 + 10
    word = 0xFFFF - (header_sum % 0xFFFF)
    raw = UdpDatagram(1, 2, word.to_bytes(2, "big")).build(HOST_A, HOST_B)
    assert raw[6:8] == b"\xff\xff"
    assert UdpDatagram.parse(raw, source=HOST_A, destination=HOST_B).checksum == 0xFFFF


def test_udp_malformed() -> None:
    for length in (0, 7):
        with pytest.raises(ParseError) as info:
            UdpDatagram.parse(UDP_DATAGRAM[:length])
        assert info.value.reason is DropReason.TRUNCATED
    for length_field in (b"\x00\x07", b"\x00\x0c", b"\xff\xff"):
        with pytest.raises(ParseError):
            UdpDatagram.parse(UDP_DATAGRAM[:4] + length_field + UDP_DATAGRAM[6:])
    corrupted = UDP_DATAGRAM[:-1] + b"\x0b"
    with pytest.raises(ParseError) as info:
        UdpDatagram.parse(corrupted, source=HOST_A, destination=HOST_B)
    assert info.value.reason is DropReason.BAD_CHECKSUM


def test_udp_length_field_trims_trailing_bytes() -> None:
    datagram = UdpDatagram.parse(UDP_DATAGRAM + b"pad", source=HOST_A, destination=HOST_B)
    assert bytes(datagram.payload) == b"hi\n"


def test_udp_checksum_matches_pseudo_header_definition() -> None:
    pseudo = (
        HOST_A.to_bytes(4, "big")
        + HOST_B.to_bytes(4, "big")
        + bytes([0, PROTOCOL_UDP])
        + len(UDP_DATAGRAM).to_bytes(2, "big")
    )
    assert internet_checksum(pseudo + UDP_DATAGRAM) == 0
