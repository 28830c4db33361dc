"""Round trips of every wire format, both ways.

build(parse(x)) == x: the raw packets are assembled here with struct and the
plain checksum loop, independently of the builders under test. parse(build(r))
== r: representations are generated field by field.
"""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.wire.arp import ArpPacket
from simtcp.wire.checksum import reference_checksum
from simtcp.wire.ethernet import EthernetFrame
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import Ipv4Packet
from simtcp.wire.tcp import (
    EndOfOptionList,
    FastOpenOption,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpOption,
    TcpSegment,
    TimestampsOption,
    UnknownOption,
    WindowScaleOption,
    build_options,
    parse_options,
)
from simtcp.wire.udp import UdpDatagram

SETTINGS = settings(max_examples=150, deadline=None)

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
macs = st.binary(min_size=6, max_size=6)
payloads = st.binary(max_size=300)


def _pseudo(source: int, destination: int, protocol: int, length: int) -> bytes:
    return struct.pack("!IIBBH", source, destination, 0, protocol, length)


def _fill_checksum(raw: bytes, at: int, prefix: bytes = b"") -> bytes:
    checksum = reference_checksum(prefix + raw)
    return raw[:at] + checksum.to_bytes(2, "big") + raw[at + 2 :]


# --- TCP options: raw encodings and representations ------------------------


def _raw_length(option: TcpOption) -> int:
    if isinstance(option, NopOption):
        return 1
    if isinstance(option, MssOption):
        return 4
    if isinstance(option, WindowScaleOption):
        return 3
    if isinstance(option, SackPermittedOption):
        return 2
    if isinstance(option, TimestampsOption):
        return 10
    if isinstance(option, SackOption):
        return 2 + 8 * len(option.blocks)
    if isinstance(option, EndOfOptionList):
        return 1 + len(option.padding)
    if isinstance(option, FastOpenOption):
        return 2 + len(option.cookie) + (2 if option.experimental else 0)
    return 2 + len(option.data)


def _fast_open_cookie_size(size: int) -> bool:
    return size == 0 or (4 <= size <= 16 and size % 2 == 0)


def _parses_as_typed(kind: int, data: bytes) -> bool:
    size = len(data)
    if kind == 5:
        return size > 0 and size % 8 == 0
    if kind == 34:  # Fast Open, RFC 7413 §4.1.1
        return _fast_open_cookie_size(size)
    if kind == 254:  # the experimental Fast Open option, ExID 0xF989 (RFC 6994)
        return data[:2] == b"\xf9\x89" and _fast_open_cookie_size(size - 2)
    return (kind, size) in {(2, 2), (3, 1), (4, 0), (8, 8)}


unknown_options = st.builds(UnknownOption, st.integers(2, 255), st.binary(max_size=12)).filter(
    lambda option: not _parses_as_typed(option.kind, option.data)
)

fast_open_cookies = st.one_of(
    st.just(b""),
    st.integers(2, 8).flatmap(lambda half: st.binary(min_size=2 * half, max_size=2 * half)),
)

sack_blocks = st.lists(st.tuples(u32, u32), min_size=1, max_size=4).map(tuple)

single_options: st.SearchStrategy[TcpOption] = st.one_of(
    st.just(NopOption()),
    st.builds(MssOption, u16),
    st.builds(WindowScaleOption, u8),
    st.just(SackPermittedOption()),
    st.builds(TimestampsOption, u32, u32),
    st.builds(SackOption, sack_blocks),
    st.builds(FastOpenOption, fast_open_cookies, st.booleans()),
    unknown_options,
)


@st.composite
def option_lists(draw: st.DrawFn) -> tuple[TcpOption, ...]:
    """Options whose encoding is a multiple of 4 and at most 40 bytes, so build adds nothing."""
    options: list[TcpOption] = []
    used = 0
    for option in draw(st.lists(single_options, max_size=8)):
        if used + _raw_length(option) <= 40:
            options.append(option)
            used += _raw_length(option)
    gap = -used % 4
    if gap and draw(st.booleans()):
        options.extend([NopOption()] * gap)
    elif gap or (used < 40 and draw(st.booleans())):
        padding = (gap or 4) - 1
        options.append(EndOfOptionList(draw(st.binary(min_size=padding, max_size=padding))))
    return tuple(options)


# --- representations --------------------------------------------------------

ethernet_frames = st.builds(EthernetFrame, macs, macs, u16, payloads)
arp_packets = st.builds(ArpPacket, u16, macs, u32, macs, u32)
ipv4_options = st.integers(0, 10).flatmap(
    lambda words: st.binary(min_size=4 * words, max_size=4 * words)
)
ipv4_packets = st.builds(
    Ipv4Packet,
    source=u32,
    destination=u32,
    protocol=u8,
    payload=payloads,
    ttl=u8,
    identification=u16,
    dont_fragment=st.booleans(),
    more_fragments=st.booleans(),
    fragment_offset=st.integers(0, 0x1FFF).map(lambda blocks: blocks * 8),
    tos=u8,
    options=ipv4_options,
    reserved_flag=st.booleans(),
)
icmp_messages = st.builds(IcmpMessage, u8, u8, u32, payloads)
udp_datagrams = st.builds(UdpDatagram, u16, u16, payloads)
tcp_segments = st.builds(
    TcpSegment,
    source_port=u16,
    destination_port=u16,
    seq=u32,
    ack=u32,
    flags=u8,
    window=u16,
    options=option_lists(),
    payload=payloads,
    urgent_pointer=u16,
    reserved=st.integers(0, 15),
)


@SETTINGS
@given(ethernet_frames)
def test_ethernet_parse_of_build(frame: EthernetFrame) -> None:
    assert EthernetFrame.parse(frame.build()) == frame


@SETTINGS
@given(arp_packets, st.binary(max_size=18))
def test_arp_parse_of_build(packet: ArpPacket, padding: bytes) -> None:
    assert ArpPacket.parse(packet.build() + padding) == packet


@SETTINGS
@given(ipv4_packets, st.binary(max_size=8))
def test_ipv4_parse_of_build(packet: Ipv4Packet, padding: bytes) -> None:
    raw = packet.build()
    parsed = Ipv4Packet.parse(raw + padding)
    assert parsed == packet
    assert parsed.checksum == int.from_bytes(raw[10:12], "big")
    assert reference_checksum(raw[: packet.header_length]) == 0


@SETTINGS
@given(icmp_messages)
def test_icmp_parse_of_build(message: IcmpMessage) -> None:
    raw = message.build()
    assert reference_checksum(raw) == 0
    assert IcmpMessage.parse(raw) == message


@SETTINGS
@given(udp_datagrams, u32, u32, st.booleans())
def test_udp_parse_of_build(
    datagram: UdpDatagram, source: int, destination: int, with_checksum: bool
) -> None:
    raw = datagram.build(source, destination, with_checksum=with_checksum)
    parsed = UdpDatagram.parse(raw, source=source, destination=destination)
    assert parsed == datagram
    if with_checksum:
        assert parsed.checksum != 0
        assert reference_checksum(_pseudo(source, destination, 17, len(raw)) + raw) == 0
    else:
        assert parsed.checksum == 0


@SETTINGS
@given(tcp_segments, u32, u32)
def test_tcp_parse_of_build(segment: TcpSegment, source: int, destination: int) -> None:
    raw = segment.build(source, destination)
    assert reference_checksum(_pseudo(source, destination, 6, len(raw)) + raw) == 0
    parsed = TcpSegment.parse(raw, source=source, destination=destination)
    assert parsed == segment
    assert parse_options(build_options(segment.options)) == segment.options


@SETTINGS
@given(
    st.lists(single_options, max_size=6).filter(
        lambda options: sum(map(_raw_length, options)) <= 40
    )
)
def test_unaligned_options_gain_only_zero_padding(options: list[TcpOption]) -> None:
    raw = build_options(options)
    unpadded = sum(map(_raw_length, options))
    assert len(raw) == unpadded + (-unpadded % 4)
    assert raw[unpadded:] == bytes(len(raw) - unpadded)
    parsed = parse_options(raw)
    assert parsed[: len(options)] == tuple(options)
    padding = len(raw) - unpadded
    assert parsed[len(options) :] == ((EndOfOptionList(bytes(padding - 1)),) if padding else ())


# --- raw packets assembled here: build(parse(x)) == x ----------------------


@SETTINGS
@given(macs, macs, u16, payloads)
def test_ethernet_build_of_parse(
    destination: bytes, source: bytes, ethertype: int, payload: bytes
) -> None:
    raw = destination + source + struct.pack("!H", ethertype) + payload
    assert EthernetFrame.parse(raw).build() == raw
    assert EthernetFrame.parse(memoryview(b"xx" + raw)[2:]).build() == raw


@SETTINGS
@given(u16, macs, u32, macs, u32)
def test_arp_build_of_parse(
    operation: int, sender_mac: bytes, sender_ip: int, target_mac: bytes, target_ip: int
) -> None:
    raw = struct.pack(
        "!HHBBH6sI6sI", 1, 0x0800, 6, 4, operation, sender_mac, sender_ip, target_mac, target_ip
    )
    assert ArpPacket.parse(raw).build() == raw


@st.composite
def raw_ipv4(draw: st.DrawFn) -> bytes:
    options = draw(ipv4_options)
    payload = draw(payloads)
    header = (
        struct.pack(
            "!BBHHHBBHII",
            0x40 | (5 + len(options) // 4),
            draw(u8),
            20 + len(options) + len(payload),
            draw(u16),
            draw(u16),
            draw(u8),
            draw(u8),
            0,
            draw(u32),
            draw(u32),
        )
        + options
    )
    return _fill_checksum(header, 10) + payload


@SETTINGS
@given(raw_ipv4())
def test_ipv4_build_of_parse(raw: bytes) -> None:
    assert Ipv4Packet.parse(raw).build() == raw


@SETTINGS
@given(u8, u8, u32, payloads)
def test_icmp_build_of_parse(icmp_type: int, code: int, rest: int, payload: bytes) -> None:
    raw = _fill_checksum(struct.pack("!BBHI", icmp_type, code, 0, rest) + payload, 2)
    assert IcmpMessage.parse(raw).build() == raw


@SETTINGS
@given(u16, u16, payloads, u32, u32, st.booleans())
def test_udp_build_of_parse(
    source_port: int,
    destination_port: int,
    payload: bytes,
    source: int,
    destination: int,
    with_checksum: bool,
) -> None:
    raw = struct.pack("!HHHH", source_port, destination_port, 8 + len(payload), 0) + payload
    if with_checksum:
        pseudo = _pseudo(source, destination, 17, len(raw))
        checksum = reference_checksum(pseudo + raw) or 0xFFFF
        raw = raw[:6] + checksum.to_bytes(2, "big") + raw[8:]
    parsed = UdpDatagram.parse(raw, source=source, destination=destination)
    assert parsed.build(source, destination, with_checksum=parsed.checksum != 0) == raw


@st.composite
def raw_option_areas(draw: st.DrawFn) -> bytes:
    """Option bytes as a sender might lay them out, including unknown kinds and padding."""
    encodings = draw(
        st.lists(
            st.one_of(
                st.just(b"\x01"),
                u16.map(lambda mss: struct.pack("!BBH", 2, 4, mss)),
                u8.map(lambda shift: bytes((3, 3, shift))),
                st.just(b"\x04\x02"),
                st.tuples(u32, u32).map(lambda pair: struct.pack("!BBII", 8, 10, *pair)),
                sack_blocks.map(
                    lambda blocks: (
                        bytes((5, 2 + 8 * len(blocks)))
                        + b"".join(struct.pack("!II", *block) for block in blocks)
                    )
                ),
                st.tuples(st.integers(2, 255), st.binary(max_size=12)).map(
                    lambda pair: bytes((pair[0], 2 + len(pair[1]))) + pair[1]
                ),
            ),
            max_size=8,
        )
    )
    area = b""
    for encoding in encodings:
        if len(area) + len(encoding) <= 40:
            area += encoding
    gap = -len(area) % 4
    if gap or (len(area) < 40 and draw(st.booleans())):
        # EOL, then anything up to the data offset: receivers ignore it, we keep it.
        padding = (gap or 4) - 1
        area += b"\x00" + draw(st.binary(min_size=padding, max_size=padding))
    return area


@st.composite
def raw_tcp(draw: st.DrawFn) -> tuple[bytes, int, int]:
    options = draw(raw_option_areas())
    source, destination = draw(u32), draw(u32)
    header = (
        struct.pack(
            "!HHIIBBHHH",
            draw(u16),
            draw(u16),
            draw(u32),
            draw(u32),
            (5 + len(options) // 4) << 4 | draw(st.integers(0, 15)),
            draw(u8),
            draw(u16),
            0,
            draw(u16),
        )
        + options
    )
    segment = header + draw(payloads)
    pseudo = _pseudo(source, destination, 6, len(segment))
    return _fill_checksum(segment, 16, pseudo), source, destination


@SETTINGS
@given(raw_tcp())
def test_tcp_build_of_parse(case: tuple[bytes, int, int]) -> None:
    raw, source, destination = case
    parsed = TcpSegment.parse(raw, source=source, destination=destination)
    assert parsed.build(source, destination) == raw
    assert TcpSegment.parse(bytearray(raw)) == parsed
