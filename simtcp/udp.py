"""UDP (RFC 768): sockets bound, demultiplexed and given seeded ephemeral ports; datagrams.

Over IPv4 and IPv6 alike: a socket bound to the wildcard (no address) takes
datagrams of both families, one bound to ``::`` only IPv6 ones. Over IPv6 the
checksum is mandatory both ways (RFC 8200 §8.1): a datagram without one is
dropped and counted (``DropReason.UDP_ZERO_CHECKSUM``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import TYPE_CHECKING

from .config import UdpConfig
from .errors import (
    AddressError,
    AddressInUseError,
    DropReason,
    InvalidHandleError,
    NoRouteError,
    ParseError,
)
from .events import DatagramReceived, Event
from .ip.routing import LIMITED_BROADCAST
from .network6 import ChecksumVerdict, Ipv6Network
from .stats import Stats
from .time import Instant
from .wire import icmp as icmp_wire
from .wire.address import UNSPECIFIED6, Address, format_address, parse_address, unmapped
from .wire.checksum import Buffer
from .wire.ipv4 import Ipv4Packet, ip_to_str
from .wire.offload import with_partial_checksum
from .wire.protocols import PROTOCOL_UDP
from .wire.udp import UdpDatagram

if TYPE_CHECKING:
    from .icmp import Icmp
    from .ip.output import Ipv4Output


@dataclass(slots=True)
class UdpSocket:
    handle: int
    address: Address  # 0: any local address of either family; "::": any IPv6 one
    port: int


class UdpSockets:
    """The bound sockets, found by (local address, port) with a wildcard fallback."""

    def __init__(self, ephemeral_ports: tuple[int, int], rng: random.Random) -> None:
        self._ephemeral = ephemeral_ports
        self._rng = rng
        self._by_handle: dict[int, UdpSocket] = {}
        self._by_port: dict[tuple[Address, int], UdpSocket] = {}
        self._next_handle = 1

    def bind(self, address: Address, port: int) -> UdpSocket:
        if port == 0:
            port = self._free_port(address)
        elif self._taken(address, port):
            raise AddressInUseError(f"UDP port {port} is already bound")
        socket = UdpSocket(self._next_handle, address, port)
        self._next_handle += 1
        self._by_handle[socket.handle] = socket
        self._by_port[(address, port)] = socket
        return socket

    def _taken(self, address: Address, port: int) -> bool:
        """Whether binding (address, port) collides: the dual wildcard 0 with anything on
        the port, ``::`` with any IPv6 address on it (and the reverse)."""
        by_port = self._by_port
        if (address, port) in by_port or (0, port) in by_port:
            return True
        if address == 0:
            return any(p == port for _, p in by_port)
        if address == UNSPECIFIED6:
            return any(p == port and isinstance(a, IPv6Address) for a, p in by_port)
        return isinstance(address, IPv6Address) and (UNSPECIFIED6, port) in by_port

    def _free_port(self, address: Address) -> int:
        low, high = self._ephemeral
        start = self._rng.randint(low, high)
        span = high - low + 1
        for step in range(span):
            port = low + (start - low + step) % span
            if not self._taken(address, port):
                return port
        raise AddressInUseError("no free ephemeral UDP port")

    def get(self, handle: int) -> UdpSocket:
        try:
            return self._by_handle[handle]
        except KeyError:
            raise InvalidHandleError(f"no UDP socket {handle}") from None

    def close(self, handle: int) -> None:
        socket = self.get(handle)
        del self._by_handle[handle]
        del self._by_port[(socket.address, socket.port)]

    def find(self, address: Address, port: int) -> UdpSocket | None:
        by_port = self._by_port
        found = by_port.get((address, port))
        if found is None and isinstance(address, IPv6Address):
            found = by_port.get((UNSPECIFIED6, port))
        return found or by_port.get((0, port))

    def __len__(self) -> int:
        return len(self._by_handle)


class Udp:
    """UDP for the stack: datagrams to our sockets become events, ours leave through
    :class:`~simtcp.ip.output.Ipv4Output`; no socket answers ICMP port unreachable."""

    def __init__(
        self,
        config: UdpConfig,
        *,
        output: Ipv4Output,
        icmp: Icmp,
        stats: Stats,
        rng: random.Random,
        emit: Callable[[Event], None],
    ) -> None:
        self._send_checksum = config.send_checksum
        self.sockets = UdpSockets(config.ephemeral_ports, rng)
        self._output = output
        self._icmp = icmp
        self._stats = stats
        self._emit = emit
        self.ipv6: Ipv6Network | None = None
        """The IPv6 network layer (set by a stack that speaks IPv6); None: no UDP over IPv6."""
        self.ipv6_verdict: ChecksumVerdict | None = None
        """Whether the link vouched for the checksum of the IPv6 datagram being delivered."""

    def received(
        self,
        packet: Ipv4Packet,
        link_broadcast: bool,
        to_broadcast: bool,
        now: Instant,
        verified: bool,
    ) -> None:
        stats = self._stats
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
        socket = self.sockets.find(packet.destination, datagram.destination_port)
        if socket is None:
            stats.drop(DropReason.PORT_UNREACHABLE)
            self._icmp.send_error(
                icmp_wire.TYPE_DESTINATION_UNREACHABLE,
                icmp_wire.CODE_PORT_UNREACHABLE,
                packet,
                now,
                link_broadcast=link_broadcast,
                to_broadcast=to_broadcast,
            )
            return
        self._emit(
            DatagramReceived(
                socket=socket.handle,
                source=ip_to_str(packet.source),
                source_port=datagram.source_port,
                destination=ip_to_str(packet.destination),
                destination_port=datagram.destination_port,
                data=bytes(datagram.payload),
            )
        )

    def received_ipv6(
        self,
        source: IPv6Address,
        destination: IPv6Address,
        payload: Buffer,
        now: Instant,
        multicast: bool,
    ) -> bool:
        """A datagram from the IPv6 input to one of our addresses or a group we joined.

        False when no socket is bound to its port (and it was valid): the caller answers
        with an ICMPv6 port unreachable (RFC 4443 §3.1), unless it went to a multicast
        group (§2.4 (e.3)). The drop is counted here either way."""
        stats = self._stats
        verdict = self.ipv6_verdict
        try:
            if verdict is not None and verdict.checksum_verified:
                datagram = UdpDatagram.parse(payload)  # a TAP's offload vouched for it
            else:
                datagram = UdpDatagram.parse_ipv6(payload, source=source, destination=destination)
        except ParseError as error:
            stats.drop(error.reason)
            return True
        stats.count("udp.datagrams_in")
        socket = self.sockets.find(destination, datagram.destination_port)
        if socket is None:
            stats.drop(DropReason.PORT_UNREACHABLE)
            return multicast
        self._emit(
            DatagramReceived(
                socket=socket.handle,
                source=format_address(source),
                source_port=datagram.source_port,
                destination=format_address(destination),
                destination_port=datagram.destination_port,
                data=bytes(datagram.payload),
            )
        )
        return True

    def bind(self, port: int, address: str | None) -> int:
        """Bind a socket (port 0: a seeded ephemeral port); its handle.

        No address (or ``0.0.0.0``): every address of both families; ``::``: every
        IPv6 address; an IPv4-mapped IPv6 address binds its IPv4 address.
        """
        if not 0 <= port <= 0xFFFF:
            raise AddressError(f"port {port} outside 0..65535")
        value = self._bind_address(address) if address else 0
        return self.sockets.bind(value, port).handle

    def _bind_address(self, text: str) -> Address:
        value = _parse(text)
        if isinstance(value, IPv6Address):
            if value == UNSPECIFIED6:
                return value
            ipv6 = self.ipv6
            if ipv6 is None or not ipv6.is_local_address6(value):
                raise AddressError(f"{text} is not one of our addresses")
            return value
        if value and value not in self._output.local:
            raise AddressError(f"{text} is not one of our addresses")
        return value

    def sendto(
        self, socket: int, data: bytes, destination: tuple[str, int], *, now: Instant
    ) -> None:
        """Send one datagram from a bound socket to (address, port)."""
        bound = self.sockets.get(socket)
        parsed = _parse(destination[0])
        port = destination[1]
        if not 0 < port <= 0xFFFF:
            raise AddressError(f"port {port} outside 1..65535")
        if isinstance(parsed, IPv6Address):
            self._sendto6(bound, data, parsed, port, now)
            return
        address = parsed
        if isinstance(bound.address, IPv6Address):
            raise AddressError(f"an IPv6 socket cannot send to {destination[0]}")
        output = self._output
        source = bound.address or None
        if source is None:
            info = output.route_source(address)
            source = info[0] if info else None
        if source is None and address != LIMITED_BROADCAST:
            raise NoRouteError(f"no route to {destination[0]}")
        with_checksum = self._send_checksum
        iface = output.route_interface(address)
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
        self._stats.count("udp.datagrams_out")
        if not output.send(address, PROTOCOL_UDP, payload, now=now, source=source):
            raise NoRouteError(f"no route to {destination[0]}")

    def _sendto6(
        self, bound: UdpSocket, data: bytes, address: IPv6Address, port: int, now: Instant
    ) -> None:
        """One datagram over IPv6, always checksummed (RFC 8200 §8.1)."""
        ipv6 = self.ipv6
        if ipv6 is None:
            raise NoRouteError(f"no route to {format_address(address)}: no IPv6 on this stack")
        local = bound.address
        if isinstance(local, int) and local:
            raise AddressError(f"an IPv4 socket cannot send to {format_address(address)}")
        source = local if isinstance(local, IPv6Address) and local != UNSPECIFIED6 else None
        if source is None:
            # The checksum covers the source (RFC 8200 §8.1): pick it here, not below.
            route = ipv6.route6_source(address)
            if route is None:
                raise NoRouteError(f"no route to {format_address(address)}")
            source = route[0]
        payload = UdpDatagram(bound.port, port, data).build_ipv6(source, address)
        self._stats.count("udp.datagrams_out")
        ipv6.send_ipv6(source, address, PROTOCOL_UDP, payload, now=now)


def _parse(text: str) -> Address:
    """An address of either family from the API; an IPv4-mapped one as its IPv4 address."""
    try:
        value = parse_address(text)
    except ValueError:
        raise AddressError(f"not an IP address: {text!r}") from None
    if isinstance(value, IPv6Address):
        inner = unmapped(value)
        if inner is not None:
            return inner
    return value
