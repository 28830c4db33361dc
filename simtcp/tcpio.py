"""The stack's per-frame fast paths: TCP in and out of frames in one step, and their oracles.

Theory of operation
-------------------

Per-frame cost is what limits a Python stack (DESIGN.md "Offload-ready"), and
the frame that costs most in total is the ordinary TCP segment: in a bulk
transfer nearly every frame in and out is one. Taking it down and up the
layers one object at a time (``EthernetFrame`` -> ``Ipv4Packet`` ->
``TcpSegment``, then ``TcpSegment.build`` -> ``Ipv4Packet.build`` ->
``build_ethernet_header`` and a join) costs a dozen calls and as many copies.
So :class:`TcpFrames`, a part of :class:`simtcp.stack.Stack`, takes the
common case in one step each way and leaves every other case to the layered
code, which stays here as the oracle:

Receive (:meth:`TcpFrames.fast_received`, called first by
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
once by :meth:`simtcp.icmp.Icmp.echo_fast_received` (ping's latency
over a TAP is mostly this path and the loop around it). Anything that fails a
test returns False before any state or counter changed, and
``Stack.receive_frame`` continues down the general path (:meth:`tcp_received`
for TCP, ``Icmp.received`` for ICMP), so a frame counts and acts
the same either way.

Transmit (:meth:`TcpFrames.send_tcp`, the ``TcpHost`` entry point): when the
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
:meth:`send_general`, the layered path via ``Ipv4Output.send``. The route
and the next hop's MAC come from the stack's one
:class:`~simtcp.ip.output.Ipv4Output` (:meth:`~simtcp.ip.output.Ipv4Output.unicast_route`),
as does the identification.

IPv6 (RFC 8200) takes no fast path: ``send_tcp`` sends a segment between IPv6
addresses through the stack's :class:`~simtcp.network6.Ipv6Network` (``ipv6``)
with a checksum over RFC 8200 §8.1's pseudo-header, and the IPv6 input
hands segments in through :meth:`TcpFrames.received_ipv6`. An IPv6 route
reports its link's offloads (``Ipv6Network.route6_link``), so TCP builds
segments up to the TSO limit toward it; such a super-segment leaves whole,
with a partial checksum on a checksum-offloading link, or is cut by
``Ipv6Output`` on one with software segmentation (:meth:`_send_ipv6`).

Both fast paths must be invisible: the same frames out, the same events, the
same counters and the same IPv4 identification sequence as the general path.
``StackConfig.fast_paths`` turns both off (the general path alone then runs);
``tests/property/test_fast_paths.py`` holds each against its oracle on valid
and damaged frames, and checks that the fast paths really run.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from .errors import DropReason, ParseError
from .events import Event
from .ip.routing import LIMITED_BROADCAST
from .link.interface import Interface, InterfaceOffload
from .network6 import ChecksumVerdict, Ipv6Network, is_multicast6
from .stats import Stats
from .time import Instant
from .wire.address import Address
from .wire.checksum import Buffer, checksum_verifies
from .wire.ethernet import ETHERTYPE_IPV4
from .wire.ipv4 import Ipv4Packet
from .wire.offload import with_partial_checksum
from .wire.protocols import PROTOCOL_ICMP, PROTOCOL_TCP
from .wire.tcp import CHECKSUM_FULL, CHECKSUM_PARTIAL, TcpSegment

if TYPE_CHECKING:
    from .config import StackConfig
    from .icmp import Icmp
    from .ip.output import Ipv4Output
    from .tcp import TcpLayer

_NO_OFFLOAD = InterfaceOffload()
_IPV6_MIN_MTU = 1280

FAST_RX = struct.Struct("!6s6xHBBHHHBBHII")
"""Destination MAC and EtherType, then the option-less IPv4 header: the receive fast path."""
FAST_MIN_FRAME = 14 + 20 + 8
"""The shortest frame the receive fast path looks at: Ethernet, IPv4 and ICMP headers."""
_SUM_IN_ONE = 4096
"""Segments up to this long are summed as one integer (as :func:`checksum_verifies` does)."""


def _tcp_checksum_verifies(frame: Buffer, end: int, source: int, destination: int) -> bool:
    """RFC 9293 §3.1: the checksum of the segment in ``frame[34:end]`` over it and the
    pseudo-header; :func:`checksum_verifies` with the pseudo-header sum inlined."""
    length = end - 34
    initial = (
        (source >> 16)
        + (source & 0xFFFF)
        + (destination >> 16)
        + (destination & 0xFFFF)
        + PROTOCOL_TCP
        + length
    )
    if length > _SUM_IN_ONE:
        return checksum_verifies(memoryview(frame)[34:end], initial)
    value = int.from_bytes(frame[34:end], "big")
    total = (value << 8 if length & 1 else value) + initial
    return total % 0xFFFF == 0  # total > 0: the pseudo-header's protocol is in it


class TcpFrames:
    """TCP segments in and out of Ethernet frames: the TCP layer's host (``TcpHost``).

    Sends through the stack's :class:`~simtcp.ip.output.Ipv4Output`; receives the
    general path's TCP datagrams from :class:`~simtcp.ip.input.Ipv4Input`, and the
    common frames straight from ``Stack.receive_frame`` (:meth:`fast_received`).
    """

    tcp: TcpLayer
    """The TCP layer served (set by the stack once the layer exists)."""
    ipv6: Ipv6Network | None = None
    """The IPv6 network layer (set by a stack that speaks IPv6); None: IPv6 is unroutable."""
    ipv6_verdict: ChecksumVerdict | None = None
    """Whether the link vouched for the checksum of the IPv6 datagram being delivered."""

    def __init__(
        self,
        config: StackConfig,
        *,
        output: Ipv4Output,
        icmp: Icmp,
        stats: Stats,
        emit: Callable[[Event], None],
    ) -> None:
        self.stats = stats
        self.emit = emit
        """Queue an event for the application (TcpHost protocol): the stack's."""
        self._output = output
        self._icmp = icmp
        self._local = output.local
        self._broadcasts = output.broadcasts
        self._counters = stats.counters()
        self._ttl = config.ip.default_ttl
        self._fast_paths = config.fast_paths

    # --- TcpHost ----------------------------------------------------------------

    def route_source(self, destination: Address) -> tuple[Address, int] | None:
        """(source address, MTU) used to reach ``destination``, or None (TcpHost protocol)."""
        if isinstance(destination, IPv6Address):
            ipv6 = self.ipv6
            return None if ipv6 is None else ipv6.route6_source(destination)
        return self._output.route_source(destination)

    def route_offload(self, destination: Address) -> InterfaceOffload:
        """What the link toward ``destination`` does for us (TcpHost protocol)."""
        if isinstance(destination, IPv6Address):
            ipv6 = self.ipv6
            return _NO_OFFLOAD if ipv6 is None else ipv6.route6_link(destination)[0]
        return self._output.route_offload(destination)

    def is_local_address(self, address: Address) -> bool:
        if isinstance(address, IPv6Address):
            ipv6 = self.ipv6
            return ipv6 is not None and ipv6.is_local_address6(address)
        return address in self._local

    # --- receive --------------------------------------------------------------

    def fast_received(self, iface: Interface, frame: Buffer, now: Instant, verified: bool) -> bool:
        """Deliver the common frame in one step: TCP (or an ICMP echo request, answered by
        :meth:`Icmp.echo_fast_received`) in an unfragmented IPv4 datagram without
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
        # checksum_verifies, inlined: the header's sum is never 0 (version 4 is in it), so it
        # verifies when 0xffff divides it.
        if not verified and int.from_bytes(frame[14:34], "big") % 0xFFFF:
            return False
        if protocol != PROTOCOL_TCP or total_length < 40:
            return protocol == PROTOCOL_ICMP and self._icmp.echo_fast_received(
                iface, frame, verified, total_length, source, destination
            )
        counters = self._counters
        counters["ip.packets_in"] += 1
        end = 14 + total_length
        segment = TcpSegment.parse_predicted(frame, 34, end)
        if segment is None:  # an unusual header: the general parser, its errors and all
            try:
                segment = TcpSegment.parse(
                    memoryview(frame)[34:end],
                    source=None if verified else source,
                    destination=None if verified else destination,
                )
            except ParseError as error:
                self.stats.drop(error.reason)
                return True
        elif not verified and not _tcp_checksum_verifies(frame, end, source, destination):
            self.stats.drop(DropReason.BAD_CHECKSUM)  # as TcpSegment.parse would
            return True
        counters["tcp.segments_in"] += 1
        self.tcp.segment_received(source, destination, segment, now=now)
        return True

    def tcp_received(
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

    def received_ipv6(
        self, source: IPv6Address, destination: IPv6Address, payload: Buffer, now: Instant
    ) -> None:
        """A TCP segment from the IPv6 input (after extension headers and reassembly),
        addressed to one of our unicast addresses; the checksum is verified unless the link
        vouched for it (a TAP's offload: then it may be partial, RFC 1071 §2 (C))."""
        stats = self.stats
        if is_multicast6(destination):
            stats.drop(DropReason.NOT_FOR_US)  # RFC 9293 §3.9.1: no TCP to multicast
            return
        if is_multicast6(source) or not source:
            stats.drop(DropReason.BAD_SOURCE_ADDRESS)  # RFC 4291 §2.7, §2.5.2
            return
        verdict = self.ipv6_verdict
        try:
            if verdict is not None and verdict.checksum_verified:
                segment = TcpSegment.parse(payload)
            else:
                segment = TcpSegment.parse_ipv6(payload, source=source, destination=destination)
        except ParseError as error:
            stats.drop(error.reason)
            return
        stats.count("tcp.segments_in")
        self.tcp.segment_received(source, destination, segment, now=now)

    # --- transmit -------------------------------------------------------------

    def send_tcp(
        self, source: Address, destination: Address, segment: TcpSegment, *, now: Instant
    ) -> None:
        """Wrap a segment from the TCP layer in IPv4 or IPv6 and send it (TcpHost protocol)."""
        self._counters["tcp.segments_out"] += 1
        if isinstance(destination, int):
            if not (self._fast_paths and self._fast_sent(source, destination, segment)):  # type: ignore[arg-type]
                self.send_general(source, destination, segment, now)  # type: ignore[arg-type]
            return
        self._send_ipv6(source, destination, segment, now)

    def _send_ipv6(
        self, source: Address, destination: IPv6Address, segment: TcpSegment, now: Instant
    ) -> None:
        """The segment in IPv6, checksummed over RFC 8200 §8.1's pseudo-header.

        One larger than the path MTU, within the link's TSO limit, leaves whole
        (``segment_offload``) for the link or the stack's software GSO to cut; toward a
        checksum-offloading link its checksum is then partial (the pseudo-header sum,
        RFC 1071 §2 (C)), and the virtio-net header says NEEDS_CSUM and TCPV6. Segments
        that fit go out with full checksums: a forwarded IPv6 segment leaves with the
        full one it came with, so on IPv6 an oversized frame is what says "partial".
        """
        ipv6 = self.ipv6
        if ipv6 is None or not isinstance(source, IPv6Address):
            self.stats.drop(DropReason.NO_ROUTE)
            return
        payload_length = len(segment.payload)
        length = 40 + segment.header_length + payload_length
        segment_offload = False
        checksum = CHECKSUM_FULL
        if length > _IPV6_MIN_MTU:  # else it fits every IPv6 path (RFC 8200 §5): no lookup
            offload, mtu = ipv6.route6_link(destination)
            segment_offload = length > mtu and 0 < payload_length <= offload.max_segment
            if segment_offload and offload.tx_checksum:
                checksum = CHECKSUM_PARTIAL
        ipv6.send_ipv6(
            source,
            destination,
            PROTOCOL_TCP,
            segment.build_ipv6(source, destination, checksum=checksum),
            now=now,
            segment_offload=segment_offload,
        )

    def _fast_sent(self, source: int, destination: int, segment: TcpSegment) -> bool:
        """Queue the common segment's frame in one step: routed to a resolved unicast next hop,
        fitting the link (or its TSO). False (nothing done) for anything else, which
        :meth:`send_general` then sends; ``test_fast_paths`` holds the two equal."""
        output = self._output
        found = output.unicast_route(destination)
        if found is None:
            return False
        iface, next_hop = found
        offload = iface.offload
        payload_length = len(segment.payload)
        layout = segment.layout()
        header_length = layout[2]
        oversized = 20 + header_length + payload_length > iface.mtu
        if oversized and not (offload.max_segment and payload_length <= offload.max_segment):
            return False  # the general path drops it: TCP sets DF (RFC 1191)
        mac = output.neighbours.resolved_mac(iface.name, next_hop)
        if mac is None:
            return False
        counters = self._counters
        counters["ip.packets_out"] += 1
        if oversized and offload.software_segmentation:
            self._gso_sent(iface, mac, source, destination, segment)
            return True
        output.frames.append(
            (
                iface.name,
                segment.build_ipv4_frame(
                    mac,
                    iface.mac,
                    source,
                    destination,
                    ttl=self._ttl,
                    identification=output.next_identification(),
                    checksum=CHECKSUM_PARTIAL if offload.tx_checksum else CHECKSUM_FULL,
                    layout=layout,
                ),
            )
        )
        counters["link.frames_out"] += 1
        return True

    def _gso_sent(
        self, iface: Interface, mac: bytes, source: int, destination: int, segment: TcpSegment
    ) -> None:
        """The segment cut into wire frames right here (software GSO), each piece taking
        the IPv4 identification it would have had sent on its own."""
        mss = iface.mtu - 20 - segment.header_length
        pieces = max(1, -(-len(segment.payload) // mss)) if mss > 0 else 1  # else ValueError
        frames = segment.build_ipv4_frames(
            mac,
            iface.mac,
            source,
            destination,
            ttl=self._ttl,
            identification=self._output.next_identification(pieces),
            mss=mss,
        )
        name = iface.name
        self._output.frames.extend([(name, frame) for frame in frames])
        counters = self._counters
        counters["link.frames_out"] += len(frames)
        counters["ip.gso_segmented"] += 1
        counters["ip.gso_segments_out"] += len(frames)

    def send_general(
        self, source: int, destination: int, segment: TcpSegment, now: Instant
    ) -> None:
        """Every case :meth:`_fast_sent` declines, through the layers one by one."""
        iface = self._output.route_interface(destination)
        if iface is not None and iface.offload.tx_checksum:
            payload = with_partial_checksum(
                segment.build(source, destination, with_checksum=False),
                source,
                destination,
                PROTOCOL_TCP,
            )
        else:
            payload = segment.build(source, destination)
        self._output.send(
            destination, PROTOCOL_TCP, payload, now=now, source=source, dont_fragment=True
        )


__all__ = ["FAST_MIN_FRAME", "FAST_RX", "TcpFrames"]
