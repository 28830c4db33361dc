"""IPv4 input (RFC 791, RFC 1122 §3.3): validation, reassembly, local delivery or forwarding.

:class:`Ipv4Input` takes the general path's datagrams (the one-step fast
paths of :mod:`simtcp.tcpio` take the common ones before): it checks the
header, drops martian sources, reassembles fragments to us and hands the
datagram to TCP, UDP or ICMP, or to the :class:`~simtcp.ip.forward.Forwarder`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import IpConfig
from ..errors import DropReason, ParseError
from ..link.interface import Interface
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHeap
from ..wire import icmp as icmp_wire
from ..wire.checksum import Buffer
from ..wire.ipv4 import Ipv4Packet
from ..wire.protocols import PROTOCOL_ICMP, PROTOCOL_TCP, PROTOCOL_UDP
from .forward import Forwarder
from .fragments import Reassembler
from .output import Ipv4Output
from .routing import is_martian_source, is_multicast

if TYPE_CHECKING:
    from ..icmp import Icmp
    from ..tcpio import TcpFrames
    from ..udp import Udp


class Ipv4Input:
    """Datagrams from the link (or the loopback queue) to the protocol they carry."""

    def __init__(
        self,
        config: IpConfig,
        *,
        output: Ipv4Output,
        timers: TimerHeap,
        stats: Stats,
        icmp: Icmp,
        udp: Udp,
        tcp: TcpFrames,
    ) -> None:
        self._forwarding = config.forwarding
        self._local = output.local
        self._broadcasts = output.broadcasts
        self._loopback_interface = output.loopback_interface
        self._stats = stats
        self._icmp = icmp
        self._udp = udp
        self._tcp = tcp
        self.reassembler = Reassembler(
            config, timers=timers, stats=stats, timed_out=self._reassembly_timed_out
        )
        self._forwarder = Forwarder(output=output, icmp=icmp, stats=stats)
        self.fast_forward = self._forwarder.fast_forward if self._forwarding else None
        """The one-step forwarding path (:meth:`Forwarder.fast_forward`) for
        ``Stack.receive_frame``; None when we do not forward."""

    def received(
        self,
        iface: Interface,
        payload: Buffer,
        link_broadcast: bool,
        now: Instant,
        *,
        verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        stats = self._stats
        stats.count("ip.packets_in")
        verified = verified or iface.offload.rx_checksum_verified
        try:
            packet = Ipv4Packet.parse(payload, verify_checksum=not verified)
        except ParseError as error:
            stats.drop(error.reason)
            return
        if is_martian_source(packet.source) and iface is not self._loopback_interface:
            # RFC 1122 §3.2.1.3(g): 127/8 must never appear outside a host; inside it is fine.
            stats.drop(DropReason.BAD_SOURCE_ADDRESS)
            return
        destination = packet.destination
        if destination in self._local or destination in self._broadcasts:
            self._deliver_local(iface, packet, link_broadcast, now, verified)
        elif is_multicast(destination):
            stats.drop(DropReason.NOT_FOR_US)
        elif link_broadcast:
            # RFC 1122 §3.3.6: a link-layer broadcast must not be forwarded as unicast.
            stats.drop(DropReason.NOT_FOR_US)
        elif not self._forwarding:
            stats.drop(DropReason.FORWARDING_DISABLED)
        else:
            self._forwarder.forward(
                packet, now, arrived_on=iface, verified=verified, gso_size=gso_size
            )

    def _deliver_local(
        self,
        iface: Interface,
        packet: Ipv4Packet,
        link_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        if packet.is_fragment:
            whole = self.reassembler.add(packet, now)
            if whole is None:
                return
            packet = whole
            # Fragments may come from different frames: only the interface's word holds.
            verified = iface.offload.rx_checksum_verified
        to_broadcast = packet.destination in self._broadcasts
        protocol = packet.protocol
        if protocol == PROTOCOL_TCP:
            self._tcp.tcp_received(packet, to_broadcast or link_broadcast, now, verified)
        elif protocol == PROTOCOL_UDP:
            self._udp.received(packet, link_broadcast, to_broadcast, now, verified)
        elif protocol == PROTOCOL_ICMP:
            self._icmp.received(packet, link_broadcast, to_broadcast, now, verified)
        else:
            self._stats.drop(DropReason.UNKNOWN_PROTOCOL)
            self._icmp.send_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_PROTOCOL_UNREACHABLE,
                packet,
                now,
                link_broadcast=link_broadcast,
                to_broadcast=to_broadcast,
            )

    def _reassembly_timed_out(self, first_fragment: Ipv4Packet, now: Instant) -> None:
        self._icmp.send_error(
            icmp_wire.TYPE_TIME_EXCEEDED,
            icmp_wire.CODE_REASSEMBLY_TIME_EXCEEDED,
            first_fragment,
            now,
        )


__all__ = ["Ipv4Input"]
