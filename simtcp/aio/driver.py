"""The asyncio driver of a Stack: frames in, output drained, one ``call_at`` timer, events out.

Theory of operation
-------------------
:class:`AioStack` is the sans-IO contract (DESIGN.md "The core's contract")
run by an asyncio loop. Three things make it take a *step*:

- frames arriving from its :class:`FrameLink` (a TAP fd watched with
  ``loop.add_reader``, or the simulator), handed to ``receive_frame``;
- its one timer, a ``loop.call_at`` handle armed at the stack's ``poll_at()``;
- a *flush* scheduled with ``loop.call_soon`` after the application called
  the stack (``write``, ``read``, ``close``, ``sendto``, ...): many calls in one
  turn of the loop cost one flush.

A step fires ``handle_timer`` if the deadline has come, pops every event and
hands it to the transport, server or datagram endpoint it concerns (waking the
futures tasks wait on), drains ``frames_to_send`` into the link, and re-arms
the timer: if ``poll_at()`` moved, the old handle is cancelled and one new
``call_at`` is made at the exact new deadline. So at any moment at most one
timer handle of the driver is alive, and it is at ``poll_at()``.

Time: :class:`LoopClock` is the only place where the loop's float seconds
(``loop.time()``) and the core's integer microseconds meet, in both
directions. Its ``now`` never goes backwards, and when the timer fires it is
at least the deadline the timer was armed for (asyncio may run a timer up to
its clock resolution early), so a due timer is never found "not yet due".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from ..errors import SimtcpError
from ..events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DatagramReceived,
    DataReceived,
    Event,
    IcmpErrorReceived,
    PeerClosed,
    SendSpaceAvailable,
)
from ..stack import Stack
from ..time import Instant
from .datagram import DatagramProtocolLike, DatagramTransport, open_datagram_endpoint
from .streams import (
    DEFAULT_LIMIT,
    ClientConnected,
    Server,
    StreamReader,
    StreamWriter,
    TcpTransport,
    raise_os_error,
)

MICROSECONDS_PER_SECOND = 1_000_000


class FrameLink(Protocol):
    """Where a driver's frames come from and go to (a TAP device, the simulator)."""

    def start(self, driver: AioStack) -> None:
        """Begin calling ``driver.frames_received(interface, frames)`` from the loop."""
        ...

    def send(self, frames: list[tuple[str, bytes]]) -> None:
        """Transmit frames, in order, as ``(interface, frame)``."""
        ...

    def close(self) -> None:
        """Stop delivering frames (devices stay open; they are the caller's)."""
        ...


class LoopClock:
    """The loop's clock as the core's integer microseconds: the one conversion, both ways."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._last: Instant = 0

    def now(self, *, at_least: Instant = 0) -> Instant:
        """``loop.time()`` in integer microseconds, never less than before or ``at_least``."""
        now = round(self._loop.time() * MICROSECONDS_PER_SECOND)
        now = max(now, self._last, at_least)
        self._last = now
        return now

    @staticmethod
    def loop_time(instant: Instant) -> float:
        """The loop time (seconds) of a core instant, for ``loop.call_at``."""
        return instant / MICROSECONDS_PER_SECOND


EventHook = Callable[[Event], None]


class Flushable(Protocol):
    """A transport that gathers writes until the driver's step hands them to the stack."""

    def flush(self) -> None: ...


class ConnectionSink(Protocol):
    """What the driver tells a connection's transport (streams' or a Protocol's)."""

    def established(self) -> None: ...

    def data_arrived(self) -> None: ...

    def space_available(self, space: int) -> None: ...

    def peer_closed_sending(self) -> None: ...

    def ended(self, event: Event) -> None: ...


class ServerSink(Protocol):
    """A listener's owner: makes the transport of each accepted connection, then takes it."""

    def new_transport(self, connection: int) -> Any: ...

    def accepted(self, transport: Any) -> None: ...


class AioStack:
    """Drives one :class:`~simtcp.Stack` from an asyncio loop and serves asyncio-shaped streams.

    ``on_event`` receives the events no transport, server or endpoint of this
    driver claims (pings, handles used directly). :meth:`close` stops driving
    the stack; it does not close connections.
    """

    def __init__(
        self,
        stack: Stack,
        link: FrameLink,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        on_event: EventHook | None = None,
    ) -> None:
        self.stack = stack
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.clock = LoopClock(self.loop)
        self.on_event = on_event
        self.counters: dict[str, int] = {
            "steps": 0,
            "frames_in": 0,
            "frames_out": 0,
            "timer_armed": 0,
            "timer_cancelled": 0,
            "timer_fired": 0,
        }
        self._link = link
        self._timer: asyncio.TimerHandle | None = None
        self._armed_at: Instant | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._in_step = False
        self._closed = False
        self._connections: dict[int, ConnectionSink] = {}
        self._servers: dict[int, ServerSink] = {}
        self._datagrams: dict[int, DatagramTransport] = {}
        self._dirty: list[Flushable] = []
        self._handlers: dict[type[Event], Callable[[Any], bool]] = {
            DataReceived: self._on_data,
            SendSpaceAvailable: self._on_space,
            PeerClosed: self._on_peer_closed,
            ConnectionEstablished: self._on_established,
            ConnectionAccepted: self._on_accepted,
            ConnectionReset: self._on_ended,
            ConnectionTimedOut: self._on_ended,
            ConnectionFailed: self._on_ended,
            ConnectionClosed: self._on_ended,
            DatagramReceived: self._on_datagram,
            IcmpErrorReceived: self._on_icmp_error,
        }
        link.start(self)
        self.schedule_flush()  # output queued before us (gratuitous ARP) and the first timer

    # --- time and steps ---------------------------------------------------------

    def now(self) -> Instant:
        """The core's current time (see :class:`LoopClock`)."""
        return self.clock.now()

    @property
    def timer_deadline(self) -> Instant | None:
        """The instant the driver's one timer is armed for (None: no timer)."""
        return self._armed_at

    @property
    def timer_handle(self) -> asyncio.TimerHandle | None:
        return self._timer

    @property
    def flush_pending(self) -> bool:
        """A flush is scheduled: the application called the stack since the last step."""
        return self._flush_handle is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def frames_received(self, interface: str, frames: Iterable[bytes]) -> None:
        """Input from the link: every frame to the stack at one ``now``, then one step."""
        if self._closed:
            return
        now = self.clock.now()
        receive = self.stack.receive_frame
        count = 0
        for frame in frames:
            receive(interface, frame, now=now)
            count += 1
        self.counters["frames_in"] += count
        self._step(now)

    def schedule_flush(self) -> None:
        """Ask for a step on the next turn of the loop (after application calls)."""
        if self._flush_handle is None and not self._in_step and not self._closed:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._step(self.clock.now())

    def _on_timer(self) -> None:
        deadline = self._armed_at or 0
        self._timer = None
        self._armed_at = None
        self.counters["timer_fired"] += 1
        self._step(self.clock.now(at_least=deadline))

    def _step(self, now: Instant) -> None:
        if self._closed:
            return
        stack = self.stack
        self.counters["steps"] += 1
        self._in_step = True
        try:
            deadline = stack.poll_at()
            if deadline is not None and deadline <= now:
                stack.handle_timer(now=now)
            event = stack.next_event()
            while True:
                self._dispatch(event)
                self._flush_writers()
                frames = stack.frames_to_send(now=now)
                if frames:
                    self.counters["frames_out"] += len(frames)
                    self._link.send(frames)
                # Datagrams to our own addresses are delivered inside frames_to_send: their
                # events (a connection to our own listener) are handled in this same step.
                event = stack.next_event()
                if event is None and not self._dirty:
                    break
        finally:
            self._in_step = False
        self._rearm()

    def _rearm(self) -> None:
        """Keep exactly one ``call_at`` at ``poll_at()``; cancel it when the deadline moves."""
        deadline = self.stack.poll_at()
        if deadline == self._armed_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self.counters["timer_cancelled"] += 1
        self._armed_at = deadline
        if deadline is None:
            self._timer = None
            return
        self._timer = self.loop.call_at(self.clock.loop_time(deadline), self._on_timer)
        self.counters["timer_armed"] += 1

    def close(self) -> None:
        """Stop driving the stack: cancel the timer and the flush, detach from the link."""
        if self._closed:
            return
        self._closed = True
        for handle in (self._timer, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._flush_handle = None
        self._armed_at = None
        self._link.close()

    # --- events -------------------------------------------------------------------

    def want_flush(self, writer: Flushable) -> None:
        """``writer.flush()`` on this turn's step: its writes leave together (coalescing)."""
        self._dirty.append(writer)
        self.schedule_flush()

    def _flush_writers(self) -> None:
        while self._dirty:
            dirty, self._dirty = self._dirty, []
            for writer in dirty:
                try:
                    writer.flush()
                except Exception as error:  # a protocol's pause/resume_writing raised
                    self.loop.call_exception_handler(
                        {"message": "exception while flushing a transport", "exception": error}
                    )

    def forget(self, connection: int) -> None:
        """Stop routing a connection's events (its transport aborted it)."""
        self._connections.pop(connection, None)

    def add_connection(self, connection: int, transport: ConnectionSink) -> None:
        self._connections[connection] = transport

    def _dispatch(self, event: Event | None) -> None:
        next_event = self.stack.next_event
        handlers = self._handlers
        while event is not None:
            handler = handlers.get(type(event))
            try:
                if handler is not None and handler(event):
                    pass
                elif self.on_event is not None:
                    self.on_event(event)
                elif isinstance(event, ConnectionAccepted):
                    self._refuse(event.connection)  # a listener we no longer serve
            except Exception as error:  # application code (a protocol, a callback) raised
                self.loop.call_exception_handler(
                    {"message": f"exception while handling {event!r}", "exception": error}
                )
            event = next_event()

    def _on_data(self, event: DataReceived) -> bool:
        transport = self._connections.get(event.connection)
        if transport is None:
            return False
        transport.data_arrived()
        return True

    def _on_space(self, event: SendSpaceAvailable) -> bool:
        transport = self._connections.get(event.connection)
        if transport is None:
            return False
        transport.space_available(event.space)
        return True

    def _on_peer_closed(self, event: PeerClosed) -> bool:
        transport = self._connections.get(event.connection)
        if transport is None:
            return False
        transport.peer_closed_sending()
        return True

    def _on_established(self, event: ConnectionEstablished) -> bool:
        transport = self._connections.get(event.connection)
        if transport is None:
            return False
        transport.established()
        return True

    def _on_accepted(self, event: ConnectionAccepted) -> bool:
        server = self._servers.get(event.listener)
        if server is None:
            return False
        transport = server.new_transport(event.connection)
        self._connections[event.connection] = transport
        transport.established()
        server.accepted(transport)
        return True

    def _on_ended(
        self, event: ConnectionReset | ConnectionTimedOut | ConnectionFailed | ConnectionClosed
    ) -> bool:
        transport = self._connections.pop(event.connection, None)
        if transport is None:
            return False
        transport.ended(event)
        return True

    def _on_datagram(self, event: DatagramReceived) -> bool:
        endpoint = self._datagrams.get(event.socket)
        if endpoint is None:
            return False
        endpoint.datagram_received(event)
        return True

    def _on_icmp_error(self, event: IcmpErrorReceived) -> bool:
        claimed = False
        for endpoint in list(self._datagrams.values()):
            claimed = endpoint.icmp_error(event) or claimed
        return claimed

    def _refuse(self, connection: int) -> None:
        with contextlib.suppress(SimtcpError):
            self.stack.abort(connection, now=self.clock.now())

    # --- registries (used by transports, servers and endpoints) -----------------------

    def add_server(self, listener: int, server: ServerSink) -> None:
        self._servers[listener] = server

    def remove_server(self, listener: int) -> None:
        self._servers.pop(listener, None)

    def add_datagram(self, socket: int, endpoint: DatagramTransport) -> None:
        self._datagrams[socket] = endpoint

    def remove_datagram(self, socket: int) -> None:
        self._datagrams.pop(socket, None)

    @property
    def connection_count(self) -> int:
        """Connections this driver still tracks (until the stack reports them gone)."""
        return len(self._connections)

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this AioStack is closed")

    # --- the asyncio-shaped API -------------------------------------------------------

    async def open_connection(
        self, host: str, port: int, *, local_port: int | None = None, limit: int = DEFAULT_LIMIT
    ) -> tuple[StreamReader, StreamWriter]:
        """Connect to ``host:port`` (dotted quad); (reader, writer) once established.

        Raises ConnectionRefusedError (RST or ICMP port unreachable), TimeoutError
        (SYN retries exhausted), OSError (ENETUNREACH without a route). A
        cancelled connect resets the half-open connection.
        """
        self._check_open()
        try:
            handle = self.stack.tcp_connect(host, port, local_port=local_port, now=self.now())
        except SimtcpError as error:
            raise_os_error(error)
        transport = TcpTransport(self, handle)
        connecting: asyncio.Future[None] = self.loop.create_future()
        transport.connecting = connecting
        self._connections[handle] = transport
        self.schedule_flush()
        try:
            await connecting
        except asyncio.CancelledError:
            transport.abort()
            raise
        reader = StreamReader(transport, limit=limit)
        return reader, StreamWriter(transport, reader)

    async def start_server(
        self,
        client_connected_cb: ClientConnected,
        host: str | None = None,
        port: int = 0,
        *,
        backlog: int | None = None,
        limit: int = DEFAULT_LIMIT,
        start_serving: bool = True,
    ) -> Server:
        """Listen on ``port`` (``host`` None or ``"0.0.0.0"``: every address of the stack).

        ``client_connected_cb(reader, writer)`` runs for each connection; when it
        is a coroutine function it runs as a task, and the connection is closed
        when that task ends (aborted if it raised).
        """
        self._check_open()
        if host in ("", "0.0.0.0"):
            host = None
        server = Server(
            self, client_connected_cb, host=host, port=port, backlog=backlog, limit=limit
        )
        if start_serving:
            await server.start_serving()
        return server

    async def create_datagram_endpoint(
        self,
        protocol_factory: Callable[[], DatagramProtocolLike],
        *,
        local_addr: tuple[str, int] | None = None,
        remote_addr: tuple[str, int] | None = None,
    ) -> tuple[DatagramTransport, DatagramProtocolLike]:
        """A UDP endpoint: ``transport.sendto``; ``protocol.datagram_received(data, addr)``."""
        self._check_open()
        return open_datagram_endpoint(
            self, protocol_factory, local_addr=local_addr, remote_addr=remote_addr
        )


__all__ = ["AioStack", "FrameLink", "LoopClock"]
