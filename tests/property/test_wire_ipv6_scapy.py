"""IPv6 and ICMPv6 against scapy, both directions, and the extension-header walker fuzzed.

scapy -> simtcp: what scapy builds (checksums its own), simtcp parses with every
checksum verified into the same fields, and the walker finds the same upper
layer at the same offset. simtcp -> scapy: what simtcp builds, scapy dissects
into the same fields, and scapy's checksum of the dissected message (deleted,
rebuilt) is the one simtcp wrote. The walker, fed anything, never raises,
stops, and does bounded work: at most ``max_headers`` headers, each at least
8 bytes of the input.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.layers.inet6 import (
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_Redirect,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    ICMPv6PacketTooBig,
    ICMPv6ParamProblem,
    ICMPv6TimeExceeded,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
)
from scapy.packet import Packet, Raw

from simtcp.errors import DropReason
from simtcp.wire import icmpv6 as wire
from simtcp.wire.ethernet import mac_to_str
from simtcp.wire.icmpv6 import (
    Icmpv6Message,
    Mldv2Report,
    MulticastRecord,
    NdOptions,
    NeighborAdvertisement,
    NeighborSolicitation,
    PrefixInformation,
    Redirect,
    RouterAdvertisement,
    RouterSolicitation,
)
from simtcp.wire.ipv6 import (
    NEXT_DESTINATION,
    NEXT_FRAGMENT,
    NEXT_HOP_BY_HOP,
    NEXT_ICMPV6,
    NEXT_ROUTING,
    NEXT_UDP,
    Ipv6Packet,
    extension_header,
    walk_extension_headers,
)

addresses = st.integers(0, 2**128 - 1).map(IPv6Address)
unicast = st.integers(1, 2**120).map(lambda v: IPv6Address((0x2001 << 112) | v))
macs = st.binary(min_size=6, max_size=6)
words16 = st.integers(0, 0xFFFF)
payloads = st.binary(max_size=200)


def _ours(packet: Packet) -> Ipv6Packet:
    return Ipv6Packet.parse(raw(packet))


def _checksum_agrees(data: bytes, layer: type[Packet]) -> None:
    """scapy recomputes the ICMPv6 checksum of what we built: the same value."""
    parsed = IPv6(data)
    message = parsed[layer]
    written = message.cksum
    del message.cksum
    assert IPv6(raw(parsed))[layer].cksum == written


# --- the fixed header and the chain -------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    addresses,
    addresses,
    st.integers(0, 255),
    st.integers(0, 0xFFFFF),
    st.integers(0, 255),
    payloads,
)
def test_scapy_header_parses_the_same(
    source: IPv6Address, destination: IPv6Address, tc: int, fl: int, hlim: int, data: bytes
) -> None:
    packet = IPv6(src=str(source), dst=str(destination), tc=tc, fl=fl, hlim=hlim, nh=59) / Raw(data)
    ours = _ours(packet)
    assert (ours.source, ours.destination) == (source, destination)
    assert (ours.traffic_class, ours.flow_label, ours.hop_limit) == (tc, fl, hlim)
    assert (ours.next_header, bytes(ours.payload)) == (59, data)


@settings(max_examples=200, deadline=None)
@given(
    addresses,
    addresses,
    st.integers(0, 255),
    st.integers(0, 0xFFFFF),
    st.integers(0, 255),
    payloads,
)
def test_our_header_dissects_the_same_in_scapy(
    source: IPv6Address, destination: IPv6Address, tc: int, fl: int, hlim: int, data: bytes
) -> None:
    built = Ipv6Packet(source, destination, 59, data, hlim, tc, fl).build()
    theirs = IPv6(built)
    assert (IPv6Address(theirs.src), IPv6Address(theirs.dst)) == (source, destination)
    assert (theirs.tc, theirs.fl, theirs.hlim, theirs.plen, theirs.nh) == (
        tc,
        fl,
        hlim,
        len(data),
        59,
    )


EXTENSIONS = st.sampled_from(["dest", "rt", "frag"])


def _scapy_chain(kinds: list[str], hop_by_hop: bool) -> Any:
    layers: Any = IPv6(src="2001:db8::1", dst="2001:db8::2")
    if hop_by_hop:
        layers = layers / IPv6ExtHdrHopByHop()
    for kind in kinds:
        if kind == "dest":
            layers = layers / IPv6ExtHdrDestOpt()
        elif kind == "rt":
            layers = layers / IPv6ExtHdrRouting(type=4, segleft=0, addresses=["2001:db8::9"])
        else:
            layers = layers / IPv6ExtHdrFragment(offset=0, m=0, id=7)
    return layers / ICMPv6EchoRequest(id=1, seq=2, data=b"ping")


@settings(max_examples=200, deadline=None)
@given(st.lists(EXTENSIONS, max_size=6), st.booleans())
def test_the_walker_finds_the_upper_layer_where_scapy_put_it(kinds: list[str], hbh: bool) -> None:
    packet = _scapy_chain(kinds, hbh)
    data = raw(packet)
    walk = walk_extension_headers(data, max_headers=64)
    assert walk.drop is None
    if "frag" in kinds:
        # The walk stops at the first fragment header: what follows waits for reassembly.
        assert walk.fragment is not None and walk.fragment.identification == 7
        expected = len(data) - len(raw(packet[IPv6ExtHdrFragment]))
        assert walk.fragment_offset == expected
        return
    assert walk.upper == NEXT_ICMPV6
    assert walk.upper_offset == len(data) - len(raw(packet[ICMPv6EchoRequest]))
    assert walk.headers == len(kinds) + int(hbh)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 0x1FFF), st.booleans(), st.integers(0, 2**32 - 1))
def test_fragment_header_both_ways(offset_units: int, more: bool, identification: int) -> None:
    packet = IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(
        offset=offset_units, m=int(more), id=identification, nh=NEXT_UDP
    )
    walk = walk_extension_headers(raw(packet))
    assert walk.fragment is not None
    assert (walk.fragment.offset, walk.fragment.more_fragments) == (offset_units * 8, more)
    assert (walk.fragment.identification, walk.fragment.next_header) == (identification, NEXT_UDP)
    ours = walk.fragment.build()
    theirs = IPv6ExtHdrFragment(ours)
    assert (theirs.offset, theirs.m, theirs.id, theirs.nh) == (
        offset_units,
        int(more),
        identification,
        17,
    )


def test_our_extension_headers_dissect_in_scapy() -> None:
    body = extension_header(NEXT_ROUTING, bytes([5, 2, 0, 0]))  # hop-by-hop: router alert
    routing = bytes([NEXT_DESTINATION, 0, 0, 0]) + bytes(4)  # type 0, no segments left
    destination = extension_header(NEXT_ICMPV6, b"")
    echo = Icmpv6Message.echo_request(1, 1, b"x").build(
        IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    )
    built = Ipv6Packet(
        IPv6Address("2001:db8::1"),
        IPv6Address("2001:db8::2"),
        NEXT_HOP_BY_HOP,
        body + routing + destination + echo,
    ).build()
    parsed = IPv6(built)
    assert parsed.haslayer(IPv6ExtHdrHopByHop) and parsed.haslayer(IPv6ExtHdrRouting)
    assert parsed.haslayer(IPv6ExtHdrDestOpt) and parsed[ICMPv6EchoRequest].id == 1
    walk = walk_extension_headers(built)
    assert (walk.drop, walk.upper, walk.router_alert, walk.headers) == (None, 58, True, 3)


# --- ICMPv6 -------------------------------------------------------------------


def _icmp(packet: Packet) -> tuple[Ipv6Packet, Icmpv6Message]:
    ours = _ours(packet)
    return ours, Icmpv6Message.parse(ours.payload, ours.source, ours.destination)


@settings(max_examples=150, deadline=None)
@given(unicast, unicast, words16, words16, payloads, st.booleans())
def test_echo_both_ways(
    source: IPv6Address, destination: IPv6Address, ident: int, seq: int, data: bytes, reply: bool
) -> None:
    layer = ICMPv6EchoReply if reply else ICMPv6EchoRequest
    _, message = _icmp(
        IPv6(src=str(source), dst=str(destination)) / layer(id=ident, seq=seq, data=data)
    )
    assert (message.identifier, message.sequence, bytes(message.payload)) == (ident, seq, data)
    assert message.icmp_type == (129 if reply else 128)
    make = Icmpv6Message.echo_reply if reply else Icmpv6Message.echo_request
    body = make(ident, seq, data).build(source, destination)
    built = Ipv6Packet(source, destination, NEXT_ICMPV6, body).build()
    theirs = IPv6(built)[layer]
    assert (theirs.id, theirs.seq, theirs.data) == (ident, seq, data)
    _checksum_agrees(built, layer)


ERRORS: list[tuple[type[Packet], int, str]] = [
    (ICMPv6DestUnreach, wire.TYPE_DESTINATION_UNREACHABLE, ""),
    (ICMPv6PacketTooBig, wire.TYPE_PACKET_TOO_BIG, "mtu"),
    (ICMPv6TimeExceeded, wire.TYPE_TIME_EXCEEDED, ""),
    (ICMPv6ParamProblem, wire.TYPE_PARAMETER_PROBLEM, "ptr"),
]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ERRORS), st.integers(0, 4), st.integers(0, 2**32 - 1), payloads)
def test_errors_both_ways(
    kind: tuple[type[Packet], int, str], code: int, rest: int, quoted: bytes
) -> None:
    layer, icmp_type, field = kind
    source, destination = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    fields = {field: rest} if field else {}
    invoking = IPv6(src="2001:db8::2", dst="2001:db8::3") / Raw(quoted)
    packet = IPv6(src=str(source), dst=str(destination)) / layer(code=code, **fields) / invoking
    _, message = _icmp(packet)
    assert (message.icmp_type, message.code, message.is_error) == (icmp_type, code, True)
    assert message.rest == (rest if field else 0)
    assert bytes(message.payload) == raw(invoking)
    body = Icmpv6Message.error(icmp_type, code, raw(invoking), rest if field else 0).build(
        source, destination
    )
    built = Ipv6Packet(source, destination, NEXT_ICMPV6, body).build()
    theirs = IPv6(built)[layer]
    assert theirs.code == code and (getattr(theirs, field) == rest if field else True)
    _checksum_agrees(built, layer)


@settings(max_examples=150, deadline=None)
@given(unicast, macs, st.booleans(), st.booleans(), st.booleans())
def test_neighbour_messages_both_ways(
    target: IPv6Address, mac: bytes, router: bool, solicited: bool, override: bool
) -> None:
    source, destination = IPv6Address("fe80::1"), IPv6Address("ff02::1:ff00:1")
    base = IPv6(src=str(source), dst=str(destination), hlim=255)
    _, message = _icmp(
        base / ICMPv6ND_NS(tgt=str(target)) / ICMPv6NDOptSrcLLAddr(lladdr=mac_to_str(mac))
    )
    ns = NeighborSolicitation.from_message(message)
    assert (ns.target, ns.options.source_lladdr) == (target, mac)
    _, message = _icmp(
        base
        / ICMPv6ND_NA(tgt=str(target), R=int(router), S=int(solicited), O=int(override))
        / ICMPv6NDOptDstLLAddr(lladdr=mac_to_str(mac))
    )
    na = NeighborAdvertisement.from_message(message)
    assert (na.target, na.router, na.solicited, na.override) == (
        target,
        router,
        solicited,
        override,
    )
    assert na.options.target_lladdr == mac
    ours = NeighborAdvertisement(target, router, solicited, override, NdOptions(target_lladdr=mac))
    built = Ipv6Packet(
        source, destination, NEXT_ICMPV6, ours.to_message().build(source, destination), 255
    ).build()
    theirs = IPv6(built)[ICMPv6ND_NA]
    flags = (theirs.R, theirs.S, theirs.O)
    assert (IPv6Address(theirs.tgt), *flags) == (target, router, solicited, override)
    assert IPv6(built)[ICMPv6NDOptDstLLAddr].lladdr == mac_to_str(mac)
    _checksum_agrees(built, ICMPv6ND_NA)
    ns_built = Ipv6Packet(
        source,
        destination,
        NEXT_ICMPV6,
        NeighborSolicitation(target, NdOptions(source_lladdr=mac))
        .to_message()
        .build(source, destination),
        255,
    ).build()
    assert IPv6Address(IPv6(ns_built)[ICMPv6ND_NS].tgt) == target
    _checksum_agrees(ns_built, ICMPv6ND_NS)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 255),
    st.booleans(),
    st.booleans(),
    words16,
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(1280, 9000),
    st.lists(st.tuples(unicast, st.integers(1, 128), st.booleans(), st.booleans()), max_size=3),
    macs,
)
def test_router_advertisement_both_ways(
    hop_limit: int,
    managed: bool,
    other: bool,
    lifetime: int,
    reachable: int,
    retrans: int,
    mtu: int,
    prefixes: list[tuple[IPv6Address, int, bool, bool]],
    mac: bytes,
) -> None:
    source, destination = IPv6Address("fe80::1"), IPv6Address("ff02::1")
    scapy_packet: Any = (
        IPv6(src=str(source), dst=str(destination), hlim=255)
        / ICMPv6ND_RA(
            chlim=hop_limit,
            M=int(managed),
            O=int(other),
            routerlifetime=lifetime,
            reachabletime=reachable,
            retranstimer=retrans,
        )
        / ICMPv6NDOptSrcLLAddr(lladdr=mac_to_str(mac))
        / ICMPv6NDOptMTU(mtu=mtu)
    )
    for prefix, length, on_link, auto in prefixes:
        scapy_packet = scapy_packet / ICMPv6NDOptPrefixInfo(
            prefix=str(prefix),
            prefixlen=length,
            L=int(on_link),
            A=int(auto),
            validlifetime=7200,
            preferredlifetime=3600,
        )
    _, message = _icmp(scapy_packet)
    ra = RouterAdvertisement.from_message(message)
    assert (ra.cur_hop_limit, ra.managed, ra.other, ra.router_lifetime) == (
        hop_limit,
        managed,
        other,
        lifetime,
    )
    assert (ra.reachable_time, ra.retrans_timer) == (reachable, retrans)
    assert (ra.options.source_lladdr, ra.options.mtu) == (mac, mtu)
    assert [
        (p.prefix, p.prefix_length, p.on_link, p.autonomous) for p in ra.options.prefixes
    ] == prefixes
    built = Ipv6Packet(
        source, destination, NEXT_ICMPV6, ra.to_message().build(source, destination), 255
    ).build()
    theirs = IPv6(built)
    assert theirs[ICMPv6ND_RA].chlim == hop_limit and theirs[ICMPv6ND_RA].routerlifetime == lifetime
    assert theirs[ICMPv6NDOptMTU].mtu == mtu
    found = []
    layer = theirs.getlayer(ICMPv6NDOptPrefixInfo)
    while layer is not None:
        found.append((IPv6Address(layer.prefix), layer.prefixlen, bool(layer.L), bool(layer.A)))
        layer = layer.payload.getlayer(ICMPv6NDOptPrefixInfo)
    assert found == prefixes
    _checksum_agrees(built, ICMPv6ND_RA)


def test_router_solicitation_and_redirect_both_ways() -> None:
    source, destination = IPv6Address("fe80::1"), IPv6Address("ff02::2")
    mac = bytes.fromhex("020000000009")
    _, message = _icmp(
        IPv6(src=str(source), dst=str(destination), hlim=255)
        / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(lladdr=mac_to_str(mac))
    )
    assert RouterSolicitation.from_message(message).options.source_lladdr == mac
    built = Ipv6Packet(
        source,
        destination,
        NEXT_ICMPV6,
        RouterSolicitation(NdOptions(source_lladdr=mac)).to_message().build(source, destination),
        255,
    ).build()
    _checksum_agrees(built, ICMPv6ND_RS)
    _, message = _icmp(
        IPv6(src="fe80::1", dst="2001:db8::5", hlim=255)
        / ICMPv6ND_Redirect(tgt="fe80::9", dst="2001:db8:9::1")
    )
    redirect = Redirect.from_message(message)
    assert (str(redirect.target), str(redirect.destination)) == ("fe80::9", "2001:db8:9::1")
    built = Ipv6Packet(
        source,
        IPv6Address("2001:db8::5"),
        NEXT_ICMPV6,
        redirect.to_message().build(source, IPv6Address("2001:db8::5")),
        255,
    ).build()
    assert IPv6(built)[ICMPv6ND_Redirect].dst == "2001:db8:9::1"
    _checksum_agrees(built, ICMPv6ND_Redirect)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 3, 4, 5, 6]), addresses), max_size=5))
def test_mldv2_report_both_ways(records: list[tuple[int, IPv6Address]]) -> None:
    source, destination = IPv6Address("fe80::1"), IPv6Address("ff02::16")
    theirs_built: Any = ICMPv6MLReport2(
        records=[ICMPv6MLDMultAddrRec(rtype=kind, dst=str(group)) for kind, group in records]
    )
    _, message = _icmp(IPv6(src=str(source), dst=str(destination), hlim=1) / theirs_built)
    report = Mldv2Report.from_message(message)
    assert [(r.record_type, r.address) for r in report.records] == records
    ours = Mldv2Report([MulticastRecord(kind, group) for kind, group in records])
    built = Ipv6Packet(
        source, destination, NEXT_ICMPV6, ours.to_message().build(source, destination), 1
    ).build()
    parsed = IPv6(built)[ICMPv6MLReport2]
    assert parsed.records_number == len(records)
    assert _flat_records(parsed) == records
    _checksum_agrees(built, ICMPv6MLReport2)


def _flat_records(report: Any) -> list[tuple[int, IPv6Address]]:
    """scapy hangs each following record off the previous one's payload: unnest them."""
    found = []
    for record in report.records:
        layer = record
        while isinstance(layer, ICMPv6MLDMultAddrRec):
            found.append((layer.rtype, IPv6Address(layer.dst)))
            layer = layer.payload
    return found


def test_prefix_information_of_ours_is_scapys() -> None:
    info = PrefixInformation(IPv6Address("2001:db8:1::"), 64, True, False, 100, 50)
    theirs = ICMPv6NDOptPrefixInfo(info.build())
    assert (theirs.prefix, theirs.prefixlen, theirs.L, theirs.A) == ("2001:db8:1::", 64, 1, 0)
    assert (theirs.validlifetime, theirs.preferredlifetime) == (100, 50)


# --- the walker fuzzed -------------------------------------------------------


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 64))
def test_the_walker_never_raises_and_does_bounded_work(data: bytes, max_headers: int) -> None:
    walk = walk_extension_headers(data, max_headers=max_headers)
    assert walk.headers <= max_headers
    assert walk.headers <= max(len(data) - 40, 0) // 8 + 1
    if walk.drop is None:
        assert walk.upper_offset <= len(data) or walk.fragment is not None


CHAIN_TYPES = st.sampled_from(
    [NEXT_HOP_BY_HOP, NEXT_ROUTING, NEXT_DESTINATION, NEXT_FRAGMENT, 58, 6, 17, 59, 140]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.tuples(CHAIN_TYPES, st.integers(0, 3), st.binary(max_size=30)), min_size=1, max_size=12
    ),
    st.integers(0, 255),
)
def test_the_walker_agrees_with_a_slow_reference_on_random_chains(
    chain: list[tuple[int, int, bytes]], first: int
) -> None:
    """Random chains: the walk ends where a plain reading of RFC 8200 §4 says."""
    body = bytearray()
    for index, (_, length, filler) in enumerate(chain):
        following = chain[index + 1][0] if index + 1 < len(chain) else 59
        header = bytearray(8 * (length + 1))
        header[0], header[1] = following, length
        header[2 : 2 + len(filler)] = filler[: len(header) - 2]
        body += header
    datagram = Ipv6Packet(IPv6Address(1), IPv6Address(2), chain[0][0], bytes(body)).build()
    walk = walk_extension_headers(datagram, max_headers=64)
    # Reference: follow the next-header fields of whole headers until a non-extension type.
    at, kind, seen = 40, chain[0][0], 0
    while kind in (0, 43, 44, 60) and walk.drop is None:
        if kind == 44:
            assert walk.fragment is not None and walk.fragment_offset == at
            return
        if kind == 0 and at != 40:
            raise AssertionError("hop-by-hop past the first header must be refused")
        size = (datagram[at + 1] + 1) * 8
        kind, at, seen = datagram[at], at + size, seen + 1
    if walk.drop is None:
        assert (walk.upper, walk.upper_offset, walk.headers) == (kind, at, seen)
    else:
        assert walk.drop in set(DropReason)


def test_a_chain_of_1000_headers_is_refused_after_the_limit() -> None:
    chain = b"".join(extension_header(NEXT_DESTINATION, b"") for _ in range(999))
    chain += extension_header(NEXT_ICMPV6, b"")
    datagram = Ipv6Packet(IPv6Address(1), IPv6Address(2), NEXT_DESTINATION, chain).build()
    walk = walk_extension_headers(datagram)
    assert walk.drop is DropReason.IPV6_TOO_MANY_EXTENSION_HEADERS
    assert walk.headers == 16
    whole = walk_extension_headers(datagram, max_headers=1000)
    assert (whole.drop, whole.upper, whole.headers, whole.upper_offset) == (None, 58, 1000, 8040)
    scapy_view = IPv6(datagram)
    assert scapy_view.nh == NEXT_DESTINATION


def test_our_hop_by_hop_mld_header_is_the_one_scapy_reads_as_router_alert() -> None:
    from scapy.layers.inet6 import RouterAlert

    header = extension_header(NEXT_ICMPV6, bytes([5, 2, 0, 0]))
    parsed = IPv6ExtHdrHopByHop(header)
    assert any(isinstance(option, RouterAlert) for option in parsed.options)
    _ = NEXT_FRAGMENT
