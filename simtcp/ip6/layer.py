"""The IPv6 layer put together: what :class:`~simtcp.stack.Stack` calls for IPv6.

:class:`Ipv6Layer` composes :class:`~.output.Ipv6Output` (addresses, routes,
path MTU, neighbours, framing), :class:`~.mld.Mld`,
:class:`~.nd.NeighbourDiscovery` (ND, SLAAC, DAD), :class:`~.icmp6.Icmpv6`
and :class:`~.input.Ipv6Input`, and offers the stack the operations it
exposes: interfaces and addresses, routes, sending, and the seam the
transport layers use (``send``, ``route_source``, ``is_local``).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address

from ..config import StackConfig
from ..errors import AddressError, DropReason
from ..events import Event
from ..ip.output import Ipv4Output
from ..link.interface import Interface, InterfaceOffload
from ..rng import SeededRandom
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHeap
from ..wire import icmpv6 as icmp_wire
from ..wire.checksum import Buffer
from .addresses import address6_from_str, is_multicast6, prefix6_from_str
from .icmp6 import Icmpv6
from .input import Ipv6Input
from .mld import Mld
from .nd import NeighbourDiscovery
from .neighbours import NeighbourState
from .output import AddressState, Ipv6Output, Link6


class Ipv6Layer:
    """IPv6, ICMPv6, ND, SLAAC and MLD for one stack."""

    def __init__(
        self,
        config: StackConfig,
        *,
        timers: TimerHeap,
        stats: Stats,
        rng: SeededRandom,
        output4: Ipv4Output,
        emit: Callable[[Event], None],
        tcp: object,
        udp: object,
    ) -> None:
        self.config = config.ip6
        self.output = output = Ipv6Output(
            config,
            timers=timers,
            stats=stats,
            rng=rng,
            frames=lambda: output4.frames,
            loopback=output4.loopback,
        )
        self._stats = stats
        self.mld = Mld(output, timers=timers, stats=stats)
        self.nd = NeighbourDiscovery(
            output,
            timers=timers,
            stats=stats,
            rng=rng,
            mld=self.mld,
            forwarding=config.ip6.forwarding,
        )
        self.icmp = Icmpv6(
            config.ip6, output=output, nd=self.nd, mld=self.mld, stats=stats, emit=emit
        )
        self.input = Ipv6Input(
            config.ip6,
            output=output,
            timers=timers,
            stats=stats,
            icmp=self.icmp,
            tcp=tcp,
            udp=udp,
            loopback_interface=output4.loopback_interface,
        )
        output.unresolved = self._unresolved

    # --- topology -----------------------------------------------------------

    def interface_added(self, interface: Interface, now: Instant) -> None:
        link = self.output.add_link(interface)
        if link is not None and self.config.link_local_on_add:
            self.nd.start(link, now)

    def add_address(self, interface: str, text: str, now: Instant) -> None:
        """``"2001:db8::1/64"``: the address (tentative until DAD) and its on-link prefix."""
        address, length = prefix6_from_str(text)
        self.nd.add_manual(self.output.link(interface), address, length, now)

    def add_route(self, destination: str, *, via: str | None, interface: str | None) -> None:
        network, length = prefix6_from_str(destination)
        gateway = address6_from_str(via) if via is not None else None
        self.output.add_route(network, length, via=gateway, interface=interface)

    def join_group(self, interface: str, group: str | IPv6Address, now: Instant) -> None:
        address = group if isinstance(group, IPv6Address) else address6_from_str(group)
        if not is_multicast6(address):
            raise AddressError(f"{address} is no multicast group")
        self.mld.join(self.output.link(interface), address, now)

    def leave_group(self, interface: str, group: str | IPv6Address, now: Instant) -> None:
        address = group if isinstance(group, IPv6Address) else address6_from_str(group)
        self.mld.leave(self.output.link(interface), address, now)

    def accepts_mac(self, interface: str, mac: bytes) -> bool:
        """A 33:33 multicast MAC of a group joined on ``interface`` (RFC 2464 §7)."""
        link = self.output.links.get(interface)
        return link is not None and mac in link.macs

    def addresses(self, interface: str) -> list[tuple[IPv6Address, int, str]]:
        """(address, prefix length, state) of every IPv6 address on ``interface``."""
        return [
            (e.address, e.prefix_length, e.status.value)
            for e in self.output.link(interface).addresses
        ]

    def neighbour_state(self, interface: str, address: IPv6Address) -> str | None:
        entry = self.output.neighbours.entry(interface, address)
        return entry.nud_state.value if entry is not None else None

    def add_static_neighbour(self, interface: str, address: str, mac: bytes) -> None:
        self.output.link(interface)
        self.output.neighbours.add_static(interface, address6_from_str(address), mac)

    # --- the seam for TCP and UDP -------------------------------------------

    def send(
        self,
        source: IPv6Address | None,
        destination: IPv6Address,
        next_header: int,
        payload: bytes,
        *,
        now: Instant,
        hop_limit: int | None = None,
        interface: str | None = None,
        segment_offload: bool = False,
    ) -> bool:
        return self.output.send(
            source,
            destination,
            next_header,
            payload,
            now=now,
            hop_limit=hop_limit,
            interface=interface,
            segment_offload=segment_offload,
        )

    def route_source(self, destination: IPv6Address) -> tuple[IPv6Address, int] | None:
        return self.output.route_source(destination)

    def route_link(self, destination: IPv6Address) -> tuple[InterfaceOffload, int]:
        return self.output.route_link(destination)

    def is_local(self, address: IPv6Address) -> bool:
        return self.output.is_local(address)

    # --- frames -------------------------------------------------------------

    def received(
        self,
        interface: Interface,
        payload: Buffer,
        link_multicast: bool,
        now: Instant,
        *,
        verified: bool = False,
    ) -> None:
        """One IPv6 datagram from ``interface``; ``verified``: the link vouched for its
        checksums (see :attr:`checksum_verified`)."""
        self.input.received(interface, payload, link_multicast, now, verified=verified)

    @property
    def checksum_verified(self) -> bool:
        """True while a ``received_ipv6`` hook runs for a datagram whose link vouched for
        its TCP/UDP checksum (a TAP with offloads: the sum may then be only partial and
        must not be checked); False for reassembled datagrams unless every frame of the
        interface is vouched for."""
        return self.input.checksum_verified

    def _unresolved(self, interface: str, datagram: bytes, now: Instant) -> None:
        # RFC 4861 §7.2.2: address unreachable for each packet that waited in vain.
        self.icmp.send_error(
            icmp_wire.TYPE_DESTINATION_UNREACHABLE,
            icmp_wire.CODE_ADDRESS_UNREACHABLE,
            0,
            datagram,
            now,
            link=self.output.links.get(interface),
        )


__all__ = ["AddressState", "DropReason", "Ipv6Layer", "Link6", "NeighbourState"]
