"""IPv6 in the simulator: DAD, ND, SLAAC, ping6, forwarding, path MTU, and the seam.

Two or three real stacks on simulated links, or one stack fed frames by hand
with explicit ``now``: every expected instant is exact where RFC 4861/4862
fix it (RetransTimer 1 s, DELAY_FIRST_PROBE_TIME 5 s, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address

from simtcp.backends.sim import LinkProfile, Simulator
from simtcp.config import Ip6Config, StackConfig
from simtcp.errors import DropReason
from simtcp.events import ConnectionAccepted, EchoReplyReceived, Event, IcmpErrorReceived
from simtcp.ip.output import Ipv4Output
from simtcp.ip6 import Ipv6Layer
from simtcp.rng import SeededRandom
from simtcp.stack import Stack
from simtcp.stats import Stats
from simtcp.timers import TimerHeap
from simtcp.wire import icmpv6 as icmp_wire
from simtcp.wire.ethernet import ETHERTYPE_IPV6, EthernetFrame, build_ethernet_header
from simtcp.wire.icmpv6 import Icmpv6Message, NdOptions, NeighborAdvertisement, NeighborSolicitation
from simtcp.wire.ipv6 import (
    NEXT_FRAGMENT,
    NEXT_ICMPV6,
    Ipv6Packet,
    multicast_mac,
    solicited_node,
    walk_extension_headers,
)

SECOND = 1_000_000
A = IPv6Address("2001:db8::1")
B = IPv6Address("2001:db8::2")
PEER_MAC = bytes.fromhex("020000000099")


def _config(seed: int, **ip6: object) -> StackConfig:
    return StackConfig(seed=seed, ip6=Ip6Config(**ip6))  # type: ignore[arg-type]


def _host(
    sim: Simulator, name: str, number: int, addresses: dict[str, list[str]], **ip6: object
) -> Stack:
    stack = Stack(_config(number, **ip6))
    for index, (interface, texts) in enumerate(addresses.items()):
        stack.add_interface(interface, mac=f"02:00:00:00:{number:02x}:{index:02x}", now=sim.now)
        for text in texts:
            stack.add_address(interface, text, now=sim.now)
    sim.add_host(name, stack)
    return stack


def _events(stack: Stack) -> list[Event]:
    found = []
    while (event := stack.next_event()) is not None:
        found.append(event)
    return found


def _pair(**ip6: object) -> tuple[Simulator, Stack, Stack]:
    sim = Simulator(6)
    a = _host(sim, "a", 1, {"eth0": ["10.0.0.1/24", "2001:db8::1/64"]}, **ip6)
    b = _host(sim, "b", 2, {"eth0": ["10.0.0.2/24", "2001:db8::2/64"]}, **ip6)
    sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=1_000))
    return sim, a, b


def test_two_dual_stack_hosts_complete_dad_resolve_each_other_and_ping6() -> None:
    sim, a, b = _pair()
    sim.run_for(3 * SECOND)
    for stack in (a, b):
        states = {state for _, _, state in stack.addresses6("eth0")}
        assert states == {"preferred"}, stack.addresses6("eth0")
        assert stack.stats()["nd.dad_completed"] == 2  # link-local and global
    link_local_b = next(str(x) for x, _, _ in b.addresses6("eth0") if x.is_link_local)
    assert link_local_b == "fe80::ff:fe00:200"  # modified EUI-64 of 02:00:00:00:02:00
    a.ping("2001:db8::2", identifier=7, sequence=1, payload=b"six", now=sim.now)
    a.ping(link_local_b + "%eth0", identifier=7, sequence=2, payload=b"ll", now=sim.now)
    a.ping("10.0.0.2", identifier=7, sequence=3, payload=b"four", now=sim.now)
    sim.run_for(SECOND)
    replies = [e for e in _events(a) if isinstance(e, EchoReplyReceived)]
    assert [(r.source, r.sequence, r.payload, r.ttl) for r in replies] == [
        ("2001:db8::2", 1, b"six", 64),
        (link_local_b, 2, b"ll", 64),
        ("10.0.0.2", 3, b"four", 64),
    ]
    assert a.neighbour6_state("eth0", "2001:db8::2") == "reachable"
    # Learnt STALE from a's NS (§7.2.3), then DELAY when the replies went to it (§7.3.3).
    assert b.neighbour6_state("eth0", "2001:db8::1") == "delay"
    assert a.is_local_address6(A) and not a.is_local_address6(B)
    assert a.route6_source(B) == (A, 1500)


def test_addresses_are_tentative_until_dad_and_not_answered_meanwhile() -> None:
    sim, a, b = _pair()
    sim.run_for(SECOND // 2)
    assert "2001:db8::2" in {str(x) for x, _, s in b.addresses6("eth0") if s == "tentative"}
    assert not b.is_local_address6(B) and b.route6_source(A) is None


def test_dad_conflict_when_two_hosts_take_the_same_address_at_once() -> None:
    sim = Simulator(7)
    a = _host(sim, "a", 1, {"eth0": ["2001:db8::5/64"]})
    b = _host(sim, "b", 2, {"eth0": ["2001:db8::5/64"]})
    sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=1_000))
    sim.run_for(3 * SECOND)
    for stack in (a, b):
        assert ("2001:db8::5", "duplicate") in {(str(x), s) for x, _, s in stack.addresses6("eth0")}
        assert stack.stats()["nd.dad_conflicts"] == 1
        assert not stack.is_local_address6(IPv6Address("2001:db8::5"))


def test_dad_conflict_with_an_address_in_use_the_owner_defends_it() -> None:
    sim = Simulator(8)
    a = _host(sim, "a", 1, {"eth0": ["2001:db8::5/64"]})
    b = _host(sim, "b", 2, {"eth0": []})
    sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=1_000))
    sim.run_for(3 * SECOND)
    b.add_address("eth0", "2001:db8::5/64", now=sim.now)
    sim.run_for(3 * SECOND)
    assert ("2001:db8::5", "preferred") in {(str(x), s) for x, _, s in a.addresses6("eth0")}
    assert ("2001:db8::5", "duplicate") in {(str(x), s) for x, _, s in b.addresses6("eth0")}
    assert a.stats()["nd.na_out"] >= 1 and b.stats()["nd.dad_conflicts"] == 1


def test_stable_privacy_identifiers_come_from_the_seed() -> None:
    def link_local(seed: int) -> str:
        stack = Stack(_config(seed, stable_privacy=True, link_local_on_add=True))
        stack.add_interface("eth0", mac="02:00:00:00:00:01")
        return str(stack.addresses6("eth0")[0][0])

    assert link_local(1) == link_local(1)
    assert link_local(1) != link_local(2)
    assert link_local(1).startswith("fe80::") and link_local(1) != "fe80::ff:fe00:1"


def test_slaac_from_a_router_advertisement_and_routing_through_the_router() -> None:
    sim = Simulator(9)
    router = _host(
        sim,
        "r",
        1,
        {"eth0": ["2001:db8::1/64"], "eth1": ["2001:db8:1::1/64"]},
        forwarding=True,
    )
    host = _host(sim, "h", 2, {"eth0": []}, link_local_on_add=True)
    far = _host(sim, "f", 3, {"eth0": ["2001:db8:1::2/64"]})
    far.add_route("::/0", via="2001:db8:1::1")
    sim.connect(("r", "eth0"), ("h", "eth0"), LinkProfile(delay=1_000))
    sim.connect(("r", "eth1"), ("f", "eth0"), LinkProfile(delay=1_000))
    sim.run_for(6 * SECOND)
    formed = [x for x, _, s in host.addresses6("eth0") if s == "preferred" and not x.is_link_local]
    assert formed == [IPv6Address("2001:db8::ff:fe00:200")]
    assert host.stats()["nd.ra_in"] >= 1 and host.stats()["nd.default_routers_learned"] == 1
    host.ping("2001:db8:1::2", identifier=1, sequence=1, now=sim.now)
    host.ping("2001:db8:1::2", identifier=1, sequence=2, ttl=1, now=sim.now)
    sim.run_for(SECOND)
    events = _events(host)
    replies = [e for e in events if isinstance(e, EchoReplyReceived)]
    assert [(r.source, r.ttl) for r in replies] == [("2001:db8:1::2", 63)]
    errors = [e for e in events if isinstance(e, IcmpErrorReceived)]
    assert [(e.icmp_type, e.code, e.original_destination) for e in errors] == [
        (icmp_wire.TYPE_TIME_EXCEEDED, 0, "2001:db8:1::2")
    ]
    assert router.stats()["ip6.forwarded"] >= 2
    assert router.stats()["drop.hop_limit_exceeded"] == 1


def test_packet_too_big_lowers_the_path_mtu_and_we_fragment_at_the_source() -> None:
    sim = Simulator(10)
    a = _host(sim, "a", 1, {"eth0": ["2001:db8::2/64"]})
    a.add_route("::/0", via="2001:db8::1")
    router = _host(
        sim, "r", 2, {"eth0": ["2001:db8::1/64"], "eth1": ["2001:db8:1::1/64"]}, forwarding=True
    )
    b = Stack(_config(3))
    b.add_interface("eth0", mac="02:00:00:00:03:00", mtu=1280)
    b.add_address("eth0", "2001:db8:1::2/64")
    b.add_route("::/0", via="2001:db8:1::1")
    sim.add_host("b", b)
    router_narrow = router  # its eth1 is 1500; the narrow link is b's own (1280)
    sim.connect(("a", "eth0"), ("r", "eth0"), LinkProfile(delay=1_000))
    sim.connect(("r", "eth1"), ("b", "eth0"), LinkProfile(delay=1_000))
    sim.run_for(3 * SECOND)
    far = IPv6Address("2001:db8:1::2")
    assert a.route6_source(far) == (IPv6Address("2001:db8::2"), 1500)
    # b answers a 1,400-byte echo with a reply it must cut at its 1,280 link: fragments.
    a.ping("2001:db8:1::2", identifier=2, sequence=1, payload=bytes(1400), now=sim.now)
    sim.run_for(SECOND)
    replies = [e for e in _events(a) if isinstance(e, EchoReplyReceived)]
    assert [len(r.payload) for r in replies] == [1400]
    assert b.stats()["ip6.fragments_out"] == 2 and a.stats()["ip6.reassembled"] == 1
    del router_narrow


def test_a_router_with_a_narrow_next_link_sends_packet_too_big() -> None:
    sim = Simulator(11)
    a = _host(sim, "a", 1, {"eth0": ["2001:db8::2/64"]})
    a.add_route("::/0", via="2001:db8::1")
    router = Stack(_config(2, forwarding=True))
    router.add_interface("eth0", mac="02:00:00:00:02:00")
    router.add_interface("eth1", mac="02:00:00:00:02:01", mtu=1280)
    router.add_address("eth0", "2001:db8::1/64")
    router.add_address("eth1", "2001:db8:1::1/64")
    sim.add_host("r", router)
    b = _host(sim, "b", 3, {"eth0": ["2001:db8:1::2/64"]})
    b.add_route("::/0", via="2001:db8:1::1")
    sim.connect(("a", "eth0"), ("r", "eth0"), LinkProfile(delay=1_000))
    sim.connect(("r", "eth1"), ("b", "eth0"), LinkProfile(delay=1_000))
    sim.run_for(3 * SECOND)
    far = IPv6Address("2001:db8:1::2")
    a.ping(str(far), identifier=3, sequence=1, payload=bytes(1400), now=sim.now)
    sim.run_for(SECOND)
    events = _events(a)
    assert [
        (e.icmp_type, e.original_destination) for e in events if isinstance(e, IcmpErrorReceived)
    ] == [(icmp_wire.TYPE_PACKET_TOO_BIG, str(far))]
    assert a.route6_source(far) == (IPv6Address("2001:db8::2"), 1280)  # TCP's MSS: 1220
    assert router.stats()["drop.fragment_needed"] == 1
    a.ping(str(far), identifier=3, sequence=2, payload=bytes(1400), now=sim.now)
    sim.run_for(SECOND)
    replies = [e for e in _events(a) if isinstance(e, EchoReplyReceived)]
    assert [(r.sequence, len(r.payload)) for r in replies] == [(2, 1400)]
    assert a.stats()["ip6.fragments_out"] == 2 and b.stats()["ip6.reassembled"] == 1


# --- one stack fed by hand -----------------------------------------------------


class Bench:
    """One stack on eth0 with 2001:db8::1/64 (DAD done), frames in by hand, frames out kept."""

    def __init__(self, **ip6: object) -> None:
        self.stack = Stack(_config(1, **ip6))
        self.stack.add_interface("eth0", mac="02:00:00:00:00:01")
        self.mac = self.stack.interface_mac("eth0")
        self.stack.add_address("eth0", "2001:db8::1/64", now=0)
        self.now = 0
        self.sent: list[bytes] = []
        self.advance(3 * SECOND)
        self.sent.clear()

    def advance(self, duration: int) -> None:
        end = self.now + duration
        while (at := self.stack.poll_at()) is not None and at <= end:
            self.now = at
            self.stack.handle_timer(now=at)
            self.sent += [f for _, f in self.stack.frames_to_send(now=at)]
        self.now = end
        self.sent += [f for _, f in self.stack.frames_to_send(now=end)]

    def inject(self, packet: bytes, *, mac: bytes | None = None) -> None:
        frame = build_ethernet_header(mac or self.mac, PEER_MAC, ETHERTYPE_IPV6) + packet
        self.stack.receive_frame("eth0", frame, now=self.now)
        self.sent += [f for _, f in self.stack.frames_to_send(now=self.now)]

    def icmp_out(self) -> list[tuple[Ipv6Packet, Icmpv6Message]]:
        found = []
        for raw in self.sent:
            frame = EthernetFrame.parse(raw)
            if frame.ethertype != ETHERTYPE_IPV6:
                continue
            packet = Ipv6Packet.parse(frame.payload)
            walk = walk_extension_headers(frame.payload)
            if walk.upper == NEXT_ICMPV6:
                body = frame.payload[walk.upper_offset :]
                found.append((packet, Icmpv6Message.parse(body, packet.source, packet.destination)))
        return found

    def drops(self) -> dict[str, int]:
        return {k: v for k, v in self.stack.stats().items() if k.startswith("drop.") and v}


def icmp(
    source: IPv6Address, destination: IPv6Address, message: Icmpv6Message, hop: int = 255
) -> bytes:
    return Ipv6Packet(
        source, destination, NEXT_ICMPV6, message.build(source, destination), hop
    ).build()


PEER = IPv6Address("2001:db8::99")


def test_neighbour_cache_walks_rfc4861s_states_with_exact_timers() -> None:
    bench = Bench()
    stack = bench.stack
    stack.ping(str(PEER), identifier=1, sequence=1, now=bench.now)
    bench.advance(0)
    assert stack.neighbour6_state("eth0", str(PEER)) == "incomplete"
    solicitations = [(p, m) for p, m in bench.icmp_out() if m.icmp_type == 135]
    assert [(p.destination, p.hop_limit) for p, _ in solicitations] == [(solicited_node(PEER), 255)]
    # A solicited NA: REACHABLE, and the queued echo request leaves.
    bench.sent.clear()
    advert = NeighborAdvertisement(
        PEER, solicited=True, override=True, options=NdOptions(target_lladdr=PEER_MAC)
    )
    bench.inject(icmp(PEER, A, advert.to_message()))
    assert stack.neighbour6_state("eth0", str(PEER)) == "reachable"
    assert [m.icmp_type for _, m in bench.icmp_out()] == [128]
    # ReachableTime is 15..45 s (RFC 4861 §6.3.2): STALE after 45 s at the latest.
    bench.advance(46 * SECOND)
    assert stack.neighbour6_state("eth0", str(PEER)) == "stale"
    stack.ping(str(PEER), identifier=1, sequence=2, now=bench.now)
    assert stack.neighbour6_state("eth0", str(PEER)) == "delay"
    start = bench.now
    bench.sent.clear()
    bench.advance(5 * SECOND - 1)
    assert stack.neighbour6_state("eth0", str(PEER)) == "delay"
    bench.advance(1)
    assert stack.neighbour6_state("eth0", str(PEER)) == "probe" and bench.now == start + 5 * SECOND
    probes = [p for p, m in bench.icmp_out() if m.icmp_type == 135]
    assert [p.destination for p in probes] == [PEER]  # unicast probe
    bench.advance(3 * SECOND)
    assert stack.neighbour6_state("eth0", str(PEER)) is None  # MAX_UNICAST_SOLICIT unanswered
    assert stack.stats()["nd.probe_failed"] == 1


def test_unresolved_neighbour_fails_after_three_solicitations() -> None:
    bench = Bench()
    bench.stack.ping(str(PEER), identifier=1, sequence=1, now=bench.now)
    bench.advance(3 * SECOND)
    solicitations = [m for _, m in bench.icmp_out() if m.icmp_type == 135]
    assert len(solicitations) == 3
    assert bench.stack.neighbour6_state("eth0", str(PEER)) is None
    assert bench.drops()["drop.nd_unresolved"] == 1


def test_ns_is_answered_with_a_solicited_na_and_the_sender_learnt() -> None:
    bench = Bench()
    solicitation = NeighborSolicitation(A, NdOptions(source_lladdr=PEER_MAC)).to_message()
    bench.inject(icmp(PEER, solicited_node(A), solicitation), mac=multicast_mac(solicited_node(A)))
    answers = [(p, m) for p, m in bench.icmp_out() if m.icmp_type == 136]
    assert len(answers) == 1
    packet, message = answers[0]
    na = NeighborAdvertisement.from_message(message)
    assert (packet.destination, packet.hop_limit, na.target, na.solicited, na.override) == (
        PEER,
        255,
        A,
        True,
        True,
    )
    assert na.options.target_lladdr == bench.mac
    assert bench.stack.neighbour6_state("eth0", str(PEER)) == "stale"


def test_mld_reports_go_out_for_joined_groups_and_queries_are_answered() -> None:
    bench = Bench()
    bench.stack.join_group6("eth0", "ff05::1:3", now=bench.now)
    bench.advance(0)
    reports = [(p, m) for p, m in bench.icmp_out() if m.icmp_type == icmp_wire.TYPE_MLD_V2_REPORT]
    assert reports and all(
        p.destination == IPv6Address("ff02::16") and p.hop_limit == 1 for p, _ in reports
    )
    from simtcp.wire.icmpv6 import MldQuery, Mldv2Report

    groups = {r.address for _, m in reports for r in Mldv2Report.from_message(m).records}
    assert IPv6Address("ff05::1:3") in groups
    bench.sent.clear()
    query = MldQuery(IPv6Address(0)).to_message()
    bench.inject(
        icmp(IPv6Address("fe80::99"), IPv6Address("ff02::1"), query, hop=1),
        mac=multicast_mac(IPv6Address("ff02::1")),
    )
    answered = [m for _, m in bench.icmp_out() if m.icmp_type == icmp_wire.TYPE_MLD_V2_REPORT]
    groups = {r.address for m in answered for r in Mldv2Report.from_message(m).records}
    assert {IPv6Address("ff05::1:3"), solicited_node(A)} <= groups
    assert IPv6Address("ff02::1") not in groups  # RFC 3810 §6: never reported


def test_reassembly_timeout_answers_time_exceeded_and_atomic_fragments_pass() -> None:
    bench = Bench()
    echo = Icmpv6Message.echo_request(5, 1, bytes(64)).build(PEER, A)
    fragment = bytes([NEXT_ICMPV6, 0]) + (0 | 1).to_bytes(2, "big") + (77).to_bytes(4, "big")
    bench.inject(Ipv6Packet(PEER, A, NEXT_FRAGMENT, fragment + echo[:48]).build())
    bench.stack.add_neighbour6("eth0", str(PEER), PEER_MAC)
    bench.advance(60 * SECOND)
    exceeded = [m for _, m in bench.icmp_out() if m.icmp_type == icmp_wire.TYPE_TIME_EXCEEDED]
    assert [m.code for m in exceeded] == [icmp_wire.CODE_REASSEMBLY_TIME_EXCEEDED]
    assert bench.drops()["drop.reassembly_timeout"] == 1
    bench.sent.clear()
    atomic = bytes([NEXT_ICMPV6, 0, 0, 0]) + (78).to_bytes(4, "big")
    bench.inject(Ipv6Packet(PEER, A, NEXT_FRAGMENT, atomic + echo).build())
    assert [m.icmp_type for _, m in bench.icmp_out()] == [129]
    assert bench.stack.stats()["ip6.atomic_fragments"] == 1


# --- the seam -----------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def received_ipv6(self, *args: object) -> None:
        self.calls.append(args)


def _layer(tcp: object, udp: object) -> tuple[Ipv6Layer, Ipv4Output, Callable[[int], None]]:
    config = _config(1)
    timers, stats, rng = TimerHeap(), Stats(), SeededRandom(1)
    output4 = Ipv4Output(config, timers=timers, stats=stats, rng=rng)
    layer = Ipv6Layer(
        config,
        timers=timers,
        stats=stats,
        rng=rng,
        output4=output4,
        emit=lambda e: None,
        tcp=tcp,
        udp=udp,
    )
    from simtcp.link.interface import Interface, InterfaceOffload

    iface = Interface("eth0", bytes.fromhex("020000000001"), 1500, InterfaceOffload())
    output4.add_interface(iface)
    layer.interface_added(iface, 0)
    layer.add_address("eth0", "2001:db8::1/64", 0)
    while (at := timers.poll_at()) is not None and at <= 3 * SECOND:
        timers.run_due(at)
    output4.frames.clear()
    layer.add_static_neighbour("eth0", str(PEER), PEER_MAC)

    def feed(next_header: int) -> None:
        packet = Ipv6Packet(PEER, A, next_header, b"segment").build()
        layer.received(iface, packet, False, 4 * SECOND)

    return layer, output4, feed


def test_the_seam_hands_tcp_and_udp_to_their_hooks() -> None:
    tcp, udp = Recorder(), Recorder()
    layer, output4, feed = _layer(tcp, udp)
    feed(6)
    feed(17)
    assert [(s, d, bytes(p), n) for s, d, p, n in tcp.calls] == [(PEER, A, b"segment", 4 * SECOND)]  # type: ignore[misc]
    assert [(s, d, bytes(p), n, m) for s, d, p, n, m in udp.calls] == [
        (PEER, A, b"segment", 4 * SECOND, False)
    ]  # type: ignore[misc]
    assert layer.route_source(PEER) == (A, 1500) and layer.is_local(A)
    layer.send(None, PEER, 6, b"out", now=4 * SECOND)
    ((interface, frame),) = output4.frames
    packet = Ipv6Packet.parse(EthernetFrame.parse(frame).payload)
    assert (interface, frame[:6], packet.source, packet.destination, packet.next_header) == (
        "eth0",
        PEER_MAC,
        A,
        PEER,
        6,
    )
    assert bytes(packet.payload) == b"out" and packet.flow_label == layer.output.flow_label(
        A, PEER, 6
    )


def test_without_hooks_tcp_gets_a_parameter_problem_and_udp_a_port_unreachable() -> None:
    layer, output4, feed = _layer(object(), object())
    feed(6)
    feed(17)
    messages = []
    for _, frame in output4.frames:
        packet = Ipv6Packet.parse(EthernetFrame.parse(frame).payload)
        messages.append(Icmpv6Message.parse(packet.payload, packet.source, packet.destination))
    assert [(m.icmp_type, m.code, m.rest) for m in messages] == [
        (icmp_wire.TYPE_PARAMETER_PROBLEM, 1, 6),
        (icmp_wire.TYPE_DESTINATION_UNREACHABLE, icmp_wire.CODE_PORT_UNREACHABLE, 0),
    ]
    _ = DropReason


def test_a_redirect_is_followed_only_when_configured() -> None:
    bench = Bench(accept_redirects=True)
    router = IPv6Address("fe80::1")
    bench.stack.add_route("::/0", via=str(router), interface="eth0")
    bench.stack.add_neighbour6("eth0", str(router), PEER_MAC)
    far = IPv6Address("2001:db8:5::1")
    better = IPv6Address("fe80::66")
    better_mac = bytes.fromhex("020000000066")
    from simtcp.wire.icmpv6 import Redirect

    wrong = Redirect(better, far).to_message()  # not from our first hop: refused (§8.1)
    bench.inject(icmp(IPv6Address("fe80::5"), A, wrong))
    message = Redirect(better, far, NdOptions(target_lladdr=better_mac)).to_message()
    bench.inject(icmp(router, A, message))
    assert bench.stack.stats()["nd.redirects_followed"] == 1
    assert bench.drops()["drop.nd_invalid"] == 1
    bench.sent.clear()
    bench.stack.ping(str(far), identifier=1, sequence=1, now=bench.now)
    bench.advance(0)
    assert [EthernetFrame.parse(f).destination for f in bench.sent] == [better_mac]


def test_the_hooks_see_whether_the_link_vouched_for_the_checksum() -> None:
    seen: list[bool] = []

    class Tcp:
        def received_ipv6(self, *args: object) -> None:
            seen.append(layer.checksum_verified)

    layer, _, _ = _layer(Tcp(), object())
    iface = layer.output.links["eth0"].interface
    packet = Ipv6Packet(PEER, A, 6, b"segment").build()
    layer.received(iface, packet, False, 4 * SECOND, verified=True)
    layer.received(iface, packet, False, 4 * SECOND)
    assert seen == [True, False]


def _quoting_tcp_segment(seq: int) -> bytes:
    segment = (40000).to_bytes(2, "big") + (80).to_bytes(2, "big") + seq.to_bytes(4, "big")
    return Ipv6Packet(A, PEER, 6, segment + bytes(1392)).build()


def test_errors_about_our_tcp_segments_go_to_tcps_hook_with_the_path_mtu_lowered() -> None:
    calls: list[dict[str, object]] = []
    asked: list[dict[str, object]] = []

    class Tcp:
        def icmpv6_quote_in_flight(self, **quote: object) -> bool:
            asked.append(quote)
            return quote["quoted_seq"] == 12345

        def icmpv6_error_received(self, **details: object) -> None:
            calls.append(details)

    layer, _, _ = _layer(object(), object())
    layer.icmp.tcp = Tcp()
    iface = layer.output.links["eth0"].interface
    router = IPv6Address("2001:db8::fe")
    too_big = Icmpv6Message.packet_too_big(1300, _quoting_tcp_segment(12345))
    layer.received(iface, icmp(router, A, too_big, hop=64), False, 5 * SECOND)
    quote = {
        "quoted_source": A,
        "quoted_destination": PEER,
        "quoted_source_port": 40000,
        "quoted_destination_port": 80,
        "quoted_seq": 12345,
    }
    assert asked == [quote]
    assert calls == [
        {"icmp_type": icmp_wire.TYPE_PACKET_TOO_BIG, "code": 0, "mtu": 1300, "now": 5 * SECOND}
        | quote
    ]
    assert layer.route_source(PEER) == (A, 1300)
    # RFC 5927 §4.1: a quote TCP has not in flight leaves the path MTU alone, but TCP
    # still hears of it (and counts it ignored).
    spoofed = Icmpv6Message.packet_too_big(1280, _quoting_tcp_segment(99))
    layer.received(iface, icmp(router, A, spoofed, hop=64), False, 6 * SECOND)
    assert layer.route_source(PEER) == (A, 1300)
    assert len(calls) == 2 and calls[1]["quoted_seq"] == 99
    assert layer.output.stats["drop.packet_too_big_not_in_flight"] == 1


def test_a_packet_too_big_about_udp_lowers_the_path_mtu_unchecked() -> None:
    class Tcp:
        def icmpv6_quote_in_flight(self, **quote: object) -> bool:
            raise AssertionError("not a TCP quote")

        def icmpv6_error_received(self, **details: object) -> None:
            raise AssertionError("not a TCP quote")

    layer, _, _ = _layer(object(), object())
    layer.icmp.tcp = Tcp()
    iface = layer.output.links["eth0"].interface
    datagram = Ipv6Packet(A, PEER, 17, bytes(8) + bytes(1392)).build()
    too_big = Icmpv6Message.packet_too_big(1300, datagram)
    layer.received(iface, icmp(IPv6Address("2001:db8::fe"), A, too_big, hop=64), False, SECOND)
    assert layer.route_source(PEER) == (A, 1300)


def test_a_spoofed_packet_too_big_outside_the_flight_leaves_the_mtu_and_mss() -> None:
    """RFC 5927 §4.1, RFC 8201 §4: between two real stacks, a blind attacker's packet
    too big quoting a sequence number not in flight changes nothing; one quoting
    SND.UNA lowers the path MTU and the connection's MSS."""
    sim, a, b = _pair()
    sim.run_for(3 * SECOND)
    b.tcp_listen(80)
    client = a.tcp_connect(str(B), 80, now=sim.now)
    sim.run_for(SECOND)
    a.send(client, b"x" * 20000, now=sim.now)
    info = a.tcp_info(client)
    mss = info.mss

    def too_big(seq: int, mtu: int) -> None:
        segment = info.local_port.to_bytes(2, "big") + (80).to_bytes(2, "big")
        segment += (seq % 2**32).to_bytes(4, "big") + bytes(12)
        quoted = Ipv6Packet(A, B, 6, segment + bytes(1400)).build()
        message = Icmpv6Message.packet_too_big(mtu, quoted)
        router = IPv6Address("2001:db8::fe")
        packet = Ipv6Packet(router, A, NEXT_ICMPV6, message.build(router, A), 64).build()
        mac = a.interface_mac("eth0")
        frame = build_ethernet_header(mac, PEER_MAC, ETHERTYPE_IPV6) + packet
        a.receive_frame("eth0", frame, now=sim.now)

    too_big(info.snd_una - 1000, 1280)  # before SND.UNA
    too_big(info.snd_nxt + 50000, 1280)  # beyond SND.NXT
    assert a.route6_source(B) == (A, 1500)
    assert a.tcp_info(client).mss == mss
    stats = a.stats()
    assert stats["drop.packet_too_big_not_in_flight"] == 2
    assert stats["tcp.icmp_ignored"] == 2 and stats.get("tcp.pmtu_updates", 0) == 0
    too_big(info.snd_una, 1300)
    assert a.route6_source(B) == (A, 1300)
    assert a.tcp_info(client).mss < mss and a.stats()["tcp.pmtu_updates"] == 1
    sim.run_for(5 * SECOND)
    server = next(e for e in _events(b) if isinstance(e, ConnectionAccepted))
    assert len(b.receive(server.connection, now=sim.now)) == 20000


def test_slaac_lifetimes_deprecate_then_remove_and_resist_shortening() -> None:
    bench = Bench()
    router = IPv6Address("fe80::1")
    everyone = IPv6Address("ff02::1")
    from simtcp.wire.icmpv6 import PrefixInformation, RouterAdvertisement

    def advertise(valid: int, preferred: int) -> None:
        info = PrefixInformation(IPv6Address("2001:db8:7::"), 64, True, True, valid, preferred)
        message = RouterAdvertisement(router_lifetime=0, options=NdOptions(prefixes=[info]))
        bench.inject(icmp(router, everyone, message.to_message()), mac=multicast_mac(everyone))

    def status() -> str | None:
        found = [
            s for x, _, s in bench.stack.addresses6("eth0") if str(x).startswith("2001:db8:7:")
        ]
        return found[0] if found else None

    start = bench.now
    advertise(valid=20, preferred=10)
    assert status() == "tentative"
    bench.advance(SECOND)
    assert status() == "preferred"
    # RFC 4862 §5.5.3(e): an RA may not cut a short remaining lifetime further.
    advertise(valid=1, preferred=1)
    bench.advance(start + 10 * SECOND - bench.now)
    assert status() == "deprecated"  # since the second RA's 1 s preferred lifetime ran out
    bench.advance(start + 20 * SECOND - bench.now - 1)
    assert status() == "deprecated"
    bench.advance(1)
    assert status() is None and bench.stack.stats()["nd.address_expired"] == 1


def test_a_router_advertises_unsolicited_three_times_16_s_apart_then_rarely() -> None:
    router = Stack(_config(1, forwarding=True))
    router.add_interface("eth0", mac="02:00:00:00:00:01")
    router.add_address("eth0", "2001:db8::1/64", now=0)
    sent_at: list[int] = []
    now = 0
    while (at := router.poll_at()) is not None and at <= 1000 * SECOND:
        now = at
        router.handle_timer(now=now)
        for _, raw in router.frames_to_send(now=now):
            frame = EthernetFrame.parse(raw)
            packet = Ipv6Packet.parse(frame.payload)
            if packet.next_header == NEXT_ICMPV6 and packet.payload[0] == 134:
                sent_at.append(now)
    first = sent_at[0]
    assert first <= 2 * SECOND  # once the link-local address passed DAD
    assert sent_at[1:3] == [first + 16 * SECOND, first + 32 * SECOND]
    assert 200 * SECOND <= sent_at[3] - sent_at[2] <= 600 * SECOND


def test_send_ipv6_counts_what_it_cannot_send_instead_of_raising() -> None:
    stack = Stack(_config(1))
    stack.add_interface("eth0", mac="02:00:00:00:00:01")
    stack.add_address("eth0", "2001:db8::1/64", now=0)
    stack.send_ipv6(None, B, 17, b"x", now=0)  # our address is still tentative: no source
    stack.send_ipv6(A, B, 17, b"x", now=0)  # nor may it be the source (RFC 4862 §5.4)
    now = 0
    while (at := stack.poll_at()) is not None and at <= 3 * SECOND:
        now = at
        stack.handle_timer(now=now)
    stack.send_ipv6(A, B, 17, bytes(70_000), now=0)  # past 65,535: no jumbograms
    stack.send_ipv6(A, IPv6Address("2001:db9::1"), 17, b"x", now=0)  # no route
    stack.send_ipv6(A, B, 17, bytes(3000), now=0)  # fragmented at the source
    stats = stack.stats()
    assert (stats["drop.no_route"], stats["drop.bad_total_length"]) == (2, 1)
    assert stats["drop.dad_tentative"] == 1
    assert stats["ip6.fragments_out"] == 3
