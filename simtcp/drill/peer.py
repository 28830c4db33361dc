"""The remote side of a drill: sequence spaces, and frames to and from the stack under test.

packetdrill writes every sequence number relative to the initial sequence
number of the side that sends it: the remote's ISN is chosen by the runner,
the stack's is learned from the first SYN it sends. :class:`SequenceSpace`
does that arithmetic modulo 2**32 (RFC 9293 §3.4), so scripts run unchanged
whatever the ISNs, across the wrap.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address

from ..wire import icmpv6
from ..wire.address import Address
from ..wire.arp import OPERATION_REPLY, OPERATION_REQUEST, ArpPacket
from ..wire.checksum import Buffer
from ..wire.ethernet import ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetFrame
from ..wire.icmp import TYPE_TIME_EXCEEDED, IcmpMessage
from ..wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, Ipv4Packet
from ..wire.ipv6 import NEXT_ICMPV6, NEXT_TCP, Ipv6Packet
from ..wire.tcp import ACK, SackOption, TcpOption, TcpSegment, TimestampsOption
from .model import IcmpEvent

SEQUENCE_MODULUS = 2**32


class SequenceSpace:
    """One side's sequence numbers: script-relative <-> wire, modulo 2**32."""

    __slots__ = ("isn",)

    def __init__(self, isn: int | None = None) -> None:
        self.isn = isn
        """The side's initial sequence number; None until learned (treated as 0)."""

    def to_wire(self, relative: int) -> int:
        return ((self.isn or 0) + relative) % SEQUENCE_MODULUS

    def to_script(self, wire: int) -> int:
        return (wire - (self.isn or 0)) % SEQUENCE_MODULUS


def payload_pattern(offset: int, length: int) -> bytes:
    """The bytes at stream offset ``offset``: every drill stream carries ``k % 251`` at byte k.

    A prime period makes a shifted or repeated block visible when compared.
    """
    start = offset % 251
    period = bytes(range(251))
    repeated = period[start:] + period * (length // 251 + 1)
    return repeated[:length]


@dataclass(slots=True, kw_only=True)
class Endpoints:
    """Addresses and ports of the connection the script is talking about."""

    local_mac: bytes
    remote_mac: bytes
    local_ip: Address
    remote_ip: Address
    """IPv4 (``int``) or IPv6 (``IPv6Address``): the run's family (``--ip_version``)."""
    local_port: int
    remote_port: int


def build_tcp_frame(
    endpoints: Endpoints, segment: TcpSegment, *, ttl: int = 64, tos: int = 0
) -> bytes:
    """An Ethernet/IPv4 (or IPv6) frame carrying ``segment`` from the remote to the stack."""
    remote, local = endpoints.remote_ip, endpoints.local_ip
    if isinstance(remote, IPv6Address) and isinstance(local, IPv6Address):
        packet6 = Ipv6Packet(
            remote,
            local,
            NEXT_TCP,
            segment.build_ipv6(remote, local),
            hop_limit=ttl,
            traffic_class=tos,
        )
        return build_ipv6_frame(endpoints, packet6)
    assert isinstance(remote, int) and isinstance(local, int)
    tcp_bytes = segment.build(remote, local)
    packet = Ipv4Packet(
        remote,
        local,
        PROTOCOL_TCP,
        tcp_bytes,
        ttl=ttl,
        dont_fragment=True,
        tos=tos,
    )
    return EthernetFrame(
        endpoints.local_mac, endpoints.remote_mac, ETHERTYPE_IPV4, packet.build()
    ).build()


def build_ipv4_frame(endpoints: Endpoints, packet: Ipv4Packet) -> bytes:
    return EthernetFrame(
        endpoints.local_mac, endpoints.remote_mac, ETHERTYPE_IPV4, packet.build()
    ).build()


def build_ipv6_frame(endpoints: Endpoints, packet: Ipv6Packet) -> bytes:
    return EthernetFrame(
        endpoints.local_mac, endpoints.remote_mac, ETHERTYPE_IPV6, packet.build()
    ).build()


def arp_frame(
    *,
    operation: int,
    sender_mac: bytes,
    sender_ip: int,
    target_mac: bytes,
    target_ip: int,
    destination: bytes,
) -> bytes:
    packet = ArpPacket(operation, sender_mac, sender_ip, target_mac, target_ip)
    return EthernetFrame(destination, sender_mac, ETHERTYPE_ARP, packet.build()).build()


@dataclass(slots=True, kw_only=True)
class Outbound:
    """One IP datagram the stack sent, with its TCP segment when it carries one."""

    destination: Address
    tos: int
    """IPv4's TOS or IPv6's traffic class."""
    ttl: int
    """IPv4's TTL or IPv6's hop limit."""
    segment: TcpSegment | None


@dataclass(slots=True, kw_only=True)
class Solicitation:
    """A neighbor solicitation the stack sent (RFC 4861 §7.2.2): IPv6's ARP request."""

    source: IPv6Address
    source_mac: bytes
    target: IPv6Address


def classify_frame(frame: bytes) -> ArpPacket | Outbound | Solicitation | None:
    """An outgoing frame as an ARP packet, an IP datagram, a neighbor solicitation, or
    None for anything else."""
    try:
        ethernet = EthernetFrame.parse(frame)
        if ethernet.ethertype == ETHERTYPE_ARP:
            return ArpPacket.parse(ethernet.payload)
        if ethernet.ethertype == ETHERTYPE_IPV6:
            return _classify_ipv6(ethernet.payload, ethernet.source)
        if ethernet.ethertype != ETHERTYPE_IPV4:
            return None
        packet = Ipv4Packet.parse(ethernet.payload)
        segment = None
        if packet.protocol == PROTOCOL_TCP and not packet.is_fragment:
            segment = TcpSegment.parse(
                bytes(packet.payload), source=packet.source, destination=packet.destination
            )
        return Outbound(
            destination=packet.destination, tos=packet.tos, ttl=packet.ttl, segment=segment
        )
    except ValueError:
        return None


def _classify_ipv6(data: Buffer, source_mac: bytes) -> Outbound | Solicitation | None:
    """The stack sends no extension headers, so the next header is the upper layer's."""
    packet = Ipv6Packet.parse(data)
    segment = None
    if packet.next_header == NEXT_ICMPV6:
        message = icmpv6.Icmpv6Message.parse(packet.payload, packet.source, packet.destination)
        if message.icmp_type != icmpv6.TYPE_NEIGHBOR_SOLICITATION:
            return None
        solicitation = icmpv6.NeighborSolicitation.from_message(message)
        return Solicitation(source=packet.source, source_mac=source_mac, target=solicitation.target)
    if packet.next_header == NEXT_TCP:
        segment = TcpSegment.parse_ipv6(
            bytes(packet.payload), source=packet.source, destination=packet.destination
        )
    return Outbound(
        destination=packet.destination,
        tos=packet.traffic_class,
        ttl=packet.hop_limit,
        segment=segment,
    )


def neighbor_answer(
    solicitation: Solicitation, *, answer_mac: bytes, local_mac: bytes, stack_ips: set[Address]
) -> bytes | None:
    """The remote side's solicited advertisement (RFC 4861 §7.2.4) for any address but the
    stack's own (its DAD probes, from ::, go unanswered: nobody else holds the address)."""
    if solicitation.target in stack_ips or not solicitation.source:
        return None
    advert = icmpv6.NeighborAdvertisement(
        solicitation.target,
        solicited=True,
        override=True,
        options=icmpv6.NdOptions(target_lladdr=answer_mac),
    ).to_message()
    packet = Ipv6Packet(
        solicitation.target,
        solicitation.source,
        NEXT_ICMPV6,
        advert.build(solicitation.target, solicitation.source),
        hop_limit=255,  # RFC 4861 §7.1.2: anything else is dropped
    )
    return EthernetFrame(
        solicitation.source_mac, answer_mac, ETHERTYPE_IPV6, packet.build()
    ).build()


def arp_answer(request: ArpPacket, *, answer_mac: bytes, stack_ips: set[Address]) -> bytes | None:
    """The remote side's reply to an ARP request from the stack (any address but the stack's)."""
    if request.operation != OPERATION_REQUEST or request.target_ip in stack_ips:
        return None
    return arp_frame(
        operation=OPERATION_REPLY,
        sender_mac=answer_mac,
        sender_ip=request.target_ip,
        target_mac=request.sender_mac,
        target_ip=request.sender_ip,
        destination=request.sender_mac,
    )


def options_to_wire(
    options: tuple[TcpOption, ...],
    *,
    acked: SequenceSpace,
    echo: dict[int, int],
    latest_echo: int | None,
) -> tuple[TcpOption, ...]:
    """Script options of an inbound segment as they go on the wire.

    SACK edges are relative to the stack's ISN (they cover data the stack sent);
    a TS ecr that matches a TSval the script expected of the stack is replaced
    by the TSval the stack actually sent, as packetdrill does.
    """
    result: list[TcpOption] = []
    for option in options:
        if isinstance(option, SackOption):
            option = SackOption(
                tuple((acked.to_wire(left), acked.to_wire(right)) for left, right in option.blocks)
            )
        elif isinstance(option, TimestampsOption) and option.echo_reply:
            actual = echo.get(option.echo_reply, latest_echo)
            if actual is not None:
                option = TimestampsOption(option.value, actual)
        result.append(option)
    return tuple(result)


def options_to_script(
    options: tuple[TcpOption, ...], *, acked: SequenceSpace
) -> tuple[TcpOption, ...]:
    """Options of an outbound segment with SACK edges made relative to the remote's ISN."""
    return tuple(
        SackOption(
            tuple((acked.to_script(left), acked.to_script(right)) for left, right in option.blocks)
        )
        if isinstance(option, SackOption)
        else option
        for option in options
    )


ICMP_CODES = {
    "net_unreachable": 0,
    "host_unreachable": 1,
    "protocol_unreachable": 2,
    "port_unreachable": 3,
    "frag_needed": 4,
    "source_route_failed": 5,
    "net_unknown": 6,
    "host_unknown": 7,
    "host_isolated": 8,
    "net_prohibited": 9,
    "host_prohibited": 10,
    "net_tos": 11,
    "host_tos": 12,
    "prohibited": 13,
}
"""ICMP Destination Unreachable codes by packetdrill's names (RFC 792, RFC 1812 §5.2.7.1)."""


ICMPV6_EQUIVALENTS = {
    0: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_NO_ROUTE),
    1: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_ADDRESS_UNREACHABLE),
    2: (icmpv6.TYPE_PARAMETER_PROBLEM, 1),  # unrecognized next header (RFC 4443 §3.4)
    3: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_PORT_UNREACHABLE),
    4: (icmpv6.TYPE_PACKET_TOO_BIG, 0),
    9: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_ADMIN_PROHIBITED),
    10: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_ADMIN_PROHIBITED),
    13: (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_ADMIN_PROHIBITED),
}
"""The ICMPv6 (RFC 4443) message an IPv6 run sends for each ICMP unreachable code a script
names (others: no route); ``time_exceeded`` is ICMPv6's hop limit exceeded."""


def icmp_error_frame(
    ends: Endpoints, event: IcmpEvent, code: int, *, sender: SequenceSpace, acked: SequenceSpace
) -> bytes:
    """An ICMP error from the remote quoting the segment the line names (RFC 792: the IP
    header and the first 8 bytes of the datagram; over IPv6 the ICMPv6 equivalent)."""
    quoted = event.quoted
    offending = TcpSegment(
        ends.local_port,
        ends.remote_port,
        sender.to_wire(quoted.seq_start if quoted else 0),
        acked.to_wire(quoted.ack) if quoted and quoted.ack is not None else 0,
        quoted.flags if quoted else ACK,
        0,
    )
    extra = quoted.payload_length if quoted else 0
    local, remote = ends.local_ip, ends.remote_ip
    if isinstance(local, IPv6Address) and isinstance(remote, IPv6Address):
        return _icmpv6_error_frame(ends, event, code, offending, extra, local, remote)
    assert isinstance(local, int) and isinstance(remote, int)
    original = Ipv4Packet(local, remote, PROTOCOL_TCP, offending.build(local, remote))
    quoted_bytes = (
        original.build_header(len(original.payload) + extra) + bytes(original.payload)[:8]
    )
    if event.icmp_type == "unreachable":
        message = IcmpMessage.destination_unreachable(code, quoted_bytes, event.mtu or 0)
    else:
        message = IcmpMessage(TYPE_TIME_EXCEEDED, 0, 0, quoted_bytes)
    packet = Ipv4Packet(remote, local, PROTOCOL_ICMP, message.build())
    return build_ipv4_frame(ends, packet)


def _icmpv6_error_frame(
    ends: Endpoints,
    event: IcmpEvent,
    code: int,
    offending: TcpSegment,
    extra: int,
    local: IPv6Address,
    remote: IPv6Address,
) -> bytes:
    tcp_bytes = offending.build_ipv6(local, remote)
    original = Ipv6Packet(local, remote, NEXT_TCP, tcp_bytes)
    invoking = original.build_header(len(tcp_bytes) + extra) + tcp_bytes[:8]
    if event.icmp_type == "unreachable":
        icmp_type, icmp_code = ICMPV6_EQUIVALENTS.get(
            code, (icmpv6.TYPE_DESTINATION_UNREACHABLE, icmpv6.CODE_NO_ROUTE)
        )
    else:
        icmp_type, icmp_code = icmpv6.TYPE_TIME_EXCEEDED, icmpv6.CODE_HOP_LIMIT_EXCEEDED
    rest = (event.mtu or 0) if icmp_type == icmpv6.TYPE_PACKET_TOO_BIG else 0
    message = icmpv6.Icmpv6Message(icmp_type, icmp_code, rest, invoking)
    packet = Ipv6Packet(remote, local, NEXT_ICMPV6, message.build(remote, local))
    return build_ipv6_frame(ends, packet)
