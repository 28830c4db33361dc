"""Forwarding between interfaces (RFC 1812 in spirit), with offloads and the MTU in the way.

:class:`Forwarder` lowers the TTL (patching the header checksum: RFC 1624),
routes, and hands the datagram to :class:`~simtcp.ip.output.Ipv4Output`;
:func:`plan_forward` decides what a datagram that does not simply fit becomes
on the next link: cut (software GSO), finished checksums, or too big.

The one-step path
-----------------

A router's frames are nearly all the same case: an option-less IPv4 datagram,
unicast to our MAC and to someone else's address, with TTL to spare, routed to a
next hop whose MAC the neighbour cache holds, that fits the next link or is a
TCP super-segment the next link cuts itself (TSO) at the very size it came cut
at. :meth:`Forwarder.fast_forward`, called by ``Stack.receive_frame`` before
any object is built, takes that case from the frame in one step: one
``struct`` unpack reads the Ethernet and IPv4 headers, the header checksum is
checked by summing 20 bytes as one integer (RFC 1071), and the frame that
leaves is one join of a packed Ethernet + IPv4 header (new MACs, TTL one lower,
the header checksum patched, RFC 1624 eqn. 3; RFC 1812 §5.3.1) and the rest of
the received buffer, untouched except where the next link wants the L4
checksum in another form (partial for a checksum-offloading link, full
otherwise, exactly as :func:`plan_forward` leaves it). A 64 KiB GSO segment
thus costs one copy of its bytes on the way through; its gso_size is carried
by the frame itself, since the next TAP's virtio-net header is derived from
the same headers (:func:`simtcp.backends.vnet.tx_header`) and the path is only
taken when that gives the gso_size the segment arrived with.

Everything else (options, TTL 1, fragments or datagrams too big for the next
link, ICMP to send, unresolved next hops, bad checksums, broadcasts, martians)
returns False before any state or counter changed, and the layered path below
takes it: it is the oracle, and ``tests/property/test_forward_fast_path.py``
feeds both the same frames and compares frames out, ICMP and counters byte
for byte. ``StackConfig.fast_paths`` turns the one-step path off.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DropReason
from ..link.interface import Interface
from ..stats import Stats
from ..time import Instant
from ..wire import icmp as icmp_wire
from ..wire.checksum import (
    Buffer,
    checksum_update,
    ones_complement_sum,
    pseudo_header_sum,
    word_sum,
)
from ..wire.ipv4 import Ipv4Packet
from ..wire.offload import (
    SMALL_SUM,
    is_whole_l4,
    is_whole_tcp,
    l4_checksum_ok,
    segment_tcp,
    set_l4_checksum,
    tcp_mss_for,
)
from ..wire.protocols import PROTOCOL_TCP, PROTOCOL_UDP
from .fragments import fragment
from .output import Ipv4Output

if TYPE_CHECKING:
    from ..icmp import Icmp


@dataclass(slots=True)
class ForwardPlan:
    """What to do with a datagram to forward when offloads or the MTU get in the way."""

    pieces: list[bytes] = field(default_factory=list)
    """Datagrams ready to go out (none when dropped or too big)."""
    drop: DropReason | None = None
    too_big: bytes | None = None
    """A real datagram too big for the next link, checksums complete: refuse (DF) or
    fragment it."""
    segmented: bool = False
    """A super-segment was cut here (software GSO)."""


_FAST_HEADERS = struct.Struct("!6s6sHBBHHHBBHII")
"""Destination and source MAC, EtherType, then the option-less IPv4 header."""
_OUT_HEADERS = struct.Struct("!6s6sHBBHHHBBHII")
"""The same, packed for the frame that leaves."""
_ETHERTYPE_IPV4 = 0x0800
_L4_CHECKSUM_AT = {PROTOCOL_TCP: 14 + 20 + 16, PROTOCOL_UDP: 14 + 20 + 6}
"""Where a whole TCP or UDP datagram's checksum field sits in an option-less frame."""
_L4_LEAST_WITH_CHECKSUM = {PROTOCOL_TCP: 20 + 18, PROTOCOL_UDP: 20 + 8}
"""The shortest datagram whose TCP or UDP header holds its checksum field."""
_ADDRESSES = struct.Struct("!II")
_KEEP = -1
"""The L4 checksum field stays as it came (see :func:`_l4_checksum_out`)."""


def plan_forward(
    datagram: bytes,
    *,
    arrived_mtu: int,
    out_mtu: int,
    tx_checksum: bool,
    max_segment: int,
    verified: bool,
    gso_size: int,
) -> ForwardPlan:
    """Decide how a datagram (TTL already lowered) leaves by the next link.

    A TCP super-segment (it came as GSO, or larger than its link's MTU could
    carry) that the next link cannot take whole is cut into MSS-sized segments
    here, as Linux's software GSO does: at ``gso_size``, or the MSS of the link
    it came by, and never above what the next link carries. It goes whole to a
    TSO link that would cut it at that same size. Checksums leave in the form
    the next link wants: partial for a checksum-offloading link (checked first
    when nobody vouched for them: new checksums would make corrupt data look
    good), full otherwise.
    """
    whole_l4 = is_whole_l4(datagram)
    oversized = len(datagram) > out_mtu
    super_segment = (
        oversized and is_whole_tcp(datagram) and (gso_size > 0 or len(datagram) > arrived_mtu)
    )
    if whole_l4 and not verified and (tx_checksum or super_segment):
        if not l4_checksum_ok(datagram):
            return ForwardPlan(drop=DropReason.BAD_CHECKSUM)
        verified = True
    if super_segment:
        out_mss = tcp_mss_for(datagram, out_mtu)
        mss = min(gso_size or tcp_mss_for(datagram, arrived_mtu), out_mss)
        payload_length = tcp_mss_for(datagram, len(datagram))
        if tx_checksum and mss == out_mss and 0 < payload_length <= max_segment:
            oversized = False  # the next link cuts it at out_mss (TSO)
        elif mss > 0:
            return ForwardPlan(
                pieces=segment_tcp(datagram, mss, partial=tx_checksum), segmented=True
            )
    if not (whole_l4 and verified):
        return ForwardPlan(too_big=datagram) if oversized else ForwardPlan(pieces=[datagram])
    finished = bytearray(datagram)
    # It may have arrived partial; fragments must carry the whole checksum.
    set_l4_checksum(finished, partial=tx_checksum and not oversized)
    if oversized:
        return ForwardPlan(too_big=bytes(finished))
    return ForwardPlan(pieces=[bytes(finished)])


class Forwarder:
    """Passes datagrams not for us on to the next hop, as a router (``ip.forwarding``)."""

    def __init__(self, *, output: Ipv4Output, icmp: Icmp, stats: Stats) -> None:
        self._output = output
        self._icmp = icmp
        self._stats = stats
        self._counters = stats.counters()
        self._local = output.local
        self._broadcasts = output.broadcasts
        self._interfaces = output.interfaces
        self._lookup = output.routes.lookup

    def fast_forward(
        self, iface: Interface, frame: Buffer, now: Instant, verified: bool, gso_size: int
    ) -> bool:
        """Forward the common frame in one step (see the module doc); False, with nothing
        done, for anything the layered path must take."""
        if len(frame) < 34:
            return False
        (
            mac,
            _source_mac,
            ethertype,
            version_ihl,
            tos,
            total_length,
            identification,
            flags_offset,
            ttl,
            protocol,
            checksum,
            source,
            destination,
        ) = _FAST_HEADERS.unpack_from(frame)
        if (
            ethertype != _ETHERTYPE_IPV4
            or version_ihl != 0x45
            or mac != iface.mac
            or ttl <= 1
            or total_length < 20
            or total_length + 14 > len(frame)
            or destination in self._local
            or destination in self._broadcasts
            or destination >> 28 == 0xE  # multicast: RFC 1812 §5.3.5 is not ours to do
            # martian sources (RFC 1122 §3.2.1.3), is_martian_source inlined
            or source >> 28 == 0xE
            or source >> 24 == 127
            or source == 0xFFFFFFFF
            # RFC 1071: a good header sums to a multiple of 0xffff (never 0: version 4)
            or int.from_bytes(frame[14:34], "big") % 0xFFFF
        ):
            return False
        route = self._lookup(destination)  # Ipv4Output.route, inlined
        if route is None:
            return False
        out = self._interfaces[route.interface]
        next_hop = route.gateway if route.gateway is not None else destination
        end = 14 + total_length
        verified = verified or iface.offload.rx_checksum_verified
        if (
            verified
            and total_length <= out.mtu
            and out.offload.tx_checksum
            and total_length >= _L4_LEAST_WITH_CHECKSUM.get(protocol, 0x10000)
            and not flags_offset & 0x3FFF
        ):
            # The common case, inlined (a TAP with offloads on both sides): vouched for and
            # leaving partial, the pseudo-header sum, which the TTL is no part of.
            at = _L4_CHECKSUM_AT[protocol]
            if protocol == PROTOCOL_UDP and not (frame[at] or frame[at + 1]):
                l4_checksum = _KEEP  # no checksum (RFC 768)
            else:
                pseudo = (
                    (source >> 16)
                    + (source & 0xFFFF)
                    + (destination >> 16)
                    + (destination & 0xFFFF)
                    + protocol
                    + total_length
                    - 20
                )
                l4_checksum = pseudo % 0xFFFF or 0xFFFF
        else:
            found = self._fast_l4_checksum(
                frame, iface, out, end, protocol, flags_offset, gso_size, verified
            )
            if found is None:
                return False
            l4_checksum = found
        next_mac = self._output.neighbours.resolved_mac(out.name, next_hop)
        if next_mac is None:
            return False
        header = _OUT_HEADERS.pack(
            next_mac,
            out.mac,
            _ETHERTYPE_IPV4,
            0x45,
            tos,
            total_length,
            identification,
            flags_offset,
            ttl - 1,
            protocol,
            # RFC 1812 §5.3.1, RFC 1624 eqn. 3: the TTL word changes, the checksum follows;
            # checksum_update, inlined (~m + m' is 0xffff - 0x0100 whatever the word was).
            _ttl_lowered_checksum(checksum),
            source,
            destination,
        )
        if l4_checksum == _KEEP:
            leaving = b"".join((header, frame[34:end]))
        else:
            at = _L4_CHECKSUM_AT[protocol]
            leaving = b"".join(
                (header, frame[34:at], l4_checksum.to_bytes(2, "big"), frame[at + 2 : end])
            )
        counters = self._counters
        counters["ip.packets_in"] += 1
        counters["ip.forwarded"] += 1
        counters["link.frames_out"] += 1
        self._output.frames.append((out.name, leaving))
        return True

    def _fast_l4_checksum(
        self,
        frame: Buffer,
        arrived_on: Interface,
        out: Interface,
        end: int,
        protocol: int,
        flags_offset: int,
        gso_size: int,
        verified: bool,
    ) -> int | None:
        """What the one-step path does to the L4 checksum of a frame leaving by ``out``:
        ``_KEEP``, the new field, or None when the layered path must take the frame (too
        big for ``out`` and not a super-segment ``out`` cuts as it came; a checksum to
        check that fails). :meth:`_pieces` and :func:`plan_forward`, in one step."""
        total_length = end - 14
        whole_l4 = protocol in _L4_CHECKSUM_AT and not flags_offset & 0x3FFF
        tx_checksum = out.offload.tx_checksum
        if total_length <= out.mtu:
            if not (whole_l4 and (verified or tx_checksum)):
                return _KEEP
        elif not (
            whole_l4
            and tx_checksum
            and protocol == PROTOCOL_TCP
            and self._goes_whole(frame, arrived_on, out, total_length, gso_size)
        ):
            return None
        source, destination = _ADDRESSES.unpack_from(frame, 26)
        return _l4_checksum_out(
            frame, end, protocol, source, destination, partial=tx_checksum, verified=verified
        )

    @staticmethod
    def _goes_whole(
        frame: Buffer, arrived_on: Interface, out: Interface, total_length: int, gso_size: int
    ) -> bool:
        """A TCP super-segment too big for ``out``'s MTU that ``out`` cuts itself (TSO) at
        the size it came cut at: :func:`plan_forward`'s whole case."""
        if total_length < 40 or not (gso_size > 0 or total_length > arrived_on.mtu):
            return False
        tcp_header_length = (frame[14 + 20 + 12] >> 4) * 4
        if not 20 <= tcp_header_length <= total_length - 20:
            return False
        out_mss = out.mtu - 20 - tcp_header_length
        mss = min(gso_size or arrived_on.mtu - 20 - tcp_header_length, out_mss)
        payload_length = total_length - 20 - tcp_header_length
        return mss == out_mss and 0 < payload_length <= out.offload.max_segment

    def forward(
        self,
        packet: Ipv4Packet,
        now: Instant,
        *,
        arrived_on: Interface,
        verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        stats = self._stats
        if packet.ttl <= 1:
            stats.drop(DropReason.TTL_EXPIRED)
            self._icmp.send_error(
                icmp_wire.TYPE_TIME_EXCEEDED, icmp_wire.CODE_TTL_EXCEEDED, packet, now
            )
            return
        found = self._output.route(packet.destination)
        if found is None:
            stats.drop(DropReason.NO_ROUTE)
            self._icmp.send_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE, icmp_wire.CODE_NET_UNREACHABLE, packet, now
            )
            return
        out, next_hop = found
        datagram = _with_ttl_lowered(packet)
        stats.count("ip.forwarded")
        pieces = self._pieces(packet, datagram, out, arrived_on, verified, gso_size, now)
        if pieces:
            self._output.send_forwarded(out, next_hop, pieces, now)

    def _pieces(
        self,
        packet: Ipv4Packet,
        datagram: bytes,
        out: Interface,
        arrived_on: Interface,
        verified: bool,
        gso_size: int,
        now: Instant,
    ) -> list[bytes]:
        """What leaves by ``out`` for ``datagram`` (TTL lowered): itself, pieces, fragments,
        or nothing (dropped, and ICMP fragmentation needed for DF: RFC 1191)."""
        whole_l4 = packet.protocol in (PROTOCOL_TCP, PROTOCOL_UDP) and not packet.is_fragment
        if len(datagram) <= out.mtu and not (whole_l4 and (verified or out.offload.tx_checksum)):
            return [datagram]
        stats = self._stats
        plan = plan_forward(
            datagram,
            arrived_mtu=arrived_on.mtu,
            out_mtu=out.mtu,
            tx_checksum=out.offload.tx_checksum,
            max_segment=out.offload.max_segment,
            verified=verified,
            gso_size=gso_size,
        )
        if plan.drop is not None:
            stats.drop(plan.drop)
        elif plan.segmented:
            # ip.gso_segmented counts every super-segment cut in software (our
            # own output too); this one only those cut on the way through.
            stats.count("ip.gso_segmented")
            stats.count("ip.gso_forward_segmented")
            stats.count("ip.gso_segments_out", len(plan.pieces))
        elif plan.too_big is not None:
            if packet.dont_fragment:
                stats.drop(DropReason.FRAGMENT_NEEDED)
                self._icmp.send_error(
                    icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                    icmp_wire.CODE_FRAGMENTATION_NEEDED,
                    packet,
                    now,
                    rest=out.mtu,
                )
                return []
            packet.payload = plan.too_big[packet.header_length :]
            packet.ttl -= 1
            return fragment(packet, out.mtu)
        return plan.pieces


def _ttl_lowered_checksum(checksum: int) -> int:
    """The header checksum once the TTL is one lower (RFC 1624 eqn. 3, HC' = ~(~HC + ~m +
    m')): with the TTL the high byte of its word, ~m + m' is 0xffff - 0x0100 for any m."""
    total = (~checksum & 0xFFFF) + 0xFEFF
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _l4_checksum_out(
    frame: Buffer,
    end: int,
    protocol: int,
    source: int,
    destination: int,
    *,
    partial: bool,
    verified: bool,
) -> int | None:
    """The L4 checksum the frame leaves with, as :func:`plan_forward` would set it.

    ``_KEEP`` when the field stays (a UDP datagram without checksum, RFC 768, or an L4
    header too short to hold one: ``set_l4_checksum`` leaves both), None when the
    datagram must take the layered path (its checksum was nobody's to trust and is
    wrong: dropped there, and counted).
    """
    at = _L4_CHECKSUM_AT[protocol]
    length = end - 34
    if length < at - 34 + 2:
        return _KEEP if verified else None
    if protocol == PROTOCOL_UDP and not (frame[at] or frame[at + 1]):
        return _KEEP
    pseudo = pseudo_header_sum(source, destination, protocol, length)
    if not verified or not partial:
        # Sum the L4 bytes once: to check them, to finish them, or both.
        l4 = frame[34:end]
        total = ones_complement_sum(l4) if length > SMALL_SUM else word_sum(l4)
        if not verified and (total + pseudo) % 0xFFFF:
            return None
        if not partial:
            field = (frame[at] << 8) | frame[at + 1]
            # The sum with the field zeroed (RFC 1624: subtracting a word is adding its
            # complement), complemented; a computed UDP zero is sent as all ones (RFC 768).
            value = ~((total + pseudo + (~field & 0xFFFF)) % 0xFFFF or 0xFFFF) & 0xFFFF
            return 0xFFFF if protocol == PROTOCOL_UDP and value == 0 else value
    return pseudo % 0xFFFF or 0xFFFF


def _with_ttl_lowered(packet: Ipv4Packet) -> bytes:
    """The datagram with its TTL one lower, the header checksum patched in place instead
    of rebuilt (RFC 1624)."""
    header = bytearray(packet.build_header(len(packet.payload)))
    old_word = (header[8] << 8) | header[9]
    header[8] -= 1
    old_checksum = (header[10] << 8) | header[11]
    new_checksum = checksum_update(old_checksum, old_word, (header[8] << 8) | header[9])
    header[10:12] = new_checksum.to_bytes(2, "big")
    return bytes(header) + bytes(packet.payload)


__all__ = ["ForwardPlan", "Forwarder", "plan_forward"]
