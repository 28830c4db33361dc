"""The one-step forwarding path (``Forwarder.fast_forward``) against the layered one, its oracle.

Invariant: for any sequence of frames a router receives (valid, TTL 1 or 0, IP
options, fragments, bad IP or L4 checksums, DF and too big for the next link,
GSO super-segments, broadcasts, multicast, martian sources, unresolved or
unrouted destinations, padding, truncation), a stack with
``StackConfig.fast_paths`` on and one with it off send the same frames (ICMP
errors included), byte for byte and in order, emit the same events, count the
same counters and drops, and go on with the same IP identification. A last
test makes sure the one-step path is really taken.
"""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp import Stack
from simtcp.backends.vnet import FLAG_NEEDS_CSUM, VnetHeader, tx_header
from simtcp.config import ArpConfig, IpConfig, StackConfig
from simtcp.link.interface import InterfaceOffload
from simtcp.wire.arp import OPERATION_REQUEST, ArpPacket
from simtcp.wire.checksum import internet_checksum, pseudo_header_sum
from simtcp.wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ZERO_MAC,
    EthernetFrame,
    build_ethernet_header,
)
from simtcp.wire.ipv4 import Ipv4Packet, ip_from_str
from simtcp.wire.offload import partial_checksum

ROUTER_MAC0 = bytes.fromhex("020000000001")
ROUTER_MAC1 = bytes.fromhex("020000000002")
HOST_A_MAC = bytes.fromhex("02000000000a")
HOST_B_MAC = bytes.fromhex("02000000000b")
OTHER_MAC = bytes.fromhex("0200000000ff")
HOST_A = ip_from_str("10.0.0.2")
HOST_B = ip_from_str("10.1.1.2")

DESTINATIONS = [
    ip_from_str("10.1.1.3"),  # routed, never resolved: queued behind ARP
    ip_from_str("172.16.5.9"),  # behind B as a gateway
    ip_from_str("192.168.7.7"),  # no route (unless the default one): ICMP net unreachable
    ip_from_str("10.1.1.1"),  # ours
    ip_from_str("10.1.1.255"),  # a subnet broadcast of ours
    0xFFFFFFFF,
    ip_from_str("224.0.0.5"),
]
ODDITIES = [
    "source",
    "destination",
    "l4",
    "l4",
    "short",
    "fragment",
    "ttl",
    "options",
    "reserved",
    "damage",
    "mac",
    "tos",
    "version",
]
SOURCES = [ip_from_str("127.0.0.1"), ip_from_str("224.1.1.1"), 0xFFFFFFFF, 0]


def router(
    fast_paths: bool,
    mtus: tuple[int, int],
    offloads: tuple[InterfaceOffload, ...],
    default_route: bool = False,
) -> Stack:
    stack = Stack(
        StackConfig(
            seed=7,
            fast_paths=fast_paths,
            arp=ArpConfig(gratuitous_on_add=False),
            ip=IpConfig(forwarding=True),
        )
    )
    stack.add_interface("veth0", mac=ROUTER_MAC0, mtu=mtus[0], offload=offloads[0])
    stack.add_interface("veth1", mac=ROUTER_MAC1, mtu=mtus[1], offload=offloads[1])
    stack.add_address("veth0", "10.0.0.1/24")
    stack.add_address("veth1", "10.1.1.1/24")
    stack.add_route("172.16.0.0/16", via="10.1.1.2")
    stack.add_route("224.0.0.0/4", via="10.1.1.2")  # routed, yet never forwarded as unicast
    if default_route:  # the limited broadcast is routed too, yet never forwarded
        stack.add_route("0.0.0.0/0", via="10.1.1.2")
    for name, mac, address, ours in (
        ("veth0", HOST_A_MAC, HOST_A, "10.0.0.1"),
        ("veth1", HOST_B_MAC, HOST_B, "10.1.1.1"),
    ):
        request = ArpPacket(OPERATION_REQUEST, mac, address, ZERO_MAC, ip_from_str(ours))
        frame = EthernetFrame(BROADCAST_MAC, mac, ETHERTYPE_ARP, request.build()).build()
        stack.receive_frame(name, frame, now=0)
    stack.frames_to_send(now=0)
    return stack


def l4_bytes(protocol: int, size: int, seed: int, tcp_options: int) -> bytes:
    """A TCP or UDP header and payload with a zero checksum field; other protocols: payload."""
    payload = random.Random(seed).randbytes(size)
    if protocol == 6:
        header_length = 20 + tcp_options
        header = struct.pack(
            "!HHIIBBHHH", 40000, 5201, seed, 1, (header_length // 4) << 4, 0x18, 512, 0, 0
        )
        return header + b"\x01" * tcp_options + payload
    if protocol == 17:
        return struct.pack("!HHHH", 40000, 5201, 8 + size, 0) + payload
    return payload


def set_checksum(l4: bytearray, protocol: int, source: int, destination: int, kind: str) -> None:
    at = {6: 16, 17: 6}.get(protocol)
    if at is None or len(l4) < at + 2 or kind == "none":
        return
    if kind == "partial":
        value = partial_checksum(source, destination, protocol, len(l4))
    else:
        value = internet_checksum(l4, pseudo_header_sum(source, destination, protocol, len(l4)))
        if protocol == 17 and value == 0:
            value = 0xFFFF
    l4[at : at + 2] = value.to_bytes(2, "big")
    if kind == "corrupt":
        l4[-1 if len(l4) > at + 2 else at] ^= 0x10


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, bool, int]:
    """One frame for veth0, whether the link vouches for it, and its gso_size: an ordinary
    frame (the one-step path's case) with up to two oddities drawn into it."""
    odd = draw(
        st.one_of(
            st.just(set()),
            st.sets(st.sampled_from(ODDITIES), min_size=1, max_size=1),
            st.sets(st.sampled_from(ODDITIES), max_size=2),
        )
    )

    def pick(name: str, ordinary: object, strategy: st.SearchStrategy[object]) -> object:
        return draw(strategy) if name in odd else ordinary

    protocol = draw(st.sampled_from([6, 6, 6, 17, 17, 1, 99]))
    big = draw(st.booleans())
    size = draw(st.integers(4000, 30000) if big else st.integers(0, 1600))
    seed = draw(st.integers(0, 2**31))
    l4 = bytearray(l4_bytes(protocol, size, seed, draw(st.sampled_from([0, 0, 12]))))
    if "short" in odd:  # an L4 header cut short, its checksum field missing
        del l4[draw(st.integers(0, 17)) :]
    source = pick("source", HOST_A, st.sampled_from(SOURCES))
    destination = pick(
        "destination", draw(st.sampled_from([HOST_B, HOST_A])), st.sampled_from(DESTINATIONS)
    )
    checksum = draw(st.sampled_from(["full", "partial"] + ["corrupt", "none"] * ("l4" in odd)))
    set_checksum(l4, protocol, source, destination, checksum)
    fragmenting = pick("fragment", "none", st.sampled_from(["first", "later"]))
    packet = Ipv4Packet(
        source,
        destination,
        protocol,
        bytes(l4),
        ttl=pick("ttl", 64, st.sampled_from([2, 1, 0, 255])),
        identification=draw(st.integers(0, 0xFFFF)),
        dont_fragment=draw(st.booleans()),
        more_fragments=fragmenting == "first",
        fragment_offset=800 if fragmenting == "later" else 0,
        tos=pick("tos", 0, st.sampled_from([0x10, 0x03, 0xFF])),
        options=pick("options", b"", st.sampled_from([b"\x01\x01\x01\x00", b"\x94\x04\x00\x00"])),
        reserved_flag=pick("reserved", False, st.booleans()),
    )
    datagram = bytearray(packet.build())
    damage = pick("damage", "none", st.sampled_from(["header", "padding", "truncated", "length"]))
    if damage == "header":
        datagram[10] ^= 0x01
    elif damage == "padding":
        datagram += b"\0" * draw(st.integers(1, 30))
    elif damage == "truncated":
        del datagram[-draw(st.integers(1, min(8, len(datagram)))) :]
    elif damage == "length":
        datagram[2:4] = (19).to_bytes(2, "big")  # shorter than a header
    if "version" in odd:
        datagram[0] = 0x65
    if damage in ("length", "version") or "version" in odd:  # damage that checksums cannot see
        datagram[10:12] = b"\0\0"
        header_length = (datagram[0] & 0x0F) * 4
        datagram[10:12] = internet_checksum(datagram[:header_length]).to_bytes(2, "big")
    mac = pick("mac", ROUTER_MAC0, st.sampled_from([BROADCAST_MAC, OTHER_MAC]))
    frame = build_ethernet_header(mac, HOST_A_MAC, ETHERTYPE_IPV4) + bytes(datagram)
    verified = checksum == "partial" or (checksum != "corrupt" and draw(st.booleans()))
    gso_size = draw(st.sampled_from([0, 536, 1448, 1460, 8948])) if big and protocol == 6 else 0
    return frame, verified, gso_size


offloads = st.sampled_from(
    [
        InterfaceOffload(),
        InterfaceOffload(tx_checksum=True, max_segment=65415),
        InterfaceOffload(tx_checksum=True),
        InterfaceOffload(max_segment=65415, software_segmentation=True),
        InterfaceOffload(rx_checksum_verified=True),
    ]
)
mtus = st.tuples(st.sampled_from([1500, 1500, 9000, 576]), st.sampled_from([1500, 1500, 576, 9000]))


def next_ip_id(stack: Stack, now: int) -> int:
    stack.ping("10.1.1.2", identifier=1, sequence=1, now=now)
    ((_, frame),) = stack.frames_to_send(now=now)
    return Ipv4Packet.parse(EthernetFrame.parse(frame).payload).identification


def outcome(stack: Stack, sequence: list[tuple[bytes, bool, int]]) -> object:
    seen: list[object] = []
    for now, (frame, verified, gso_size) in enumerate(sequence, start=10):
        stack.receive_frame("veth0", frame, now=now, checksum_verified=verified, gso_size=gso_size)
        events = []
        while (event := stack.next_event()) is not None:
            events.append(event)
        seen.append((stack.frames_to_send(now=now), events))
    return seen, stack.stats(), next_ip_id(stack, 100)


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(frames(), min_size=1, max_size=4),
    mtus,
    st.tuples(offloads, offloads),
    st.booleans(),
)
def test_fast_forwarding_matches_the_layered_path(
    sequence: list[tuple[bytes, bool, int]],
    mtu_pair: tuple[int, int],
    offload_pair: tuple[InterfaceOffload, InterfaceOffload],
    default_route: bool,
) -> None:
    fast = outcome(router(True, mtu_pair, offload_pair, default_route), sequence)
    layered = outcome(router(False, mtu_pair, offload_pair, default_route), sequence)
    assert fast == layered


@settings(max_examples=100, deadline=None)
@given(st.data(), mtus, st.tuples(offloads, offloads))
def test_a_memoryview_of_the_frame_forwards_the_same(
    data: st.DataObject,
    mtu_pair: tuple[int, int],
    offload_pair: tuple[InterfaceOffload, InterfaceOffload],
) -> None:
    """The TAP loop hands the stack memoryviews of its reads: the answer must not change."""
    frame, verified, gso_size = data.draw(frames())
    as_bytes = router(True, mtu_pair, offload_pair)
    as_view = router(True, mtu_pair, offload_pair)
    as_bytes.receive_frame("veth0", frame, now=5, checksum_verified=verified, gso_size=gso_size)
    as_view.receive_frame(
        "veth0",
        memoryview(b"\0" * 12 + frame)[12:],
        now=5,
        checksum_verified=verified,
        gso_size=gso_size,
    )
    assert as_bytes.frames_to_send(now=5) == as_view.frames_to_send(now=5)
    assert as_bytes.stats() == as_view.stats()


def test_the_one_step_path_is_taken_for_ordinary_frames() -> None:
    """The oracle test compares outcomes; this one makes sure the one-step path runs: a plain
    segment, a UDP datagram and a 64 KiB GSO segment between two offloading links, with the
    layered forwarder out of reach."""
    offload = InterfaceOffload(tx_checksum=True, max_segment=65415)
    stack = router(True, (1500, 1500), (offload, offload))
    stack._ipv4._forwarder.forward = None  # type: ignore[assignment,method-assign]
    # The kernel cuts a GSO segment at the MSS of its link, 1460 here: so does the next one.
    cases = [(6, 1000, 0), (17, 1400, 0), (6, 64000, 1460)]
    for protocol, size, gso_size in cases:
        l4 = bytearray(l4_bytes(protocol, size, size, 0))
        set_checksum(l4, protocol, HOST_A, HOST_B, "partial")
        datagram = Ipv4Packet(HOST_A, HOST_B, protocol, bytes(l4), ttl=64, dont_fragment=True)
        frame = build_ethernet_header(ROUTER_MAC0, HOST_A_MAC, ETHERTYPE_IPV4) + datagram.build()
        stack.receive_frame("veth0", frame, now=1, checksum_verified=True, gso_size=gso_size)
        ((name, out),) = stack.frames_to_send(now=1)
        assert name == "veth1"
        assert out[:12] == HOST_B_MAC + ROUTER_MAC1
        forwarded = Ipv4Packet.parse(out[14:])
        assert forwarded.ttl == 63  # RFC 1812 §5.3.1
        assert bytes(forwarded.payload) == bytes(l4)  # the partial checksum carried through
        # The next TAP's virtio-net header, derived from the frame, carries what came in:
        # checksum still to finish, and for the super-segment the gso_size it was cut at.
        header = VnetHeader.parse(tx_header(out, 1500))
        assert header.flags == FLAG_NEEDS_CSUM and header.csum_start == 34
        assert header.gso_size == gso_size and header.is_gso == bool(gso_size)
    assert stack.stats()["ip.forwarded"] == len(cases)


EDGE_OFFLOADS = [InterfaceOffload(), InterfaceOffload(tx_checksum=True, max_segment=65415)]


@pytest.mark.parametrize("out_offload", EDGE_OFFLOADS)
@pytest.mark.parametrize("verified", [False, True])
@pytest.mark.parametrize(
    ("protocol", "keep", "checksum", "oddity"),
    [
        (6, 10, "none", ""),  # a TCP header cut short: no checksum field
        (6, 17, "none", ""),
        (17, 4, "none", ""),  # a UDP header cut short
        (17, 8, "none", ""),  # UDP without a checksum (RFC 768): left alone
        (6, 1000, "corrupt", ""),
        (17, 1000, "corrupt", ""),
        (17, 1000, "partial", ""),
        (6, 1000, "full", ""),
        (17, 1000, "full", "first fragment"),
        (6, 1000, "full", "later fragment"),
        (17, 100, "full", "limited broadcast"),
        (17, 100, "full", "multicast"),
        (6, 100, "full", "loopback source"),
        (6, 100, "full", "ttl 1"),
    ],
)
def test_edge_frames_forward_alike(
    out_offload: InterfaceOffload,
    verified: bool,
    protocol: int,
    keep: int,
    checksum: str,
    oddity: str,
) -> None:
    """Cases the generator above reaches only rarely, each fed to both paths (with a default
    route, so that nothing is dropped for want of one)."""
    source = ip_from_str("127.0.0.1") if oddity == "loopback source" else HOST_A
    destination = {"limited broadcast": 0xFFFFFFFF, "multicast": ip_from_str("239.1.1.1")}.get(
        oddity, HOST_B
    )
    l4 = bytearray(l4_bytes(protocol, 1000, 3, 0)[:keep])
    set_checksum(l4, protocol, source, destination, checksum)
    datagram = Ipv4Packet(
        source,
        destination,
        protocol,
        bytes(l4),
        ttl=1 if oddity == "ttl 1" else 64,
        identification=9,
        more_fragments=oddity == "first fragment",
        fragment_offset=1480 if oddity == "later fragment" else 0,
    ).build()
    frame = build_ethernet_header(ROUTER_MAC0, HOST_A_MAC, ETHERTYPE_IPV4) + datagram
    offload_pair = (InterfaceOffload(), out_offload)
    sequence = [(frame, verified, 0)]
    fast = outcome(router(True, (1500, 1500), offload_pair, True), sequence)
    assert fast == outcome(router(False, (1500, 1500), offload_pair, True), sequence)
