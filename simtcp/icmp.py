"""ICMP (RFC 792, RFC 1122 §3.2.2): messages to the stack, and when we may send an error."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .config import IcmpConfig
from .errors import DropReason, ParseError
from .events import EchoReplyReceived, IcmpErrorReceived
from .ip import LIMITED_BROADCAST, is_martian_source
from .time import SECOND, Instant
from .wire import icmp as icmp_wire
from .wire.checksum import Buffer
from .wire.ethernet import ETHERTYPE_IPV4
from .wire.icmp import ERROR_TYPES, IcmpMessage
from .wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, Ipv4Packet, ip_to_str

if TYPE_CHECKING:
    from .arp import NeighbourCache
    from .config import StackConfig
    from .events import Event
    from .ip import RoutingTable
    from .stack import Interface
    from .stats import Stats
    from .tcp import TcpLayer

QUOTE_DATA_BYTES = 8
"""RFC 792 quotes the header plus 64 bits; RFC 1812 §4.3.2.3 allows more, 8 is what hosts need."""


class TokenBucket:
    """ICMP error rate limit (RFC 1812 §4.3.2.8): ``rate`` per second, ``burst`` deep."""

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated_at: Instant | None = None

    def take(self, now: Instant) -> bool:
        if self._updated_at is not None:
            elapsed = max(0, now - self._updated_at)
            self._tokens = min(self._burst, self._tokens + elapsed * self._rate / SECOND)
        self._updated_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class IcmpPolicy:
    """Decides whether an offending datagram may draw an ICMP error, and builds it."""

    def __init__(self, config: IcmpConfig) -> None:
        self.config = config
        self._bucket = TokenBucket(config.error_rate, config.error_burst)

    @staticmethod
    def may_answer(offending: Ipv4Packet, *, link_broadcast: bool, to_broadcast: bool) -> bool:
        """RFC 1122 §3.2.2: never about an ICMP error, a non-first fragment, or a broadcast."""
        if link_broadcast or to_broadcast or offending.fragment_offset != 0:
            return False
        if offending.protocol == PROTOCOL_ICMP:
            payload = offending.payload
            if len(payload) < 1 or payload[0] in ERROR_TYPES:
                return False
        return True

    def allow(self, now: Instant) -> bool:
        return self._bucket.take(now)

    @staticmethod
    def quote(offending: Ipv4Packet) -> bytes:
        """The offending datagram's header and first 8 data bytes, as RFC 792 asks."""
        header = offending.build_header(len(offending.payload))
        return header + bytes(offending.payload[:QUOTE_DATA_BYTES])

    @staticmethod
    def error(icmp_type: int, code: int, offending: Ipv4Packet, rest: int = 0) -> IcmpMessage:
        return IcmpMessage(icmp_type, code, rest, IcmpPolicy.quote(offending))


class IcmpHandling:
    """ICMP messages addressed to the stack, and the errors it sends, for :class:`Stack`.

    Echo requests are answered from the very address that was asked; echo replies
    and errors about UDP or raw datagrams become events; errors quoting one of our
    TCP segments go to the TCP layer (RFC 5927, RFC 1191). Errors we send obey
    :class:`IcmpPolicy` (never about an error, a fragment or a broadcast; rate limited).
    """

    if TYPE_CHECKING:
        config: StackConfig
        stats: Stats
        tcp: TcpLayer
        _icmp: IcmpPolicy
        _local: dict[int, str]
        _broadcasts: set[int]
        _counters: dict[str, int]
        _interfaces: dict[str, Interface]
        _routes: RoutingTable
        _neighbours: NeighbourCache
        _output: list[tuple[str, bytes]]
        _ip_id: int

        def emit(self, event: Event) -> None: ...

        def send_ipv4(
            self,
            destination: int,
            protocol: int,
            payload: bytes,
            *,
            now: Instant,
            source: int | None = None,
            ttl: int | None = None,
            dont_fragment: bool = False,
        ) -> bool: ...

    def _echo_fast_received(
        self,
        iface: Interface,
        frame: Buffer,
        now: Instant,
        verified: bool,
        total_length: int,
        source: int,
        destination: int,
    ) -> bool:
        """Answer an echo request in one step, for :meth:`TcpFrameIO._fast_received`, which
        checked the Ethernet and IPv4 headers (option-less, unfragmented, unicast to us).

        Taken when the reply fits the link toward a resolved unicast next hop; False
        (nothing done) otherwise, and the general path answers. The reply is the
        general path's to the byte: the request's identifier, sequence and data
        behind a fresh header, with checksums summed from the words (RFC 1071 §2(B);
        the echo data is read once, for both the request's check and the reply's sum).
        ``test_fast_paths`` holds the two paths equal.
        """
        end = 14 + total_length
        if frame[34] != icmp_wire.TYPE_ECHO_REQUEST or source in self._local:
            return False
        rest_words = ((frame[38] << 8) | frame[39]) + ((frame[40] << 8) | frame[41])
        data_value = int.from_bytes(frame[42:end], "big")
        if (end - 42) & 1:
            data_value <<= 8  # RFC 1071: an odd length is summed as if padded with a zero
        data_sum = data_value % 0xFFFF
        if (
            not verified
            and (
                ((frame[34] << 8) | frame[35])
                + ((frame[36] << 8) | frame[37])
                + rest_words
                + data_sum
            )
            % 0xFFFF
        ):
            return False  # the general path counts the bad checksum
        route = self._routes.lookup(source)
        if route is None:
            return False
        out = self._interfaces[route.interface]
        next_hop = route.gateway if route.gateway is not None else source
        if total_length > out.mtu or next_hop in out.broadcasts or next_hop == LIMITED_BROADCAST:
            return False
        mac = self._neighbours.resolved_mac(out.name, next_hop)
        if mac is None:
            return False
        counters = self._counters
        counters["ip.packets_in"] += 1
        counters["icmp.in.type8"] += 1
        counters["icmp.out.type0"] += 1
        counters["ip.packets_out"] += 1
        counters["link.frames_out"] += 1
        self._ip_id = identification = (self._ip_id + 1) & 0xFFFF
        ttl = self.config.ip.default_ttl
        if rest_words or data_value:
            reply_sum = (rest_words + data_sum) % 0xFFFF
            reply_checksum = 0xFFFF - reply_sum if reply_sum else 0
        else:
            reply_checksum = 0xFFFF  # a reply of zeros sums to 0 itself: its complement
        header_sum = (
            0x4500
            + total_length
            + identification
            + (ttl << 8)
            + PROTOCOL_ICMP
            + (source >> 16)
            + (source & 0xFFFF)
            + (destination >> 16)
            + (destination & 0xFFFF)
        ) % 0xFFFF
        self._output.append(
            (
                out.name,
                _ECHO_REPLY_HEADERS.pack(
                    mac,
                    out.mac,
                    ETHERTYPE_IPV4,
                    0x45,
                    0,
                    total_length,
                    identification,
                    0,
                    ttl,
                    PROTOCOL_ICMP,
                    0xFFFF - header_sum if header_sum else 0,
                    destination,
                    source,
                    icmp_wire.TYPE_ECHO_REPLY,
                    0,
                    reply_checksum,
                )
                + frame[38:end],
            )
        )
        return True

    def _icmp_received(
        self,
        packet: Ipv4Packet,
        link_broadcast: bool,
        to_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        stats = self.stats
        try:
            message = IcmpMessage.parse(packet.payload, verify_checksum=not verified)
        except ParseError as error:
            stats.drop(error.reason)
            return
        stats.count(f"icmp.in.type{message.icmp_type}")
        if message.icmp_type == icmp_wire.TYPE_ECHO_REQUEST:
            if (to_broadcast or link_broadcast) and not self.config.icmp.reply_to_broadcast:
                stats.drop(DropReason.BROADCAST_ECHO)  # RFC 1122 §3.2.2.6 allows silence
                return
            # Reply from the very address that was asked (the seed's bug, fixed).
            source = packet.destination if packet.destination in self._local else None
            reply = IcmpMessage(icmp_wire.TYPE_ECHO_REPLY, 0, message.rest, message.payload)
            stats.count("icmp.out.type0")
            self.send_ipv4(packet.source, PROTOCOL_ICMP, reply.build(), now=now, source=source)
        elif message.icmp_type == icmp_wire.TYPE_ECHO_REPLY:
            self.emit(
                EchoReplyReceived(
                    source=ip_to_str(packet.source),
                    identifier=message.identifier,
                    sequence=message.sequence,
                    payload=bytes(message.payload),
                    ttl=packet.ttl,
                )
            )
        elif message.is_error:
            self._icmp_error_received(packet, message, now)
        else:
            stats.drop(DropReason.ICMP_UNHANDLED)

    def _icmp_error_received(self, packet: Ipv4Packet, message: IcmpMessage, now: Instant) -> None:
        try:
            quoted = Ipv4Packet.parse(
                _quoted_with_fixed_length(message.payload), verify_checksum=False
            )
        except ParseError as error:
            self.stats.drop(error.reason)
            return
        if quoted.source not in self._local:
            self.stats.drop(DropReason.NOT_FOR_US)
            return
        data = bytes(quoted.payload)
        if quoted.protocol == PROTOCOL_TCP and len(data) >= 8:
            self.tcp.icmp_error_received(
                icmp_type=message.icmp_type,
                code=message.code,
                next_hop_mtu=message.next_hop_mtu,
                quoted_source=quoted.source,
                quoted_destination=quoted.destination,
                quoted_source_port=int.from_bytes(data[0:2], "big"),
                quoted_destination_port=int.from_bytes(data[2:4], "big"),
                quoted_seq=int.from_bytes(data[4:8], "big"),
                now=now,
            )
            return
        self.emit(
            IcmpErrorReceived(
                source=ip_to_str(packet.source),
                icmp_type=message.icmp_type,
                code=message.code,
                original_destination=ip_to_str(quoted.destination),
                original_protocol=quoted.protocol,
            )
        )

    def _send_icmp_error(
        self,
        icmp_type: int,
        code: int,
        offending: Ipv4Packet,
        now: Instant,
        *,
        link_broadcast: bool = False,
        to_broadcast: bool = False,
        rest: int = 0,
    ) -> None:
        if not IcmpPolicy.may_answer(
            offending, link_broadcast=link_broadcast, to_broadcast=to_broadcast
        ):
            return
        if offending.source in self._broadcasts or is_martian_source(offending.source):
            return
        if not self._icmp.allow(now):
            self.stats.drop(DropReason.ICMP_RATE_LIMITED)
            return
        message = IcmpPolicy.error(icmp_type, code, offending, rest)
        self.stats.count(f"icmp.out.type{icmp_type}")
        # RFC 1812 §4.3.2.4: the source is the address of the interface the error leaves by.
        self.send_ipv4(offending.source, PROTOCOL_ICMP, message.build(), now=now)


_ECHO_REPLY_HEADERS = struct.Struct("!6s6sHBBHHHBBHIIBBH")
"""Ethernet, option-less IPv4, and the ICMP type, code and checksum of an echo reply."""


def _quoted_with_fixed_length(quoted: Buffer) -> bytes:
    """ICMP quotes only header + 8 bytes, so fix the quoted total length to what is there."""
    data = bytearray(quoted)
    if len(data) >= 20:
        data[2:4] = min(len(data), 0xFFFF).to_bytes(2, "big")
    return bytes(data)
