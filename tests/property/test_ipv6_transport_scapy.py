"""TCP and UDP over IPv6 against scapy's IPv6 layers: checksums both ways (RFC 8200 §8.1).

simtcp -> scapy: a segment or datagram simtcp built for IPv6, put behind scapy's
``IPv6`` header, dissects into the same fields, and scapy's own checksum of it
(chksum deleted, rebuilt) is the one simtcp wrote. scapy -> simtcp: what scapy
builds over IPv6, simtcp parses with the checksum verified; one flipped bit
fails it. The pseudo-header arithmetic also agrees with the slow word loop.
"""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.compat import raw
from scapy.layers.inet import TCP, UDP
from scapy.layers.inet6 import IPv6

from simtcp.config import Ip6Config, StackConfig
from simtcp.errors import DropReason, ParseError
from simtcp.stack import Stack
from simtcp.wire.checksum import ipv6_pseudo_header_sum, pseudo_header_sum, reference_checksum
from simtcp.wire.ethernet import ETHERTYPE_IPV6, EthernetFrame
from simtcp.wire.ipv6 import Ipv6Packet
from simtcp.wire.tcp import MssOption, NopOption, TcpSegment, TimestampsOption
from simtcp.wire.udp import UdpDatagram

addresses = st.integers(min_value=0, max_value=(1 << 128) - 1).map(IPv6Address)
ports = st.integers(min_value=0, max_value=0xFFFF)
words = st.integers(min_value=0, max_value=0xFFFFFFFF)
payloads = st.binary(max_size=3000) | st.binary(min_size=4097, max_size=9000)
option_sets = st.sampled_from(
    [
        (),
        (MssOption(1220),),
        (NopOption(), NopOption(), TimestampsOption(123456, 654321)),
    ]
)


def scapy_tcp_checksum(source: IPv6Address, destination: IPv6Address, segment: bytes) -> int:
    packet = IPv6(src=str(source), dst=str(destination)) / TCP(segment)
    del packet[TCP].chksum
    return int(IPv6(raw(packet))[TCP].chksum)


@settings(max_examples=150, deadline=None)
@given(addresses, addresses, ports, ports, words, words, option_sets, payloads)
def test_tcp_over_ipv6_checksum_matches_scapy(
    source: IPv6Address,
    destination: IPv6Address,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    options: tuple[object, ...],
    payload: bytes,
) -> None:
    segment = TcpSegment(sport, dport, seq, ack, 0x18, 65535, options, payload)  # type: ignore[arg-type]
    built = segment.build_ipv6(source, destination)
    dissected = IPv6(raw(IPv6(src=str(source), dst=str(destination)) / TCP(built)))[TCP]
    assert (dissected.sport, dissected.dport, dissected.seq, dissected.ack) == (
        sport,
        dport,
        seq,
        ack,
    )
    assert dissected.chksum == scapy_tcp_checksum(source, destination, built)
    parsed = TcpSegment.parse_ipv6(built, source=source, destination=destination)
    assert bytes(parsed.payload) == payload


@settings(max_examples=150, deadline=None)
@given(addresses, addresses, ports, ports, st.binary(max_size=2000), st.data())
def test_scapy_tcp_over_ipv6_parses_and_a_flipped_bit_fails(
    source: IPv6Address,
    destination: IPv6Address,
    sport: int,
    dport: int,
    payload: bytes,
    data: st.DataObject,
) -> None:
    packet = (
        IPv6(src=str(source), dst=str(destination))
        / TCP(sport=sport, dport=dport, seq=7, ack=9, flags="PA", window=1000)
        / payload
    )
    segment = raw(IPv6(raw(packet))[TCP])
    parsed = TcpSegment.parse_ipv6(segment, source=source, destination=destination)
    assert (parsed.source_port, parsed.destination_port, bytes(parsed.payload)) == (
        sport,
        dport,
        payload,
    )
    bit = data.draw(st.integers(min_value=0, max_value=len(segment) * 8 - 1))
    damaged = bytearray(segment)
    damaged[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ParseError):
        TcpSegment.parse_ipv6(bytes(damaged), source=source, destination=destination)


@settings(max_examples=150, deadline=None)
@given(addresses, addresses, ports, ports, st.binary(max_size=2000))
def test_udp_over_ipv6_checksum_matches_scapy(
    source: IPv6Address, destination: IPv6Address, sport: int, dport: int, payload: bytes
) -> None:
    built = UdpDatagram(sport, dport, payload).build_ipv6(source, destination)
    packet = IPv6(src=str(source), dst=str(destination)) / UDP(built)
    del packet[UDP].chksum
    expected = IPv6(raw(packet))[UDP].chksum
    assert int.from_bytes(built[6:8], "big") == expected
    assert expected != 0  # RFC 8200 §8.1: a computed zero is sent as 0xffff
    scapy_built = raw(
        IPv6(
            raw(
                IPv6(src=str(source), dst=str(destination))
                / UDP(sport=sport, dport=dport)
                / payload
            )
        )[UDP]
    )
    parsed = UdpDatagram.parse_ipv6(scapy_built, source=source, destination=destination)
    assert bytes(parsed.payload) == payload


def test_udp_over_ipv6_without_checksum_is_dropped() -> None:
    source, destination = IPv6Address("2001:db8::1"), IPv6Address("2001:db8::2")
    datagram = bytearray(UdpDatagram(1, 2, b"hi").build_ipv6(source, destination))
    datagram[6:8] = b"\x00\x00"
    with pytest.raises(ParseError) as error:
        UdpDatagram.parse_ipv6(bytes(datagram), source=source, destination=destination)
    assert error.value.reason is DropReason.UDP_ZERO_CHECKSUM


@settings(max_examples=200, deadline=None)
@given(addresses, addresses, st.integers(min_value=0, max_value=0xFFFF))
def test_the_ipv4_arithmetic_over_128_bit_values_is_the_ipv6_pseudo_header(
    source: IPv6Address, destination: IPv6Address, length: int
) -> None:
    """Why ``TcpSegment.build_ipv6`` may reuse the inlined IPv4 arithmetic."""
    ipv4_style = pseudo_header_sum(int(source), int(destination), 6, length)
    assert ipv4_style % 0xFFFF == ipv6_pseudo_header_sum(source, destination, length, 6) % 0xFFFF
    pseudo = source.packed + destination.packed + length.to_bytes(4, "big") + b"\x00\x00\x00\x06"
    assert (~reference_checksum(pseudo) & 0xFFFF) % 0xFFFF == ipv4_style % 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([6, 17]))
def test_arbitrary_transport_bytes_over_ipv6_never_raise(data: bytes, next_header: int) -> None:
    """Whatever follows an IPv6 header as TCP or UDP is parsed, or dropped and counted."""
    stack = Stack(StackConfig(ip6=Ip6Config(dad_transmits=0)))
    stack.add_interface("eth0", mac="02:00:00:00:00:01")
    stack.add_address("eth0", "2001:db8::1/64")
    stack.handle_timer(now=0)  # DAD is off: the address is usable at once
    stack.tcp_listen(80)
    stack.udp_bind(53)
    source, destination = IPv6Address("2001:db8::2"), IPv6Address("2001:db8::1")
    packet = Ipv6Packet(source, destination, next_header, data).build()
    frame = EthernetFrame(stack.interface_mac("eth0"), b"\x02" * 6, ETHERTYPE_IPV6, packet)
    before = stack.stats["tcp.segments_in"] + stack.stats["udp.datagrams_in"]
    drops = sum(count for name, count in stack.stats.counters().items() if name.startswith("drop."))
    stack.receive_frame("eth0", frame.build(), now=0)
    after = stack.stats["tcp.segments_in"] + stack.stats["udp.datagrams_in"]
    dropped = sum(
        count for name, count in stack.stats.counters().items() if name.startswith("drop.")
    )
    assert after > before or dropped > drops  # delivered, or dropped and counted
