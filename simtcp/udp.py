"""UDP (RFC 768): sockets bound, demultiplexed and given seeded ephemeral ports; datagrams."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
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
from .ip.routing import LIMITED_BROADCAST, address_from_str
from .stats import Stats
from .time import Instant
from .wire import icmp as icmp_wire
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
    address: int  # 0: any local address
    port: int


class UdpSockets:
    """The bound sockets, found by (local address, port) with a wildcard fallback."""

    def __init__(self, ephemeral_ports: tuple[int, int], rng: random.Random) -> None:
        self._ephemeral = ephemeral_ports
        self._rng = rng
        self._by_handle: dict[int, UdpSocket] = {}
        self._by_port: dict[tuple[int, int], UdpSocket] = {}
        self._next_handle = 1

    def bind(self, address: int, port: int) -> UdpSocket:
        if port == 0:
            port = self._free_port(address)
        elif (
            (address, port) in self._by_port
            or (0, port) in self._by_port
            or (address == 0 and any(p == port for _, p in self._by_port))
        ):
            raise AddressInUseError(f"UDP port {port} is already bound")
        socket = UdpSocket(self._next_handle, address, port)
        self._next_handle += 1
        self._by_handle[socket.handle] = socket
        self._by_port[(address, port)] = socket
        return socket

    def _free_port(self, address: int) -> int:
        low, high = self._ephemeral
        start = self._rng.randint(low, high)
        span = high - low + 1
        for step in range(span):
            port = low + (start - low + step) % span
            if (address, port) not in self._by_port and (0, port) not in self._by_port:
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

    def find(self, address: int, port: int) -> UdpSocket | None:
        return self._by_port.get((address, port)) or self._by_port.get((0, port))

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

    def bind(self, port: int, address: str | None) -> int:
        """Bind a socket (port 0: a seeded ephemeral port); its handle."""
        if not 0 <= port <= 0xFFFF:
            raise AddressError(f"port {port} outside 0..65535")
        value = address_from_str(address) if address else 0
        if value and value not in self._output.local:
            raise AddressError(f"{address} is not one of our addresses")
        return self.sockets.bind(value, port).handle

    def sendto(
        self, socket: int, data: bytes, destination: tuple[str, int], *, now: Instant
    ) -> None:
        """Send one datagram from a bound socket to (address, port)."""
        bound = self.sockets.get(socket)
        address = address_from_str(destination[0])
        port = destination[1]
        if not 0 < port <= 0xFFFF:
            raise AddressError(f"port {port} outside 1..65535")
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
