"""TCP over IPv6 between two in-memory layers: addresses, MSS, hashes, ICMPv6 errors, cookies."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from simtcp.errors import AddressError, AddressInUseError, NoRouteError
from simtcp.events import ConnectionAccepted, ConnectionEstablished, ConnectionFailed
from simtcp.rng import SeededRandom
from simtcp.tcp import TcpConfig
from simtcp.tcp.isn import initial_sequence_number
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.address import format_address, parse_address
from simtcp.wire.tcp import SYN, TcpSegment

from .harness import A6_ADDR, A_ADDR, B6_ADDR, B_ADDR, Pair, make_pair

FAST = TcpConfig(msl=1 * SECOND)


def connected(pair: Pair) -> tuple[int, int]:
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(pair.b.address, 80, now=0)
    pair.run(1 * SECOND)
    accepted = [e for e in pair.b.host.take_events() if isinstance(e, ConnectionAccepted)]
    assert len(accepted) == 1
    pair.a.host.take_events()
    return client, accepted[0].connection


def transfer(pair: Pair, client: int, server: int, payload: bytes) -> bytes:
    received = bytearray()
    offset = 0

    def pump() -> None:
        nonlocal offset
        if offset < len(payload):
            offset += pair.a.layer.send(client, payload[offset : offset + 65536], now=pair.now)
        received.extend(pair.b.layer.receive(server, now=pair.now))

    pump()
    pair.run(pair.now + 60 * SECOND, on_step=pump, stop=lambda: len(received) >= len(payload))
    return bytes(received)


def test_handshake_transfer_and_close_over_ipv6() -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    listener = pair.b.layer.listen(80)
    client = pair.a.layer.connect(B6_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    assert pair.a.host.take_events() == [ConnectionEstablished(connection=client)]
    accepted = pair.b.host.take_events()[0]
    assert isinstance(accepted, ConnectionAccepted)
    assert accepted.listener == listener
    assert accepted.remote_address == "2001:db8::a"
    server = accepted.connection
    info = pair.b.layer.info(server)
    assert (info.local_address, info.remote_address) == ("2001:db8::b", "2001:db8::a")
    assert info.state == "ESTABLISHED"
    # RFC 9293 §3.7.1 / RFC 8200 §8.3: MTU 1500 - 60 = 1440, less 12 for timestamps.
    assert pair.a.layer.info(client).mss == 1440 - 12
    payload = bytes(range(256)) * 1024
    assert transfer(pair, client, server, payload) == payload
    pair.a.layer.close(client, now=pair.now)
    pair.b.layer.close(server, now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert pair.a.layer.info(client).state == "TIME-WAIT"
    pair.run(pair.now + 5 * SECOND)
    assert pair.a.layer.connection_count() == 0
    assert pair.b.layer.connection_count() == 0


def test_segments_on_the_wire_carry_the_ipv6_mss_option() -> None:
    pair = make_pair(FAST, FAST, ipv6=True, mtu=1280)
    pair.b.layer.listen(80)
    pair.a.layer.connect(B6_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    syns = [segment for _, _, segment in pair.log if segment.flags & SYN]
    assert [segment.mss for segment in syns] == [1220, 1220]  # 1280 - 60


def test_a_syn_without_mss_option_gets_ipv6s_default_1220() -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    pair.b.layer.listen(80)
    syn = TcpSegment(40000, 80, 1000, 0, SYN, 65535)
    pair.b.receive(syn, source=A6_ADDR, now=0)
    (reply,) = pair.b.host.take_sent()
    assert reply.flags & SYN and reply.mss == 1440
    (info,) = pair.b.layer.connections_info()
    assert info.mss == 1220  # RFC 9293 §3.7.1: 536 is IPv4's default


def test_isn_hashes_the_whole_ipv6_address() -> None:
    rng = SeededRandom(7)
    one = initial_sequence_number(rng, A6_ADDR, 1, B6_ADDR, 2, now=0)
    # Addresses that differ only in their top 64 bits, or share the low 32 bits with IPv4.
    other = initial_sequence_number(rng, IPv6Address("2001:db9::a"), 1, B6_ADDR, 2, now=0)
    low = initial_sequence_number(rng, 0xA, 1, 0xB, 2, now=0)
    assert len({one, other, low}) == 3
    # IPv4 ISNs are unchanged by IPv6 support: the address is hashed as one integer.
    assert initial_sequence_number(rng, A_ADDR, 1, B_ADDR, 2, now=0) == (
        rng.keyed_hash32("tcp.isn", A_ADDR, 1, B_ADDR, 2)
    )


def test_listener_wildcards_by_family() -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    layer = pair.b.layer
    six_only = layer.listen(80, address=IPv6Address("::"))
    with pytest.raises(AddressInUseError):
        layer.listen(80, address=B6_ADDR)
    with pytest.raises(AddressInUseError):
        layer.listen(80)  # the dual wildcard collides with anything on the port
    with pytest.raises(AddressError):
        layer.listen(81, address=IPv6Address("2001:db8::99"))
    assert layer.info(six_only).local_address == "::"
    assert layer.info(six_only).remote_address == "::"
    client = pair.a.layer.connect(B6_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    assert pair.a.host.take_events() == [ConnectionEstablished(connection=client)]


def test_ipv4_mapped_destination_connects_over_ipv4() -> None:
    pair = make_pair(FAST, FAST)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(IPv6Address("::ffff:10.0.0.2"), 80, now=0)
    pair.run(1 * SECOND)
    assert pair.a.host.take_events() == [ConnectionEstablished(connection=client)]
    assert pair.a.layer.info(client).remote_address == "10.0.0.2"


def test_no_ipv6_route_raises() -> None:
    pair = make_pair(FAST, FAST)  # IPv4-only hosts
    with pytest.raises(NoRouteError, match="2001:db8::b"):
        pair.a.layer.connect(B6_ADDR, 80, now=0)


def icmp6(pair: Pair, client: int, icmp_type: int, code: int, mtu: int = 0) -> None:
    info = pair.a.layer.info(client)
    pair.a.layer.icmpv6_error_received(
        icmp_type=icmp_type,
        code=code,
        mtu=mtu,
        quoted_source=A6_ADDR,
        quoted_destination=B6_ADDR,
        quoted_source_port=info.local_port,
        quoted_destination_port=80,
        quoted_seq=info.snd_una,
        now=pair.now,
    )


def test_icmpv6_port_unreachable_fails_a_connecting_socket() -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    client = pair.a.layer.connect(B6_ADDR, 80, now=0)
    icmp6(pair, client, 1, 4)  # RFC 4443 §3.1 code 4: port unreachable (hard)
    assert ConnectionFailed(connection=client, icmp_type=1, code=4, ipv6=True) in (
        pair.a.host.events
    )


@pytest.mark.parametrize(("icmp_type", "code"), [(1, 0), (1, 3), (3, 0), (4, 0)])
def test_icmpv6_soft_errors_are_remembered(icmp_type: int, code: int) -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    client = pair.a.layer.connect(B6_ADDR, 80, now=0)
    icmp6(pair, client, icmp_type, code)
    assert pair.a.layer.info(client).state == "SYN-SENT"
    assert pair.a.layer.take_soft_error(client) == (icmp_type, code)


def test_packet_too_big_lowers_the_mss_but_not_below_1280s() -> None:
    pair = make_pair(FAST, FAST, ipv6=True)
    client, server = connected(pair)
    pair.a.layer.send(client, b"x" * 20000, now=pair.now)
    icmp6(pair, client, 2, 0, mtu=1400)
    assert pair.a.layer.info(client).mss == 1400 - 60 - 12
    icmp6(pair, client, 2, 0, mtu=1000)  # RFC 8201 §4: taken as 1280, never lower
    assert pair.a.layer.info(client).mss == 1280 - 60 - 12
    assert pair.a.host.stats["tcp.pmtu_updates"] == 2
    data = [s for s in pair.a.host.take_sent() if s.payload]
    assert data and max(len(s.payload) for s in data[-3:]) <= 1280 - 60 - 12
    pair.run(pair.now + 5 * SECOND)
    assert len(pair.b.layer.receive(server, now=pair.now)) == 20000


def test_syn_cookies_over_ipv6() -> None:
    config = TcpConfig(msl=1 * SECOND, backlog=1, syn_cookies=True)
    pair = make_pair(FAST, config, ipv6=True)
    pair.b.layer.listen(80, backlog=1)
    # Fill the SYN queue with a half-open connection from a peer that never answers.
    pair.b.receive(TcpSegment(5555, 80, 1, 0, SYN, 65535), source=A6_ADDR, now=0)
    pair.b.host.take_sent()
    client = pair.a.layer.connect(B6_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    assert ConnectionEstablished(connection=client) in pair.a.host.events
    stats = pair.b.host.stats
    assert stats["tcp.syn_cookies_sent"] >= 1
    assert stats["tcp.syn_cookies_accepted"] == 1


def test_loss_and_reorder_deliver_every_byte_once_in_order() -> None:
    order = iter(range(1_000_000))

    def fault(segment: TcpSegment, sender: object) -> list[int]:
        n = next(order)
        if n % 17 == 5:
            return []  # lost
        if n % 11 == 3:
            return [3 * MILLISECOND]  # overtaken by the next ones
        return [0]

    pair = make_pair(FAST, FAST, ipv6=True, fault=fault)
    client, server = connected(pair)
    payload = bytes(SeededRandom(3).stream("data").randbytes(300_000))
    assert transfer(pair, client, server, payload) == payload


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # RFC 5952 §4.2.3: leftmost run
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # §4.2.2: no :: for one word
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),  # §5: mapped ends in a dotted quad
        ("[::1]", "::1"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_addresses_print_in_rfc5952_form(text: str, printed: str) -> None:
    assert format_address(parse_address(text)) == printed


def test_a_cookie_carries_ipv6s_mss_values() -> None:
    from simtcp.tcp.syncookie_codec import SynCookies

    cookies = SynCookies(SeededRandom(5))
    for local, remote, restored in ((A6_ADDR, B6_ADDR, 1220), (A_ADDR, B_ADDR, 536)):
        isn = cookies.isn(
            local=local,
            local_port=80,
            remote=remote,
            remote_port=4000,
            peer_isn=99,
            mss=1220,
            now=0,
        )
        options = cookies.validate(
            local=local,
            local_port=80,
            remote=remote,
            remote_port=4000,
            seg_seq=100,
            seg_ack=isn + 1,
            tsecr=None,
            now=0,
        )
        assert options is not None and options.mss == restored
