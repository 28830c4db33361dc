"""Small sans-IO applications over a Stack, driven by its events (TCP echo server).

An application is an object with ``handle_event(event, now)``. Its driver (the
TAP loop, the simulator, a test) pops every event from the stack and hands it
over, then drains the stack's output. The application never reads a clock and
never blocks: it calls the stack with the ``now`` it was given.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from .errors import SimtcpError
from .events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    Event,
    PeerClosed,
    SendSpaceAvailable,
)
from .stack import Stack
from .time import Instant

ECHO_CHUNK = 64 * 1024
"""Bytes taken from a receive buffer at a time."""

_GONE = (ConnectionReset, ConnectionTimedOut, ConnectionFailed, ConnectionClosed)


@dataclass(slots=True)
class _EchoConnection:
    pending: bytes = b""
    """Bytes received but not yet accepted by the send buffer."""
    peer_closed: bool = False
    closing: bool = False
    echoed: int = 0


class EchoServer:
    """Echoes every byte of every connection on ``port`` back to its sender (RFC 862).

    Flow control is end to end: while echoed bytes wait for send-buffer space
    (a partial ``send``), nothing more is read, so the receive window closes
    and the client slows down instead of the server buffering without bound.
    After the client's FIN, the server flushes what is left and closes.
    """

    def __init__(self, stack: Stack, port: int = 7, *, address: str | None = None) -> None:
        self.stack = stack
        self.port = port
        self.listener = stack.tcp_listen(port, address=address)
        self.connections: dict[int, _EchoConnection] = {}
        self.accepted = 0
        self.completed = 0
        """Connections that ended cleanly (both FINs)."""
        self.failed = 0
        """Connections that ended by reset, timeout or a stack error."""
        self.echoed_bytes = 0

    def handle_event(self, event: Event, now: Instant) -> None:
        """Act on one event; events about other listeners' connections are ignored."""
        if isinstance(event, ConnectionAccepted):
            if event.listener == self.listener:
                self.connections[event.connection] = _EchoConnection()
                self.accepted += 1
            return
        connection = getattr(event, "connection", None)
        if connection is None:
            return
        state = self.connections.get(connection)
        if state is None:
            return
        if isinstance(event, (DataReceived, SendSpaceAvailable)):
            self._pump(connection, state, now)
        elif isinstance(event, PeerClosed):
            state.peer_closed = True
            self._pump(connection, state, now)
        elif isinstance(event, _GONE):
            del self.connections[connection]
            if isinstance(event, ConnectionClosed) and state.peer_closed:
                self.completed += 1
            else:
                self.failed += 1

    def _pump(self, connection: int, state: _EchoConnection, now: Instant) -> None:
        """Move bytes from the receive buffer to the send buffer until one of them stalls."""
        stack = self.stack
        drained = False
        try:
            while not state.closing:
                if state.pending:
                    taken = stack.send(connection, state.pending, now=now)
                    state.echoed += taken
                    self.echoed_bytes += taken
                    state.pending = state.pending[taken:]
                    if state.pending:
                        return  # SendSpaceAvailable resumes us
                if drained:
                    break  # the last read came short: another would return nothing
                data = stack.receive(connection, ECHO_CHUNK, now=now)
                if not data:
                    break
                drained = len(data) < ECHO_CHUNK
                state.pending = data
            if state.peer_closed and not state.pending and not state.closing:
                state.closing = True
                stack.close(connection, now=now)
        except SimtcpError:
            # The connection vanished under us (reset between events): forget it.
            self.connections.pop(connection, None)
            self.failed += 1
            with contextlib.suppress(SimtcpError):
                stack.abort(connection, now=now)


__all__ = ["ECHO_CHUNK", "EchoServer"]
