"""An in-memory harness for the TCP engine: fake hosts and a link with test-controlled faults.

No simulator and no Stack: a :class:`FakeHost` implements the ``TcpHost``
boundary, records every segment and event, and (by default) passes segments
through ``build()``/``parse()`` so the engine meets real wire bytes. A
:class:`Pair` joins two layers with a one-way delay, and a ``fault`` callback
decides, segment by segment, to drop, delay or duplicate. Time only moves
when :meth:`Pair.run` jumps it to the next arrival or deadline.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address

from simtcp.events import Event
from simtcp.link import InterfaceOffload
from simtcp.rng import SeededRandom
from simtcp.stats import Stats
from simtcp.tcp import TcpConfig, TcpLayer
from simtcp.time import MILLISECOND
from simtcp.timers import TimerHeap
from simtcp.wire.address import Address
from simtcp.wire.tcp import TcpSegment

A_ADDR = 0x0A000001  # 10.0.0.1
B_ADDR = 0x0A000002  # 10.0.0.2
C_ADDR = 0x0A000003  # 10.0.0.3 (a third party, for segments to nothing)
A6_ADDR = IPv6Address("2001:db8::a")
B6_ADDR = IPv6Address("2001:db8::b")


class FakeHost:
    """The TcpHost boundary, recording what the layer does."""

    def __init__(
        self,
        address: Address,
        *,
        mtu: int = 1500,
        wire: bool = True,
        routable: bool = True,
        max_segment: int = 0,
    ) -> None:
        self.address = address
        self.mtu = mtu
        self.max_segment = max_segment
        """The link's TSO limit (InterfaceOffload.max_segment); 0: no offload."""
        self.wire = wire
        self.routable = routable
        self.stats = Stats()
        self.sent: list[tuple[Address, Address, TcpSegment]] = []
        self.events: list[Event] = []

    def send_tcp(
        self, source: Address, destination: Address, segment: TcpSegment, *, now: int
    ) -> None:
        if self.wire:
            if isinstance(source, IPv6Address) and isinstance(destination, IPv6Address):
                raw = segment.build_ipv6(source, destination)
                segment = TcpSegment.parse_ipv6(raw, source=source, destination=destination)
            else:
                assert isinstance(source, int) and isinstance(destination, int)
                raw = segment.build(source, destination)
                segment = TcpSegment.parse(raw, source=source, destination=destination)
        self.sent.append((source, destination, segment))

    def route_source(self, destination: Address) -> tuple[Address, int] | None:
        if not self.routable or isinstance(destination, IPv6Address) != isinstance(
            self.address, IPv6Address
        ):
            return None
        return (self.address, self.mtu)

    def route_offload(self, destination: Address) -> InterfaceOffload:
        if not self.routable or destination == self.address:
            return InterfaceOffload()
        return InterfaceOffload(tx_checksum=bool(self.max_segment), max_segment=self.max_segment)

    def is_local_address(self, address: Address) -> bool:
        return address == self.address

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def take_sent(self) -> list[TcpSegment]:
        sent = [segment for _, _, segment in self.sent]
        self.sent.clear()
        return sent

    def take_events(self) -> list[Event]:
        events = list(self.events)
        self.events.clear()
        return events


class Endpoint:
    """One TcpLayer with its host, timer heap and seed."""

    def __init__(
        self,
        address: Address,
        config: TcpConfig | None = None,
        *,
        seed: int = 1,
        mtu: int = 1500,
        wire: bool = True,
        max_segment: int = 0,
    ) -> None:
        self.host = FakeHost(address, mtu=mtu, wire=wire, max_segment=max_segment)
        self.timers = TimerHeap()
        self.layer = TcpLayer(
            config or TcpConfig(), host=self.host, timers=self.timers, rng=SeededRandom(seed)
        )

    @property
    def address(self) -> Address:
        return self.host.address

    def receive(self, segment: TcpSegment, *, source: Address, now: int) -> None:
        self.layer.segment_received(source, self.address, segment, now=now)

    def fire_timers(self, now: int) -> None:
        self.timers.run_due(now)


Fault = Callable[[TcpSegment, Address], list[int]]
"""Given a segment and the sender's address: extra delays (us) of each copy to deliver."""


def no_fault(segment: TcpSegment, sender: Address) -> list[int]:
    return [0]


@dataclass
class Pair:
    """Two endpoints joined by a link with ``delay`` each way and a fault callback."""

    a: Endpoint
    b: Endpoint
    delay: int = 10 * MILLISECOND
    fault: Fault = no_fault
    now: int = 0
    log: list[tuple[int, Address, TcpSegment]] = field(default_factory=list)
    _queue: list[tuple[int, int, Address, TcpSegment]] = field(default_factory=list)
    _order: itertools.count[int] = field(default_factory=itertools.count)

    def _collect(self) -> None:
        for endpoint, peer in ((self.a, self.b), (self.b, self.a)):
            for source, destination, segment in endpoint.host.sent:
                self.log.append((self.now, source, segment))
                if destination != peer.address:
                    continue
                for extra in self.fault(segment, source):
                    heapq.heappush(
                        self._queue,
                        (self.now + self.delay + extra, next(self._order), destination, segment),
                    )
            endpoint.host.sent.clear()

    def next_time(self) -> int | None:
        times = [t for t in (self.a.timers.poll_at(), self.b.timers.poll_at()) if t is not None]
        if self._queue:
            times.append(self._queue[0][0])
        return min(times) if times else None

    def step(self, until: int) -> bool:
        """Advance to the next arrival or deadline (at most ``until``); False if none."""
        self._collect()
        when = self.next_time()
        if when is None or when > until:
            self.now = max(self.now, until)
            return False
        self.now = max(self.now, when)
        while self._queue and self._queue[0][0] <= self.now:
            _, _, destination, segment = heapq.heappop(self._queue)
            target, other = (self.a, self.b) if destination == self.a.address else (self.b, self.a)
            target.receive(segment, source=other.address, now=self.now)
            self._collect()
        self.a.fire_timers(self.now)
        self.b.fire_timers(self.now)
        self._collect()
        return True

    def run(
        self,
        until: int,
        *,
        on_step: Callable[[], None] | None = None,
        stop: Callable[[], bool] | None = None,
        max_steps: int = 1_000_000,
    ) -> None:
        """Run until virtual time ``until``, or ``stop()`` holds, calling ``on_step`` each step."""
        for _ in range(max_steps):
            if stop is not None and stop():
                return
            if not self.step(until):
                return
            if on_step is not None:
                on_step()
        raise AssertionError("harness did not settle within max_steps")

    def run_for(self, duration: int, **kwargs: object) -> None:
        self.run(self.now + duration, **kwargs)  # type: ignore[arg-type]


def make_pair(
    config_a: TcpConfig | None = None,
    config_b: TcpConfig | None = None,
    *,
    seed: int = 1,
    delay: int = 10 * MILLISECOND,
    fault: Fault = no_fault,
    wire: bool = True,
    max_segment: int = 0,
    ipv6: bool = False,
    mtu: int = 1500,
) -> Pair:
    """Two endpoints, 10.0.0.1 and 10.0.0.2 (``ipv6``: 2001:db8::a and 2001:db8::b)."""
    a, b = (A6_ADDR, B6_ADDR) if ipv6 else (A_ADDR, B_ADDR)
    return Pair(
        Endpoint(a, config_a, seed=seed, wire=wire, max_segment=max_segment, mtu=mtu),
        Endpoint(b, config_b, seed=seed + 1, wire=wire, max_segment=max_segment, mtu=mtu),
        delay=delay,
        fault=fault,
    )
