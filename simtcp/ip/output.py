"""IPv4 output: the one way out of the stack for every datagram and frame.

:class:`Ipv4Output` owns what a datagram needs to leave: the interfaces and
our addresses on them, the routing table, next-hop resolution through the
neighbour cache (ARP), the IP identification counter, fragmentation and
Ethernet framing (with GSO in software just before the link), and the queues
of frames to send and of datagrams to our own addresses. ICMP, UDP, TCP and
forwarding all send through it; the per-frame fast paths ask it for the route
(:meth:`unicast_route`) and the identification (:meth:`next_identification`)
and queue the frames they built in one step on :attr:`frames`.
"""

from __future__ import annotations

from collections import deque

from ..config import StackConfig
from ..errors import AddressError, DropReason, NoRouteError
from ..link.arp import NeighbourCache, QueuedPacket, Unresolved
from ..link.interface import NO_OFFLOAD, Interface, InterfaceOffload
from ..rng import SeededRandom
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHeap
from ..wire.arp import ArpPacket
from ..wire.ethernet import BROADCAST_MAC, ETHERTYPE_ARP, ETHERTYPE_IPV4, build_ethernet_header
from ..wire.ipv4 import Ipv4Packet, ip_from_str, ip_to_str, prefix_from_str, prefix_mask
from ..wire.offload import is_whole_tcp, segment_tcp, tcp_mss_for, tcp_payload_length
from ..wire.protocols import PROTOCOL_TCP
from .fragments import fragment
from .routing import LIMITED_BROADCAST, Route, RoutingTable


def _nobody_told(queued: QueuedPacket, now: Instant) -> None:
    """The default for :attr:`Ipv4Output.unresolved`: nobody to tell."""


class Ipv4Output:
    """Routes, resolves, numbers, fragments and frames every datagram the stack sends."""

    def __init__(
        self, config: StackConfig, *, timers: TimerHeap, stats: Stats, rng: SeededRandom
    ) -> None:
        self.stats = stats
        self._counters = stats.counters()
        self._arp_config = config.arp
        self.default_ttl = config.ip.default_ttl
        self.interfaces: dict[str, Interface] = {}
        self.local: dict[int, str] = {}
        """Our addresses, each to the interface it is on."""
        self.broadcasts: set[int] = {LIMITED_BROADCAST}
        """Every broadcast address of our subnets, and the limited broadcast."""
        self.routes = RoutingTable()
        self.frames: list[tuple[str, bytes]] = []
        """Frames queued for the backend, as (interface, frame); the stack hands them out."""
        self.loopback: deque[bytes] = deque()
        """Datagrams to our own addresses, delivered by the stack as if they came back."""
        self.loopback_interface = Interface("lo", bytes(6), 65535, InterfaceOffload())
        self.identification = rng.stream("ip-id").randrange(0x10000)
        """The last IP identification used (RFC 791 §3.2; RFC 6864 §4.1)."""
        self.unresolved: Unresolved = _nobody_told
        """Told of each forwarded datagram dropped because its next hop never answered
        ARP (the stack sends ICMP host unreachable: RFC 1812 §4.3.3.1)."""
        self.neighbours = NeighbourCache(
            config.arp,
            timers=timers,
            stats=stats,
            send_arp=self._send_arp,
            transmit=self.transmit,
            unresolved=self._unresolved,
        )

    # --- topology -----------------------------------------------------------

    def add_interface(self, interface: Interface) -> None:
        if interface.name in self.interfaces:
            raise AddressError(f"interface {interface.name!r} already exists")
        self.interfaces[interface.name] = interface

    def interface(self, name: str) -> Interface:
        try:
            return self.interfaces[name]
        except KeyError:
            raise AddressError(f"no interface {name!r}") from None

    def add_address(self, interface: str, address: str) -> None:
        """Give ``interface`` an address with prefix and its connected route."""
        iface = self.interface(interface)
        try:
            value, length = prefix_from_str(address)
        except ValueError as error:
            raise AddressError(str(error)) from None
        if value in self.local:
            raise AddressError(f"{ip_to_str(value)} is already assigned")
        mask = prefix_mask(length)
        iface.addresses.append((value, length))
        self.local[value] = interface
        if length <= 30:
            broadcast = (value & mask) | (~mask & 0xFFFFFFFF)
            iface.broadcasts.add(broadcast)
            self.broadcasts.add(broadcast)
        self.routes.add(Route(value & mask, length, interface))
        if self._arp_config.gratuitous_on_add:
            self.neighbours.announce(interface, value)

    def add_route(self, destination: str, *, via: str | None, interface: str | None) -> None:
        """Route a prefix via a gateway and/or out an interface."""
        try:
            network, length = prefix_from_str(destination)
            gateway = ip_from_str(via) if via is not None else None
        except ValueError as error:
            raise AddressError(str(error)) from None
        if interface is None:
            if gateway is None:
                raise AddressError("a route needs a gateway (via=) or an interface")
            connected = self.routes.lookup(gateway)
            if connected is None or connected.gateway is not None:
                raise NoRouteError(f"gateway {via} is not on a connected network")
            interface = connected.interface
        self.interface(interface)
        self.routes.add(Route(network & prefix_mask(length), length, interface, gateway))

    # --- routes -------------------------------------------------------------

    def route(self, destination: int) -> tuple[Interface, int] | None:
        """(interface, next hop) toward a routed ``destination``, or None without a route."""
        route = self.routes.lookup(destination)
        if route is None:
            return None
        next_hop = route.gateway if route.gateway is not None else destination
        return self.interfaces[route.interface], next_hop

    def unicast_route(self, destination: int) -> tuple[Interface, int] | None:
        """:meth:`route` for a destination that is neither ours nor a broadcast, through a
        next hop that is no broadcast either: what the one-step fast paths can send to."""
        if destination in self.local or destination == LIMITED_BROADCAST:
            return None
        route = self.routes.lookup(destination)  # route(), inlined: once per fast-path frame
        if route is None:
            return None
        iface = self.interfaces[route.interface]
        next_hop = route.gateway if route.gateway is not None else destination
        if next_hop in iface.broadcasts or next_hop == LIMITED_BROADCAST:
            return None
        return iface, next_hop

    def source_for(self, iface: Interface, near: int | None = None) -> int:
        """Our address on ``iface``, preferring one on the same subnet as ``near``."""
        if not iface.addresses:
            return 0
        if near is not None:
            for address, length in iface.addresses:
                mask = prefix_mask(length)
                if address & mask == near & mask:
                    return address
        return iface.addresses[0][0]

    def route_source(self, destination: int) -> tuple[int, int] | None:
        """(source address, MTU) used to reach ``destination``, or None."""
        if destination in self.local:
            return destination, self.loopback_interface.mtu
        found = self.route(destination)
        if found is None:
            return None
        iface, next_hop = found
        source = self.source_for(iface, next_hop)
        return (source, iface.mtu) if source else None

    def route_interface(self, destination: int) -> Interface | None:
        """The interface toward ``destination``; None for our own addresses or no route."""
        if destination in self.local:
            return None
        route = self.routes.lookup(destination)
        return self.interfaces[route.interface] if route is not None else None

    def route_offload(self, destination: int) -> InterfaceOffload:
        """What the link toward ``destination`` does for us (nothing without a route, or
        for our own addresses)."""
        iface = self.route_interface(destination)
        return iface.offload if iface is not None else NO_OFFLOAD

    def next_identification(self, count: int = 1) -> int:
        """The IP identification of the next datagram, reserving ``count`` in a row (the
        pieces of one software-GSO segment each take the one they would have had)."""
        first = (self.identification + 1) & 0xFFFF
        self.identification = (self.identification + count) & 0xFFFF
        return first

    # --- sending --------------------------------------------------------------

    def send(
        self,
        destination: int,
        protocol: int,
        payload: bytes,
        *,
        now: Instant,
        source: int | None = None,
        ttl: int | None = None,
        dont_fragment: bool = False,
    ) -> bool:
        """Route, fragment if needed, resolve and queue one datagram; False if no route."""
        ttl = ttl if ttl is not None else self.default_ttl
        if destination in self.local:
            self._counters["ip.loopback"] += 1
            self.loopback.append(
                Ipv4Packet(
                    source or destination,
                    destination,
                    protocol,
                    payload,
                    ttl,
                    self.next_identification(),
                    dont_fragment,
                ).build()
            )
            return True
        found = (
            self.route(destination)
            if destination != LIMITED_BROADCAST
            else self._broadcast_way_out(source)
        )
        if found is None:
            self.stats.drop(DropReason.NO_ROUTE)
            return False
        iface, next_hop = found
        if source is None:
            source = self.source_for(iface, next_hop)
        packet = Ipv4Packet(
            source,
            destination,
            protocol,
            payload,
            ttl,
            self.next_identification(),
            dont_fragment,
        )
        self._counters["ip.packets_out"] += 1
        datagrams = self._datagrams(packet, iface)
        if datagrams is None:
            return False
        if next_hop in iface.broadcasts or next_hop == LIMITED_BROADCAST:
            for datagram in datagrams:
                self.transmit(iface.name, BROADCAST_MAC, datagram)
            return True
        for datagram in datagrams:
            self.neighbours.resolve_and_send(
                iface.name, next_hop, source, datagram, forwarded=False, now=now
            )
        return True

    def _broadcast_way_out(self, source: int | None) -> tuple[Interface, int] | None:
        """(interface, next hop) for the limited broadcast: out by the source's interface
        (or the first)."""
        iface = (
            next(iter(self.interfaces.values()), None)
            if source is None
            else self.interfaces.get(self.local.get(source, ""))
        )
        return (iface, LIMITED_BROADCAST) if iface is not None else None

    def _datagrams(self, packet: Ipv4Packet, iface: Interface) -> list[bytes] | None:
        """The datagram whole (it fits, or the link cuts it: TSO), or its fragments
        (RFC 791 §3.2); None, counted, when DF forbids them."""
        payload = packet.payload
        if packet.header_length + len(payload) <= iface.mtu or (
            packet.protocol == PROTOCOL_TCP
            and iface.offload.max_segment
            and tcp_payload_length(payload) <= iface.offload.max_segment
        ):
            return [packet.build()]
        if packet.dont_fragment:
            self.stats.drop(DropReason.FRAGMENT_NEEDED)
            return None
        datagrams = fragment(packet, iface.mtu)
        self.stats.count("ip.fragments_out", len(datagrams))
        return datagrams

    def send_forwarded(
        self, iface: Interface, next_hop: int, datagrams: list[bytes], now: Instant
    ) -> None:
        """Resolve ``next_hop`` and send datagrams a router passes on (ICMP if it fails)."""
        source = self.source_for(iface)
        for datagram in datagrams:
            self.neighbours.resolve_and_send(
                iface.name, next_hop, source, datagram, forwarded=True, now=now
            )

    def transmit(self, interface: str, destination: bytes, datagram: bytes) -> None:
        """Frame one datagram for a resolved MAC and queue it (cut first by software GSO)."""
        iface = self.interfaces[interface]
        header = build_ethernet_header(destination, iface.mac, ETHERTYPE_IPV4)
        if (
            len(datagram) > iface.mtu
            and iface.offload.software_segmentation
            and is_whole_tcp(datagram)
        ):
            # GSO in software (InterfaceOffload.software_segmentation): cut just before the link.
            pieces = segment_tcp(datagram, tcp_mss_for(datagram, iface.mtu))
            self.frames.extend([(interface, header + piece) for piece in pieces])
            self.stats.count("link.frames_out", len(pieces))
            self.stats.count("ip.gso_segmented")
            self.stats.count("ip.gso_segments_out", len(pieces))
            return
        self.frames.append((interface, header + datagram))
        self.stats.count("link.frames_out")

    def _send_arp(self, interface: str, destination: bytes, packet: ArpPacket) -> None:
        iface = self.interfaces[interface]
        packet.sender_mac = iface.mac
        self.frames.append(
            (
                interface,
                build_ethernet_header(destination, iface.mac, ETHERTYPE_ARP) + packet.build(),
            )
        )
        self.stats.count("link.frames_out")

    def _unresolved(self, queued: QueuedPacket, now: Instant) -> None:
        self.unresolved(queued, now)


__all__ = ["Ipv4Output"]
