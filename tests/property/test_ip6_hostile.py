"""Hostile IPv6 input: dropped and counted by reason, answered as RFC 8200/4443 say, never raised.

One stack (2001:db8::1 on eth0, DAD done) is fed crafted frames: extension
chains of 1,000 headers, overlapping and oversized fragments, ND with a hop
limit other than 255, spoofed router advertisements, routing header type 0,
unknown options; then hypothesis feeds it anything at all.
"""

from __future__ import annotations

from ipaddress import IPv6Address

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.config import Ip6Config, StackConfig
from simtcp.stack import Stack
from simtcp.wire import icmpv6 as icmp_wire
from simtcp.wire.ethernet import ETHERTYPE_IPV6, EthernetFrame, build_ethernet_header
from simtcp.wire.icmpv6 import (
    Icmpv6Message,
    NdOptions,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    Redirect,
    RouterAdvertisement,
)
from simtcp.wire.ipv6 import (
    NEXT_DESTINATION,
    NEXT_FRAGMENT,
    NEXT_HOP_BY_HOP,
    NEXT_ICMPV6,
    NEXT_ROUTING,
    FragmentHeader,
    Ipv6Packet,
    extension_header,
    multicast_mac,
    solicited_node,
    walk_extension_headers,
)

SECOND = 1_000_000
OURS = IPv6Address("2001:db8::1")
PEER = IPv6Address("2001:db8::99")
ROUTER = IPv6Address("fe80::1")
PEER_MAC = bytes.fromhex("020000000099")


class Victim:
    def __init__(self, **ip6: object) -> None:
        self.stack = Stack(StackConfig(seed=3, ip6=Ip6Config(**ip6)))  # type: ignore[arg-type]
        self.stack.add_interface("eth0", mac="02:00:00:00:00:01")
        self.mac = self.stack.interface_mac("eth0")
        self.stack.add_address("eth0", "2001:db8::1/64", now=0)
        self.now = 0
        self.run(3 * SECOND)
        self.stack.add_neighbour6("eth0", str(PEER), PEER_MAC)
        self.sent: list[bytes] = []

    def run(self, duration: int) -> None:
        end = self.now + duration
        while (at := self.stack.poll_at()) is not None and at <= end:
            self.now = at
            self.stack.handle_timer(now=at)
            self.stack.frames_to_send(now=at)
        self.now = end

    def inject(self, packet: bytes, *, mac: bytes | None = None) -> None:
        frame = build_ethernet_header(mac or self.mac, PEER_MAC, ETHERTYPE_IPV6) + packet
        self.stack.receive_frame("eth0", frame, now=self.now)
        self.sent += [f for _, f in self.stack.frames_to_send(now=self.now)]

    def drops(self) -> dict[str, int]:
        return {
            k[5:]: v
            for k, v in self.stack.stats().items()
            if k.startswith("drop.") and k != "drop.total" and v
        }

    def icmp_out(self) -> list[Icmpv6Message]:
        found = []
        for raw in self.sent:
            payload = EthernetFrame.parse(raw).payload
            packet = Ipv6Packet.parse(payload)
            walk = walk_extension_headers(payload)
            if walk.upper == NEXT_ICMPV6:
                body = payload[walk.upper_offset :]
                found.append(Icmpv6Message.parse(body, packet.source, packet.destination))
        return found


def _echo(source: IPv6Address = PEER, destination: IPv6Address = OURS, data: bytes = b"x") -> bytes:
    return Icmpv6Message.echo_request(1, 1, data).build(source, destination)


def _packet(next_header: int, body: bytes, *, source: IPv6Address = PEER, hop: int = 64) -> bytes:
    return Ipv6Packet(source, OURS, next_header, body, hop).build()


def _fragment(offset: int, more: bool, data: bytes, ident: int = 9) -> bytes:
    return _packet(NEXT_FRAGMENT, FragmentHeader(NEXT_ICMPV6, offset, more, ident).build() + data)


def test_a_chain_of_1000_extension_headers_is_dropped_and_counted() -> None:
    victim = Victim()
    chain = b"".join(extension_header(NEXT_DESTINATION, b"") for _ in range(999))
    chain += extension_header(NEXT_ICMPV6, b"") + _echo()
    for _ in range(10):
        victim.inject(_packet(NEXT_DESTINATION, chain))
    assert victim.drops() == {"ipv6_too_many_extension_headers": 10}
    assert victim.icmp_out() == []


def test_overlapping_fragments_drop_the_whole_datagram_and_its_later_fragments() -> None:
    victim = Victim()
    echo = _echo(data=bytes(120))
    victim.inject(_fragment(0, True, echo[:64]))
    victim.inject(_fragment(32, True, echo[32:96]))  # overlaps the first: RFC 5722
    victim.inject(_fragment(64, False, echo[64:]))  # would complete it: still dropped
    assert victim.drops() == {"reassembly_overlap": 2}
    assert [m.icmp_type for m in victim.icmp_out()] == []
    # The same fragments without the overlap are put together and answered.
    clean = Victim()
    clean.inject(_fragment(0, True, echo[:64], ident=10))
    clean.inject(_fragment(64, False, echo[64:], ident=10))
    assert [m.icmp_type for m in clean.icmp_out()] == [icmp_wire.TYPE_ECHO_REPLY]
    assert clean.stack.stats()["ip6.reassembled"] == 1


def test_fragments_past_65535_bytes_are_refused_with_a_parameter_problem() -> None:
    victim = Victim()
    victim.inject(_fragment(65528, False, bytes(16)))
    victim.inject(_fragment(0, True, bytes(13)))  # M set, length not a multiple of 8
    assert victim.drops() == {"ipv6_fragment_too_big": 1, "ipv6_bad_fragment": 1}
    problems = [(m.icmp_type, m.code, m.pointer) for m in victim.icmp_out()]
    assert problems == [
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 0, 42),  # RFC 8200 §4.5: at the fragment offset
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 0, 4),  # at the payload length
    ]


def test_neighbour_discovery_with_a_hop_limit_other_than_255_is_dropped() -> None:
    victim = Victim()
    group = solicited_node(OURS)
    for hop in (1, 64, 254):
        ns = NeighborSolicitation(OURS, NdOptions(source_lladdr=PEER_MAC)).to_message()
        packet = Ipv6Packet(PEER, group, NEXT_ICMPV6, ns.build(PEER, group), hop).build()
        victim.inject(packet, mac=multicast_mac(group))
    assert victim.drops() == {"nd_bad_hop_limit": 3}
    assert victim.icmp_out() == []
    ns = NeighborSolicitation(OURS, NdOptions(source_lladdr=PEER_MAC)).to_message()
    victim.inject(
        Ipv6Packet(PEER, group, NEXT_ICMPV6, ns.build(PEER, group), 255).build(),
        mac=multicast_mac(group),
    )
    assert [m.icmp_type for m in victim.icmp_out()] == [icmp_wire.TYPE_NEIGHBOR_ADVERTISEMENT]


def _ra(source: IPv6Address, hop: int = 255) -> bytes:
    everyone = IPv6Address("ff02::1")
    advert = RouterAdvertisement(
        router_lifetime=1800,
        options=NdOptions(
            source_lladdr=PEER_MAC, prefixes=[PrefixInformation(IPv6Address("2001:db8:66::"))]
        ),
    ).to_message()
    return Ipv6Packet(source, everyone, NEXT_ICMPV6, advert.build(source, everyone), hop).build()


def test_spoofed_router_advertisements_are_dropped_when_not_accepting_them() -> None:
    victim = Victim(accept_router_advertisements=False)
    everyone = multicast_mac(IPv6Address("ff02::1"))
    for _ in range(5):
        victim.inject(_ra(ROUTER), mac=everyone)
    victim.inject(_ra(PEER), mac=everyone)  # not link-local: invalid anyway (RFC 4861 §6.1.2)
    victim.inject(_ra(ROUTER, hop=64), mac=everyone)
    assert victim.drops() == {"ra_not_accepted": 5, "nd_invalid": 1, "nd_bad_hop_limit": 1}
    assert victim.stack.route6_source(IPv6Address("2001:db8:77::1")) is None  # no default route
    assert all(not str(a).startswith("2001:db8:66") for a, _, _ in victim.stack.addresses6("eth0"))
    router = Victim(forwarding=True)  # a router never takes RAs either
    router.inject(_ra(ROUTER), mac=everyone)
    assert router.drops() == {"ra_not_accepted": 1}


def test_routing_header_type_0_is_refused_rfc5095() -> None:
    victim = Victim()
    routing = bytes([NEXT_ICMPV6, 2, 0, 1]) + bytes(4) + IPv6Address("2001:db8::7").packed
    victim.inject(_packet(NEXT_ROUTING, routing + _echo()))
    assert victim.drops() == {"ipv6_routing_type0": 1}
    assert [(m.icmp_type, m.code, m.pointer) for m in victim.icmp_out()] == [
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 0, 42)
    ]
    # No segments left: RFC 8200 §4.4 ignores the header and goes on.
    done = bytes([NEXT_ICMPV6, 2, 0, 0]) + bytes(4) + IPv6Address("2001:db8::7").packed
    victim.sent.clear()
    victim.inject(_packet(NEXT_ROUTING, done + _echo()))
    assert [m.icmp_type for m in victim.icmp_out()] == [icmp_wire.TYPE_ECHO_REPLY]


def test_bad_chains_unknown_options_and_headers_are_answered_as_rfc8200_says() -> None:
    victim = Victim()
    late_hbh = extension_header(NEXT_HOP_BY_HOP, b"") + extension_header(NEXT_ICMPV6, b"")
    victim.inject(_packet(NEXT_DESTINATION, late_hbh + _echo()))
    skip_unknown = extension_header(NEXT_ICMPV6, bytes([0x1E, 2, 0, 0]))  # action 00: skip
    victim.inject(_packet(NEXT_DESTINATION, skip_unknown + _echo()))
    discard = extension_header(NEXT_ICMPV6, bytes([0x5E, 2, 0, 0]))  # action 01: drop silently
    victim.inject(_packet(NEXT_DESTINATION, discard + _echo()))
    answer = extension_header(NEXT_ICMPV6, bytes([0x9E, 2, 0, 0]))  # action 10: problem, code 2
    victim.inject(_packet(NEXT_DESTINATION, answer + _echo()))
    victim.inject(_packet(140, b"whatever"))  # unknown next header
    assert victim.drops() == {
        "ipv6_bad_extension_header": 1,
        "ipv6_unknown_option": 2,
        "ipv6_unknown_next_header": 1,
    }
    assert [(m.icmp_type, m.code, m.pointer) for m in victim.icmp_out()] == [
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 1, 40),
        (icmp_wire.TYPE_ECHO_REPLY, 0, 0x10001),
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 2, 42),
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 1, 6),
    ]


def test_redirects_are_ignored_and_claims_on_our_address_do_not_take_it() -> None:
    victim = Victim()
    redirect = Redirect(IPv6Address("fe80::66"), IPv6Address("2001:db8:5::1")).to_message()
    victim.inject(Ipv6Packet(ROUTER, OURS, NEXT_ICMPV6, redirect.build(ROUTER, OURS), 255).build())
    claim = NeighborAdvertisement(
        OURS, override=True, options=NdOptions(target_lladdr=PEER_MAC)
    ).to_message()
    everyone = IPv6Address("ff02::1")
    victim.inject(
        Ipv6Packet(PEER, everyone, NEXT_ICMPV6, claim.build(PEER, everyone), 255).build(),
        mac=multicast_mac(everyone),
    )
    victim.inject(_packet(NEXT_ICMPV6, _echo(), source=IPv6Address("ff02::5")))
    assert victim.drops() == {"redirect_ignored": 1, "ipv6_bad_source": 1}
    assert victim.stack.stats()["nd.na_claims_our_address"] == 1
    assert victim.stack.is_local_address6(OURS)


def test_error_messages_are_rate_limited() -> None:
    victim = Victim(error_rate=1.0, error_burst=3)
    for _ in range(10):
        victim.inject(_packet(140, b"x"))
    assert len(victim.icmp_out()) == 3
    assert victim.drops() == {"ipv6_unknown_next_header": 10, "icmp_rate_limited": 7}


def _valid_datagrams() -> list[bytes]:
    group = solicited_node(OURS)
    ns = NeighborSolicitation(OURS, NdOptions(source_lladdr=PEER_MAC)).to_message()
    return [
        _packet(NEXT_ICMPV6, _echo()),
        Ipv6Packet(PEER, group, NEXT_ICMPV6, ns.build(PEER, group), 255).build(),
        _fragment(0, True, _echo(data=bytes(64))[:64]),
        _packet(NEXT_DESTINATION, extension_header(NEXT_ICMPV6, b"") + _echo()),
        _ra(ROUTER),
    ]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(_valid_datagrams()),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=8),
    st.integers(0, 120),
)
def test_mutated_datagrams_never_raise(
    datagram: bytes, flips: list[tuple[int, int]], cut: int
) -> None:
    victim = Victim()
    data = bytearray(datagram)
    for at, value in flips:
        if at < len(data):
            data[at] = value
    data = data[: max(len(data) - cut, 0)]
    victim.inject(bytes(data))
    victim.inject(bytes(data), mac=multicast_mac(solicited_node(OURS)))
    stats = victim.stack.stats()
    assert stats["ip6.packets_in"] == 2


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_as_ipv6_never_raise(data: bytes) -> None:
    victim = Victim()
    victim.inject(data)
    victim.inject(b"\x60" + data)


def test_a_first_fragment_without_the_whole_header_chain_is_refused_rfc7112() -> None:
    victim = Victim()
    long_options = extension_header(NEXT_ICMPV6, bytes(60))  # 64 bytes of destination options
    header = FragmentHeader(NEXT_DESTINATION, 0, True, 11).build()
    victim.inject(_packet(NEXT_FRAGMENT, header + long_options[:32]))
    assert victim.drops() == {"ipv6_bad_fragment": 1}
    assert [(m.icmp_type, m.code) for m in victim.icmp_out()] == [
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 3)
    ]
