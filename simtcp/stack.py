"""The sans-IO stack: Ethernet frames and time in; frames, events and a deadline out.

:class:`Stack` owns the interfaces, the routing table, the neighbour cache, the
one timer heap and the output queue, and dispatches each received frame down
the layers: Ethernet -> ARP or IPv4 -> (reassembly) -> ICMP, UDP, TCP, or
forwarding to another interface. Nothing here reads a clock, sleeps, opens a
socket or draws on ``os.urandom``: time arrives as ``now`` and chance comes
from the configured seed, so the same inputs always give the same bytes out.

Bad input from the network never raises: each drop is counted by its
:class:`~simtcp.errors.DropReason` in :meth:`Stack.stats`. Only misuse of the
API raises, with the exception classes of :mod:`simtcp.errors`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .arp import NeighbourCache, QueuedPacket
from .config import StackConfig
from .errors import AddressError, DropReason, InvalidHandleError, NoRouteError, ParseError
from .events import DatagramReceived, EchoReplyReceived, Event, IcmpErrorReceived
from .gso import (
    InterfaceOffload,
    is_whole_tcp,
    plan_forward,
    segment_tcp,
    tcp_mss_for,
    tcp_payload_length,
    with_partial_checksum,
)
from .icmp import IcmpHandling, IcmpPolicy
from .ip import (
    LIMITED_BROADCAST,
    Reassembler,
    Route,
    RoutingTable,
    fragment,
    is_martian_source,
    is_multicast,
)
from .rng import SeededRandom
from .stats import Stats
from .tcp import TcpInfo, TcpLayer
from .tcp.connection import PendingAcks
from .tcpio import FAST_MIN_FRAME, TcpFrameIO
from .time import Instant
from .timers import TimerHeap
from .udp import UdpSockets
from .wire import icmp as icmp_wire
from .wire.arp import ArpPacket
from .wire.checksum import Buffer, checksum_update
from .wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    EthernetFrame,
    build_ethernet_header,
    mac_from_str,
)
from .wire.icmp import IcmpMessage
from .wire.ipv4 import (
    PROTOCOL_ICMP,
    PROTOCOL_TCP,
    PROTOCOL_UDP,
    Ipv4Packet,
    ip_from_str,
    ip_to_str,
    prefix_from_str,
    prefix_mask,
)
from .wire.udp import UdpDatagram


@dataclass(slots=True)
class Interface:
    name: str
    mac: bytes
    mtu: int
    offload: InterfaceOffload
    addresses: list[tuple[int, int]] = field(default_factory=list)  # (address, prefix length)
    broadcasts: set[int] = field(default_factory=set)


class Stack(TcpFrameIO, IcmpHandling):
    """A TCP/IP host (and, with ``ip.forwarding``, a router) driven entirely by its caller.

    TCP segments in and out of frames (the per-frame fast paths and their layered
    oracles) are :class:`~simtcp.tcpio.TcpFrameIO`; ICMP messages to the stack and the
    errors it sends are :class:`~simtcp.icmp.IcmpHandling`.
    """

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config = config or StackConfig()
        self.rng = SeededRandom(config.seed)
        self.timers = TimerHeap()
        self.stats = Stats()
        self._counters = self.stats.counters()
        self._interfaces: dict[str, Interface] = {}
        self._local: dict[int, str] = {}  # our address -> interface
        self._broadcasts: set[int] = {LIMITED_BROADCAST}
        self._routes = RoutingTable()
        self._output: list[tuple[str, bytes]] = []
        self._loopback: deque[bytes] = deque()
        self._loopback_interface = Interface("lo", bytes(6), 65535, InterfaceOffload())
        self._events: deque[Event] = deque()
        self._ip_id = self.rng.stream("ip-id").randrange(0x10000)
        self._icmp = IcmpPolicy(config.icmp)
        self._udp = UdpSockets(config.udp.ephemeral_ports, self.rng.stream("udp-ports"))
        self._neighbours = NeighbourCache(
            config.arp,
            timers=self.timers,
            stats=self.stats,
            send_arp=self._send_arp,
            transmit=self._transmit,
            unresolved=self._unresolved,
        )
        self._reassembler = Reassembler(
            config.ip, timers=self.timers, stats=self.stats, timed_out=self._reassembly_timed_out
        )
        self.tcp = TcpLayer(config.tcp, host=self, timers=self.timers, rng=self.rng)
        self._timer_entries = self.timers.entries
        # TcpLayer keeps one PendingAcks for its life; read here so that frames_to_send skips
        # flush_acks when nothing is owed. (Wanted: a public TcpLayer.pending_acks.)
        self._owed_acks: PendingAcks = self.tcp._pending_acks
        stats = self.stats
        stats.gauge("arp.cache_entries", self._neighbours.__len__)
        stats.gauge("arp.queued_packets", self._neighbours.pending_packets)
        stats.gauge("ip.reassembly_bytes", lambda: self._reassembler.held_bytes)
        stats.gauge("udp.sockets", self._udp.__len__)
        stats.gauge("tcp.connections", self.tcp.connection_count)

    # --- topology -----------------------------------------------------------

    def add_interface(
        self,
        name: str,
        *,
        mac: str | bytes,
        mtu: int = 1500,
        offload: InterfaceOffload | None = None,
    ) -> None:
        """Add an Ethernet interface; ``mac`` as ``"02:00:00:00:00:01"`` or 6 bytes."""
        if name in self._interfaces:
            raise AddressError(f"interface {name!r} already exists")
        raw_mac = mac_from_str(mac) if isinstance(mac, str) else bytes(mac)
        if len(raw_mac) != 6 or raw_mac[0] & 1:
            raise AddressError(f"not a unicast MAC address: {mac!r}")
        if not 68 <= mtu <= 65535:
            raise AddressError(f"MTU {mtu} outside 68..65535 (RFC 791 §3.2)")
        self._interfaces[name] = Interface(name, raw_mac, mtu, offload or InterfaceOffload())

    def interface_mac(self, name: str) -> bytes:
        return self._interface(name).mac

    def add_address(self, interface: str, address: str, *, now: Instant = 0) -> None:
        """Give ``interface`` an address with prefix (``"10.0.0.1/24"``) and its connected route."""
        iface = self._interface(interface)
        try:
            value, length = prefix_from_str(address)
        except ValueError as error:
            raise AddressError(str(error)) from None
        if value in self._local:
            raise AddressError(f"{ip_to_str(value)} is already assigned")
        mask = prefix_mask(length)
        iface.addresses.append((value, length))
        self._local[value] = interface
        if length <= 30:
            broadcast = (value & mask) | (~mask & 0xFFFFFFFF)
            iface.broadcasts.add(broadcast)
            self._broadcasts.add(broadcast)
        self._routes.add(Route(value & mask, length, interface))
        if self.config.arp.gratuitous_on_add:
            self._neighbours.announce(interface, value)

    def add_route(
        self, destination: str, *, via: str | None = None, interface: str | None = None
    ) -> None:
        """Route a prefix (``"0.0.0.0/0"`` for default) via a gateway and/or out an interface."""
        try:
            network, length = prefix_from_str(destination)
            gateway = ip_from_str(via) if via is not None else None
        except ValueError as error:
            raise AddressError(str(error)) from None
        if interface is None:
            if gateway is None:
                raise AddressError("a route needs a gateway (via=) or an interface")
            connected = self._routes.lookup(gateway)
            if connected is None or connected.gateway is not None:
                raise NoRouteError(f"gateway {via} is not on a connected network")
            interface = connected.interface
        self._interface(interface)
        self._routes.add(Route(network & prefix_mask(length), length, interface, gateway))

    def _interface(self, name: str) -> Interface:
        try:
            return self._interfaces[name]
        except KeyError:
            raise AddressError(f"no interface {name!r}") from None

    # --- frames, time, events ----------------------------------------------

    def receive_frame(
        self,
        interface: str,
        frame: bytes | memoryview,
        *,
        now: Instant,
        checksum_verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        """Take one Ethernet frame from ``interface``; anything it provokes is queued.

        ``checksum_verified``: the link vouches for this frame's checksums (a TAP's
        virtio-net header says DATA_VALID, or NEEDS_CSUM: the TCP/UDP checksum is
        then only partial and must not be checked). ``gso_size``: the frame is one
        TCP super-segment (GSO) that stands for wire segments of that many payload
        bytes; it is taken as one segment, or cut at that size if forwarded.
        """
        stats = self.stats
        iface = self._interfaces.get(interface)
        if iface is None:
            stats.drop(DropReason.UNKNOWN_INTERFACE)
            return
        self._counters["link.frames_in"] += 1
        if len(frame) >= FAST_MIN_FRAME and self._fast_received(
            iface, frame, now, checksum_verified or iface.offload.rx_checksum_verified
        ):
            return
        try:
            ethernet = EthernetFrame.parse(frame)
        except ParseError as error:
            stats.drop(error.reason)
            return
        destination = ethernet.destination
        link_broadcast = destination == BROADCAST_MAC
        if destination != iface.mac and not link_broadcast:
            stats.drop(DropReason.NOT_FOR_US)  # another host's unicast, or multicast
            return
        if ethernet.ethertype == ETHERTYPE_IPV4:
            self._ipv4_received(
                iface,
                ethernet.payload,
                link_broadcast,
                now,
                verified=checksum_verified,
                gso_size=gso_size,
            )
        elif ethernet.ethertype == ETHERTYPE_ARP:
            self._arp_received(iface, ethernet.payload, ethernet.source, now)
        elif ethernet.is_vlan_tagged:
            stats.drop(DropReason.VLAN_TAGGED)
        else:
            stats.drop(DropReason.UNSUPPORTED_ETHERTYPE)

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        """Every frame queued since the last call, in order, as (interface, frame)."""
        loopback = self._loopback
        owed = self._owed_acks
        if not loopback and owed.enabled and not owed.connections:
            # Nothing for flush_acks to do (it ran once and enabled queueing): skip the call.
            output = self._output
            if not output:
                return []
            self._output = []
            return output
        self.tcp.flush_acks(now=now)  # ACKs owed that no data the application sent carried
        while loopback:
            # Datagrams to our own addresses (RFC 1122 §3.3.1.1) are delivered here, as if they
            # had come back on the wire, so no API call re-enters a layer that is mid-update.
            datagram = loopback.popleft()
            self._ipv4_received(self._loopback_interface, datagram, False, now)
            self.tcp.flush_acks(now=now)
        output = self._output
        self._output = []
        return output

    def poll_at(self) -> Instant | None:
        """The next absolute time :meth:`handle_timer` has work, or None."""
        # TimerHeap.poll_at's exact-top test, inlined: every loop and simulator step asks.
        heap = self._timer_entries
        if heap:
            at, token, timer = heap[0]
            if token == timer._queued_token and timer.deadline == at:
                return at
            return self.timers.poll_at()
        return None

    def handle_timer(self, *, now: Instant) -> None:
        """Fire every timer due at or before ``now``."""
        self.timers.run_due(now)

    def next_event(self) -> Event | None:
        """Pop the oldest pending event, or None."""
        return self._events.popleft() if self._events else None

    def emit(self, event: Event) -> None:
        """Queue an event for :meth:`next_event`, within ``StackConfig.event_limit``."""
        if len(self._events) >= self.config.event_limit and isinstance(event, _DROPPABLE_EVENTS):
            self.stats.count("events.dropped")
            return
        self._events.append(event)

    # --- ARP ----------------------------------------------------------------

    def _arp_received(
        self, iface: Interface, payload: Buffer, source_mac: bytes, now: Instant
    ) -> None:
        try:
            packet = ArpPacket.parse(payload)
        except ParseError as error:
            self.stats.drop(error.reason)
            return
        if packet.sender_mac != source_mac:
            # ARP carries no checksum; a sender MAC that disagrees with the frame's source is
            # damage (or a spoof) that would poison the cache for a whole lifetime.
            self.stats.drop(DropReason.MALFORMED)
            return
        target_iface = self._local.get(packet.target_ip)
        self._neighbours.packet_received(
            iface.name,
            packet,
            our_mac=iface.mac,
            target_is_ours=target_iface is not None,
            sender_is_ours=packet.sender_ip in self._local,
            now=now,
        )

    def _send_arp(self, interface: str, destination: bytes, packet: ArpPacket) -> None:
        iface = self._interfaces[interface]
        packet.sender_mac = iface.mac
        self._output.append(
            (
                interface,
                build_ethernet_header(destination, iface.mac, ETHERTYPE_ARP) + packet.build(),
            )
        )
        self.stats.count("link.frames_out")

    def _transmit(self, interface: str, destination: bytes, datagram: bytes) -> None:
        iface = self._interfaces[interface]
        header = build_ethernet_header(destination, iface.mac, ETHERTYPE_IPV4)
        if (
            len(datagram) > iface.mtu
            and iface.offload.software_segmentation
            and is_whole_tcp(datagram)
        ):
            # GSO in software (InterfaceOffload.software_segmentation): cut just before the link.
            pieces = segment_tcp(datagram, tcp_mss_for(datagram, iface.mtu))
            self._output.extend([(interface, header + piece) for piece in pieces])
            self.stats.count("link.frames_out", len(pieces))
            self.stats.count("ip.gso_segmented")
            self.stats.count("ip.gso_segments_out", len(pieces))
            return
        self._output.append((interface, header + datagram))
        self.stats.count("link.frames_out")

    # --- IPv4 in --------------------------------------------------------------

    def _ipv4_received(
        self,
        iface: Interface,
        payload: Buffer,
        link_broadcast: bool,
        now: Instant,
        *,
        verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        stats = self.stats
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
        elif not self.config.ip.forwarding:
            stats.drop(DropReason.FORWARDING_DISABLED)
        else:
            self._forward(packet, now, arrived_on=iface, verified=verified, gso_size=gso_size)

    def _deliver_local(
        self,
        iface: Interface,
        packet: Ipv4Packet,
        link_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        if packet.is_fragment:
            whole = self._reassembler.add(packet, now)
            if whole is None:
                return
            packet = whole
            # Fragments may come from different frames: only the interface's word holds.
            verified = iface.offload.rx_checksum_verified
        to_broadcast = packet.destination in self._broadcasts
        protocol = packet.protocol
        if protocol == PROTOCOL_TCP:
            self._tcp_received(packet, to_broadcast or link_broadcast, now, verified)
        elif protocol == PROTOCOL_UDP:
            self._udp_received(packet, link_broadcast, to_broadcast, now, verified)
        elif protocol == PROTOCOL_ICMP:
            self._icmp_received(packet, link_broadcast, to_broadcast, now, verified)
        else:
            self.stats.drop(DropReason.UNKNOWN_PROTOCOL)
            self._send_icmp_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_PROTOCOL_UNREACHABLE,
                packet,
                now,
                link_broadcast=link_broadcast,
                to_broadcast=to_broadcast,
            )

    # --- forwarding (RFC 1812 in spirit) ----------------------------------------

    def _forward(
        self,
        packet: Ipv4Packet,
        now: Instant,
        *,
        arrived_on: Interface,
        verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        stats = self.stats
        if packet.ttl <= 1:
            stats.drop(DropReason.TTL_EXPIRED)
            self._send_icmp_error(
                icmp_wire.TYPE_TIME_EXCEEDED, icmp_wire.CODE_TTL_EXCEEDED, packet, now
            )
            return
        route = self._routes.lookup(packet.destination)
        if route is None:
            stats.drop(DropReason.NO_ROUTE)
            self._send_icmp_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE, icmp_wire.CODE_NET_UNREACHABLE, packet, now
            )
            return
        out = self._interfaces[route.interface]
        # RFC 1624: patch TTL and checksum in place instead of rebuilding the header.
        header = bytearray(packet.build_header(len(packet.payload)))
        old_word = (header[8] << 8) | header[9]
        header[8] -= 1
        old_checksum = (header[10] << 8) | header[11]
        new_checksum = checksum_update(old_checksum, old_word, (header[8] << 8) | header[9])
        header[10:12] = new_checksum.to_bytes(2, "big")
        datagram = bytes(header) + bytes(packet.payload)
        next_hop = route.gateway if route.gateway is not None else packet.destination
        stats.count("ip.forwarded")
        whole_l4 = packet.protocol in (PROTOCOL_TCP, PROTOCOL_UDP) and not packet.is_fragment
        pieces = [datagram]
        if len(datagram) > out.mtu or (whole_l4 and (verified or out.offload.tx_checksum)):
            plan = plan_forward(
                datagram,
                arrived_mtu=arrived_on.mtu,
                out_mtu=out.mtu,
                tx_checksum=out.offload.tx_checksum,
                max_segment=out.offload.max_segment,
                verified=verified,
                gso_size=gso_size,
            )
            pieces = plan.pieces
            if plan.drop is not None:
                stats.drop(plan.drop)
            elif plan.segmented:
                # ip.gso_segmented counts every super-segment cut in software (our
                # own output too); this one only those cut on the way through.
                stats.count("ip.gso_segmented")
                stats.count("ip.gso_forward_segmented")
                stats.count("ip.gso_segments_out", len(pieces))
            elif plan.too_big is not None:
                if packet.dont_fragment:
                    stats.drop(DropReason.FRAGMENT_NEEDED)
                    self._send_icmp_error(
                        icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                        icmp_wire.CODE_FRAGMENTATION_NEEDED,
                        packet,
                        now,
                        rest=out.mtu,
                    )
                    return
                packet.payload = plan.too_big[packet.header_length :]
                packet.ttl -= 1
                pieces = fragment(packet, out.mtu)
        source = self._source_for(out)
        for piece in pieces:
            self._neighbours.resolve_and_send(
                out.name, next_hop, source, piece, forwarded=True, now=now
            )

    def _unresolved(self, queued: QueuedPacket, now: Instant) -> None:
        """Resolution failed: a router tells the sender (RFC 1812 §4.3.3.1 host unreachable)."""
        if not queued.forwarded:
            return
        try:
            packet = Ipv4Packet.parse(queued.datagram, verify_checksum=False)
        except ParseError:
            return
        self._send_icmp_error(
            icmp_wire.TYPE_DESTINATION_UNREACHABLE, icmp_wire.CODE_HOST_UNREACHABLE, packet, now
        )

    def _reassembly_timed_out(self, first_fragment: Ipv4Packet, now: Instant) -> None:
        self._send_icmp_error(
            icmp_wire.TYPE_TIME_EXCEEDED,
            icmp_wire.CODE_REASSEMBLY_TIME_EXCEEDED,
            first_fragment,
            now,
        )

    # --- IPv4 out -------------------------------------------------------------

    def _source_for(self, iface: Interface, near: int | None = None) -> int:
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
        """(source address, MTU) used to reach ``destination``, or None (TcpHost protocol)."""
        if destination in self._local:
            return destination, self._loopback_interface.mtu
        route = self._routes.lookup(destination)
        if route is None:
            return None
        iface = self._interfaces[route.interface]
        next_hop = route.gateway if route.gateway is not None else destination
        source = self._source_for(iface, next_hop)
        return (source, iface.mtu) if source else None

    def route_offload(self, destination: int) -> InterfaceOffload:
        """What the link toward ``destination`` does for us (no offload without a route, or
        for our own addresses); the TCP engine sizes segments by its ``max_segment``."""
        iface = self._route_interface(destination)
        return iface.offload if iface is not None else _NO_OFFLOAD

    def _route_interface(self, destination: int) -> Interface | None:
        if destination in self._local:
            return None
        route = self._routes.lookup(destination)
        return self._interfaces[route.interface] if route is not None else None

    def is_local_address(self, address: int) -> bool:
        return address in self._local

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
    ) -> bool:
        """Route, fragment if needed, resolve and queue one datagram; False if no route."""
        stats = self.stats
        if destination in self._local:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            stats.count("ip.loopback")
            self._loopback.append(
                Ipv4Packet(
                    source or destination,
                    destination,
                    protocol,
                    payload,
                    ttl if ttl is not None else self.config.ip.default_ttl,
                    self._ip_id,
                    dont_fragment,
                ).build()
            )
            return True
        if destination == LIMITED_BROADCAST:
            route = None
            iface = (
                next(iter(self._interfaces.values()), None)
                if source is None
                else (self._interfaces.get(self._local.get(source, "")))
            )
            if iface is None:
                stats.drop(DropReason.NO_ROUTE)
                return False
            next_hop = destination
        else:
            route = self._routes.lookup(destination)
            if route is None:
                stats.drop(DropReason.NO_ROUTE)
                return False
            iface = self._interfaces[route.interface]
            next_hop = route.gateway if route.gateway is not None else destination
        if source is None:
            source = self._source_for(iface, next_hop)
        self._ip_id = (self._ip_id + 1) & 0xFFFF
        packet = Ipv4Packet(
            source,
            destination,
            protocol,
            payload,
            ttl if ttl is not None else self.config.ip.default_ttl,
            self._ip_id,
            dont_fragment,
        )
        stats.count("ip.packets_out")
        if packet.header_length + len(payload) <= iface.mtu or (
            protocol == PROTOCOL_TCP
            and iface.offload.max_segment
            and tcp_payload_length(payload) <= iface.offload.max_segment
        ):
            datagrams = [packet.build()]  # fits, or the link cuts it (TSO)
        elif dont_fragment:
            stats.drop(DropReason.FRAGMENT_NEEDED)
            return False
        else:
            datagrams = fragment(packet, iface.mtu)
            stats.count("ip.fragments_out", len(datagrams))
        if next_hop in iface.broadcasts or next_hop == LIMITED_BROADCAST:
            for datagram in datagrams:
                self._transmit(iface.name, BROADCAST_MAC, datagram)
            return True
        for datagram in datagrams:
            self._neighbours.resolve_and_send(
                iface.name, next_hop, source, datagram, forwarded=False, now=now
            )
        return True

    # --- ICMP -----------------------------------------------------------------

    def ping(
        self,
        destination: str,
        *,
        identifier: int,
        sequence: int,
        payload: bytes = b"",
        ttl: int | None = None,
        now: Instant,
    ) -> None:
        """Send an ICMP echo request; the answer arrives as an EchoReplyReceived event."""
        address = _address(destination)
        message = IcmpMessage.echo_request(identifier & 0xFFFF, sequence & 0xFFFF, payload)
        self.stats.count("icmp.out.type8")
        if not self.send_ipv4(address, PROTOCOL_ICMP, message.build(), now=now, ttl=ttl):
            raise NoRouteError(f"no route to {destination}")

    # --- UDP ------------------------------------------------------------------

    def _udp_received(
        self,
        packet: Ipv4Packet,
        link_broadcast: bool,
        to_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        stats = self.stats
        verify = not verified
        try:
            datagram = UdpDatagram.parse(
                packet.payload,
                source=packet.source if verify else None,
                destination=packet.destination if verify else None,
            )
        except ParseError as error:
            stats.drop(error.reason)
            return
        stats.count("udp.datagrams_in")
        socket = self._udp.find(packet.destination, datagram.destination_port)
        if socket is None:
            stats.drop(DropReason.PORT_UNREACHABLE)
            self._send_icmp_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_PORT_UNREACHABLE,
                packet,
                now,
                link_broadcast=link_broadcast,
                to_broadcast=to_broadcast,
            )
            return
        self.emit(
            DatagramReceived(
                socket=socket.handle,
                source=ip_to_str(packet.source),
                source_port=datagram.source_port,
                destination=ip_to_str(packet.destination),
                destination_port=datagram.destination_port,
                data=bytes(datagram.payload),
            )
        )

    def udp_bind(self, port: int = 0, *, address: str | None = None) -> int:
        """Bind a UDP socket (port 0: a seeded ephemeral port); returns its handle."""
        if not 0 <= port <= 0xFFFF:
            raise AddressError(f"port {port} outside 0..65535")
        value = _address(address) if address else 0
        if value and value not in self._local:
            raise AddressError(f"{address} is not one of our addresses")
        return self._udp.bind(value, port).handle

    def udp_local_port(self, socket: int) -> int:
        return self._udp.get(socket).port

    def sendto(
        self, socket: int, data: bytes, destination: tuple[str, int], *, now: Instant
    ) -> None:
        """Send one datagram from a bound socket to (address, port)."""
        bound = self._udp.get(socket)
        address = _address(destination[0])
        port = destination[1]
        if not 0 < port <= 0xFFFF:
            raise AddressError(f"port {port} outside 1..65535")
        source = bound.address or None
        if source is None:
            info = self.route_source(address)
            source = info[0] if info else None
        if source is None and address != LIMITED_BROADCAST:
            raise NoRouteError(f"no route to {destination[0]}")
        with_checksum = self.config.udp.send_checksum
        iface = self._route_interface(address)
        partial = (
            with_checksum
            and iface is not None
            and iface.offload.tx_checksum
            and 20 + 8 + len(data) <= iface.mtu
        )  # fragments need the whole checksum
        payload = UdpDatagram(bound.port, port, data).build(
            source or 0, address, with_checksum=with_checksum and not partial
        )
        if partial:
            payload = with_partial_checksum(payload, source or 0, address, PROTOCOL_UDP)
        self.stats.count("udp.datagrams_out")
        if not self.send_ipv4(address, PROTOCOL_UDP, payload, now=now, source=source):
            raise NoRouteError(f"no route to {destination[0]}")

    def udp_close(self, socket: int) -> None:
        self._udp.close(socket)

    # --- TCP ------------------------------------------------------------------

    def tcp_listen(
        self, port: int, *, address: str | None = None, backlog: int | None = None
    ) -> int:
        """Listen on ``port`` (all our addresses, or one); returns the listener's handle."""
        return self.tcp.listen(port, address=_address(address) if address else 0, backlog=backlog)

    def tcp_connect(
        self, address: str, port: int, *, local_port: int | None = None, now: Instant
    ) -> int:
        """Active open to (address, port); ConnectionEstablished follows."""
        return self.tcp.connect(_address(address), port, local_port=local_port, now=now)

    def send(self, connection: int, data: bytes, *, now: Instant) -> int:
        """Queue bytes; returns how many the send buffer took (SendSpaceAvailable tells more)."""
        return self.tcp.send(connection, data, now=now)

    def receive(self, connection: int, max_bytes: int = -1, *, now: Instant) -> bytes:
        """Take up to ``max_bytes`` (all with -1) of received in-order data."""
        return self.tcp.receive(connection, max_bytes, now=now)

    def shutdown(self, connection: int, *, now: Instant) -> None:
        """Close our sending side: FIN after the queued data."""
        self.tcp.shutdown(connection, now=now)

    def close(self, connection: int, *, now: Instant) -> None:
        """Close a connection (FIN, then wait for the peer's) or a listener."""
        self.tcp.close(connection, now=now)

    def abort(self, connection: int, *, now: Instant) -> None:
        """Reset the connection: RST to the peer, state freed at once."""
        self.tcp.abort(connection, now=now)

    def tcp_info(self, connection: int) -> TcpInfo:
        """A snapshot of one connection: state, sequence variables, windows, RTT, counters."""
        return self.tcp.info(connection)

    def tcp_connections_info(self) -> list[TcpInfo]:
        """Every connection, half-open and TIME-WAIT included (like ``ss -t``)."""
        return self.tcp.connections_info()

    def tcp_set_nodelay(self, connection: int, enabled: bool, *, now: Instant) -> None:
        """Turn Nagle's algorithm (RFC 896) off (``enabled=True``) or back on for one connection."""
        self.tcp.set_nodelay(connection, enabled, now=now)


_NO_OFFLOAD = InterfaceOffload()

_DROPPABLE_EVENTS = (EchoReplyReceived, DatagramReceived, IcmpErrorReceived)
"""Events whose number the network alone decides; see ``StackConfig.event_limit``."""


def _address(text: str) -> int:
    try:
        return ip_from_str(text)
    except (ValueError, AttributeError):
        raise AddressError(f"not an IPv4 address: {text!r}") from None


__all__ = ["InterfaceOffload", "InvalidHandleError", "Stack"]
