"""IPv4 and ICMP against packets captured from Linux over a veth pair.

10.0.0.2 (52:54:00:12:34:56) ran ``ping -c1``, ``ping -c1 -R`` and sent a UDP
datagram to a closed port of 10.0.0.1, which answered port unreachable.
"""

from __future__ import annotations

import pytest

from simtcp.errors import DropReason, ParseError
from simtcp.wire.checksum import internet_checksum
from simtcp.wire.ethernet import EthernetFrame
from simtcp.wire.icmp import (
    CODE_FRAGMENTATION_NEEDED,
    CODE_PORT_UNREACHABLE,
    CODE_TTL_EXCEEDED,
    TYPE_DESTINATION_UNREACHABLE,
    TYPE_ECHO_REPLY,
    TYPE_ECHO_REQUEST,
    TYPE_PARAMETER_PROBLEM,
    TYPE_TIME_EXCEEDED,
    IcmpMessage,
)
from simtcp.wire.ipv4 import (
    PROTOCOL_ICMP,
    PROTOCOL_UDP,
    Ipv4Packet,
    ip_from_str,
    ip_to_str,
    prefix_from_str,
    prefix_mask,
)
from simtcp.wire.udp import UdpDatagram

HOST_A = 0x0A000002
HOST_B = 0x0A000001
# What iputils ping puts after the ICMP header: a struct timeval, then 0x10..0x37.
PING_DATA = bytes.fromhex("0307076b0000000071cd090000000000") + bytes(range(0x10, 0x38))

ECHO_REQUEST = bytes.fromhex("45000054fa3f400040012c670a0000020a0000010800a1ab12410001") + PING_DATA
ECHO_REPLY = bytes.fromhex("4500005497bb00004001ceeb0a0000010a0000020000a9ab12410001") + PING_DATA

# ``ping -R``: IHL 15, a NOP then a 39-byte record-route option with one slot filled.
RECORD_ROUTE_OPTIONS = bytes.fromhex("01 07 27 08 0a000002") + bytes(32)
RECORD_ROUTE_REQUEST = (
    bytes.fromhex("4f00007cfa4040004001f02c0a0000020a000001")
    + RECORD_ROUTE_OPTIONS
    + bytes.fromhex("0800f09c12420001")
    + bytes.fromhex("0307076b0000000022db090000000000")
    + bytes(range(0x10, 0x38))
)

# The kernel quotes the whole offending datagram, UDP checksum still partial as the
# sender's checksum offload left it (it is quoted, not verified).
QUOTED_UDP = bytes.fromhex("4500001fbeb44000401168170a0000020a000001 dcd814e9000b141f 68690a")
PORT_UNREACHABLE = (
    bytes.fromhex("45c0003b97be00004001ce410a0000010a000002030384a700000000") + QUOTED_UDP
)


def test_echo_request_ip_header_fields() -> None:
    packet = Ipv4Packet.parse(ECHO_REQUEST)
    assert packet == Ipv4Packet(
        source=HOST_A,
        destination=HOST_B,
        protocol=PROTOCOL_ICMP,
        payload=ECHO_REQUEST[20:],
        ttl=64,
        identification=0xFA3F,
        dont_fragment=True,
    )
    assert packet.checksum == 0x2C67
    assert packet.header_length == 20
    assert not packet.is_fragment
    assert packet.build() == ECHO_REQUEST


def test_echo_request_as_linux_ping_sends_it() -> None:
    message = IcmpMessage.parse(ECHO_REQUEST[20:])
    assert message == IcmpMessage.echo_request(0x1241, 1, PING_DATA)
    assert (message.icmp_type, message.code) == (TYPE_ECHO_REQUEST, 0)
    assert (message.identifier, message.sequence) == (0x1241, 1)
    assert message.checksum == 0xA1AB
    assert not message.is_error
    assert message.build() == ECHO_REQUEST[20:]


def test_echo_reply_built_from_scratch() -> None:
    icmp = IcmpMessage.echo_reply(0x1241, 1, PING_DATA).build()
    packet = Ipv4Packet(HOST_B, HOST_A, PROTOCOL_ICMP, icmp, identification=0x97BB)
    assert packet.build() == ECHO_REPLY
    assert IcmpMessage.parse(ECHO_REPLY[20:]).icmp_type == TYPE_ECHO_REPLY


def test_ip_options_are_carried_through() -> None:
    packet = Ipv4Packet.parse(RECORD_ROUTE_REQUEST)
    assert packet.header_length == 60
    assert packet.options == RECORD_ROUTE_OPTIONS
    assert packet.identification == 0xFA40
    assert packet.build() == RECORD_ROUTE_REQUEST
    assert IcmpMessage.parse(packet.payload).sequence == 1


def test_port_unreachable_quotes_the_datagram() -> None:
    packet = Ipv4Packet.parse(PORT_UNREACHABLE)
    assert packet.tos == 0xC0
    message = IcmpMessage.parse(packet.payload)
    assert (message.icmp_type, message.code) == (
        TYPE_DESTINATION_UNREACHABLE,
        CODE_PORT_UNREACHABLE,
    )
    assert message.is_error
    assert bytes(message.payload) == QUOTED_UDP
    quoted = Ipv4Packet.parse(message.payload)
    assert (quoted.source, quoted.destination, quoted.protocol) == (HOST_A, HOST_B, PROTOCOL_UDP)
    datagram = UdpDatagram.parse(quoted.payload)
    assert (datagram.source_port, datagram.destination_port) == (56536, 5353)
    assert bytes(datagram.payload) == b"hi\n"
    rebuilt = IcmpMessage.destination_unreachable(CODE_PORT_UNREACHABLE, QUOTED_UDP)
    assert rebuilt.build() == PORT_UNREACHABLE[20:]
    assert (
        Ipv4Packet(
            HOST_B, HOST_A, PROTOCOL_ICMP, rebuilt.build(), identification=0x97BE, tos=0xC0
        ).build()
        == PORT_UNREACHABLE
    )


def test_error_constructors_fill_the_second_word() -> None:
    mtu = IcmpMessage.destination_unreachable(CODE_FRAGMENTATION_NEEDED, QUOTED_UDP, 1400)
    assert IcmpMessage.parse(mtu.build()).next_hop_mtu == 1400
    assert mtu.build()[4:8] == bytes.fromhex("00000578")
    problem = IcmpMessage.parameter_problem(20, QUOTED_UDP)
    assert problem.build()[:1] == bytes([TYPE_PARAMETER_PROBLEM])
    assert problem.build()[4:8] == bytes.fromhex("14000000")
    assert IcmpMessage.parse(problem.build()).pointer == 20
    exceeded = IcmpMessage.time_exceeded(CODE_TTL_EXCEEDED, QUOTED_UDP)
    assert exceeded.build()[:2] == bytes([TYPE_TIME_EXCEEDED, CODE_TTL_EXCEEDED])
    for message in (mtu, problem, exceeded):
        assert internet_checksum(message.build()) == 0
        assert message.is_error


def test_total_length_decides_the_payload() -> None:
    frame = EthernetFrame.parse(
        bytes.fromhex("525400abcdef5254001234560800") + ECHO_REQUEST[:20] + bytes(46)
    )
    with pytest.raises(ParseError):
        Ipv4Packet.parse(frame.payload)  # total length 84 > 66 bytes present
    padded = ECHO_REQUEST + bytes(6)
    assert bytes(Ipv4Packet.parse(padded).payload) == ECHO_REQUEST[20:]


def test_fragment_fields() -> None:
    packet = Ipv4Packet(
        HOST_A,
        HOST_B,
        PROTOCOL_UDP,
        b"x" * 8,
        identification=7,
        more_fragments=True,
        fragment_offset=1480,
    )
    raw = packet.build()
    assert raw[6:8] == (0x2000 | 185).to_bytes(2, "big")
    parsed = Ipv4Packet.parse(raw)
    assert parsed == packet
    assert parsed.is_fragment
    reserved = Ipv4Packet(HOST_A, HOST_B, PROTOCOL_UDP, reserved_flag=True).build()
    assert reserved[6] == 0x80
    assert Ipv4Packet.parse(reserved).reserved_flag


@pytest.mark.parametrize("length", [0, 1, 19])
def test_truncated_ip_header(length: int) -> None:
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(ECHO_REQUEST[:length])
    assert info.value.reason is DropReason.TRUNCATED


def _with(packet: bytes, offset: int, value: bytes, *, fix_checksum: bool = True) -> bytes:
    raw = bytearray(packet)
    raw[offset : offset + len(value)] = value
    if fix_checksum:
        header_length = min((raw[0] & 0x0F) * 4, len(raw))
        raw[10:12] = b"\x00\x00"
        raw[10:12] = internet_checksum(raw[: max(header_length, 20)]).to_bytes(2, "big")
    return bytes(raw)


@pytest.mark.parametrize(
    "offset, value, reason",
    [
        (0, b"\x65", DropReason.BAD_VERSION),
        (0, b"\x44", DropReason.BAD_HEADER_LENGTH),
        (0, b"\x40", DropReason.BAD_HEADER_LENGTH),
        (2, b"\x00\x13", DropReason.BAD_TOTAL_LENGTH),
        (2, b"\x00\x00", DropReason.BAD_TOTAL_LENGTH),
        (2, b"\x00\x55", DropReason.BAD_TOTAL_LENGTH),
        (2, b"\xff\xff", DropReason.BAD_TOTAL_LENGTH),
    ],
    ids=["version-6", "ihl-4", "ihl-0", "total-19", "total-0", "total-past-end", "total-max"],
)
def test_malformed_ip_header(offset: int, value: bytes, reason: DropReason) -> None:
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(_with(ECHO_REQUEST, offset, value))
    assert info.value.reason is reason


def test_ihl_past_the_end() -> None:
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(_with(ECHO_REQUEST[:24], 0, b"\x47"))  # 28-byte header in 24
    assert info.value.reason is DropReason.BAD_HEADER_LENGTH
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(_with(ECHO_REQUEST[:40], 0, b"\x4f"))
    assert info.value.reason is DropReason.BAD_HEADER_LENGTH


def test_total_length_within_a_longer_header_is_rejected() -> None:
    # IHL 15 (60 bytes) but total length 40: the total cannot end inside the header.
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(_with(RECORD_ROUTE_REQUEST, 2, b"\x00\x28"))
    assert info.value.reason is DropReason.BAD_TOTAL_LENGTH


def test_header_only_datagram_is_valid() -> None:
    raw = _with(ECHO_REQUEST[:20], 2, b"\x00\x14")
    packet = Ipv4Packet.parse(raw)
    assert bytes(packet.payload) == b""
    assert packet.build() == raw


def test_bad_ip_checksum() -> None:
    corrupted = _with(ECHO_REQUEST, 8, b"\x3f", fix_checksum=False)
    with pytest.raises(ParseError) as info:
        Ipv4Packet.parse(corrupted)
    assert info.value.reason is DropReason.BAD_CHECKSUM
    assert Ipv4Packet.parse(corrupted, verify_checksum=False).ttl == 0x3F


def test_icmp_truncated_and_bad_checksum() -> None:
    for length in (0, 4, 7):
        with pytest.raises(ParseError) as info:
            IcmpMessage.parse(ECHO_REQUEST[20 : 20 + length])
        assert info.value.reason is DropReason.TRUNCATED
    corrupted = bytearray(ECHO_REQUEST[20:])
    corrupted[-1] ^= 0x01
    with pytest.raises(ParseError) as info:
        IcmpMessage.parse(corrupted)
    assert info.value.reason is DropReason.BAD_CHECKSUM
    assert IcmpMessage.parse(corrupted, verify_checksum=False).checksum == 0xA1AB


def test_odd_length_icmp_checksum() -> None:
    message = IcmpMessage.echo_request(1, 2, b"abc")
    raw = message.build()
    assert internet_checksum(raw) == 0
    assert IcmpMessage.parse(raw) == message


def test_build_rejects_unrepresentable_headers() -> None:
    for packet in (
        Ipv4Packet(HOST_A, HOST_B, PROTOCOL_UDP, options=b"\x01\x01\x01"),
        Ipv4Packet(HOST_A, HOST_B, PROTOCOL_UDP, options=bytes(44)),
        Ipv4Packet(HOST_A, HOST_B, PROTOCOL_UDP, fragment_offset=12),
        Ipv4Packet(HOST_A, HOST_B, PROTOCOL_UDP, payload=bytes(65516)),
    ):
        with pytest.raises(ValueError):
            packet.build()


def test_address_helpers() -> None:
    assert ip_from_str("10.0.0.1") == HOST_B
    assert ip_to_str(0xC0A80101) == "192.168.1.1"
    assert prefix_from_str("10.1.1.1/24") == (0x0A010101, 24)
    assert prefix_from_str("10.1.1.1") == (0x0A010101, 32)
    assert prefix_mask(24) == 0xFFFFFF00
    assert prefix_mask(0) == 0
    assert prefix_mask(32) == 0xFFFFFFFF
    for bad in ("10.0.0", "10.0.0.256", "a.b.c.d", "1.2.3.4.5", ""):
        with pytest.raises(ValueError):
            ip_from_str(bad)
    with pytest.raises(ValueError):
        prefix_from_str("10.0.0.1/33")
