"""IPv6 input (RFC 8200): validation, extension headers, reassembly, delivery or forwarding.

:class:`Ipv6Input` takes every IPv6 datagram from the link (or the loopback
queue): it checks the fixed header and the source, accepts our usable
unicast addresses and the groups joined on the arriving link (never a
tentative address, RFC 4862 §5.4), walks the extension headers
(:func:`~simtcp.wire.ipv6.walk_extension_headers`, bounded), reassembles
fragments (:mod:`.fragments`), and hands the upper layer to ICMPv6, to
TCP's ``received_ipv6`` or UDP's ``received_ipv6`` (when those layers have
them; otherwise it answers as RFC 4443 says), or forwards it as a router.
"""

from __future__ import annotations

from functools import partial

from ..config import Ip6Config
from ..errors import DropReason, ParseError
from ..link.interface import Interface
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHeap
from ..wire import icmpv6 as icmp_wire
from ..wire.checksum import Buffer
from ..wire.ipv6 import (
    HEADER_LENGTH,
    NEXT_HOP_BY_HOP,
    NEXT_ICMPV6,
    NEXT_NONE,
    NEXT_TCP,
    NEXT_UDP,
    PARAM_UNRECOGNIZED_NEXT_HEADER,
    Ipv6Packet,
    Walk,
    walk_extension_headers,
)
from .addresses import LOOPBACK, is_link_local6, is_multicast6
from .fragments import Reassembler6
from .icmp6 import Icmpv6
from .output import Ipv6Output, Link6

PARAM_INCOMPLETE_CHAIN = 3
"""Parameter problem code 3: the first fragment's header chain is incomplete (RFC 7112 §5)."""


class Ipv6Input:
    """Datagrams from the link to ICMPv6, TCP, UDP or the forwarder."""

    def __init__(
        self,
        config: Ip6Config,
        *,
        output: Ipv6Output,
        timers: TimerHeap,
        stats: Stats,
        icmp: Icmpv6,
        tcp: object,
        udp: object,
        loopback_interface: Interface,
    ) -> None:
        self._config = config
        self._forwarding = config.forwarding
        self._out = output
        self._stats = stats
        self._icmp = icmp
        self._tcp = tcp
        self._udp = udp
        self._loopback_interface = loopback_interface
        self.checksum_verified = False
        """Whether the datagram being delivered had its checksums vouched for by the link."""
        self.reassembler = Reassembler6(
            config, timers=timers, stats=stats, timed_out=self._reassembly_timed_out
        )

    def received(
        self,
        iface: Interface,
        data: Buffer,
        link_multicast: bool,
        now: Instant,
        *,
        verified: bool = False,
    ) -> None:
        stats = self._stats
        stats.count("ip6.packets_in")
        self.checksum_verified = verified or iface.offload.rx_checksum_verified
        try:
            packet = Ipv6Packet.parse(data)
        except ParseError as error:
            stats.drop(error.reason)
            return
        source, destination = packet.source, packet.destination
        looped = iface is self._loopback_interface
        if is_multicast6(source) or (source == LOOPBACK and not looped):
            stats.drop(DropReason.IPV6_BAD_SOURCE)  # RFC 4291 §2.7, §2.5.3
            return
        datagram = memoryview(data)[: HEADER_LENGTH + len(packet.payload)]
        if is_multicast6(destination):
            link = self._out.links.get(iface.name)
            if link is None or destination not in link.groups:
                stats.drop(DropReason.IPV6_NOT_JOINED)
                return
            self._deliver(link, datagram, packet, link_multicast, now)
            return
        entry = self._out.local.get(destination)
        if entry is not None:
            if not entry.usable:
                stats.drop(DropReason.DAD_TENTATIVE)  # RFC 4862 §5.4: not ours yet
                return
            link = self._out.links.get(iface.name) or self._out.links[entry.interface]
            self._deliver(link, datagram, packet, link_multicast, now)
            return
        link = self._out.links.get(iface.name)
        if link is None or link_multicast:
            stats.drop(DropReason.NOT_FOR_US)
        elif not self._forwarding:
            stats.drop(DropReason.FORWARDING_DISABLED)
        else:
            self._forward(link, datagram, packet, now)

    # --- local delivery -----------------------------------------------------

    def _deliver(
        self, link: Link6, data: Buffer, packet: Ipv6Packet, link_multicast: bool, now: Instant
    ) -> None:
        limit = self._config.max_extension_headers
        walk = walk_extension_headers(data, max_headers=limit)
        fragment = walk.fragment
        if walk.drop is None and fragment is not None:
            if fragment.offset == 0 and not fragment.more_fragments:
                # RFC 6946 §4: an atomic fragment is processed alone, never reassembled.
                self._stats.count("ip6.atomic_fragments")
                walk = walk_extension_headers(
                    data,
                    next_header=fragment.next_header,
                    start=walk.fragment_offset + 8,
                    max_headers=max(limit - walk.headers, 0),
                )
            else:
                refuse = partial(self._refuse_fragment, link, data, link_multicast, now)
                if fragment.offset == 0 and not self._chain_complete(data, walk, limit):
                    # RFC 8200 §4.5 (RFC 7112): the first fragment holds the whole chain.
                    refuse(DropReason.IPV6_BAD_FRAGMENT, PARAM_INCOMPLETE_CHAIN, 0)
                    return
                whole = self.reassembler.add(
                    data, packet, fragment, walk.fragment_offset, walk.fragment_field, now, refuse
                )
                if whole is None:
                    return
                data, packet = whole, Ipv6Packet.parse(whole)
                # Fragments may come from different frames: only the interface's word holds.
                iface_offload = self._out.links[link.name].interface.offload
                self.checksum_verified = iface_offload.rx_checksum_verified
                walk = walk_extension_headers(data, max_headers=limit)
            if walk.drop is None and walk.fragment is not None:
                walk.drop = DropReason.IPV6_BAD_FRAGMENT  # a fragment inside a fragment
        if walk.drop is not None:
            self._refuse(link, data, walk, link_multicast, now)
            return
        self._upper(link, data, packet, walk, link_multicast, now)

    @staticmethod
    def _chain_complete(data: Buffer, walk: Walk, limit: int) -> bool:
        fragment = walk.fragment
        if fragment is None:
            return True
        rest = walk_extension_headers(
            data,
            next_header=fragment.next_header,
            start=walk.fragment_offset + 8,
            max_headers=max(limit - walk.headers, 0),
        )
        return rest.drop is not DropReason.TRUNCATED

    def _upper(
        self,
        link: Link6,
        data: Buffer,
        packet: Ipv6Packet,
        walk: Walk,
        link_multicast: bool,
        now: Instant,
    ) -> None:
        upper = walk.upper
        body = memoryview(data)[walk.upper_offset :]
        if upper == NEXT_ICMPV6:
            self._icmp.received(link, packet, body, now)
            return
        multicast = is_multicast6(packet.destination) or link_multicast
        if upper == NEXT_TCP:
            tcp = getattr(self._tcp, "received_ipv6", None)
            if tcp is not None and not multicast:
                tcp(packet.source, packet.destination, body, now)
                return
        elif upper == NEXT_UDP:
            udp = getattr(self._udp, "received_ipv6", None)
            if udp is not None:
                # Udp.received_ipv6 is False when no socket took it (RFC 4443 §3.1).
                if udp(packet.source, packet.destination, body, now, multicast) is not False:
                    return
            else:
                self._stats.drop(DropReason.PORT_UNREACHABLE)
            self._icmp.send_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_PORT_UNREACHABLE,
                0,
                data,
                now,
                link=link,
                link_multicast=link_multicast,
            )
            return
        elif upper == NEXT_NONE:
            self._stats.count("ip6.no_next_header")  # RFC 8200 §4.7: nothing follows
            return
        # RFC 8200 §4: an unrecognized next header: parameter problem, code 1, at its field.
        self._stats.drop(DropReason.IPV6_UNKNOWN_NEXT_HEADER)
        self._icmp.send_error(
            icmp_wire.TYPE_PARAMETER_PROBLEM,
            PARAM_UNRECOGNIZED_NEXT_HEADER,
            walk.upper_field,
            data,
            now,
            link=link,
            link_multicast=link_multicast,
        )

    def _refuse(
        self, link: Link6, data: Buffer, walk: Walk, link_multicast: bool, now: Instant
    ) -> None:
        if walk.drop is not None:
            self._stats.drop(walk.drop)
        if walk.icmp_code is not None:
            self._icmp.send_error(
                icmp_wire.TYPE_PARAMETER_PROBLEM,
                walk.icmp_code,
                walk.icmp_pointer,
                data,
                now,
                link=link,
                link_multicast=link_multicast,
                even_multicast=walk.icmp_even_multicast,
            )

    def _refuse_fragment(
        self,
        link: Link6,
        data: Buffer,
        link_multicast: bool,
        now: Instant,
        reason: DropReason,
        code: int,
        pointer: int,
    ) -> None:
        self._stats.drop(reason)
        self._icmp.send_error(
            icmp_wire.TYPE_PARAMETER_PROBLEM,
            code,
            pointer,
            data,
            now,
            link=link,
            link_multicast=link_multicast,
        )

    def _reassembly_timed_out(self, first_fragment: bytes, now: Instant) -> None:
        self._icmp.send_error(
            icmp_wire.TYPE_TIME_EXCEEDED,
            icmp_wire.CODE_REASSEMBLY_TIME_EXCEEDED,
            0,
            first_fragment,
            now,
            link=None,
        )

    # --- forwarding ---------------------------------------------------------

    def _forward(self, link: Link6, data: Buffer, packet: Ipv6Packet, now: Instant) -> None:
        """RFC 8200 §3/§4: only hop-by-hop is read on the way; hop limit, route, MTU."""
        stats = self._stats
        if is_link_local6(packet.source) or is_link_local6(packet.destination):
            stats.drop(DropReason.NOT_FOR_US)  # RFC 4291 §2.5.6: never beyond the link
            return
        if packet.next_header == NEXT_HOP_BY_HOP:
            walk = walk_extension_headers(data, max_headers=1)
            if (
                walk.drop is not None
                and walk.drop is not DropReason.IPV6_TOO_MANY_EXTENSION_HEADERS
            ):
                self._refuse(link, data, walk, False, now)
                return
        if packet.hop_limit <= 1:
            stats.drop(DropReason.HOP_LIMIT_EXCEEDED)
            self._icmp.send_error(
                icmp_wire.TYPE_TIME_EXCEEDED,
                icmp_wire.CODE_HOP_LIMIT_EXCEEDED,
                0,
                data,
                now,
                link=link,
            )
            return
        found = self._out.route(packet.destination)
        if found is None:
            stats.drop(DropReason.NO_ROUTE)
            self._icmp.send_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_NO_ROUTE,
                0,
                data,
                now,
                link=link,
            )
            return
        out_link, next_hop = found
        if len(data) > out_link.mtu:
            stats.drop(DropReason.FRAGMENT_NEEDED)  # RFC 8200 §5: routers never fragment
            self._icmp.send_error(
                icmp_wire.TYPE_PACKET_TOO_BIG, 0, out_link.mtu, data, now, link=link
            )
            return
        datagram = bytearray(data)
        datagram[7] -= 1
        stats.count("ip6.forwarded")
        self._out.send_forwarded(out_link, next_hop, bytes(datagram), now)


__all__ = ["Ipv6Input"]
