"""Applications for fault scenarios: a bulk sender and a checking sink, on FaultNet hosts.

Each is a start function for :meth:`simtcp.backends.faults.FaultNet.add_host`:
it listens or connects, then adds a process to its host, so a restarted host
runs it again from the start with a fresh stack. The sink checks every byte
against the seeded stream (:class:`~simtcp.programs.transfer.PatternStream`)
as it arrives; the sender reports how its connection ended, so a test can
tell a transfer that completed from one that was cut short: ``closed``
(every byte acknowledged and both FINs exchanged: TIME-WAIT or closed), ``reset``, ``timed out``
or ``failed``, never a silent success.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from simtcp.backends.faults import HostHandle
from simtcp.config import StackConfig
from simtcp.errors import SimtcpError
from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionFailed,
    ConnectionReset,
    ConnectionTimedOut,
    DataReceived,
    Event,
    PeerClosed,
    SendSpaceAvailable,
)
from simtcp.programs.transfer import CHUNK, PatternStream
from simtcp.stack import Stack
from simtcp.time import Instant


def make_stack(config: StackConfig, mac: str, address: str, mtu: int = 1500) -> Stack:
    """One interface ``eth0`` with ``address`` (CIDR): the stack every scenario host runs."""
    stack = Stack(config)
    stack.add_interface("eth0", mac=mac, mtu=mtu)
    stack.add_address("eth0", address, now=0)
    return stack


def _stack(host: HostHandle) -> Stack:
    node = host.node
    if not isinstance(node, Stack):
        raise TypeError(f"host {host.name!r} does not run a simtcp Stack")
    return node


EventHandler = Callable[[Event, Instant], None]


class HostEvents:
    """One process per host (per life of it) that pops its stack's events and offers each
    to every app on the host, then runs each app's per-step tick: several apps on one
    stack never steal each other's events."""

    def __init__(self, host: HostHandle) -> None:
        self.stack = _stack(host)
        self.handlers: list[EventHandler] = []
        self.ticks: list[Callable[[Instant], None]] = []
        host.add_process(self._process)

    def _process(self, now: Instant) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            for handler in self.handlers:
                handler(event, now)
        for tick in self.ticks:
            tick(now)

    @classmethod
    def of(cls, host: HostHandle) -> HostEvents:
        """The host's dispatcher for its current stack (a restart makes a new one)."""
        entry = _DISPATCHERS.get(host)
        if entry is None or entry.stack is not host.node:
            entry = _DISPATCHERS[host] = cls(host)
        return entry


_DISPATCHERS: weakref.WeakKeyDictionary[HostHandle, HostEvents] = weakref.WeakKeyDictionary()


@dataclass
class Sink:
    """Listens on ``port``; checks what arrives against the stream named ``label``."""

    port: int
    seed: int = 0
    label: str = "bulk"
    received: int = 0
    intact: bool = True
    finished: int = 0  # connections that ended with the peer's FIN after intact data
    _ends: dict[int, int] = field(default_factory=dict)  # connection -> offset

    def start(self, host: HostHandle) -> None:
        stack = _stack(host)
        listener = stack.tcp_listen(self.port, backlog=1024)
        self._ends = {}
        stream = PatternStream(self.seed, self.label)

        def handle(event: Event, now: Instant) -> None:
            if isinstance(event, ConnectionAccepted):
                if event.listener == listener:
                    self._ends[event.connection] = 0
            elif isinstance(event, (DataReceived, PeerClosed)):
                self._read(stack, stream, event.connection, now)
                if isinstance(event, PeerClosed) and event.connection in self._ends:
                    self.finished += 1
                    stack.close(event.connection, now=now)

        HostEvents.of(host).handlers.append(handle)

    def _read(self, stack: Stack, stream: PatternStream, connection: int, now: Instant) -> None:
        offset = self._ends.get(connection)
        if offset is None:
            return
        data = stack.receive(connection, now=now)
        if data != stream.read(offset, len(data)):
            self.intact = False
        self._ends[connection] = offset + len(data)
        self.received += len(data)


@dataclass
class Sender:
    """Connects to ``address:port`` at ``start_at`` and sends ``size`` bytes, then FIN."""

    address: str
    port: int
    size: int
    seed: int = 0
    label: str = "bulk"
    start_at: Instant = 0
    outcome: str = ""  # "", "closed", "reset", "timed out", "failed", "error: ..."
    sent: int = 0

    def start(self, host: HostHandle) -> None:
        """Connect (again, on a restarted host: a new transfer from the first byte)."""
        stack = _stack(host)
        stream = PatternStream(self.seed, self.label)
        state: dict[str, int] = {}
        self.sent, self.outcome = 0, ""

        def pump(now: Instant) -> None:
            self._pump(stack, stream, state, now)

        def handle(event: Event, now: Instant) -> None:
            try:
                self._on_event(stack, event, pump, state, now)
            except SimtcpError as error:
                self.outcome = self.outcome or f"error: {error}"

        def tick(now: Instant) -> None:
            self._tick(stack, state, now)

        events = HostEvents.of(host)
        events.handlers.append(handle)
        events.ticks.append(tick)
        if self.start_at > 0:  # wake the simulator when it is time to connect
            host.net.sim.call_at(self.start_at, lambda: None)

    def _pump(
        self, stack: Stack, stream: PatternStream, state: dict[str, int], now: Instant
    ) -> None:
        connection = state["connection"]
        while self.sent < self.size:
            chunk = stream.read(self.sent, min(CHUNK, self.size - self.sent))
            taken = stack.send(connection, chunk, now=now)
            self.sent += taken
            if taken < len(chunk):
                return
        if "shut" not in state:
            state["shut"] = 1
            stack.shutdown(connection, now=now)

    def _tick(self, stack: Stack, state: dict[str, int], now: Instant) -> None:
        if "connection" not in state:
            if now >= self.start_at:
                state["connection"] = stack.tcp_connect(self.address, self.port, now=now)
            return
        if "shut" in state and not self.outcome and self.sent == self.size:
            # In TIME-WAIT our FIN, hence every byte, is acknowledged and the peer's
            # FIN came (RFC 9293 §3.10.7.4): the transfer is complete; 2*MSL is not.
            try:
                if stack.tcp_info(state["connection"]).state == "TIME-WAIT":
                    self.outcome = "closed"
            except SimtcpError:
                pass

    def _on_event(
        self,
        stack: Stack,
        event: Event,
        pump: Callable[[Instant], None],
        state: dict[str, int],
        now: Instant,
    ) -> None:
        connection = getattr(event, "connection", None)
        if connection != state.get("connection"):
            return
        if isinstance(event, (ConnectionEstablished, SendSpaceAvailable)):
            pump(now)
        elif isinstance(event, PeerClosed):
            stack.receive(state["connection"], now=now)
            stack.close(state["connection"], now=now)
        elif isinstance(event, ConnectionClosed):
            complete = self.sent == self.size and "shut" in state
            self.outcome = self.outcome or ("closed" if complete else "closed early")
        elif isinstance(event, ConnectionReset):
            self.outcome = self.outcome or "reset"
        elif isinstance(event, ConnectionTimedOut):
            self.outcome = self.outcome or "timed out"
        elif isinstance(event, ConnectionFailed):
            self.outcome = self.outcome or "failed"

    @property
    def done(self) -> bool:
        return bool(self.outcome)
