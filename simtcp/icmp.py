"""ICMP (RFC 792, RFC 1122 §3.2.2): messages to the stack, and when we may send an error."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import IcmpConfig
from .errors import DropReason, ParseError
from .events import EchoReplyReceived, Event, IcmpErrorReceived
from .ip.routing import is_martian_source
from .link.arp import QueuedPacket
from .link.interface import Interface
from .stats import Stats
from .time import SECOND, Instant
from .wire import icmp as icmp_wire
from .wire.checksum import Buffer
from .wire.ethernet import ETHERTYPE_IPV4
from .wire.icmp import ERROR_TYPES, IcmpMessage
from .wire.ipv4 import Ipv4Packet, ip_to_str
from .wire.protocols import PROTOCOL_ICMP, PROTOCOL_TCP

if TYPE_CHECKING:
    from .ip.output import Ipv4Output
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


class Icmp:
    """ICMP messages addressed to the stack, and the errors it sends.

    Echo requests are answered from the very address that was asked; echo replies
    and errors about UDP or raw datagrams become events; errors quoting one of our
    TCP segments go to the TCP layer (RFC 5927, RFC 1191). Errors we send obey
    :class:`IcmpPolicy` (never about an error, a fragment or a broadcast; rate limited).
    Everything leaves through the stack's :class:`~simtcp.ip.output.Ipv4Output`.
    """

    tcp: TcpLayer
    """Where errors about our TCP segments go (set by the stack once the layer exists)."""

    def __init__(
        self,
        config: IcmpConfig,
        *,
        output: Ipv4Output,
        stats: Stats,
        emit: Callable[[Event], None],
    ) -> None:
        self._config = config
        self._policy = IcmpPolicy(config)
        self._output = output
        self._local = output.local
        self._broadcasts = output.broadcasts
        self._stats = stats
        self._counters = stats.counters()
        self._emit = emit

    def send_echo_request(
        self,
        destination: int,
        identifier: int,
        sequence: int,
        payload: bytes,
        *,
        ttl: int | None,
        now: Instant,
    ) -> bool:
        """Send an echo request (RFC 792); False without a route."""
        message = IcmpMessage.echo_request(identifier & 0xFFFF, sequence & 0xFFFF, payload)
        self._stats.count("icmp.out.type8")
        return self._output.send(destination, PROTOCOL_ICMP, message.build(), now=now, ttl=ttl)

    def echo_fast_received(
        self,
        iface: Interface,
        frame: Buffer,
        verified: bool,
        total_length: int,
        source: int,
        destination: int,
    ) -> bool:
        """Answer an echo request in one step, for :meth:`TcpFrames.fast_received`, which
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
        # The words' sums, as checksum.word_sum and fold would give them, inlined: ping's
        # latency is mostly this path.
        rest_words = ((frame[38] << 8) | frame[39]) + ((frame[40] << 8) | frame[41])
        data_value = int.from_bytes(frame[42:end], "big")
        if (end - 42) & 1:
            data_value <<= 8  # RFC 1071: an odd length is summed as if padded with a zero
        data_sum = data_value % 0xFFFF or (0xFFFF if data_value else 0)
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
        output = self._output
        found = output.unicast_route(source)
        if found is None:
            return False
        out, next_hop = found
        if total_length > out.mtu:
            return False
        mac = output.neighbours.resolved_mac(out.name, next_hop)
        if mac is None:
            return False
        counters = self._counters
        counters["ip.packets_in"] += 1
        counters["icmp.in.type8"] += 1
        counters["icmp.out.type0"] += 1
        counters["ip.packets_out"] += 1
        counters["link.frames_out"] += 1
        output.frames.append(
            (
                out.name,
                _echo_reply_headers(
                    mac,
                    out.mac,
                    total_length,
                    output.next_identification(),
                    output.default_ttl,
                    destination,
                    source,
                    rest_words + data_sum,
                )
                + frame[38:end],
            )
        )
        return True

    def received(
        self,
        packet: Ipv4Packet,
        link_broadcast: bool,
        to_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        """An ICMP message to us, from the general path (RFC 1122 §3.2.2)."""
        stats = self._stats
        try:
            message = IcmpMessage.parse(packet.payload, verify_checksum=not verified)
        except ParseError as error:
            stats.drop(error.reason)
            return
        stats.count(f"icmp.in.type{message.icmp_type}")
        if message.icmp_type == icmp_wire.TYPE_ECHO_REQUEST:
            if (to_broadcast or link_broadcast) and not self._config.reply_to_broadcast:
                stats.drop(DropReason.BROADCAST_ECHO)  # RFC 1122 §3.2.2.6 allows silence
                return
            # Reply from the very address that was asked (the seed's bug, fixed).
            source = packet.destination if packet.destination in self._local else None
            reply = IcmpMessage(icmp_wire.TYPE_ECHO_REPLY, 0, message.rest, message.payload)
            stats.count("icmp.out.type0")
            self._output.send(packet.source, PROTOCOL_ICMP, reply.build(), now=now, source=source)
        elif message.icmp_type == icmp_wire.TYPE_ECHO_REPLY:
            self._emit(
                EchoReplyReceived(
                    source=ip_to_str(packet.source),
                    identifier=message.identifier,
                    sequence=message.sequence,
                    payload=bytes(message.payload),
                    ttl=packet.ttl,
                )
            )
        elif message.is_error:
            self._error_received(packet, message, now)
        else:
            stats.drop(DropReason.ICMP_UNHANDLED)

    def _error_received(self, packet: Ipv4Packet, message: IcmpMessage, now: Instant) -> None:
        try:
            quoted = Ipv4Packet.parse(
                _quoted_with_fixed_length(message.payload), verify_checksum=False
            )
        except ParseError as error:
            self._stats.drop(error.reason)
            return
        if quoted.source not in self._local:
            self._stats.drop(DropReason.NOT_FOR_US)
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
        if quoted.protocol == PROTOCOL_ICMP and data[:1] == _ECHO_REPLY_TYPE:
            # The quoted datagram is an echo reply from our own echo server (RFC 1122
            # §3.2.2.6), not the application's: demultiplexed by the quote (§3.2.2) it
            # reaches no one, so it is counted, not reported (Linux's icmp_err does the same).
            self._stats.count("icmp.errors_about_echo_replies")
            return
        self._emit(
            IcmpErrorReceived(
                source=ip_to_str(packet.source),
                icmp_type=message.icmp_type,
                code=message.code,
                original_destination=ip_to_str(quoted.destination),
                original_protocol=quoted.protocol,
            )
        )

    def send_error(
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
        """Tell ``offending``'s sender, when :class:`IcmpPolicy` allows (RFC 1122 §3.2.2)."""
        if not IcmpPolicy.may_answer(
            offending, link_broadcast=link_broadcast, to_broadcast=to_broadcast
        ):
            return
        if offending.source in self._broadcasts or is_martian_source(offending.source):
            return
        if not self._policy.allow(now):
            self._stats.drop(DropReason.ICMP_RATE_LIMITED)
            return
        message = IcmpPolicy.error(icmp_type, code, offending, rest)
        self._stats.count(f"icmp.out.type{icmp_type}")
        # RFC 1812 §4.3.2.4: the source is the address of the interface the error leaves by.
        self._output.send(offending.source, PROTOCOL_ICMP, message.build(), now=now)

    def host_unreachable(self, queued: QueuedPacket, now: Instant) -> None:
        """Resolution failed: a router tells the sender (RFC 1812 §4.3.3.1 host unreachable)."""
        if not queued.forwarded:
            return
        try:
            packet = Ipv4Packet.parse(queued.datagram, verify_checksum=False)
        except ParseError:
            return
        self.send_error(
            icmp_wire.TYPE_DESTINATION_UNREACHABLE, icmp_wire.CODE_HOST_UNREACHABLE, packet, now
        )


def _echo_reply_headers(
    destination_mac: bytes,
    source_mac: bytes,
    total_length: int,
    identification: int,
    ttl: int,
    source: int,
    destination: int,
    reply_sum: int,
) -> bytes:
    """Ethernet, an option-less IPv4 header and the ICMP type, code and checksum of an echo
    reply whose identifier, sequence and data sum to ``reply_sum`` (unfolded, 0 only when
    they are all zero). Both checksums are summed from the fields (RFC 1071 §2(B)), with
    checksum.fold, field_of and address_sum inlined."""
    folded = reply_sum % 0xFFFF or (0xFFFF if reply_sum else 0)
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
    return _ECHO_REPLY_HEADERS.pack(
        destination_mac,
        source_mac,
        ETHERTYPE_IPV4,
        0x45,
        0,
        total_length,
        identification,
        0,
        ttl,
        PROTOCOL_ICMP,
        0xFFFF - header_sum if header_sum else 0,
        source,
        destination,
        icmp_wire.TYPE_ECHO_REPLY,
        0,
        ~folded & 0xFFFF,
    )


_ECHO_REPLY_TYPE = bytes([icmp_wire.TYPE_ECHO_REPLY])

_ECHO_REPLY_HEADERS = struct.Struct("!6s6sHBBHHHBBHIIBBH")
"""Ethernet, option-less IPv4, and the ICMP type, code and checksum of an echo reply."""


def _quoted_with_fixed_length(quoted: Buffer) -> bytes:
    """ICMP quotes only header + 8 bytes, so fix the quoted total length to what is there."""
    data = bytearray(quoted)
    if len(data) >= 20:
        data[2:4] = min(len(data), 0xFFFF).to_bytes(2, "big")
    return bytes(data)
