"""UDP endpoints in the shape of ``loop.create_datagram_endpoint``: a transport and a protocol.

The protocol is any object with asyncio's ``DatagramProtocol`` methods
(``asyncio.DatagramProtocol`` itself will do). ``datagram_received`` runs
inside the driver's step, as asyncio runs it inside its reader callback;
``transport.sendto`` from there is fine (it only queues, the step drains).

An endpoint created with ``remote_addr`` behaves like a connected socket:
``sendto`` without an address goes there, datagrams from anyone else are
dropped, and an ICMP error quoting a UDP datagram to that host is reported
with ``error_received`` (port unreachable as ConnectionRefusedError, RFC 1122
§4.1.3.3). The stack's ICMP error event does not carry the quoted ports, so
every connected endpoint towards that host hears it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import NoRouteError, SimtcpError
from ..events import DatagramReceived, IcmpErrorReceived
from ..wire.protocols import PROTOCOL_UDP
from .network import SockAddr, is_ipv6, literal, sockaddr
from .streams import raise_os_error

if TYPE_CHECKING:
    from .driver import AioStack

_ICMP_UNREACHABLE = 3
_ICMP_PORT_UNREACHABLE = 3


class DatagramProtocolLike(Protocol):
    """What an endpoint calls: the methods of ``asyncio.DatagramProtocol``."""

    def connection_made(self, transport: Any) -> None: ...

    def datagram_received(self, data: bytes, addr: SockAddr) -> None: ...

    def error_received(self, exc: Exception) -> None: ...

    def connection_lost(self, exc: Exception | None) -> None: ...


class DatagramTransport(asyncio.DatagramTransport):
    """One bound UDP socket of the stack (the shape of ``asyncio.DatagramTransport``)."""

    def __init__(
        self,
        driver: AioStack,
        socket: int,
        protocol: DatagramProtocolLike,
        *,
        sockname: SockAddr,
        remote_addr: SockAddr | None,
    ) -> None:
        self._driver = driver
        self.socket = socket
        """The stack's UDP socket handle."""
        self._protocol = protocol
        self._remote = remote_addr
        self._ipv6 = len(sockname) == 4
        """An AF_INET6 endpoint: peers are (host, port, flowinfo, scope_id), IPv4 ones
        as IPv4-mapped addresses (RFC 4291 §2.5.5.2), as Linux reports them."""
        self._closing = False
        self._extra: dict[str, Any] = {
            "sockname": sockname,
            "peername": remote_addr,
            "socket": None,
        }

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        value = self._extra.get(name)
        return default if value is None else value

    def get_protocol(self) -> DatagramProtocolLike:  # type: ignore[override]
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def get_write_buffer_size(self) -> int:
        return 0  # datagrams go straight into the stack's output queue

    def sendto(  # type: ignore[override]
        self, data: bytes | bytearray | memoryview, addr: tuple[Any, ...] | None = None
    ) -> None:
        """Send one datagram; no route is reported to ``error_received`` as asyncio does."""
        if self._closing:
            return
        if self._remote is not None:
            if addr is not None and self._peer(addr[0], addr[1]) != self._remote:
                raise ValueError(f"Invalid address: must be None or {self._remote}")
            addr = self._remote
        if addr is None:
            raise ValueError("sendto() needs an address on an unconnected endpoint")
        driver = self._driver
        try:
            driver.stack.sendto(self.socket, bytes(data), (addr[0], addr[1]), now=driver.now())
        except NoRouteError as error:
            self._protocol.error_received(OSError(errno.ENETUNREACH, str(error)))
            return
        driver.schedule_flush()

    def close(self) -> None:
        """Unbind; ``connection_lost(None)`` follows on the next turn of the loop."""
        if self._closing:
            return
        self._closing = True
        driver = self._driver
        driver.remove_datagram(self.socket)
        with contextlib.suppress(SimtcpError):
            driver.stack.udp_close(self.socket)
        driver.loop.call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    # --- driven by the driver's events -----------------------------------------

    def _peer(self, address: str, port: int) -> SockAddr:
        if self._ipv6:
            text = literal(address) or address
            return sockaddr(text if is_ipv6(text) else f"::ffff:{text}", port)
        return (address, port)

    def datagram_received(self, event: DatagramReceived) -> None:
        source = self._peer(event.source, event.source_port)
        if self._remote is not None and source != self._remote:
            return  # a connected endpoint hears only its peer
        self._protocol.datagram_received(event.data, source)

    def icmp_error(self, event: IcmpErrorReceived) -> bool:
        remote = self._remote
        if (
            remote is None
            or event.original_protocol != PROTOCOL_UDP
            or (literal(event.original_destination) or "") != remote[0].removeprefix("::ffff:")
        ):
            return False
        error: Exception
        if event.icmp_type == _ICMP_UNREACHABLE and event.code == _ICMP_PORT_UNREACHABLE:
            error = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        else:
            error = OSError(errno.EHOSTUNREACH, "No route to host")
        self._protocol.error_received(error)
        return True


def open_datagram_endpoint(
    driver: AioStack,
    protocol_factory: Callable[[], DatagramProtocolLike],
    *,
    local_addr: tuple[str, int] | None,
    remote_addr: tuple[str, int] | None,
) -> tuple[DatagramTransport, DatagramProtocolLike]:
    """Bind, build the protocol, call ``connection_made``: ``create_datagram_endpoint``.

    A local or remote IPv6 address makes an AF_INET6 endpoint (4-tuple addresses)."""
    host, port = local_addr if local_addr is not None else ("0.0.0.0", 0)
    address = None if host in (None, "", "0.0.0.0") else host
    stack = driver.stack
    try:
        socket = stack.udp_bind(port, address=address)
    except SimtcpError as error:
        raise_os_error(error)
    ipv6 = (address is not None and is_ipv6(address)) or (
        remote_addr is not None and is_ipv6(remote_addr[0])
    )
    remote = sockaddr(remote_addr[0], int(remote_addr[1])) if remote_addr is not None else None
    bound = address or ("::" if ipv6 else "0.0.0.0")
    sockname = sockaddr(bound, stack.udp_local_port(socket))
    protocol = protocol_factory()
    transport = DatagramTransport(driver, socket, protocol, sockname=sockname, remote_addr=remote)
    driver.add_datagram(socket, transport)
    protocol.connection_made(transport)
    return transport, protocol


__all__ = ["DatagramProtocolLike", "DatagramTransport", "open_datagram_endpoint"]
