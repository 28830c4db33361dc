"""The stack's per-frame fast paths: TCP in and out of frames in one step, and their oracles.

Theory of operation
-------------------

Per-frame cost is what limits a Python stack (DESIGN.md "Offload-ready"), and
the frame that costs most in total is the ordinary TCP segment: in a bulk
transfer nearly every frame in and out is one. Taking it down and up the
layers one object at a time (``EthernetFrame`` -> ``Ipv4Packet`` ->
``TcpSegment``, then ``TcpSegment.build`` -> ``Ipv4Packet.build`` ->
``build_ethernet_header`` and a join) costs a dozen calls and as many copies.
So :class:`TcpFrameIO`, a part of :class:`simtcp.stack.Stack`, takes the
common case in one step each way and leaves every other case to the layered
code, which stays here as the oracle:

Receive (:meth:`TcpFrameIO._fast_received`, called first by
``Stack.receive_frame``): one ``struct`` unpack reads the destination MAC, the
EtherType and the whole option-less IPv4 header. The frame qualifies when it
is IPv4 with IHL 5 carrying TCP (or ICMP), unfragmented (no MF, offset 0),
unicast to our MAC and to one of our addresses (not a broadcast: RFC 9293
§3.9.1), its total length fits the frame, and its source is not martian
(multicast, loopback, limited broadcast: RFC 1122 §3.2.1.3). The IPv4 header
checksum is verified by summing the header as one integer modulo 0xffff
(RFC 1071: the one's complement sum is the sum modulo 2^16 - 1), unless the
link vouched for the frame. Then a TCP segment is parsed straight from a view
of the frame and handed to the TCP layer; an ICMP echo request is answered at
once by :meth:`simtcp.icmp.IcmpHandling._echo_fast_received` (ping's latency
over a TAP is mostly this path and the loop around it). Anything that fails a
test returns False before any state or counter changed, and
``Stack.receive_frame`` continues down the general path (:meth:`_tcp_received`
for TCP, ``IcmpHandling._icmp_received`` for ICMP), so a frame counts and acts
the same either way.

Transmit (:meth:`TcpFrameIO.send_tcp`, the ``TcpHost`` entry point): when the
destination is routed (not ours, not a broadcast) to a next hop whose MAC the
neighbour cache already holds, and the segment fits the link's MTU or its TSO
limit, :meth:`TcpSegment.build_ipv4_frame` packs the Ethernet, IPv4 and TCP
headers in one ``struct`` call with both checksums summed from the fields
(or the TCP one left partial for a checksum-offloading link). On a link with
software segmentation (:attr:`InterfaceOffload.software_segmentation`) an
oversized segment is cut into wire frames right there, each taking the IPv4
identification it would have had sent alone. Everything else (unresolved
neighbours, which queue behind ARP; loopback; broadcasts; a segment too big
for a link without TSO, which TCP's DF makes a drop: RFC 1191) goes through
:meth:`_send_tcp_general`, the layered path via ``Stack.send_ipv4``.

Both fast paths must be invisible: the same frames out, the same events, the
same counters and the same IPv4 identification sequence as the general path.
``tests/property/test_fast_paths.py`` holds each against its oracle on valid
and damaged frames, and checks that the fast paths really run.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from .errors import DropReason, ParseError
from .gso import with_partial_checksum
from .ip import LIMITED_BROADCAST
from .time import Instant
from .wire.checksum import Buffer
from .wire.ethernet import ETHERTYPE_IPV4
from .wire.ipv4 import PROTOCOL_ICMP, PROTOCOL_TCP, Ipv4Packet
from .wire.tcp import CHECKSUM_FULL, CHECKSUM_PARTIAL, TcpSegment

if TYPE_CHECKING:
    from .arp import NeighbourCache
    from .config import StackConfig
    from .ip import RoutingTable
    from .stack import Interface
    from .stats import Stats
    from .tcp import TcpLayer

FAST_RX = struct.Struct("!6s6xHBBHHHBBHII")
"""Destination MAC and EtherType, then the option-less IPv4 header: the receive fast path."""
FAST_MIN_FRAME = 14 + 20 + 8
"""The shortest frame the receive fast path looks at: Ethernet, IPv4 and ICMP headers."""


class TcpFrameIO:
    """TCP segments in and out of Ethernet frames, for :class:`simtcp.stack.Stack`."""

    if TYPE_CHECKING:
        config: StackConfig
        stats: Stats
        tcp: TcpLayer
        _counters: dict[str, int]
        _interfaces: dict[str, Interface]
        _local: dict[int, str]
        _broadcasts: set[int]
        _routes: RoutingTable
        _neighbours: NeighbourCache
        _output: list[tuple[str, bytes]]
        _ip_id: int

        def _route_interface(self, destination: int) -> Interface | None: ...

        def _echo_fast_received(
            self,
            iface: Interface,
            frame: Buffer,
            now: Instant,
            verified: bool,
            total_length: int,
            source: int,
            destination: int,
        ) -> bool: ...

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

    # --- receive --------------------------------------------------------------

    def _fast_received(self, iface: Interface, frame: Buffer, now: Instant, verified: bool) -> bool:
        """Deliver the common frame in one step: TCP (or an ICMP echo request, answered by
        :meth:`IcmpHandling._echo_fast_received`) in an unfragmented IPv4 datagram without
        options, unicast to one of our addresses. False (nothing done) for anything else,
        which the general path then takes; ``test_fast_paths`` holds the two paths equal."""
        (
            mac,
            ethertype,
            version_ihl,
            _tos,
            total_length,
            _identification,
            flags_offset,
            _ttl,
            protocol,
            _checksum,
            source,
            destination,
        ) = FAST_RX.unpack_from(frame)
        if (
            version_ihl != 0x45
            or ethertype != ETHERTYPE_IPV4
            or (protocol != PROTOCOL_TCP and protocol != PROTOCOL_ICMP)
            or flags_offset & 0x3FFF
            or mac != iface.mac
            or not 28 <= total_length <= len(frame) - 14
            or destination not in self._local
            or destination in self._broadcasts
            or source >> 28 == 0xE
            or source >> 24 == 127
            or source == LIMITED_BROADCAST
        ):
            return False
        # The header verifies when its sum is a multiple of 0xffff (never 0: version 4 is in it).
        if not verified and int.from_bytes(frame[14:34], "big") % 0xFFFF:
            return False
        if protocol != PROTOCOL_TCP or total_length < 40:
            return protocol == PROTOCOL_ICMP and self._echo_fast_received(
                iface, frame, now, verified, total_length, source, destination
            )
        counters = self._counters
        counters["ip.packets_in"] += 1
        try:
            segment = TcpSegment.parse(
                memoryview(frame)[34 : 14 + total_length],
                source=None if verified else source,
                destination=None if verified else destination,
            )
        except ParseError as error:
            self.stats.drop(error.reason)
            return True
        counters["tcp.segments_in"] += 1
        self.tcp.segment_received(source, destination, segment, now=now)
        return True

    def _tcp_received(
        self, packet: Ipv4Packet, broadcast: bool, now: Instant, verified: bool
    ) -> None:
        """The general path's TCP delivery, after IPv4 (and maybe reassembly)."""
        stats = self.stats
        if broadcast:
            stats.drop(DropReason.NOT_FOR_US)  # RFC 9293 §3.9.1: no TCP to broadcast
            return
        verify = not verified
        try:
            segment = TcpSegment.parse(
                packet.payload,
                source=packet.source if verify else None,
                destination=packet.destination if verify else None,
            )
        except ParseError as error:
            stats.drop(error.reason)
            return
        stats.count("tcp.segments_in")
        self.tcp.segment_received(packet.source, packet.destination, segment, now=now)

    # --- transmit -------------------------------------------------------------

    def send_tcp(self, source: int, destination: int, segment: TcpSegment, *, now: Instant) -> None:
        """Wrap a segment from the TCP layer in IPv4 and send it (TcpHost protocol)."""
        self._counters["tcp.segments_out"] += 1
        if not self._tcp_fast_sent(source, destination, segment):
            self._send_tcp_general(source, destination, segment, now)

    def _tcp_fast_sent(self, source: int, destination: int, segment: TcpSegment) -> bool:
        """Queue the common segment's frame in one step: routed to a resolved unicast next hop,
        fitting the link (or its TSO). False (nothing done) for anything else, which
        :meth:`_send_tcp_general` then sends; ``test_fast_paths`` holds the two equal."""
        if destination in self._local or destination == LIMITED_BROADCAST:
            return False
        route = self._routes.lookup(destination)
        if route is None:
            return False
        iface = self._interfaces[route.interface]
        next_hop = route.gateway if route.gateway is not None else destination
        if next_hop in iface.broadcasts or next_hop == LIMITED_BROADCAST:
            return False
        offload = iface.offload
        payload_length = len(segment.payload)
        header_length = segment.header_length
        oversized = 20 + header_length + payload_length > iface.mtu
        if oversized and not (offload.max_segment and payload_length <= offload.max_segment):
            return False  # the general path drops it: TCP sets DF (RFC 1191)
        mac = self._neighbours.resolved_mac(iface.name, next_hop)
        if mac is None:
            return False
        counters = self._counters
        counters["ip.packets_out"] += 1
        identification = (self._ip_id + 1) & 0xFFFF
        if oversized and offload.software_segmentation:
            frames = segment.build_ipv4_frames(
                mac,
                iface.mac,
                source,
                destination,
                ttl=self.config.ip.default_ttl,
                identification=identification,
                mss=iface.mtu - 20 - header_length,
            )
            # Each piece takes the identification it would have had sent on its own.
            self._ip_id = (self._ip_id + len(frames)) & 0xFFFF
            name = iface.name
            self._output.extend([(name, frame) for frame in frames])
            counters["link.frames_out"] += len(frames)
            counters["ip.gso_segmented"] += 1
            counters["ip.gso_segments_out"] += len(frames)
            return True
        self._ip_id = identification
        self._output.append(
            (
                iface.name,
                segment.build_ipv4_frame(
                    mac,
                    iface.mac,
                    source,
                    destination,
                    ttl=self.config.ip.default_ttl,
                    identification=identification,
                    checksum=CHECKSUM_PARTIAL if offload.tx_checksum else CHECKSUM_FULL,
                ),
            )
        )
        counters["link.frames_out"] += 1
        return True

    def _send_tcp_general(
        self, source: int, destination: int, segment: TcpSegment, now: Instant
    ) -> None:
        """Every case :meth:`_tcp_fast_sent` declines, through the layers one by one."""
        iface = self._route_interface(destination)
        if iface is not None and iface.offload.tx_checksum:
            payload = with_partial_checksum(
                segment.build(source, destination, with_checksum=False),
                source,
                destination,
                PROTOCOL_TCP,
            )
        else:
            payload = segment.build(source, destination)
        self.send_ipv4(
            destination, PROTOCOL_TCP, payload, now=now, source=source, dont_fragment=True
        )


__all__ = ["FAST_MIN_FRAME", "FAST_RX", "TcpFrameIO"]
