"""Forwarding between interfaces (RFC 1812 in spirit), with offloads and the MTU in the way.

:class:`Forwarder` lowers the TTL (patching the header checksum: RFC 1624),
routes, and hands the datagram to :class:`~simtcp.ip.output.Ipv4Output`;
:func:`plan_forward` decides what a datagram that does not simply fit becomes
on the next link: cut (software GSO), finished checksums, or too big.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import DropReason
from ..link.interface import Interface
from ..stats import Stats
from ..time import Instant
from ..wire import icmp as icmp_wire
from ..wire.checksum import checksum_update
from ..wire.ipv4 import Ipv4Packet
from ..wire.offload import (
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
