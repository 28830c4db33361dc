"""A RuleBasedStateMachine: API calls on both ends, link faults and time jumps, interleaved.

At every step the bytes each end has read are a prefix of what the other end's
send() accepted, API misuse raises only the documented errors, and no timer is
left in the past. At the end the link heals, both ends close, and nothing is
left behind once TIME-WAIT is over.
"""

from __future__ import annotations

import random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from simtcp.errors import InvalidHandleError, InvalidStateError
from simtcp.events import ConnectionAccepted, ConnectionClosed
from simtcp.tcp import TcpConfig, TcpLayer
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment
from tests.unit.tcp.harness import B_ADDR, Endpoint, make_pair

CONFIG = TcpConfig(
    msl=1 * SECOND,
    send_buffer=16 * 1024,
    receive_buffer=8 * 1024,
    data_retries=8,
    syn_retries=4,
    max_rto=2 * SECOND,
)
ALLOWED = (InvalidHandleError, InvalidStateError)


class End:
    """What one application did and saw on the current connection."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.handle: int | None = None
        self.sent = bytearray()
        self.received = bytearray()
        self.closed = False
        self.every_handle: set[int] = set()

    @property
    def layer(self) -> TcpLayer:
        return self.endpoint.layer


class TcpApiMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.rng = random.Random(0)
        self.loss = 0.0
        self.duplicate = 0.0
        self.reorder = 0.0
        self.pair = make_pair(CONFIG, CONFIG, fault=self.fault)
        self.a = End(self.pair.a)
        self.b = End(self.pair.b)
        self.pair.b.layer.listen(80)
        self.counter = 0

    def fault(self, segment: TcpSegment, sender: int) -> list[int]:
        if self.rng.random() < self.loss:
            return []
        copies = [self.rng.randrange(20 * MILLISECOND) if self.rng.random() < self.reorder else 0]
        if self.rng.random() < self.duplicate:
            copies.append(self.rng.randrange(30 * MILLISECOND))
        return copies

    def end(self, which: str) -> End:
        return self.a if which == "a" else self.b

    def sync_events(self) -> None:
        for end in (self.a, self.b):
            for event in end.endpoint.host.take_events():
                if isinstance(event, ConnectionAccepted):
                    end.every_handle.add(event.connection)
                if isinstance(event, ConnectionAccepted) and end.handle is None:
                    end.handle = event.connection
                    end.sent.clear()
                    end.received.clear()
                    end.closed = False
                elif isinstance(event, ConnectionClosed) and event.connection == end.handle:
                    end.closed = True

    def call(self, function: object, *args: object, **kwargs: object) -> object:
        try:
            return function(*args, **kwargs)  # type: ignore[operator]
        except ALLOWED:
            return None

    @initialize(seed=st.integers(0, 1000))
    def first_connection(self, seed: int) -> None:
        self.connect(seed)
        self.pair.run(self.pair.now + 100 * MILLISECOND, on_step=self.sync_events)
        self.sync_events()

    @precondition(lambda self: self.a.closed)
    @rule(seed=st.integers(0, 1000))
    def connect(self, seed: int) -> None:
        self.rng.seed(seed)
        self.a.handle = self.pair.a.layer.connect(B_ADDR, 80, now=self.pair.now)
        self.a.every_handle.add(self.a.handle)
        self.a.sent.clear()
        self.a.received.clear()
        self.a.closed = False
        self.b.handle = None

    @rule(which=st.sampled_from("ab"), size=st.integers(1, 30_000))
    def send(self, which: str, size: int) -> None:
        end = self.end(which)
        if end.handle is None:
            return
        self.counter += 1
        data = bytes([self.counter & 0xFF]) * size
        taken = self.call(end.layer.send, end.handle, data, now=self.pair.now)
        if isinstance(taken, int):
            assert 0 <= taken <= size
            end.sent += data[:taken]

    @rule(which=st.sampled_from("ab"), limit=st.sampled_from([-1, 1, 1000]))
    def receive(self, which: str, limit: int) -> None:
        end = self.end(which)
        if end.handle is None:
            return
        data = self.call(end.layer.receive, end.handle, limit, now=self.pair.now)
        if isinstance(data, bytes):
            assert limit < 0 or len(data) <= limit
            end.received += data

    @rule(
        which=st.sampled_from("ab"),
        action=st.sampled_from(["shutdown", "shutdown", "close", "close", "abort"]),
        read_first=st.booleans(),
    )
    def finish(self, which: str, action: str, read_first: bool) -> None:
        end = self.end(which)
        if end.handle is None:
            return
        if read_first:
            self.receive(which, -1)
        self.call(getattr(end.layer, action), end.handle, now=self.pair.now)

    @rule(
        loss=st.sampled_from([0.0, 0.1, 0.5]),
        duplicate=st.sampled_from([0.0, 0.2]),
        reorder=st.sampled_from([0.0, 0.3]),
    )
    def impair(self, loss: float, duplicate: float, reorder: float) -> None:
        self.loss, self.duplicate, self.reorder = loss, duplicate, reorder

    @rule(
        duration=st.sampled_from([1 * MILLISECOND, 30 * MILLISECOND, 500 * MILLISECOND, 5 * SECOND])
    )
    def advance(self, duration: int) -> None:
        self.pair.run(self.pair.now + duration, on_step=self.sync_events)
        self.sync_events()

    @invariant()
    def reads_are_prefixes_of_writes(self) -> None:
        if self.a.handle is None or self.b.handle is None:
            return
        assert self.b.sent.startswith(self.a.received)
        assert self.a.sent.startswith(self.b.received)

    @invariant()
    def no_timer_in_the_past(self) -> None:
        for endpoint in (self.pair.a, self.pair.b):
            deadline = endpoint.timers.poll_at()
            assert deadline is None or deadline >= self.pair.now

    def teardown(self) -> None:
        self.loss = self.duplicate = self.reorder = 0.0
        closed: set[tuple[str, int]] = set()
        for _ in range(4):  # a handshake may complete (and be accepted) during teardown
            for name, end in (("a", self.a), ("b", self.b)):
                for handle in end.every_handle:
                    if (name, handle) not in closed:
                        closed.add((name, handle))
                        self.call(end.layer.receive, handle, now=self.pair.now)
                        self.call(end.layer.close, handle, now=self.pair.now)
            self.pair.run(self.pair.now + 30 * SECOND, on_step=self.sync_events)
            self.sync_events()
        assert self.pair.a.layer.connection_count() == 0
        assert self.pair.b.layer.connection_count() == 0
        assert self.pair.a.timers.poll_at() is None
        assert self.pair.b.timers.poll_at() is None


TcpApiMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
test_tcp_api_machine = TcpApiMachine.TestCase
