"""The network's garbage is data: every parser returns or raises ParseError, nothing else.

Arbitrary bytes mostly die at the first length check, so valid packets are also
cut, flipped and spliced to reach the checks further in.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.errors import DropReason, ParseError
from simtcp.wire.arp import ArpPacket
from simtcp.wire.ethernet import ETHERTYPE_IPV4, EthernetFrame
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, PROTOCOL_UDP, Ipv4Packet
from simtcp.wire.pcap import PcapWriter, read_pcap
from simtcp.wire.tcp import (
    ACK,
    SYN,
    MssOption,
    NopOption,
    SackOption,
    SackPermittedOption,
    TcpSegment,
    TimestampsOption,
    WindowScaleOption,
    parse_options,
)
from simtcp.wire.udp import UdpDatagram

SETTINGS = settings(max_examples=300, deadline=None)
SOURCE = 0x0A000002
DESTINATION = 0x0A000001


def _returns_or_parse_error(parse: Callable[..., object], *args: object, **kwargs: object) -> bool:
    """True when ``parse`` returned; ParseError is allowed, any other exception escapes."""
    try:
        parse(*args, **kwargs)
    except ParseError as error:
        assert isinstance(error.reason, DropReason)
        assert isinstance(error, ValueError)
        return False
    return True


def _read_all(data: bytes) -> list[tuple[int, bytes]]:
    return list(read_pcap(io.BytesIO(data)))


def _every_parser(data: bytes) -> None:
    addresses = {"source": SOURCE, "destination": DESTINATION}
    for view in (data, memoryview(data)):
        _returns_or_parse_error(EthernetFrame.parse, view)
        _returns_or_parse_error(ArpPacket.parse, view)
        _returns_or_parse_error(Ipv4Packet.parse, view)
        _returns_or_parse_error(Ipv4Packet.parse, view, verify_checksum=False)
        _returns_or_parse_error(IcmpMessage.parse, view)
        _returns_or_parse_error(IcmpMessage.parse, view, verify_checksum=False)
        _returns_or_parse_error(UdpDatagram.parse, view)
        _returns_or_parse_error(UdpDatagram.parse, view, **addresses)
        _returns_or_parse_error(TcpSegment.parse, view)
        _returns_or_parse_error(TcpSegment.parse, view, **addresses)
    _returns_or_parse_error(parse_options, data)
    _returns_or_parse_error(_read_all, data)


def _dissect(frame: bytes) -> None:
    """What a stack does with a frame: each layer parses what the one below handed up."""
    ethernet = EthernetFrame.parse(frame)
    if ethernet.ethertype != ETHERTYPE_IPV4:
        ArpPacket.parse(ethernet.payload)
        return
    ip = Ipv4Packet.parse(ethernet.payload)
    if ip.protocol == PROTOCOL_ICMP:
        message = IcmpMessage.parse(ip.payload)
        if message.is_error:
            Ipv4Packet.parse(message.payload, verify_checksum=False)
    elif ip.protocol == PROTOCOL_UDP:
        UdpDatagram.parse(ip.payload, source=ip.source, destination=ip.destination)
    else:
        TcpSegment.parse(ip.payload, source=ip.source, destination=ip.destination)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(data: bytes) -> None:
    _every_parser(data)


def test_zero_length_input_is_a_parse_error_everywhere() -> None:
    parsers: list[Callable[[bytes], object]] = [
        EthernetFrame.parse,
        ArpPacket.parse,
        Ipv4Packet.parse,
        IcmpMessage.parse,
        UdpDatagram.parse,
        TcpSegment.parse,
        _read_all,
    ]
    for parse in parsers:
        assert not _returns_or_parse_error(parse, b""), parse
    assert parse_options(b"") == ()


@SETTINGS
@given(st.binary(max_size=44))
def test_arbitrary_option_areas(data: bytes) -> None:
    _returns_or_parse_error(parse_options, data)


# --- valid packets, then damaged ---------------------------------------------

_OPTIONS = (
    MssOption(1460),
    SackPermittedOption(),
    TimestampsOption(7, 0),
    NopOption(),
    WindowScaleOption(7),
    NopOption(),
    NopOption(),
    SackOption(((1, 2),)),
)


def _frame(kind: int, payload: bytes, error: bool) -> bytes:
    if kind == 0:
        return EthernetFrame(
            b"\xff" * 6,
            b"\x02" * 6,
            0x0806,
            ArpPacket(1, b"\x02" * 6, SOURCE, bytes(6), DESTINATION).build(),
        ).build()
    if kind == PROTOCOL_ICMP:
        inner = Ipv4Packet(
            DESTINATION, SOURCE, PROTOCOL_UDP, payload[:8], options=b"\x01" * 4
        ).build()
        message = (
            IcmpMessage.destination_unreachable(3, inner)
            if error
            else IcmpMessage.echo_request(1, 2, payload)
        )
        body = message.build()
    elif kind == PROTOCOL_UDP:
        body = UdpDatagram(1000, 53, payload).build(SOURCE, DESTINATION)
    else:
        segment = TcpSegment(
            40000, 80, 1, 2, SYN | ACK, 65535, _OPTIONS[: 6 if error else 8], payload
        )
        body = segment.build(SOURCE, DESTINATION)
    ip = Ipv4Packet(SOURCE, DESTINATION, kind, body, options=b"\x94\x04\x00\x00" if error else b"")
    return EthernetFrame(b"\x02" * 6, b"\x04" * 6, ETHERTYPE_IPV4, ip.build()).build()


valid_frames = st.builds(
    _frame,
    st.sampled_from([0, PROTOCOL_ICMP, PROTOCOL_UDP, PROTOCOL_TCP]),
    st.binary(max_size=64),
    st.booleans(),
)


@st.composite
def damaged(draw: st.DrawFn, frames: st.SearchStrategy[bytes]) -> bytes:
    frame = bytearray(draw(frames))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "truncate", "insert", "extend"]))
        position = draw(st.integers(0, max(len(frame) - 1, 0)))
        if action == "flip" and frame:
            frame[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "set" and frame:
            frame[position] = draw(
                st.sampled_from([0x00, 0x01, 0x02, 0x05, 0x0F, 0x45, 0x4F, 0x50, 0xF0, 0xFF])
            )
        elif action == "truncate":
            del frame[position:]
        elif action == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=4))
        else:
            frame += draw(st.binary(min_size=1, max_size=8))
    return bytes(frame)


@SETTINGS
@given(valid_frames)
def test_valid_frames_dissect(frame: bytes) -> None:
    _dissect(frame)


@settings(max_examples=600, deadline=None)
@given(damaged(valid_frames))
def test_damaged_frames(frame: bytes) -> None:
    _returns_or_parse_error(_dissect, frame)
    _every_parser(frame[14:])
    _every_parser(frame[34:])


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 2**40), st.binary(max_size=80)), max_size=4), st.data())
def test_damaged_pcap_files(records: list[tuple[int, bytes]], data: st.DataObject) -> None:
    stream = io.BytesIO()
    writer = PcapWriter(stream)
    for timestamp_us, frame in records:
        writer.write(timestamp_us, frame)
    raw = stream.getvalue()
    assert list(read_pcap(io.BytesIO(raw))) == records
    damaged_raw = data.draw(damaged(st.just(raw)))
    _returns_or_parse_error(_read_all, damaged_raw)


def test_big_endian_huge_record_length_is_a_parse_error() -> None:
    raw = (
        struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        + struct.pack(">IIII", 0, 0, 0xFFFFFFFF, 0xFFFFFFFF)
        + b"short"
    )
    assert not _returns_or_parse_error(_read_all, raw)
