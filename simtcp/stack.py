"""The sans-IO stack: Ethernet frames and time in; frames, events and a deadline out.

:class:`Stack` is composed of parts, each with an explicit interface and none
reaching into another's state: the one :class:`~simtcp.ip.output.Ipv4Output`
(interfaces, addresses, routes, the neighbour cache, IP identification,
fragmentation, framing, the output queue) through which ICMP, UDP, TCP and
forwarding all send; :class:`~simtcp.ip.input.Ipv4Input` (validation,
reassembly, local delivery, forwarding); :class:`~simtcp.icmp.Icmp`,
:class:`~simtcp.udp.Udp`, and :class:`~simtcp.tcpio.TcpFrames` (TCP in and out
of frames, with the one-step fast paths) around the TCP layer. The stack
itself holds the one timer heap and the event queue, and dispatches each
received frame: Ethernet -> ARP, IPv4 or IPv6 (:class:`~simtcp.ip6.Ipv6Layer`:
addresses with DAD, Neighbor Discovery, SLAAC, MLD, ICMPv6, reassembly and
forwarding). Nothing here reads a clock, sleeps, opens a socket or draws on
``os.urandom``: time arrives as ``now`` and chance comes from the configured
seed, so the same inputs always give the same bytes out.

Bad input from the network never raises: each drop is counted by its
:class:`~simtcp.errors.DropReason` in :meth:`Stack.stats`. Only misuse of the
API raises, with the exception classes of :mod:`simtcp.errors`.
"""

from __future__ import annotations

from collections import deque
from ipaddress import IPv6Address

from .config import StackConfig
from .errors import AddressError, DropReason, InvalidHandleError, NoRouteError, ParseError
from .events import (
    ConnectionAccepted,
    DatagramReceived,
    EchoReplyReceived,
    Event,
    IcmpErrorReceived,
)
from .icmp import Icmp
from .ip.input import Ipv4Input
from .ip.output import Ipv4Output
from .ip.routing import address_from_str
from .ip6 import Ipv6Layer
from .ip6.addresses import address6_from_str
from .link.interface import Interface, InterfaceOffload
from .rng import SeededRandom
from .stats import Stats
from .tcp import TcpInfo, TcpLayer
from .tcp.connection import PendingAcks
from .tcpio import FAST_MIN_FRAME, TcpFrames
from .time import Instant
from .timers import TimerHeap
from .udp import Udp
from .wire.address import address_from_api
from .wire.ethernet import (
    BROADCAST_MAC,
    ETHERTYPE_ARP,
    ETHERTYPE_IPV4,
    ETHERTYPE_IPV6,
    EthernetFrame,
    mac_from_str,
)
from .wire.tcp import TcpSegment

_NO_FAST_PATH = 1 << 62
"""A frame length no frame reaches: the receive fast path's threshold when it is off."""


class Stack:
    """A TCP/IP host (and, with ``ip.forwarding``, a router) driven entirely by its caller."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config = config or StackConfig()
        self.rng = SeededRandom(config.seed)
        self.timers = TimerHeap()
        self.stats = stats = Stats()
        self._counters = stats.counters()
        self._events: deque[Event] = deque()
        self._output = output = Ipv4Output(config, timers=self.timers, stats=stats, rng=self.rng)
        self._icmp = icmp = Icmp(config.icmp, output=output, stats=stats, emit=self.emit)
        output.unresolved = icmp.host_unreachable
        self._udp = Udp(
            config.udp,
            output=output,
            icmp=icmp,
            stats=stats,
            rng=self.rng.stream("udp-ports"),
            emit=self.emit,
        )
        self._tcp_frames = frames = TcpFrames(
            config, output=output, icmp=icmp, stats=stats, emit=self.emit
        )
        self._ipv4 = Ipv4Input(
            config.ip,
            output=output,
            timers=self.timers,
            stats=stats,
            icmp=icmp,
            udp=self._udp,
            tcp=frames,
        )
        self.tcp = TcpLayer(config.tcp, host=frames, timers=self.timers, rng=self.rng)
        self._ip6 = ip6 = Ipv6Layer(
            config,
            timers=self.timers,
            stats=stats,
            rng=self.rng,
            output4=output,
            emit=self.emit,
            tcp=frames,
            udp=self._udp,
        )
        icmp.tcp = frames.tcp = self.tcp
        frames.ipv6 = self._udp.ipv6 = self  # the transports' IPv6 seam (simtcp/network6.py)
        frames.ipv6_verdict = self._udp.ipv6_verdict = ip6
        ip6.icmp.tcp = self.tcp
        # Read once: the per-frame paths below reach these without a call.
        self._interfaces = output.interfaces
        self._fast_received = frames.fast_received
        self._fast_min_frame = FAST_MIN_FRAME if config.fast_paths else _NO_FAST_PATH
        self._fast_forward = self._ipv4.fast_forward if config.fast_paths else None
        self._timer_entries = self.timers.entries
        # TcpLayer keeps one PendingAcks for its life; read here so that frames_to_send skips
        # flush_acks when nothing is owed. (Wanted: a public TcpLayer.pending_acks.)
        self._owed_acks: PendingAcks = self.tcp._pending_acks
        stats.gauge("arp.cache_entries", output.neighbours.__len__)
        stats.gauge("arp.queued_packets", output.neighbours.pending_packets)
        stats.gauge("ip.reassembly_bytes", lambda: self._ipv4.reassembler.held_bytes)
        stats.gauge("udp.sockets", self._udp.sockets.__len__)
        stats.gauge("tcp.connections", self.tcp.connection_count)
        stats.gauge("nd.cache_entries", ip6.output.neighbours.__len__)
        stats.gauge("nd.queued_packets", ip6.output.neighbours.pending_packets)
        stats.gauge("ip6.reassembly_bytes", lambda: ip6.input.reassembler.held_bytes)

    # --- topology -----------------------------------------------------------

    def add_interface(
        self,
        name: str,
        *,
        mac: str | bytes,
        mtu: int = 1500,
        offload: InterfaceOffload | None = None,
        now: Instant = 0,
    ) -> None:
        """Add an Ethernet interface; ``mac`` as ``"02:00:00:00:00:01"`` or 6 bytes.

        With ``ip6.link_local_on_add`` (off by default) and an MTU of at least 1,280
        it also gets an IPv6 link-local address, tentative until DAD (RFC 4862)
        passes, which starts at ``now``.
        """
        if name in self._interfaces:
            raise AddressError(f"interface {name!r} already exists")
        raw_mac = mac_from_str(mac) if isinstance(mac, str) else bytes(mac)
        if len(raw_mac) != 6 or raw_mac[0] & 1:
            raise AddressError(f"not a unicast MAC address: {mac!r}")
        if not 68 <= mtu <= 65535:
            raise AddressError(f"MTU {mtu} outside 68..65535 (RFC 791 §3.2)")
        iface = Interface(name, raw_mac, mtu, offload or InterfaceOffload())
        self._output.add_interface(iface)
        self._ip6.interface_added(iface, now)

    def interface_mac(self, name: str) -> bytes:
        return self._output.interface(name).mac

    def add_address(self, interface: str, address: str, *, now: Instant = 0) -> None:
        """Give ``interface`` an address with prefix and its connected route: IPv4
        (``"10.0.0.1/24"``) or IPv6 (``"2001:db8::1/64"``, tentative until DAD passes)."""
        if ":" in address:
            self._ip6.add_address(interface, address, now)
            return
        self._output.add_address(interface, address)

    def add_route(
        self, destination: str, *, via: str | None = None, interface: str | None = None
    ) -> None:
        """Route a prefix (``"0.0.0.0/0"`` or ``"::/0"`` for default) via a gateway
        and/or out an interface."""
        if ":" in destination:
            self._ip6.add_route(destination, via=via, interface=interface)
            return
        self._output.add_route(destination, via=via, interface=interface)

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
        if len(frame) >= self._fast_min_frame and self._fast_received(
            iface, frame, now, checksum_verified or iface.offload.rx_checksum_verified
        ):
            return
        fast_forward = self._fast_forward
        if fast_forward is not None and fast_forward(
            iface, frame, now, checksum_verified, gso_size
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
            if ethernet.ethertype == ETHERTYPE_IPV6 and self._ip6.accepts_mac(
                interface, destination
            ):
                self._ip6.received(iface, ethernet.payload, True, now, verified=checksum_verified)
                return
            stats.drop(DropReason.NOT_FOR_US)  # another host's unicast, or multicast
            return
        if ethernet.ethertype == ETHERTYPE_IPV4:
            self._ipv4.received(
                iface,
                ethernet.payload,
                link_broadcast,
                now,
                verified=checksum_verified,
                gso_size=gso_size,
            )
        elif ethernet.ethertype == ETHERTYPE_IPV6:
            self._ip6.received(
                iface, ethernet.payload, link_broadcast, now, verified=checksum_verified
            )
        elif ethernet.ethertype == ETHERTYPE_ARP:
            self._output.neighbours.frame_received(
                iface.name,
                ethernet.payload,
                source_mac=ethernet.source,
                our_mac=iface.mac,
                ours=self._output.local,
                now=now,
            )
        elif ethernet.is_vlan_tagged:
            stats.drop(DropReason.VLAN_TAGGED)
        else:
            stats.drop(DropReason.UNSUPPORTED_ETHERTYPE)

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        """Every frame queued since the last call, in order, as (interface, frame)."""
        output = self._output
        loopback = output.loopback
        owed = self._owed_acks
        if not loopback and owed.enabled and not owed.connections:
            # Nothing for flush_acks to do (it ran once and enabled queueing): skip the call.
            frames = output.frames
            if not frames:
                return []
            output.frames = []
            return frames
        self.tcp.flush_acks(now=now)  # ACKs owed that no data the application sent carried
        while loopback:
            # Datagrams to our own addresses (RFC 1122 §3.3.1.1) are delivered here, as if they
            # had come back on the wire, so no API call re-enters a layer that is mid-update.
            datagram = loopback.popleft()
            if datagram[0] >> 4 == 6:
                self._ip6.received(output.loopback_interface, datagram, False, now)
            else:
                self._ipv4.received(output.loopback_interface, datagram, False, now)
            self.tcp.flush_acks(now=now)
        frames = output.frames
        output.frames = []
        return frames

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
        """Pop the oldest pending event, or None.

        Handing over a ``ConnectionAccepted`` takes its connection out of the
        listener's accept queue (the backlog of listen(2), see ``simtcp.tcp.accept_queue``).
        """
        if not self._events:
            return None
        event = self._events.popleft()
        if type(event) is ConnectionAccepted:
            self.tcp.accept_delivered(event.connection)
        return event

    def emit(self, event: Event) -> None:
        """Queue an event for :meth:`next_event`, within ``StackConfig.event_limit``."""
        if len(self._events) >= self.config.event_limit and isinstance(event, _DROPPABLE_EVENTS):
            self.stats.count("events.dropped")
            return
        self._events.append(event)

    # --- IPv4 out (what the TCP layer's host and tests reach) --------------------

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
        return self._output.send(
            destination,
            protocol,
            payload,
            now=now,
            source=source,
            ttl=ttl,
            dont_fragment=dont_fragment,
        )

    def send_tcp(self, source: int, destination: int, segment: TcpSegment, *, now: Instant) -> None:
        """Wrap a TCP segment in IPv4 and send it (the TCP layer's ``TcpHost.send_tcp``)."""
        self._tcp_frames.send_tcp(source, destination, segment, now=now)

    def route_source(self, destination: int) -> tuple[int, int] | None:
        """(source address, MTU) used to reach ``destination``, or None."""
        return self._output.route_source(destination)

    def route_offload(self, destination: int) -> InterfaceOffload:
        """What the link toward ``destination`` does for us (no offload without a route, or
        for our own addresses); the TCP engine sizes segments by its ``max_segment``."""
        return self._output.route_offload(destination)

    def is_local_address(self, address: int) -> bool:
        return address in self._output.local

    # --- IPv6 out (the seam the transport layers use; ARCHITECTURE.md "IPv6") ---

    def send_ipv6(
        self,
        source: IPv6Address | None,
        destination: IPv6Address,
        next_header: int,
        payload: bytes,
        *,
        now: Instant,
        segment_offload: bool = False,
    ) -> None:
        """Route, pick a source (None: RFC 6724), fragment at the source if the path MTU
        asks, resolve (ND) and queue one IPv6 datagram; no route is counted, not raised.
        ``segment_offload``: a TCP super-segment for the link's TSO (``Ipv6Network``)."""
        self._ip6.send(
            source, destination, next_header, payload, now=now, segment_offload=segment_offload
        )

    def route6_link(self, destination: IPv6Address) -> tuple[InterfaceOffload, int]:
        """The offloads of the link toward ``destination`` and the path MTU (``Ipv6Network``)."""
        return self._ip6.route_link(destination)

    def route6_source(self, destination: IPv6Address) -> tuple[IPv6Address, int] | None:
        """(source address, path MTU) used to reach ``destination``, or None without a
        route or a usable source. The MTU follows packet-too-big messages (RFC 8201)."""
        return self._ip6.route_source(destination)

    def is_local_address6(self, address: IPv6Address) -> bool:
        """One of our IPv6 addresses, and usable (DAD passed)."""
        return self._ip6.is_local(address)

    def addresses6(self, interface: str) -> list[tuple[IPv6Address, int, str]]:
        """(address, prefix length, state) of ``interface``'s IPv6 addresses; the state is
        ``tentative``, ``preferred``, ``deprecated`` or ``duplicate`` (RFC 4862)."""
        return self._ip6.addresses(interface)

    def neighbour6_state(self, interface: str, address: str) -> str | None:
        """The neighbour cache state of ``address`` on ``interface`` (RFC 4861 §7.3.2:
        ``incomplete``, ``reachable``, ``stale``, ``delay``, ``probe``), or None."""
        return self._ip6.neighbour_state(interface, address6_from_str(address))

    def add_neighbour6(self, interface: str, address: str, mac: str | bytes) -> None:
        """A static neighbour entry (like ``ip -6 neigh add ... nud permanent``)."""
        raw_mac = mac_from_str(mac) if isinstance(mac, str) else bytes(mac)
        self._ip6.add_static_neighbour(interface, address, raw_mac)

    def join_group6(self, interface: str, group: str, *, now: Instant) -> None:
        """Listen to an IPv6 multicast group on ``interface`` (MLDv2 reports, RFC 3810)."""
        self._ip6.join_group(interface, group, now)

    def leave_group6(self, interface: str, group: str, *, now: Instant) -> None:
        self._ip6.leave_group(interface, group, now)

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
        """Send an ICMP (or, for an IPv6 address, ICMPv6) echo request; the answer arrives
        as an EchoReplyReceived event (its ``ttl`` is the hop limit for IPv6). A
        link-local IPv6 destination may name its interface: ``"fe80::1%eth0"``."""
        if ":" in destination:
            text, _, zone = destination.partition("%")
            if not self._ip6.icmp.send_echo_request(
                address6_from_str(text),
                identifier,
                sequence,
                payload,
                hop_limit=ttl,
                interface=zone or None,
                now=now,
            ):
                raise NoRouteError(f"no route to {destination}")
            return
        address = address_from_str(destination)
        if not self._icmp.send_echo_request(
            address, identifier, sequence, payload, ttl=ttl, now=now
        ):
            raise NoRouteError(f"no route to {destination}")

    # --- UDP ------------------------------------------------------------------

    def udp_bind(self, port: int = 0, *, address: str | None = None) -> int:
        """Bind a UDP socket (port 0: a seeded ephemeral port); returns its handle."""
        return self._udp.bind(port, address)

    def udp_local_port(self, socket: int) -> int:
        return self._udp.sockets.get(socket).port

    def sendto(
        self, socket: int, data: bytes, destination: tuple[str, int], *, now: Instant
    ) -> None:
        """Send one datagram from a bound socket to (address, port)."""
        self._udp.sendto(socket, data, destination, now=now)

    def udp_close(self, socket: int) -> None:
        self._udp.sockets.close(socket)

    # --- TCP ------------------------------------------------------------------

    def tcp_listen(
        self,
        port: int,
        *,
        address: str | None = None,
        backlog: int | None = None,
        fast_open_queue: int = 0,
    ) -> int:
        """Listen on ``port`` (all our addresses, or one); returns the listener's handle.

        ``fast_open_queue``: TCP_FASTOPEN's qlen (RFC 7413, with ``tcp.fast_open_server``)."""
        return self.tcp.listen(
            port,
            address=address_from_api(address) if address else 0,
            backlog=backlog,
            fast_open_queue=fast_open_queue,
        )

    def tcp_connect(
        self,
        address: str,
        port: int,
        *,
        local_port: int | None = None,
        data: bytes = b"",
        now: Instant,
    ) -> int:
        """Active open to (address, port); ConnectionEstablished follows.

        ``data`` is sent as soon as it may: in the SYN with TCP Fast Open (RFC 7413,
        ``tcp.fast_open_client`` and a cached cookie), else after the handshake."""
        return self.tcp.connect(
            address_from_api(address), port, local_port=local_port, data=data, now=now
        )

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

    def tcp_take_soft_error(self, connection: int) -> tuple[int, int] | None:
        """The connection's last soft ICMP error (type, code), cleared (like SO_ERROR)."""
        return self.tcp.take_soft_error(connection)

    def tcp_info(self, connection: int, *, now: Instant | None = None) -> TcpInfo:
        """A snapshot of one connection: state, sequence variables, windows, RTT, counters
        (everything ``ss -ti`` prints; ``now`` adds the ages and the running chrono)."""
        return self.tcp.info(connection, now=now)

    def tcp_connections_info(self, *, now: Instant | None = None) -> list[TcpInfo]:
        """Every connection, half-open and TIME-WAIT included (like ``ss -t``)."""
        return self.tcp.connections_info(now=now)

    def tcp_set_nodelay(self, connection: int, enabled: bool, *, now: Instant) -> None:
        """Turn Nagle's algorithm (RFC 896) off (``enabled=True``) or back on for one connection."""
        self.tcp.set_nodelay(connection, enabled, now=now)

    def tcp_set_cork(self, connection: int, enabled: bool, *, now: Instant) -> None:
        """TCP_CORK: hold segments shorter than the MSS until cleared, 200 ms at most (as
        Linux); a FIN still leaves at once."""
        self.tcp.set_cork(connection, enabled, now=now)


_DROPPABLE_EVENTS = (EchoReplyReceived, DatagramReceived, IcmpErrorReceived)
"""Events whose number the network alone decides; see ``StackConfig.event_limit``."""


__all__ = ["InterfaceOffload", "InvalidHandleError", "Stack"]
