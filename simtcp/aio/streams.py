"""TCP streams shaped like asyncio's: a transport per connection, reader, writer, server.

A :class:`TcpTransport` is the application's side of one stack connection. It
keeps no receive buffer of its own: bytes stay in the stack's receive buffer
until a reader asks for them, so the advertised window closes when the
application stops reading (end-to-end flow control, RFC 9293 §3.8.6). The
:class:`StreamReader` pulls into a small local buffer only what a call needs
(``readline`` looks ahead at most ``limit`` bytes).

On the sending side the stack's send buffer is bounded by
``TcpConfig.send_buffer``. ``write`` offers bytes to it; what it refuses waits
in the transport's ``pending`` buffer, in order, and moves into the stack each
time a :class:`~simtcp.events.SendSpaceAvailable` event says there is room.
``drain`` waits while ``pending`` is above the high-water mark and wakes once
it is at or below the low-water mark, so a writer that outpaces its peer holds
at most ``send_buffer + high_water + one write`` bytes.

Every method the application calls only changes state and asks the driver
for a flush (``AioStack.schedule_flush``); the driver drains the output and
re-arms its one timer on the next turn of the loop. Nothing here reads a
clock: times come from the driver's ``now()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import AddressInUseError, NoRouteError, SimtcpError
from ..events import ConnectionFailed, ConnectionReset, ConnectionTimedOut, Event
from .network import SockAddr, sockaddr

if TYPE_CHECKING:
    from .driver import AioStack

DEFAULT_LIMIT = 64 * 1024
"""Look-ahead bound of ``readline``/``readuntil``, as asyncio's ``_DEFAULT_LIMIT``."""
DEFAULT_HIGH_WATER = 64 * 1024
"""``drain`` blocks while more than this many bytes wait outside the stack's send buffer."""

OFFER_SLACK = 64 * 1024
"""Bytes offered beyond the reported room, so that a full buffer refuses part of an offer."""

ClientConnected = Callable[["StreamReader", "StreamWriter"], "Awaitable[None] | None"]

_ICMP_UNREACHABLE = 3


def raise_os_error(error: SimtcpError) -> NoReturn:
    """Raise the OSError the socket API would for a stack API error (the original as cause)."""
    if isinstance(error, NoRouteError):
        raise OSError(errno.ENETUNREACH, str(error)) from error
    if isinstance(error, AddressInUseError):
        raise OSError(errno.EADDRINUSE, str(error)) from error
    raise error


def connection_error(event: Event, *, connecting: bool) -> BaseException | None:
    """The exception asyncio would raise after the stack ended a connection with ``event``."""
    if isinstance(event, ConnectionReset):
        if connecting:
            return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        return ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
    if isinstance(event, ConnectionTimedOut):
        return TimeoutError(errno.ETIMEDOUT, "Connection timed out")
    if isinstance(event, ConnectionFailed):
        if event.ipv6:
            return _icmpv6_connection_error(event.icmp_type, event.code)
        # RFC 1122 §3.2.2.1: codes 0/1 net/host unreachable, 2/3 protocol/port unreachable.
        if event.icmp_type == _ICMP_UNREACHABLE and event.code in (2, 3):
            return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
        if event.icmp_type == _ICMP_UNREACHABLE and event.code == 0:
            return OSError(errno.ENETUNREACH, "Network is unreachable")
        return OSError(errno.EHOSTUNREACH, "No route to host")
    return None


def _icmpv6_connection_error(icmp_type: int, code: int) -> OSError:
    """The errno Linux's ``icmpv6_err_convert`` gives a hard ICMPv6 error (RFC 4443 §3.1)."""
    if icmp_type == 1 and code == 4:
        return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    if icmp_type == 1 and code in (1, 5, 6):
        return PermissionError(errno.EACCES, "Permission denied")
    if icmp_type == 4:
        return OSError(errno.EPROTO, "Protocol error")
    return OSError(errno.EHOSTUNREACH, "No route to host")


class TcpTransport:
    """One connection as the application sees it (the shape of ``asyncio.Transport``)."""

    def __init__(self, driver: AioStack, handle: int) -> None:
        self._driver = driver
        self.handle = handle
        """The stack's connection handle."""
        self.pending = bytearray()
        """Bytes written but not yet taken by the stack's send buffer."""
        self.connecting: asyncio.Future[None] | None = None
        self.error: BaseException | None = None
        """Why the connection ended abnormally (raised by reads and ``drain``)."""
        self.peer_closed = False
        self.eof_requested = False
        self.close_requested = False
        self.released = False
        """The stack was told ``close`` (or ``abort``): no more reads or writes."""
        self.gone = False
        """The stack freed the connection."""
        self.read_waiter: asyncio.Future[None] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed: asyncio.Future[None] = driver.loop.create_future()
        self._high_water = DEFAULT_HIGH_WATER
        self._low_water = DEFAULT_HIGH_WATER // 4
        self._extra: dict[str, Any] = {}

    # --- asyncio.Transport ---------------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peername``/``sockname`` as (address, port); ``tcp_info`` a fresh snapshot."""
        if name == "tcp_info":
            return self.tcp_info()
        return self._extra.get(name, default)

    def tcp_info(self) -> Any:
        """The stack's :class:`TcpInfo` of this connection, or None once it is gone."""
        if self.gone:
            return None
        try:
            return self._driver.stack.tcp_info(self.handle)
        except SimtcpError:
            return None

    def is_closing(self) -> bool:
        return self.close_requested or self.gone

    def get_write_buffer_size(self) -> int:
        """Bytes waiting outside the stack's send buffer."""
        return len(self.pending)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """As asyncio: ``low`` defaults to a quarter of ``high``; 0/0 waits for an empty buffer."""
        if high is None:
            high = DEFAULT_HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._wake_drainers()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.eof_requested:
            raise RuntimeError("Cannot call write() after write_eof()")
        if self.close_requested or self.gone or not data:
            return  # asyncio drops writes to a lost transport; drain() reports it
        if self.pending:
            self.pending += data
            return
        driver = self._driver
        chunk = bytes(data)
        try:
            taken = driver.stack.send(self.handle, chunk, now=driver.now())
        except SimtcpError:
            return  # ended under us; its event is on the way
        if taken < len(chunk):
            self.pending += memoryview(chunk)[taken:]
        driver.schedule_flush()

    def writelines(self, lines: Iterable[bytes]) -> None:
        self.write(b"".join(lines))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close: a FIN after everything written (RFC 9293 §3.6)."""
        if self.eof_requested or self.close_requested:
            return
        self.eof_requested = True
        self._finish_pending_close()

    def close(self) -> None:
        """Close after everything written has entered the stack (FIN, graceful)."""
        if self.close_requested:
            return
        self.close_requested = True
        self._finish_pending_close()

    def abort(self) -> None:
        """Reset the connection at once (RST); pending bytes are discarded."""
        self.close_requested = True
        self.pending.clear()
        if not self.gone and not self.released:
            driver = self._driver
            with contextlib.suppress(SimtcpError):
                driver.stack.abort(self.handle, now=driver.now())
            driver.schedule_flush()
        self._forget()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # --- driven by the driver's events -----------------------------------------

    def established(self) -> None:
        stack = self._driver.stack
        try:
            info = stack.tcp_info(self.handle)
        except SimtcpError:
            return
        self._extra["peername"] = sockaddr(info.remote_address, info.remote_port)
        self._extra["sockname"] = sockaddr(info.local_address, info.local_port)
        self._extra["socket"] = None
        if self.connecting is not None and not self.connecting.done():
            self.connecting.set_result(None)

    def data_arrived(self) -> None:
        waiter = self.read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def space_available(self, space: int) -> None:
        """Move pending bytes into the stack's send buffer while it takes them.

        Each offer is larger than the room reported, so a partial take leaves
        the stack knowing the application is blocked: it will report
        SendSpaceAvailable again. An offer taken whole means there was more
        room; offer the next one. Copies stay bounded by ``space + OFFER_SLACK``.
        """
        pending = self.pending
        driver = self._driver
        now = driver.now()
        send = driver.stack.send
        while pending and not self.gone:
            offer = bytes(pending[: space + OFFER_SLACK])
            try:
                taken = send(self.handle, offer, now=now)
            except SimtcpError:
                return
            del pending[:taken]
            if taken < len(offer):
                break
            space = 0
        self._wake_drainers()
        self._finish_pending_close()

    def peer_closed_sending(self) -> None:
        self.peer_closed = True
        self.data_arrived()

    def ended(self, event: Event) -> None:
        """The stack freed the connection: reset, timeout, hard error or a normal close."""
        error = connection_error(
            event, connecting=self.connecting is not None and not self.connecting.done()
        )
        if error is not None and self.error is None:
            self.error = error
        self.gone = True
        self.pending.clear()
        connecting = self.connecting
        if connecting is not None and not connecting.done():
            connecting.set_exception(error or ConnectionResetError("Connection lost"))
        self._forget()

    # --- internals --------------------------------------------------------------

    def _finish_pending_close(self) -> None:
        if self.pending or self.gone or self.released:
            return
        driver = self._driver
        try:
            if self.close_requested:
                driver.stack.close(self.handle, now=driver.now())
                self.released = True
                self._forget()
            elif self.eof_requested:
                driver.stack.shutdown(self.handle, now=driver.now())
        except SimtcpError:
            pass
        driver.schedule_flush()

    def _forget(self) -> None:
        """No more traffic from the application's side: wake everyone, resolve wait_closed."""
        self.released = self.released or not self.gone
        self.data_arrived()
        self._wake_drainers(force=True)
        if not self._closed.done():
            self._closed.set_result(None)

    def _wake_drainers(self, *, force: bool = False) -> None:
        if not force and len(self.pending) > self._low_water:
            return
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_writable(self) -> None:
        """Block while ``pending`` is above the high-water mark (StreamWriter.drain)."""
        while True:
            if self.error is not None:
                raise self.error
            if self.gone or self.released:
                raise ConnectionResetError("Connection lost")
            if len(self.pending) <= self._high_water:
                return
            waiter = self._driver.loop.create_future()
            self._drain_waiters.append(waiter)
            try:
                await waiter
            finally:
                self._drain_waiters.remove(waiter)

    def receive(self, max_bytes: int) -> bytes:
        """Take up to ``max_bytes`` from the stack's receive buffer (all with -1)."""
        if self.gone or self.released:
            return b""
        driver = self._driver
        try:
            data = driver.stack.receive(self.handle, max_bytes, now=driver.now())
        except SimtcpError:
            return b""
        if data:
            driver.schedule_flush()  # reading may open the window: a window update
        return data

    @property
    def at_eof(self) -> bool:
        return self.peer_closed or self.gone or self.released


class StreamReader:
    """Reads from one connection: ``read``, ``readexactly``, ``readline``, ``readuntil``."""

    def __init__(self, transport: TcpTransport, *, limit: int = DEFAULT_LIMIT) -> None:
        if limit <= 0:
            raise ValueError("Limit cannot be <= 0")
        self._transport = transport
        self._limit = limit
        self._buffer = bytearray()

    def at_eof(self) -> bool:
        """True when the buffer is empty and the peer has finished sending."""
        return not self._buffer and self._transport.at_eof and self._pull(1) == 0

    def exception(self) -> BaseException | None:
        return self._transport.error

    def _pull(self, max_bytes: int) -> int:
        data = self._transport.receive(max_bytes)
        self._buffer += data
        return len(data)

    async def _wait(self) -> None:
        """Wait for DataReceived, PeerClosed or the end; raise the connection's error."""
        transport = self._transport
        if transport.error is not None:
            raise transport.error
        if transport.at_eof:
            return
        if transport.read_waiter is not None:
            raise RuntimeError("another coroutine is already waiting for incoming data")
        waiter = transport._driver.loop.create_future()
        transport.read_waiter = waiter
        try:
            await waiter
        finally:
            transport.read_waiter = None
        if transport.error is not None:
            raise transport.error

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (at least one unless at EOF); with -1, everything until EOF."""
        if n == 0:
            return b""
        if n < 0:
            chunks = []
            while chunk := await self.read(self._limit):
                chunks.append(chunk)
            return b"".join(chunks)
        buffer = self._buffer
        while not buffer:
            if self._transport.error is not None:
                raise self._transport.error
            if self._pull(n) == 0:
                if self._transport.at_eof:
                    return b""
                await self._wait()
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes, or IncompleteReadError with what came before EOF."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        buffer = self._buffer
        while len(buffer) < n:
            if self._transport.error is not None:
                raise self._transport.error
            if self._pull(n - len(buffer)) == 0:
                if self._transport.at_eof:
                    partial = bytes(buffer)
                    buffer.clear()
                    raise asyncio.IncompleteReadError(partial, n)
                await self._wait()
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``separator``; asyncio's errors at the limit and at EOF."""
        length = len(separator)
        if length == 0:
            raise ValueError("Separator should be at least one-byte string")
        buffer = self._buffer
        offset = 0
        while True:
            found = buffer.find(separator, offset)
            if found >= 0:
                if found > self._limit:
                    raise asyncio.LimitOverrunError(
                        "Separator is found, but chunk is longer than limit", found
                    )
                data = bytes(buffer[: found + length])
                del buffer[: found + length]
                return data
            offset = max(0, len(buffer) + 1 - length)
            if offset > self._limit:
                raise asyncio.LimitOverrunError(
                    "Separator is not found, and chunk exceed the limit", offset
                )
            if self._transport.error is not None:
                raise self._transport.error
            if self._pull(max(1, self._limit + length - len(buffer))) == 0:
                if self._transport.at_eof:
                    partial = bytes(buffer)
                    buffer.clear()
                    raise asyncio.IncompleteReadError(partial, None)
                await self._wait()

    async def readline(self) -> bytes:
        """One line with its ``\\n``; at EOF what is left; ValueError past the limit."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as error:
            return error.partial
        except asyncio.LimitOverrunError as error:
            if self._buffer.startswith(b"\n", error.consumed):
                del self._buffer[: error.consumed + 1]
            else:
                self._buffer.clear()
            raise ValueError(error.args[0]) from None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if line == b"":
            raise StopAsyncIteration
        return line


class StreamWriter:
    """Writes to one connection; ``drain`` applies the send buffer's back-pressure."""

    def __init__(self, transport: TcpTransport, reader: StreamReader) -> None:
        self._transport = transport
        self._reader = reader

    @property
    def transport(self) -> TcpTransport:
        return self._transport

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._transport.write(data)

    def writelines(self, data: Iterable[bytes]) -> None:
        self._transport.writelines(data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        await self._transport.wait_closed()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    async def drain(self) -> None:
        """Wait until the bytes outside the stack's send buffer are at the low-water mark.

        Raises the connection's error (ConnectionResetError, TimeoutError, ...),
        or ConnectionResetError("Connection lost") once it is closed.
        """
        await self._transport.wait_writable()

    async def __aenter__(self) -> StreamWriter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


@dataclass(frozen=True, slots=True)
class ListenSocket:
    """What ``Server.sockets`` lists: enough of a socket to ask where it listens."""

    address: str
    port: int

    def getsockname(self) -> SockAddr:
        return sockaddr(self.address, self.port)


class Server:
    """A listener and the tasks serving its connections (the shape of ``asyncio.Server``)."""

    def __init__(
        self,
        driver: AioStack,
        callback: ClientConnected,
        *,
        host: str | None,
        port: int,
        backlog: int | None,
        limit: int,
    ) -> None:
        self._driver = driver
        self._callback = callback
        self._host, self._port, self._backlog = host, port, backlog
        self._limit = limit
        self._listener: int | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._serving_forever: asyncio.Future[None] | None = None
        self._all_done: asyncio.Future[None] = driver.loop.create_future()

    @property
    def sockets(self) -> tuple[ListenSocket, ...]:
        if self._listener is None:
            return ()
        return (ListenSocket(self._host or "0.0.0.0", self._port),)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._driver.loop

    def is_serving(self) -> bool:
        return self._listener is not None

    async def start_serving(self) -> None:
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        if self._listener is None:
            try:
                self._listener = self._driver.stack.tcp_listen(
                    self._port, address=self._host, backlog=self._backlog
                )
            except SimtcpError as error:
                raise_os_error(error)
            self._driver.add_server(self._listener, self)

    def close(self) -> None:
        """Stop listening; connections already accepted carry on."""
        if self._closed:
            return
        self._closed = True
        listener, self._listener = self._listener, None
        if listener is not None:
            self._driver.remove_server(listener)
            with contextlib.suppress(SimtcpError):
                self._driver.stack.close(listener, now=self._driver.now())
            self._driver.schedule_flush()
        if self._serving_forever is not None and not self._serving_forever.done():
            self._serving_forever.cancel()
        self._check_done()

    async def wait_closed(self) -> None:
        """Wait until closed and every connection's handler has finished (asyncio 3.12)."""
        self._check_done()
        await asyncio.shield(self._all_done)

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` or cancellation; raises CancelledError then, as asyncio."""
        if self._serving_forever is not None:
            raise RuntimeError(f"server {self!r} is already being awaited on serve_forever()")
        if self._closed:
            raise RuntimeError(f"server {self!r} is closed")
        await self.start_serving()
        self._serving_forever = self._driver.loop.create_future()
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

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()

    def new_transport(self, connection: int) -> TcpTransport:
        return TcpTransport(self._driver, connection)

    def accepted(self, transport: TcpTransport) -> None:
        """A new connection: build its streams and run the callback (as a task if async)."""
        reader = StreamReader(transport, limit=self._limit)
        writer = StreamWriter(transport, reader)
        result = self._callback(reader, writer)
        if result is None:
            return
        task: asyncio.Task[None] = self._driver.loop.create_task(_as_coroutine(result))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._handler_done(done, transport))

    def _handler_done(self, task: asyncio.Task[None], transport: TcpTransport) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._driver.loop.call_exception_handler(
                {
                    "message": "Unhandled exception in client_connected_cb",
                    "exception": task.exception(),
                    "transport": transport,
                }
            )
            transport.abort()
        else:
            transport.close()  # the handler is done with it
        self._check_done()

    def _check_done(self) -> None:
        if self._closed and not self._tasks and not self._all_done.done():
            self._all_done.set_result(None)


async def _as_coroutine(awaitable: Awaitable[None]) -> None:
    await awaitable


__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LIMIT",
    "ListenSocket",
    "Server",
    "StreamReader",
    "StreamWriter",
    "TcpTransport",
    "connection_error",
    "raise_os_error",
]
