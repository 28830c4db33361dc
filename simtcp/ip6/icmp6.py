"""ICMPv6 (RFC 4443): echo on every address, errors we send (rate limited), errors we get.

Messages to us are dispatched by type: echo here, Neighbor Discovery to
:mod:`.nd`, MLD to :mod:`.mld`. A packet too big lowers the path MTU toward
the quoted destination (RFC 8201 §4), which ``Stack.route6_source`` reports
and TCP's MSS follows; one quoting a TCP segment does so only if TCP has the
quoted sequence number in flight (RFC 5927 §4.1), else it is dropped and
counted (``drop.packet_too_big_not_in_flight``). Errors we send obey RFC 4443 §2.4: never about an
ICMPv6 error, a multicast destination or link-layer multicast (except packet
too big and parameter problem code 2 for an option that asks for it), or a
source that is not unicast; at most ``error_rate`` a second (§2.4(f)).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address

from ..config import Ip6Config
from ..errors import DropReason, ParseError
from ..events import EchoReplyReceived, Event, IcmpErrorReceived
from ..icmp import TokenBucket
from ..stats import Stats
from ..time import Instant
from ..wire import icmpv6 as wire
from ..wire.checksum import Buffer
from ..wire.icmpv6 import Icmpv6Message
from ..wire.ipv6 import NEXT_ICMPV6, NEXT_TCP, Ipv6Packet, walk_extension_headers
from .addresses import UNSPECIFIED, is_multicast6
from .mld import Mld
from .nd import ND_TYPES, NeighbourDiscovery
from .output import Ipv6Output, Link6

MLD_TYPES = frozenset(
    {wire.TYPE_MLD_QUERY, wire.TYPE_MLD_V1_REPORT, wire.TYPE_MLD_V1_DONE, wire.TYPE_MLD_V2_REPORT}
)


class Icmpv6:
    """ICMPv6 in and out for the IPv6 layer."""

    def __init__(
        self,
        config: Ip6Config,
        *,
        output: Ipv6Output,
        nd: NeighbourDiscovery,
        mld: Mld,
        stats: Stats,
        emit: Callable[[Event], None],
    ) -> None:
        self._out = output
        self._nd = nd
        self._mld = mld
        self._stats = stats
        self._emit = emit
        self._bucket = TokenBucket(config.error_rate, config.error_burst)
        self.tcp: object = None
        """The TCP layer; errors about TCP segments go to its ``icmpv6_error_received``
        when it has one (ARCHITECTURE.md, "IPv6"), else become events."""

    # --- out ----------------------------------------------------------------

    def send(
        self,
        message: Icmpv6Message,
        destination: IPv6Address,
        *,
        now: Instant,
        source: IPv6Address | None = None,
        interface: str | None = None,
        hop_limit: int | None = None,
    ) -> bool:
        """Pick the source first (the checksum covers it), then send through the output."""
        if source is None:
            found = self._out.route(destination, interface)
            if found is None:
                self._stats.drop(DropReason.NO_ROUTE)
                return False
            source = self._out.select_source(destination, found[0])
            if source is None:
                self._stats.drop(DropReason.NO_ROUTE)
                return False
        self._stats.count(f"icmp6.out.type{message.icmp_type}")
        return self._out.send(
            source,
            destination,
            NEXT_ICMPV6,
            message.build(source, destination),
            now=now,
            interface=interface,
            hop_limit=hop_limit,
        )

    def send_echo_request(
        self,
        destination: IPv6Address,
        identifier: int,
        sequence: int,
        payload: bytes,
        *,
        hop_limit: int | None,
        interface: str | None,
        now: Instant,
    ) -> bool:
        message = Icmpv6Message.echo_request(identifier, sequence, payload)
        return self.send(message, destination, now=now, interface=interface, hop_limit=hop_limit)

    def send_error(
        self,
        icmp_type: int,
        code: int,
        rest: int,
        invoking: Buffer,
        now: Instant,
        *,
        link: Link6 | None,
        link_multicast: bool = False,
        even_multicast: bool = False,
    ) -> bool:
        """An error about ``invoking`` (a whole datagram), back to its source (RFC 4443 §2.4)."""
        try:
            offending = Ipv6Packet.parse(invoking)
        except ParseError:
            return False
        source = offending.source
        if source == UNSPECIFIED or is_multicast6(source):
            self._stats.count("icmp6.error_suppressed")
            return False  # §2.4(e.6)
        multicast = is_multicast6(offending.destination) or link_multicast
        exempt = icmp_type == wire.TYPE_PACKET_TOO_BIG or even_multicast
        if multicast and not exempt:
            self._stats.count("icmp6.error_suppressed")
            return False  # §2.4(e.3), (e.4)
        if offending.next_header == NEXT_ICMPV6 and _is_icmp_error(offending):
            self._stats.count("icmp6.error_suppressed")
            return False  # §2.4(e.1)
        if not self._bucket.take(now):
            self._stats.drop(DropReason.ICMP_RATE_LIMITED)
            return False
        ours = offending.destination if self._out.is_local(offending.destination) else None
        message = Icmpv6Message.error(icmp_type, code, invoking, rest)
        interface = link.name if link is not None else None
        return self.send(message, source, now=now, source=ours, interface=interface)

    # --- in -----------------------------------------------------------------

    def received(self, link: Link6, packet: Ipv6Packet, body: Buffer, now: Instant) -> None:
        """An ICMPv6 message (``body``) to one of our addresses or groups."""
        stats = self._stats
        try:
            message = Icmpv6Message.parse(body, packet.source, packet.destination)
        except ParseError as error:
            stats.drop(error.reason)
            return
        icmp_type = message.icmp_type
        stats.count(f"icmp6.in.type{icmp_type}")
        if icmp_type == wire.TYPE_ECHO_REQUEST:
            self._echo_request(link, packet, message, now)
        elif icmp_type == wire.TYPE_ECHO_REPLY:
            self._emit(
                EchoReplyReceived(
                    source=str(packet.source),
                    identifier=message.identifier,
                    sequence=message.sequence,
                    payload=bytes(message.payload),
                    ttl=packet.hop_limit,
                )
            )
        elif icmp_type in ND_TYPES:
            self._nd.received(link, packet, message, now)
        elif icmp_type in MLD_TYPES:
            self._mld.received(link, packet, message, now)
        elif message.is_error:
            self._error_received(packet, message, now)
        else:
            stats.drop(DropReason.ICMP_UNHANDLED)  # RFC 4443 §2.4(b): informational, unknown

    def _echo_request(
        self, link: Link6, packet: Ipv6Packet, message: Icmpv6Message, now: Instant
    ) -> None:
        """RFC 4443 §4.2: the reply comes from the address asked (a unicast one of the
        interface when a group was asked), with the request's data."""
        if packet.source == UNSPECIFIED or is_multicast6(packet.source):
            self._stats.drop(DropReason.IPV6_BAD_SOURCE)
            return
        destination = packet.destination
        source = destination if self._out.is_local(destination) else None
        if source is None:
            source = self._out.select_source(packet.source, link)
            if source is None:
                self._stats.drop(DropReason.NO_ROUTE)
                return
        reply = Icmpv6Message.echo_reply(message.identifier, message.sequence, message.payload)
        self.send(reply, packet.source, now=now, source=source, interface=link.name)

    def _error_received(self, packet: Ipv6Packet, message: Icmpv6Message, now: Instant) -> None:
        try:
            quoted = Ipv6Packet.parse_quoted(message.payload)
        except ParseError as error:
            self._stats.drop(error.reason)
            return
        if not self._out.is_local(quoted.source):
            self._stats.drop(DropReason.NOT_FOR_US)  # about a packet we did not send
            return
        tcp_quote = self._tcp_quote(message, quoted)
        if message.icmp_type == wire.TYPE_PACKET_TOO_BIG:
            self._packet_too_big(message, quoted, tcp_quote, now)
        if tcp_quote is not None:
            self._to_tcp(message, tcp_quote, now)
            return
        self._emit(
            IcmpErrorReceived(
                source=str(packet.source),
                icmp_type=message.icmp_type,
                code=message.code,
                original_destination=str(quoted.destination),
                original_protocol=quoted.next_header,
            )
        )

    def _packet_too_big(
        self,
        message: Icmpv6Message,
        quoted: Ipv6Packet,
        tcp_quote: dict[str, object] | None,
        now: Instant,
    ) -> None:
        """RFC 8201 §4 with RFC 5927 §4.1's check: a packet too big about a TCP segment
        lowers the path MTU only if TCP has that segment's sequence number in flight, so
        a blind attacker cannot shrink the path to a peer (Linux's ``tcp_v6_err`` checks
        first too). About other protocols (UDP, echo) nothing can be checked."""
        if tcp_quote is not None:
            in_flight = getattr(self.tcp, "icmpv6_quote_in_flight", None)
            if in_flight is None or not in_flight(**tcp_quote):
                self._stats.drop(DropReason.PACKET_TOO_BIG_NOT_IN_FLIGHT)
                return
        self._out.lower_path_mtu(quoted.destination, message.mtu, now)

    def _tcp_quote(self, message: Icmpv6Message, quoted: Ipv6Packet) -> dict[str, object] | None:
        """The connection and sequence number an error about one of our TCP segments
        quotes (RFC 4443 §2.4(b)), or None (not TCP, too short, or no TCP layer)."""
        if getattr(self.tcp, "icmpv6_error_received", None) is None:
            return None
        walk = walk_extension_headers(message.payload, next_header=quoted.next_header)
        data = message.payload[walk.upper_offset :]
        if walk.drop is not None or walk.upper != NEXT_TCP or len(data) < 8:
            return None
        return {
            "quoted_source": quoted.source,
            "quoted_destination": quoted.destination,
            "quoted_source_port": int.from_bytes(data[0:2], "big"),
            "quoted_destination_port": int.from_bytes(data[2:4], "big"),
            "quoted_seq": int.from_bytes(data[4:8], "big"),
        }

    def _to_tcp(self, message: Icmpv6Message, tcp_quote: dict[str, object], now: Instant) -> None:
        """Hand an error about one of our TCP segments to TCP (RFC 4443 §2.4(b), RFC 5927)."""
        hook = getattr(self.tcp, "icmpv6_error_received", None)
        if hook is None:
            return
        hook(
            icmp_type=message.icmp_type,
            code=message.code,
            mtu=max(message.mtu, 1280) if message.icmp_type == wire.TYPE_PACKET_TOO_BIG else 0,
            now=now,
            **tcp_quote,
        )


def _is_icmp_error(packet: Ipv6Packet) -> bool:
    payload = packet.payload
    return len(payload) >= 1 and payload[0] < 128


__all__ = ["Icmpv6"]
