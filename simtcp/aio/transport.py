"""A real ``asyncio.Transport`` over one stack connection, driving any Protocol or BufferedProtocol.

Theory of operation
-------------------
:class:`StreamTransport` follows CPython's ``selector_events._SelectorSocketTransport``
callback for callback, with the stack's connection in place of a kernel socket:

- ``connection_made`` is called with ``call_soon`` after the protocol is
  attached, and reading starts on the turn after it, so no ``data_received``
  ever precedes ``connection_made``;
- received bytes stay in the stack's receive buffer until the transport reads:
  while reading is paused the advertised window closes (end-to-end flow
  control, RFC 9293 §3.8.6). A ``BufferedProtocol`` gets ``get_buffer(-1)`` and
  ``buffer_updated(n)``; any other protocol gets ``data_received``, at most
  :data:`MAX_READ` bytes a call, as asyncio's ``max_size``;
- the peer's FIN is delivered as ``eof_received`` after every byte before it;
  a false return closes the transport, as asyncio does;
- ``write`` gathers bytes in the transport and hands them to the stack once per
  turn of the loop (the driver's flush), so several small writes in one
  iteration leave as full segments. A buffer past the high-water mark is handed
  over at once; ``pause_writing``/``resume_writing`` follow the bytes the stack
  has not taken, at the high and low water marks (64 KiB and 16 KiB);
- ``connection_lost`` is called exactly once: after ``close`` once the buffer
  has entered the stack, at once after ``abort``, or with the error the stack
  reported (``ConnectionResetError``, ``TimeoutError``).

asyncio turns ``TCP_NODELAY`` on for every TCP transport; so does this one
(``get_extra_info("socket").setsockopt(IPPROTO_TCP, TCP_NODELAY, 0)`` turns
Nagle back on). ``get_extra_info("socket")`` is a :class:`SimSocket`, the shape
of asyncio's ``TransportSocket``; it has no file descriptor (``fileno()`` is -1).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import SimtcpError
from ..events import Event
from .network import SockAddr, family_of, sockaddr
from .streams import connection_error

if TYPE_CHECKING:
    from .driver import AioStack

logger = logging.getLogger("simtcp.aio")

MAX_READ = 256 * 1024
"""Most bytes one ``data_received`` call gets (asyncio's ``max_size``)."""
HIGH_WATER = 64 * 1024
"""asyncio's default high-water mark of a transport's write buffer."""
OFFER_CHUNK = 256 * 1024
"""Most bytes offered to the stack in one ``send`` call (bounds the copies)."""
_LOG_THRESHOLD = 5  # asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES


class SimSocket:
    """What ``get_extra_info("socket")`` and ``Server.sockets`` return: a TransportSocket shape.

    Options that mean something to simtcp act (``TCP_NODELAY``); the others
    are remembered and read back, as libraries set them and read them.
    """

    def __init__(
        self,
        *,
        kind: int = socket.SOCK_STREAM,
        sockname: SockAddr,
        peername: SockAddr | None = None,
        on_nodelay: Callable[[bool], None] | None = None,
        on_linger: Callable[[bool], None] | None = None,
        nodelay: bool = True,
    ) -> None:
        self.type = kind
        self.family = family_of(sockname[0])
        """AF_INET6 when the socket's address is an IPv6 one (4-tuple names), else AF_INET."""
        self.proto = socket.IPPROTO_TCP if kind == socket.SOCK_STREAM else socket.IPPROTO_UDP
        self._sockname = sockname
        self._peername = peername
        self._on_nodelay = on_nodelay
        self._on_linger = on_linger
        self._options: dict[tuple[int, int], int] = {
            (socket.IPPROTO_TCP, socket.TCP_NODELAY): int(nodelay),
            (socket.SOL_SOCKET, socket.SO_TYPE): kind,
        }
        self._linger = struct.pack("ii", 0, 0)

    def fileno(self) -> int:
        return -1

    def getsockname(self) -> SockAddr:
        return self._sockname

    def getpeername(self) -> SockAddr:
        if self._peername is None:
            raise OSError(errno.ENOTCONN, "Transport endpoint is not connected")
        return self._peername

    def setsockopt(self, level: int, option: int, value: int | bytes, *_: Any) -> None:
        if (level, option) == (socket.SOL_SOCKET, socket.SO_LINGER) and isinstance(value, bytes):
            onoff, seconds = struct.unpack("ii", value[:8])
            if self._on_linger is not None:
                self._on_linger(bool(onoff) and seconds == 0)  # close() then resets
            self._linger = value
            return
        number = int.from_bytes(value, "little") if isinstance(value, bytes) else int(value)
        self._options[(level, option)] = number
        if (level, option) == (socket.IPPROTO_TCP, socket.TCP_NODELAY) and self._on_nodelay:
            self._on_nodelay(bool(number))

    def getsockopt(self, level: int, option: int, buflen: int | None = None) -> int | bytes:
        if (level, option) == (socket.SOL_SOCKET, socket.SO_LINGER) and buflen:
            return self._linger[:buflen]
        value = self._options.get((level, option), 0)
        return value.to_bytes(buflen, "little") if buflen else value

    def setblocking(self, flag: bool) -> None:
        if flag:
            raise ValueError("simtcp sockets are never blocking")

    def gettimeout(self) -> float:
        return 0.0

    def __repr__(self) -> str:
        peer = f" raddr={self._peername}" if self._peername else ""
        return f"<simtcp.SimSocket type={self.type!r} laddr={self._sockname}{peer}>"


class StreamTransport(asyncio.Transport):
    """One stack connection as an ``asyncio.Transport`` (see the module's theory of operation)."""

    _start_tls_compatible = True  # loop.start_tls may wrap it (asyncio checks this name)
    _extra: dict[str, Any]

    def __init__(self, driver: AioStack, handle: int) -> None:
        super().__init__()
        self._extra = {}
        self._driver = driver
        self._loop = driver.loop
        self.handle = handle
        """The stack's connection handle."""
        self._protocol: asyncio.BaseProtocol | None = None
        self._buffered = False
        self._buffer = bytearray()
        self._reading = False  # reading started (the turn after connection_made)
        self._paused = False
        self._closing = False
        self._eof = False  # write_eof() called
        self._eof_sent = False
        self._peer_eof = False
        self._eof_delivered = False
        self._conn_lost = 0
        self._lost_called = False
        self._released = False  # the stack was told close or abort
        self._gone = False  # the stack freed the connection
        self._protocol_paused = False
        self._high_water = HIGH_WATER
        self._low_water = HIGH_WATER // 4
        self._in_flush_list = False
        self._linger_zero = False  # SO_LINGER {1, 0}: closing resets (RFC 9293 §3.10.5)
        self.connecting: asyncio.Future[None] | None = None
        self.on_lost: Callable[[StreamTransport], None] | None = None

    def __repr__(self) -> str:
        state = "closing" if self._closing else "open"
        return f"<simtcp.StreamTransport handle={self.handle} {state}>"

    # --- attaching a protocol -------------------------------------------------------

    def attach(
        self, protocol: asyncio.BaseProtocol, waiter: asyncio.Future[None] | None = None
    ) -> None:
        """Give the connection its protocol: connection_made, then reading, then ``waiter``."""
        self.set_protocol(protocol)
        self._loop.call_soon(self._connection_made)
        self._loop.call_soon(self._start_reading)
        if waiter is not None:
            self._loop.call_soon(_set_result_unless_cancelled, waiter)

    def _connection_made(self) -> None:
        assert self._protocol is not None
        self._protocol.connection_made(self)

    def _start_reading(self) -> None:
        if self._closing:
            return
        self._reading = True
        self._read_ready()

    # --- asyncio.BaseTransport / ReadTransport ------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """``peername``, ``sockname``, ``socket`` (a :class:`SimSocket`), ``tcp_info``."""
        if name == "tcp_info":
            try:
                return self._driver.stack.tcp_info(self.handle)
            except SimtcpError:
                return default
        return self._extra.get(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._paused and not self._closing

    def pause_reading(self) -> None:
        if not self.is_reading():
            return
        self._paused = True

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        self._loop.call_soon(self._read_ready)

    # --- asyncio.WriteTransport -----------------------------------------------------------

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high_water, self._low_water = high, low
        self._maybe_pause_protocol()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return (self._low_water, self._high_water)

    def get_write_buffer_size(self) -> int:
        """Bytes written that the stack's send buffer has not taken yet."""
        return len(self._buffer)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            )
        if self._eof:
            raise RuntimeError("Cannot call write() after write_eof()")
        if not data:
            return
        if self._conn_lost:
            if self._conn_lost >= _LOG_THRESHOLD:
                logger.warning("socket.send() raised exception.")
            self._conn_lost += 1
            return
        self._buffer += data
        if len(self._buffer) > self._high_water:
            self.flush()  # the stack may take it all: pause only when it cannot
        else:
            self._want_flush()
        self._maybe_pause_protocol()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        """Half-close: a FIN after everything written (RFC 9293 §3.6)."""
        if self._closing or self._eof:
            return
        self._eof = True
        self._want_flush()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._buffer:
            self._conn_lost += 1
            self._release()
            self._loop.call_soon(self._call_connection_lost, None)
        else:
            self._want_flush()

    def abort(self) -> None:
        self._force_close(None)

    # --- the write side: one flush per loop turn ---------------------------------------------

    def _want_flush(self) -> None:
        if not self._in_flush_list:
            self._in_flush_list = True
            self._driver.want_flush(self)

    def flush(self) -> None:
        """Hand the write buffer to the stack (the driver calls this once per loop turn)."""
        self._in_flush_list = False
        if self._released or self._gone:
            self._buffer.clear()
            return
        buffer = self._buffer
        driver = self._driver
        send = driver.stack.send
        now = driver.now()
        while buffer:
            offer = bytes(buffer[:OFFER_CHUNK])
            try:
                taken = send(self.handle, offer, now=now)
            except SimtcpError:
                return  # ended under us; its event is on the way
            del buffer[:taken]
            if taken < len(offer):
                break  # SendSpaceAvailable follows once there is room
        driver.schedule_flush()
        self._maybe_resume_protocol()
        if buffer:
            return
        if self._closing and not self._conn_lost:
            self._conn_lost += 1
            self._release()
            self._call_connection_lost(None)
        elif self._eof and not self._eof_sent:
            self._eof_sent = True
            with contextlib.suppress(SimtcpError):
                driver.stack.shutdown(self.handle, now=now)

    def _maybe_pause_protocol(self) -> None:
        if len(self._buffer) <= self._high_water or self._protocol_paused:
            return
        self._protocol_paused = True
        try:
            self.get_protocol().pause_writing()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._loop.call_exception_handler(
                {
                    "message": "protocol.pause_writing() failed",
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and len(self._buffer) <= self._low_water:
            self._protocol_paused = False
            try:
                self.get_protocol().resume_writing()
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._loop.call_exception_handler(
                    {
                        "message": "protocol.resume_writing() failed",
                        "exception": exc,
                        "transport": self,
                        "protocol": self._protocol,
                    }
                )

    # --- the read side -------------------------------------------------------------------------

    def _read_ready(self) -> None:
        if not self._reading or self._paused or self._closing or self._protocol is None:
            return
        receive = self._driver.stack.receive
        got = False
        while not self._paused and not self._closing:
            try:
                if self._buffered:
                    if not self._read_into_buffer(receive):
                        break
                else:
                    data = receive(self.handle, MAX_READ, now=self._driver.now())
                    if not data:
                        break
                    self._protocol.data_received(data)  # type: ignore[attr-defined]
            except SimtcpError:
                break
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self._fatal_error(exc, "Fatal error: protocol.data_received() call failed.")
                return
            got = True
        if got:
            self._driver.schedule_flush()  # reading opened the window: an update may be due
        if self._peer_eof and not self._eof_delivered and self.is_reading():
            self._deliver_eof()

    def _read_into_buffer(self, receive: Callable[..., bytes]) -> bool:
        protocol: asyncio.BufferedProtocol = self._protocol  # type: ignore[assignment]
        try:
            buffer = memoryview(protocol.get_buffer(-1)).cast("B")
            if not len(buffer):
                raise RuntimeError("get_buffer() returned an empty buffer")
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.get_buffer() call failed.")
            return False
        data = receive(self.handle, len(buffer), now=self._driver.now())
        if not data:
            return False
        buffer[: len(data)] = data
        protocol.buffer_updated(len(data))
        return True

    def _deliver_eof(self) -> None:
        self._eof_delivered = True
        try:
            keep_open = self.get_protocol().eof_received()  # type: ignore[attr-defined]
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            self._fatal_error(exc, "Fatal error: protocol.eof_received() call failed.")
            return
        if not keep_open:
            self.close()

    # --- ending ---------------------------------------------------------------------------------

    def _release(self) -> None:
        """Tell the stack we are done: close (FIN after the queued bytes) or abort (RST).

        As a kernel socket's close(), which is all asyncio's ``abort`` does, this resets
        only with SO_LINGER {1, 0} or unread received bytes (RFC 2525 §2.17); otherwise
        the bytes already in the stack's send buffer go out, then a FIN.
        """
        if self._released or self._gone:
            return
        self._released = True
        driver = self._driver
        abort = self._linger_zero or self._has_unread()
        try:
            if abort:
                driver.stack.abort(self.handle, now=driver.now())
            else:
                driver.stack.close(self.handle, now=driver.now())
        except SimtcpError:
            pass
        driver.schedule_flush()
        if abort:
            driver.forget(self.handle)

    def _has_unread(self) -> bool:
        try:
            return self._driver.stack.tcp_info(self.handle).bytes_readable > 0
        except SimtcpError:
            return False

    def _set_linger_zero(self, enabled: bool) -> None:
        self._linger_zero = enabled

    def _fatal_error(self, exc: BaseException, message: str) -> None:
        if not isinstance(exc, OSError):
            self._loop.call_exception_handler(
                {
                    "message": message,
                    "exception": exc,
                    "transport": self,
                    "protocol": self._protocol,
                }
            )
        self._force_close(exc)

    def _force_close(self, exc: BaseException | None) -> None:
        if self._conn_lost:
            return
        self._buffer.clear()
        self._closing = True
        self._conn_lost += 1
        self._release()
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: BaseException | None) -> None:
        if self._lost_called:
            return
        self._lost_called = True
        try:
            if self._protocol is not None:
                self._protocol.connection_lost(exc)  # type: ignore[arg-type]
        finally:
            if self.on_lost is not None:
                self.on_lost(self)

    # --- driven by the driver's events ------------------------------------------------------------

    def established(self) -> None:
        try:
            info = self._driver.stack.tcp_info(self.handle)
        except SimtcpError:
            return
        sockname = sockaddr(info.local_address, info.local_port)
        peername = sockaddr(info.remote_address, info.remote_port)
        self._extra["peername"] = peername
        self._extra["sockname"] = sockname
        self._extra["socket"] = SimSocket(
            sockname=sockname,
            peername=peername,
            on_nodelay=self._set_nodelay,
            on_linger=self._set_linger_zero,
        )
        self._set_nodelay(True)  # as asyncio's _set_nodelay for every TCP transport
        if self.connecting is not None and not self.connecting.done():
            self.connecting.set_result(None)

    def _set_nodelay(self, enabled: bool) -> None:
        driver = self._driver
        with contextlib.suppress(SimtcpError):
            driver.stack.tcp_set_nodelay(self.handle, enabled, now=driver.now())

    def data_arrived(self) -> None:
        self._read_ready()

    def space_available(self, space: int) -> None:
        if self._buffer or (self._eof and not self._eof_sent):
            self.flush()

    def peer_closed_sending(self) -> None:
        self._peer_eof = True
        self._read_ready()

    def ended(self, event: Event) -> None:
        """The stack freed the connection: reset, timeout, hard error or a normal close."""
        connecting = self.connecting is not None and not self.connecting.done()
        error = connection_error(event, connecting=connecting)
        self._gone = True
        if connecting:
            assert self.connecting is not None
            self.connecting.set_exception(error or ConnectionResetError("Connection lost"))
            return
        if error is not None:
            self._force_close(error)


def _set_result_unless_cancelled(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.set_result(None)


__all__ = ["HIGH_WATER", "MAX_READ", "SimSocket", "StreamTransport"]
