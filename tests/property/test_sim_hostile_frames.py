"""Hostile frames into a real stack: nothing raises, memory stays within the configured bounds.

Frames are drawn from raw bytes and from structured but hostile Ethernet, ARP,
IPv4 (fragments, options, bad lengths, one byte overwritten anywhere), ICMP and
UDP, fed to a two-interface router with small limits and arbitrary time gaps.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.config import ArpConfig, IpConfig, StackConfig
from simtcp.stack import Stack
from simtcp.wire.arp import ArpPacket
from simtcp.wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, build_ethernet_header
from simtcp.wire.icmp import IcmpMessage
from simtcp.wire.ipv4 import Ipv4Packet
from simtcp.wire.udp import UdpDatagram

SECOND = 1_000_000

OUR_MACS = [bytes.fromhex("020000000001"), bytes.fromhex("020000000002")]
HOSTILE_CONFIG = StackConfig(
    seed=3,
    arp=ArpConfig(cache_limit=8, queue_limit=4),
    ip=IpConfig(forwarding=True, reassembly_limit=8_192, reassembly_max_datagrams=4),
)


def hostile_stack() -> Stack:
    stack = Stack(HOSTILE_CONFIG)
    stack.add_interface("eth0", mac=OUR_MACS[0])
    stack.add_address("eth0", "10.0.0.1/24")
    stack.add_interface("eth1", mac=OUR_MACS[1], mtu=576)
    stack.add_address("eth1", "10.1.1.1/24")
    stack.udp_bind(7)
    return stack


PEER_MAC = bytes.fromhex("0200000000aa")
NEAR_ADDRESSES = [0x0A000002, 0x0A000003, 0x0A010102, 0x0A000001, 0x0A010101]
ODD_ADDRESSES = [0x0A0000FF, 0xFFFFFFFF, 0x7F000001, 0xE0000001, 0x00000000, 0x08080808]
addresses = st.one_of(
    st.sampled_from(NEAR_ADDRESSES),
    st.sampled_from(ODD_ADDRESSES),
    st.integers(0, 2**32 - 1),
)
ours = st.sampled_from([0x0A000001, 0x0A010101])


def quoted_datagram(destination: int, protocol: int) -> bytes:
    """The first 28 bytes of a datagram we might have sent, as ICMP errors quote it."""
    return Ipv4Packet(0x0A000001, destination, protocol, bytes(range(8))).build()


@st.composite
def ipv4_payloads(draw: st.DrawFn, source: int, destination: int) -> tuple[int, bytes]:
    """(protocol, payload): ICMP and UDP with valid checksums, or anything at all."""
    kind = draw(st.sampled_from(["icmp", "icmp", "icmp-error", "udp", "udp", "raw"]))
    if kind == "icmp":
        message = IcmpMessage(
            draw(st.sampled_from([8, 8, 0, 13, 5])),
            0,
            draw(st.integers(0, 2**32 - 1)),
            draw(st.binary(max_size=80)),
        )
        return 1, message.build()
    if kind == "icmp-error":
        quoted = quoted_datagram(draw(addresses), draw(st.sampled_from([1, 6, 17])))
        message = IcmpMessage(
            draw(st.sampled_from([3, 11, 12])),
            draw(st.integers(0, 5)),
            draw(st.integers(0, 2**16)),
            quoted[: draw(st.integers(0, len(quoted)))],
        )
        return 1, message.build()
    if kind == "udp":
        datagram = UdpDatagram(
            draw(st.integers(0, 65535)),
            draw(st.sampled_from([7, 9, 53])),
            draw(st.binary(max_size=80)),
        )
        return 17, datagram.build(source, destination)
    return draw(st.sampled_from([6, 47]) | st.integers(0, 255)), draw(st.binary(max_size=120))


@st.composite
def ipv4_datagrams(draw: st.DrawFn) -> bytes:
    source = draw(st.sampled_from(NEAR_ADDRESSES[:3]) | addresses)
    destination = draw(ours | addresses)
    protocol, payload = draw(ipv4_payloads(source, destination))
    offset_units = draw(st.sampled_from([0, 1, 2, 3, 8, 185]) | st.integers(0, 8191))
    packet = Ipv4Packet(
        source,
        destination,
        protocol,
        payload,
        ttl=draw(st.sampled_from([0, 1, 2, 64, 255])),
        identification=draw(st.integers(0, 3)),
        dont_fragment=draw(st.booleans()),
        more_fragments=draw(st.integers(0, 3)) == 0,
        fragment_offset=offset_units * 8 if draw(st.integers(0, 3)) == 0 else 0,
        options=draw(st.sampled_from([b"", b"\x01\x01\x01\x00", b"\x07\x07\x04" + bytes(5)])),
    )
    data = bytearray(packet.build())
    if draw(st.integers(0, 3)) == 0:  # one hostile byte anywhere (lengths, IHL, checksum, ...)
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


arp_packets = st.builds(
    lambda operation, sender_mac, sender_ip, target_ip: ArpPacket(
        operation, sender_mac, sender_ip, b"\0" * 6, target_ip
    ).build(),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([PEER_MAC, OUR_MACS[0], b"\xff" * 6]),
    addresses,
    addresses,
)


@st.composite
def hostile_frames(draw: st.DrawFn) -> tuple[str, bytes]:
    destination = draw(st.sampled_from([*OUR_MACS, OUR_MACS[0], b"\xff" * 6, PEER_MAC]))
    kind = draw(st.sampled_from(["ipv4", "ipv4", "arp", "raw", "other"]))
    if kind == "raw":
        frame = draw(st.binary(max_size=120))
    else:
        ethertype = {"ipv4": ETHERTYPE_IPV4, "arp": ETHERTYPE_ARP}.get(kind) or draw(
            st.sampled_from([0x8100, 0x86DD, 0x88A8]) | st.integers(0, 0xFFFF)
        )
        body = (
            draw(ipv4_datagrams())
            if kind == "ipv4"
            else draw(arp_packets)
            if kind == "arp"
            else draw(st.binary(max_size=60))
        )
        frame = build_ethernet_header(destination, PEER_MAC, ethertype) + body
    return draw(st.sampled_from(["eth0", "eth0", "eth1", "eth7"])), frame


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(hostile_frames(), st.integers(0, 3 * SECOND)), max_size=40))
def test_hostile_frames_never_raise_and_memory_stays_bounded(
    frames: list[tuple[tuple[str, bytes], int]],
) -> None:
    stack = hostile_stack()
    config = HOSTILE_CONFIG
    now = 0
    for (interface, frame), gap in frames:
        now += gap
        deadline = stack.poll_at()
        if deadline is not None and deadline <= now:
            stack.handle_timer(now=now)
        stack.receive_frame(interface, frame, now=now)
        for out_interface, out_frame in stack.frames_to_send(now=now):
            assert out_interface in ("eth0", "eth1")
            assert len(out_frame) >= 14 and out_frame[6:12] in OUR_MACS
        while stack.next_event() is not None:
            pass
        stats = stack.stats()
        assert stats["arp.cache_entries"] <= config.arp.cache_limit
        assert stats["ip.reassembly_bytes"] <= config.ip.reassembly_limit
        assert stats.get("drop.total", 0) == sum(
            value
            for name, value in stats.items()
            if name.startswith("drop.") and name != "drop.total"
        )
    # Every timer runs out eventually and the stack is left holding nothing.
    for _ in range(100):
        deadline = stack.poll_at()
        if deadline is None:
            break
        now = max(now, deadline)
        stack.handle_timer(now=now)
        stack.frames_to_send(now=now)
    stats = stack.stats()
    assert stats["ip.reassembly_bytes"] == 0 and stats["arp.queued_packets"] == 0


def test_a_flood_of_fragments_never_exceeds_the_reassembly_limit() -> None:
    stack = hostile_stack()
    for identification in range(200):
        packet = Ipv4Packet(
            0x0A000002,
            0x0A000001,
            17,
            bytes(1_000),
            identification=identification,
            more_fragments=True,
        )
        frame = build_ethernet_header(OUR_MACS[0], PEER_MAC, ETHERTYPE_IPV4) + packet.build()
        stack.receive_frame("eth0", frame, now=identification)
        assert stack.stats()["ip.reassembly_bytes"] <= HOSTILE_CONFIG.ip.reassembly_limit
    assert stack.stats()["drop.total"] > 0


def test_overlapping_fragments_drop_the_datagram() -> None:
    """RFC 5722's spirit for IPv4: overlapping fragments are an attack, never data."""
    stack = hostile_stack()
    datagram = UdpDatagram(5555, 7, b"A" * 32).build(0x0A000002, 0x0A000001)
    pieces = [(0, datagram[:24], True), (16, datagram[16:], False)]
    for offset, chunk, more in pieces:
        packet = Ipv4Packet(
            0x0A000002,
            0x0A000001,
            17,
            chunk,
            identification=77,
            more_fragments=more,
            fragment_offset=offset,
        )
        frame = build_ethernet_header(OUR_MACS[0], PEER_MAC, ETHERTYPE_IPV4) + packet.build()
        stack.receive_frame("eth0", frame, now=offset)
    assert stack.next_event() is None
    assert stack.stats()["drop.reassembly_overlap"] >= 1
    assert stack.stats()["ip.reassembly_bytes"] == 0


def test_forwarding_to_many_unresolved_neighbours_stays_bounded() -> None:
    """A router on a /16: a sweep of destinations nobody answers for must not pile up."""
    config = HOSTILE_CONFIG
    stack = Stack(config)
    stack.add_interface("eth0", mac=OUR_MACS[0])
    stack.add_address("eth0", "10.0.0.1/24")
    stack.add_interface("eth1", mac=OUR_MACS[1])
    stack.add_address("eth1", "10.1.0.1/16")
    header = build_ethernet_header(OUR_MACS[0], PEER_MAC, ETHERTYPE_IPV4)
    for index in range(5_000):  # all within 5ms, long before any resolution gives up
        packet = Ipv4Packet(0x0A000002, 0x0A010002 + index, 17, bytes(8), identification=index)
        stack.receive_frame("eth0", header + packet.build(), now=index)
        stack.frames_to_send(now=index)
    # Any bound will do (pending resolutions counted against arp.cache_limit, say), as
    # long as it comes from the configuration and not from the attacker's rate.
    assert stack.stats()["arp.queued_packets"] <= config.arp.cache_limit * config.arp.queue_limit


def test_events_stay_within_event_limit() -> None:
    stack = Stack(StackConfig(event_limit=100))
    stack.add_interface("eth0", mac=OUR_MACS[0])
    stack.add_address("eth0", "10.0.0.1/24")
    header = build_ethernet_header(OUR_MACS[0], PEER_MAC, ETHERTYPE_IPV4)
    for sequence in range(1_000):
        reply = IcmpMessage.echo_reply(1, sequence, b"").build()
        packet = Ipv4Packet(0x0A000002, 0x0A000001, 1, reply, identification=sequence)
        stack.receive_frame("eth0", header + packet.build(), now=sequence)
    held = 0
    while stack.next_event() is not None:
        held += 1
    assert held <= 100
