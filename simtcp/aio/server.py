"""``asyncio.Server`` on a simtcp host: listeners, accepted transports, serve_forever, wait_closed.

Each accepted connection gets a fresh protocol from the factory (wrapped in
asyncio's ``sslproto.SSLProtocol`` when the server has an SSL context) and a
:class:`~simtcp.aio.transport.StreamTransport`. ``wait_closed`` follows the
running Python: from 3.12 on it waits until every accepted connection is
lost, as asyncio does; on 3.11 it returns once the server is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import sys
from asyncio import sslproto
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import AddressInUseError, SimtcpError
from .network import sockaddr
from .transport import SimSocket, StreamTransport

if TYPE_CHECKING:
    from .driver import AioStack
    from .network import Host

_EPHEMERAL_FIRST, _EPHEMERAL_LAST = 49152, 65535  # RFC 6335 §6: the dynamic ports


class SimServer(asyncio.AbstractServer):
    """Listeners on one host serving ``protocol_factory`` (the shape of ``asyncio.Server``)."""

    def __init__(
        self,
        driver: AioStack,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        *,
        ssl: Any,
        backlog: int,
        ssl_handshake_timeout: float,
        ssl_shutdown_timeout: float,
    ) -> None:
        self._driver = driver
        self._loop = driver.loop
        self._factory = protocol_factory
        self._ssl = ssl
        self._backlog = backlog
        self._handshake_timeout = ssl_handshake_timeout
        self._shutdown_timeout = ssl_shutdown_timeout
        self._listeners: list[int] = []
        self._sockets: list[SimSocket] = []
        self._serving = False
        self._closed = False
        self._transports: set[StreamTransport] = set()
        self._serving_forever: asyncio.Future[None] | None = None
        self._waiters: list[asyncio.Future[None]] = []

    def __repr__(self) -> str:
        return f"<simtcp.SimServer sockets={self._sockets!r}>"

    # --- listening ------------------------------------------------------------------

    def listen(self, addresses: list[str | None], port: int, host: Host) -> None:
        """Listen on ``port`` (0: the first free dynamic port) at each address (None: all)."""
        if port == 0:
            port = self._ephemeral(addresses, host)
        for address in addresses:
            self._listen_one(address, port)

    def _listen_one(self, address: str | None, port: int) -> None:
        stack = self._driver.stack
        try:
            listener = stack.tcp_listen(port, address=address, backlog=self._backlog)
        except AddressInUseError:
            raise OSError(
                errno.EADDRINUSE,
                f"error while attempting to bind on address "
                f"{sockaddr(address or '0.0.0.0', port)!r}: address already in use",
            ) from None
        except SimtcpError:
            raise OSError(
                errno.EADDRNOTAVAIL,
                f"error while attempting to bind on address {sockaddr(address or '', port)!r}: "
                "cannot assign requested address",
            ) from None
        self._listeners.append(listener)
        self._sockets.append(SimSocket(sockname=sockaddr(address or "0.0.0.0", port)))
        self._driver.add_server(listener, self)

    def _ephemeral(self, addresses: list[str | None], host: Host) -> int:
        stack = self._driver.stack
        span = _EPHEMERAL_LAST - _EPHEMERAL_FIRST + 1
        for _ in range(span):
            port = host.next_ephemeral
            host.next_ephemeral = _EPHEMERAL_FIRST + (port + 1 - _EPHEMERAL_FIRST) % span
            probes = []
            try:
                for address in addresses:
                    probes.append(stack.tcp_listen(port, address=address))
            except SimtcpError:
                continue
            finally:
                for probe in probes:
                    with contextlib.suppress(SimtcpError):
                        stack.close(probe, now=self._driver.now())
            return port
        raise OSError(errno.EADDRINUSE, "no free ephemeral port")

    # --- the driver's side -------------------------------------------------------------

    def new_transport(self, connection: int) -> StreamTransport:
        return StreamTransport(self._driver, connection)

    def accepted(self, transport: StreamTransport) -> None:
        if not self._serving:
            transport.abort()
            return
        self._transports.add(transport)
        transport.on_lost = self._detach
        protocol = self._factory()
        if self._ssl is None:
            transport.attach(protocol)
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        waiter.add_done_callback(_retrieve)
        options: dict[str, Any] = {"ssl_handshake_timeout": self._handshake_timeout}
        if sys.version_info >= (3, 11):
            options["ssl_shutdown_timeout"] = self._shutdown_timeout
        ssl_protocol = sslproto.SSLProtocol(
            self._loop, protocol, self._ssl, waiter, server_side=True, **options
        )
        transport.attach(ssl_protocol)

    def _detach(self, transport: StreamTransport) -> None:
        self._transports.discard(transport)
        self._wake_waiters()

    def _wake_waiters(self) -> None:
        if not self._closed or (sys.version_info >= (3, 12) and self._transports):
            return
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # --- asyncio.AbstractServer ------------------------------------------------------------

    @property
    def sockets(self) -> tuple[SimSocket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        self._serving = True
        await asyncio.sleep(0)  # asyncio yields once here too

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._serving = False
        for listener in self._listeners:
            self._driver.remove_server(listener)
            with contextlib.suppress(SimtcpError):
                self._driver.stack.close(listener, now=self._driver.now())
        self._listeners.clear()
        self._sockets.clear()
        self._driver.schedule_flush()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
            self._serving_forever = None
        self._wake_waiters()

    def close_clients(self) -> None:
        for transport in list(self._transports):
            transport.close()

    def abort_clients(self) -> None:
        for transport in list(self._transports):
            transport.abort()

    async def wait_closed(self) -> None:
        if not self._closed or (sys.version_info >= (3, 12) and self._transports):
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._waiters.append(waiter)
            await waiter

    async def serve_forever(self) -> None:
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        await self.start_serving()
        self._serving_forever = self._loop.create_future()
        try:
            await self._serving_forever
        except asyncio.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._serving_forever = None


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # a failed handshake is the protocol's business, not a warning


__all__ = ["SimServer"]
