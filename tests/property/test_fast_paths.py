"""The per-frame fast paths against the slow, clear code they shortcut (the oracles).

- ``TcpSegment.build_header``/``build`` (header words summed as integers, one
  pack) against the original: pack with a zero checksum, then the checksum over
  pseudo-header and bytes;
- ``TcpSegment.build_ipv4_frame`` against ``build_ethernet_header`` + ``Ipv4Packet.build``
  around ``TcpSegment.build``;
- ``parse_options``'s NOP NOP Timestamps shortcut against the general loop;
- ``Stack.send_tcp`` and ``Stack.receive_frame`` (TCP, ICMP echo requests)
  with and without the fast paths (``StackConfig.fast_paths``), on valid and
  damaged frames: the same frames out, the same events, the same counters, the
  same next IP identification.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp import ArpConfig, InterfaceOffload, Stack, StackConfig
from simtcp.wire.arp import OPERATION_REQUEST, ArpPacket
from simtcp.wire.checksum import internet_checksum, ones_complement_sum, pseudo_header_sum
from simtcp.wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ZERO_MAC,
    EthernetFrame,
    build_ethernet_header,
)
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, Ipv4Packet, ip_from_str
from simtcp.wire.tcp import (
    ACK,
    CHECKSUM_FULL,
    CHECKSUM_PARTIAL,
    CHECKSUM_ZERO,
    FIN,
    PSH,
    RST,
    SYN,
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
    parse_options_general,
)

SETTINGS = settings(max_examples=120, deadline=None)

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
STACK_MAC = bytes.fromhex("020000000001")
PEER_MAC = bytes.fromhex("0a0000000002")
STACK = ip_from_str("10.0.0.1")
PEER = ip_from_str("10.0.0.2")
UNRESOLVED = ip_from_str("10.0.0.3")
BEHIND_GATEWAY = ip_from_str("172.16.5.9")
SUBNET_BROADCAST = ip_from_str("10.0.0.255")

option = st.one_of(
    st.just(NopOption()),
    st.builds(MssOption, u16),
    st.builds(WindowScaleOption, st.integers(0, 14)),
    st.just(SackPermittedOption()),
    st.builds(TimestampsOption, u32, u32),
    st.builds(SackOption, st.lists(st.tuples(u32, u32), min_size=1, max_size=3).map(tuple)),
    st.builds(UnknownOption, st.integers(9, 250), st.binary(max_size=6)),
)
option_lists = st.one_of(
    st.just(()),
    st.builds(
        lambda value, echo: (NopOption(), NopOption(), TimestampsOption(value, echo)), u32, u32
    ),
    st.lists(option, max_size=4)
    .map(tuple)
    .filter(lambda options: len(build_options_safe(options)) <= 40),
)
payloads = st.one_of(
    st.binary(max_size=1600),
    st.integers(4000, 9000).map(lambda size: bytes(index * 7 & 0xFF for index in range(size))),
)


def build_options_safe(options: tuple[TcpOption, ...]) -> bytes:
    try:
        return build_options(options)
    except ValueError:
        return bytes(44)


segments = st.builds(
    TcpSegment,
    u16,
    u16,
    u32,
    u32,
    st.sampled_from([ACK, ACK | PSH, SYN, SYN | ACK, FIN | ACK, RST, 0, 0xFF]),
    u16,
    option_lists,
    payloads,
    u16,
    st.integers(0, 15),
)


def reference_build(segment: TcpSegment, source: int, destination: int, mode: int) -> bytes:
    """The builder as it was: pack with a zero checksum, then checksum the joined bytes."""
    options = build_options(segment.options) if segment.options else b""
    header = (
        struct.pack(
            "!HHIIBBHHH",
            segment.source_port,
            segment.destination_port,
            segment.seq,
            segment.ack,
            ((20 + len(options)) // 4) << 4 | segment.reserved,
            segment.flags,
            segment.window,
            0,
            segment.urgent_pointer,
        )
        + options
    )
    whole = header + bytes(segment.payload)
    initial = pseudo_header_sum(source, destination, PROTOCOL_TCP, len(whole))
    if mode == CHECKSUM_ZERO:
        return whole
    if mode == CHECKSUM_PARTIAL:
        value = ones_complement_sum(b"", initial)
    else:
        value = internet_checksum(whole, initial)
    return whole[:16] + value.to_bytes(2, "big") + whole[18:]


@SETTINGS
@given(
    segments,
    u32,
    u32,
    st.sampled_from([CHECKSUM_FULL, CHECKSUM_PARTIAL, CHECKSUM_ZERO]),
    st.sampled_from([bytes, bytearray, memoryview]),
)
def test_tcp_build_matches_the_reference(
    segment: TcpSegment, source: int, destination: int, mode: int, kind: type
) -> None:
    segment.payload = kind(bytes(segment.payload))
    expected = reference_build(segment, source, destination, mode)
    header = segment.build_header(source, destination, checksum=mode)
    assert header + bytes(segment.payload) == expected
    if mode != CHECKSUM_PARTIAL:
        assert segment.build(source, destination, with_checksum=mode == CHECKSUM_FULL) == expected


@SETTINGS
@given(
    segments,
    st.binary(min_size=6, max_size=6),
    st.binary(min_size=6, max_size=6),
    u32,
    u32,
    st.integers(0, 255),
    u16,
    st.booleans(),
    st.sampled_from([CHECKSUM_FULL, CHECKSUM_PARTIAL]),
)
def test_ipv4_frame_matches_the_layered_builders(
    segment: TcpSegment,
    destination_mac: bytes,
    source_mac: bytes,
    source: int,
    destination: int,
    ttl: int,
    identification: int,
    dont_fragment: bool,
    mode: int,
) -> None:
    l4 = reference_build(segment, source, destination, mode)
    packet = Ipv4Packet(source, destination, PROTOCOL_TCP, l4, ttl, identification, dont_fragment)
    expected = build_ethernet_header(destination_mac, source_mac, ETHERTYPE_IPV4) + packet.build()
    assert (
        segment.build_ipv4_frame(
            destination_mac,
            source_mac,
            source,
            destination,
            ttl=ttl,
            identification=identification,
            dont_fragment=dont_fragment,
            checksum=mode,
        )
        == expected
    )
    assert segment.header_length == len(l4) - len(segment.payload)


@SETTINGS
@given(u32, u32, st.binary(max_size=12))
def test_timestamp_shortcut_matches_the_general_option_parser(
    value: int, echo: int, noise: bytes
) -> None:
    area = b"\x01\x01\x08\x0a" + struct.pack("!II", value, echo)
    assert parse_options(area) == parse_options_general(area)
    assert parse_options(area) == (NopOption(), NopOption(), TimestampsOption(value, echo))
    damaged = (noise + area)[:12]
    try:
        expected: object = parse_options_general(damaged)
    except ValueError as error:
        expected = type(error)
    try:
        got: object = parse_options(damaged)
    except ValueError as error:
        got = type(error)
    assert got == expected


# --- the stack ------------------------------------------------------------------------


def make_stack(mtu: int, offload: InterfaceOffload, *, fast_paths: bool = True) -> Stack:
    stack = Stack(
        StackConfig(seed=3, arp=ArpConfig(gratuitous_on_add=False), fast_paths=fast_paths)
    )
    stack.add_interface("veth0", mac=STACK_MAC, mtu=mtu, offload=offload)
    stack.add_address("veth0", "10.0.0.1/24")
    stack.add_route("172.16.0.0/16", via="10.0.0.2")
    request = ArpPacket(OPERATION_REQUEST, PEER_MAC, PEER, ZERO_MAC, STACK)
    stack.receive_frame(
        "veth0",
        EthernetFrame(BROADCAST_MAC, PEER_MAC, ETHERTYPE_ARP, request.build()).build(),
        now=0,
    )
    stack.frames_to_send(now=0)
    return stack


def next_ip_id(stack: Stack, now: int) -> int:
    """The IP identification the stack uses next, read from an echo request to the peer."""
    stack.ping("10.0.0.2", identifier=1, sequence=1, now=now)
    ((_, frame),) = stack.frames_to_send(now=now)
    return Ipv4Packet.parse(EthernetFrame.parse(frame).payload).identification


offloads = st.builds(
    lambda tx, segment: InterfaceOffload(tx_checksum=tx, max_segment=segment),
    st.booleans(),
    st.sampled_from([0, 9000, 65415]),
)
destinations = st.sampled_from(
    [
        PEER,
        UNRESOLVED,
        BEHIND_GATEWAY,
        SUBNET_BROADCAST,
        STACK,
        0xFFFFFFFF,
        ip_from_str("192.168.1.1"),
    ]
)


@SETTINGS
@given(segments, st.integers(576, 9000), offloads, destinations)
def test_send_fast_path_matches_the_general_path(
    segment: TcpSegment, mtu: int, offload: InterfaceOffload, destination: int
) -> None:
    fast = make_stack(mtu, offload)
    general = make_stack(mtu, offload, fast_paths=False)
    outcomes = []
    for stack in (fast, general):
        try:
            stack.send_tcp(STACK, destination, segment, now=10)
            outcome: object = stack.frames_to_send(now=10)
        except (ValueError, struct.error) as error:
            outcome = type(error)
        outcomes.append((outcome, stack.stats(), next_ip_id(stack, 11)))
    assert outcomes[0] == outcomes[1]


def tcp_frame(segment: TcpSegment, source: int, destination: int) -> bytes:
    datagram = Ipv4Packet(
        source,
        destination,
        PROTOCOL_TCP,
        segment.build(source, destination),
        identification=5,
        dont_fragment=True,
    ).build()
    return EthernetFrame(STACK_MAC, PEER_MAC, ETHERTYPE_IPV4, datagram).build()


def damage(frame: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    raw = bytearray(frame)
    for at, value in edits:
        raw[at % len(raw)] = value
    return bytes(raw[:cut] if cut is not None else raw)


frames = st.builds(
    tcp_frame,
    segments.map(
        lambda s: TcpSegment(
            s.source_port, 80, s.seq, s.ack, s.flags, s.window, s.options, s.payload[:1400]
        )
    ),
    st.sampled_from([PEER, ip_from_str("127.0.0.1"), ip_from_str("224.0.0.1")]),
    st.sampled_from([STACK, SUBNET_BROADCAST, ip_from_str("10.0.0.77")]),
)
edits = st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=3)


def echo_frame(message: IcmpMessage, source: int, destination: int, ttl: int) -> bytes:
    datagram = Ipv4Packet(
        source, destination, PROTOCOL_ICMP, message.build(), ttl=ttl, identification=9
    ).build()
    return EthernetFrame(STACK_MAC, PEER_MAC, ETHERTYPE_IPV4, datagram).build()


echo_data = st.one_of(st.binary(max_size=1600), st.integers(0, 1700).map(bytes))
echo_frames = st.builds(
    echo_frame,
    st.builds(
        IcmpMessage,
        st.sampled_from([8, 8, 8, 0, 13]),
        st.sampled_from([0, 0, 1]),
        st.sampled_from([0, 0xFFFF0000, 0x0001FFFE]) | u32,
        echo_data,
    ),
    st.sampled_from(
        [
            PEER,
            PEER,
            UNRESOLVED,
            BEHIND_GATEWAY,
            STACK,
            SUBNET_BROADCAST,
            ip_from_str("192.168.1.1"),
            ip_from_str("127.0.0.1"),
        ]
    ),
    st.sampled_from([STACK, STACK, SUBNET_BROADCAST, ip_from_str("10.0.0.77")]),
    st.integers(1, 255),
)


@SETTINGS
@given(
    st.lists(
        st.tuples(frames | echo_frames, edits, st.none() | st.integers(0, 80)),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
    st.booleans(),
    st.sampled_from([1500, 1500, 576]),
)
def test_receive_fast_path_matches_the_general_path(
    inputs: list[tuple[bytes, list[tuple[int, int]], int | None]],
    verified: bool,
    offloaded: bool,
    mtu: int,
) -> None:
    offload = InterfaceOffload(rx_checksum_verified=offloaded)
    fast = make_stack(mtu, offload)
    general = make_stack(mtu, offload, fast_paths=False)
    for stack in (fast, general):
        stack.tcp_listen(80)
    for index, (frame, frame_edits, cut) in enumerate(inputs):
        raw = damage(frame, frame_edits, cut)
        now = 100 + index
        seen = []
        for stack in (fast, general):
            stack.receive_frame("veth0", raw, now=now, checksum_verified=verified)
            events = []
            while (event := stack.next_event()) is not None:
                events.append(event)
            seen.append((stack.frames_to_send(now=now), events, stack.stats()))
        assert seen[0] == seen[1]


def damaged_at(frame: bytes, at: int) -> bytes:
    raw = bytearray(frame)
    raw[at] ^= 0x01
    return bytes(raw)


ECHO = echo_frame(IcmpMessage.echo_request(7, 1, bytes(range(200))), PEER, STACK, 64)
ECHO_CASES = {
    "ordinary": (ECHO, 1500),
    "zeros": (echo_frame(IcmpMessage(8, 0, 0, b""), PEER, STACK, 64), 1500),
    "odd data": (echo_frame(IcmpMessage(8, 3, 0xFFFF0000, b"\xff" * 57), PEER, STACK, 9), 1500),
    "bad icmp checksum": (damaged_at(ECHO, 14 + 20 + 2), 1500),
    "damaged data": (damaged_at(ECHO, 14 + 20 + 8 + 99), 1500),
    "damaged ip header": (damaged_at(ECHO, 14 + 8), 1500),
    "reply fragmented": (ECHO, 200),
    "behind the gateway": (
        echo_frame(IcmpMessage.echo_request(1, 2, b"x"), BEHIND_GATEWAY, STACK, 64),
        1500,
    ),
    "unresolved": (echo_frame(IcmpMessage.echo_request(1, 2, b"x"), UNRESOLVED, STACK, 64), 1500),
    "from ourselves": (echo_frame(IcmpMessage.echo_request(1, 2, b"x"), STACK, STACK, 64), 1500),
    "to the broadcast": (
        echo_frame(IcmpMessage.echo_request(1, 2, b"x"), PEER, SUBNET_BROADCAST, 64),
        1500,
    ),
}


@pytest.mark.parametrize("case", sorted(ECHO_CASES))
@pytest.mark.parametrize("verified", [False, True])
def test_echo_fast_path_matches_the_general_path_at_the_edges(case: str, verified: bool) -> None:
    frame, mtu = ECHO_CASES[case]
    fast = make_stack(mtu, InterfaceOffload())
    general = make_stack(mtu, InterfaceOffload(), fast_paths=False)
    seen = []
    for stack in (fast, general):
        stack.receive_frame("veth0", frame, now=7, checksum_verified=verified)
        events = []
        while (event := stack.next_event()) is not None:
            events.append(event)
        seen.append((stack.frames_to_send(now=7), events, stack.stats(), next_ip_id(stack, 8)))
    assert seen[0] == seen[1]


def test_the_fast_paths_are_taken_for_an_ordinary_segment() -> None:
    """The oracle tests compare outcomes; this one makes sure the fast paths really run."""
    stack = make_stack(1500, InterfaceOffload())
    stack.tcp_listen(80)
    stack._tcp_frames.send_general = None  # type: ignore[assignment,method-assign]
    syn = TcpSegment(40000, 80, 1000, 0, SYN, 65535, (MssOption(1460),))
    stack.receive_frame("veth0", tcp_frame(syn, PEER, STACK), now=5)  # answered: SYN-ACK
    ((_, reply),) = stack.frames_to_send(now=5)
    answer = TcpSegment.parse(
        Ipv4Packet.parse(EthernetFrame.parse(reply).payload).payload, source=STACK, destination=PEER
    )
    assert answer.flags == SYN | ACK and answer.ack == 1001
    assert stack.stats()["tcp.segments_in"] == 1
    stack._icmp.received = None  # type: ignore[assignment,method-assign]
    request = IcmpMessage.echo_request(7, 1, b"abc")
    stack.receive_frame("veth0", echo_frame(request, PEER, STACK, 64), now=6)
    ((_, reply),) = stack.frames_to_send(now=6)
    packet = Ipv4Packet.parse(EthernetFrame.parse(reply).payload)
    assert packet.source == STACK and packet.destination == PEER
    assert IcmpMessage.parse(packet.payload) == IcmpMessage.echo_reply(7, 1, b"abc")
