"""Asyncio in the simulator's virtual time: a loop that jumps time instead of sleeping.

Theory of operation
-------------------
:class:`VirtualTimeLoop` is asyncio's own selector event loop with two things
replaced:

- ``time()`` is the simulator's clock (``Simulator.now`` in seconds), so
  ``asyncio.sleep``, ``wait_for``, ``call_at`` and the drivers' timers all run
  in virtual time;
- its selector never blocks. Where asyncio would wait ``timeout`` seconds for
  I/O, the selector runs the simulator instead: ``run_until`` a frame arrives
  at one of the loop's stacks, for at most ``timeout`` (the loop's next timer),
  so the clock jumps straight to the next arrival or timer. Real file
  descriptors (the loop's self-pipe) are only polled, never waited on.

Each stack joins the simulator as a host through a :class:`SimLink`, a
``FrameNode`` whose ``poll_at`` is always None: its stack's deadline lives in
its driver's one ``call_at`` timer, which the loop's own timeout covers. A
frame arriving at a ``SimLink`` is handed to the driver by a ``call_soon``
callback, as a TAP fd's reader callback would be; output waits in the link
until the simulator drains it at the start of its next run, at the same
virtual instant. Plain stacks (``sim.add_host``) run beside them unchanged.

Nothing sleeps on the wall clock and nothing is random beyond the seeds, so
an asyncio program over simulated links replays exactly. When every task
waits, no timer is scheduled and the simulator has nothing left to do, the
program can never make progress: the loop raises :class:`VirtualTimeDeadlock`
instead of hanging. Threads (``run_in_executor``) are not waited for.

Example::

    sim = Simulator(seed=1)
    loop = VirtualTimeLoop(sim)
    server_net = loop.attach("server", server_stack)
    client_net = loop.attach("client", client_stack)
    sim.connect(("server", "eth0"), ("client", "eth0"), LinkProfile(loss=0.02))
    loop.run(main(server_net, client_net))
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import math
import selectors
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from simtcp.aio.driver import AioStack, EventHook
from simtcp.aio.loop import NetworkLoopMixin, run_with
from simtcp.aio.network import Host, Network, add_loopback
from simtcp.config import Ip6Config, StackConfig
from simtcp.stack import Stack
from simtcp.time import Instant

from .impair import LinkProfile
from .sim import Link, Simulator

_T = TypeVar("_T")


class VirtualTimeDeadlock(RuntimeError):
    """Every task waits, no timer is scheduled and the simulator is idle: nothing can happen."""


class SimLink:
    """A driver's stack as a simulator host; the stack's timer stays with the driver."""

    def __init__(self, loop: VirtualTimeLoop, name: str) -> None:
        self.name = name
        self._loop = loop
        self._driver: AioStack | None = None
        self._inbox: list[tuple[str, bytes]] = []
        self._outbox: list[tuple[str, bytes]] = []
        self._delivery: asyncio.Handle | None = None
        loop.simulator.add_host(name, self)

    # --- FrameNode (called by the simulator) -----------------------------------------

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        if self._driver is None:
            return
        self._inbox.append((interface, bytes(frame)))
        self._loop.note_arrival()
        if self._delivery is None:
            self._delivery = self._loop.call_soon(self._deliver)

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        output, self._outbox = self._outbox, []
        return output

    def poll_at(self) -> Instant | None:
        return None  # the driver's call_at timer is the stack's deadline

    def handle_timer(self, *, now: Instant) -> None:
        pass

    # --- FrameLink (called by the driver) --------------------------------------------

    def start(self, driver: AioStack) -> None:
        self._driver = driver

    def send(self, frames: list[tuple[str, bytes]]) -> None:
        self._outbox.extend(frames)

    def close(self) -> None:
        self._driver = None
        self._inbox.clear()
        if self._delivery is not None:
            self._delivery.cancel()
            self._delivery = None

    def _deliver(self) -> None:
        self._delivery = None
        inbox, self._inbox = self._inbox, []
        for interface, group in itertools.groupby(inbox, key=lambda item: item[0]):
            driver = self._driver
            if driver is None:
                return
            driver.frames_received(interface, [frame for _, frame in group])


def _microseconds(timeout: float) -> int:
    """A select timeout as whole microseconds, never short of it by more than 1 ns."""
    if timeout <= 0:
        return 0
    return max(1, math.ceil(timeout * 1_000_000 - 1e-3))


class _VirtualSelector(selectors.BaseSelector):
    """Polls real fds without blocking; where asyncio would wait, runs the simulator."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._loop = loop
        self._real = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready:
            return ready
        self._loop.advance(timeout)
        return self._real.select(0)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop whose clock is a :class:`simtcp.backends.sim.Simulator`'s virtual time."""

    def __init__(self, simulator: Simulator | None = None) -> None:
        self.simulator = simulator if simulator is not None else Simulator()
        self._arrived = False
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self.simulator.now / 1_000_000

    def attach(self, name: str, stack: Stack, *, on_event: EventHook | None = None) -> AioStack:
        """Add ``stack`` to the simulator as host ``name``, driven by this loop."""
        return AioStack(stack, SimLink(self, name), loop=self, on_event=on_event)

    def note_arrival(self) -> None:
        """A frame reached one of our stacks: the idle wait ends at this instant."""
        self._arrived = True

    def advance(self, timeout: float | None) -> None:
        """The idle wait: run the simulator until an arrival, for at most ``timeout`` seconds."""
        simulator = self.simulator
        self._arrived = False
        if timeout is None:
            while not self._arrived:
                if not simulator.step():
                    waiting = sorted(repr(task) for task in asyncio.all_tasks(self))
                    raise VirtualTimeDeadlock(
                        f"at t={simulator.now}us every task waits, no timer is scheduled "
                        "and no frame is in flight: nothing can ever happen; waiting: "
                        + ("; ".join(waiting) or "no task")
                    )
            return
        simulator.run_until(lambda: self._arrived, timeout=_microseconds(timeout))

    def run(self, main: Coroutine[Any, Any, _T]) -> _T:
        """``asyncio.run`` for this loop: run ``main``, cancel what is left, close the loop.

        The simulator and the stacks outlive the loop, for inspection.
        """
        try:
            return self.run_until_complete(main)
        finally:
            try:
                pending = [task for task in asyncio.all_tasks(self) if not task.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    self.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.run_until_complete(self.shutdown_asyncgens())
            finally:
                self.close()


def attach(stack: Stack, name: str, *, on_event: EventHook | None = None) -> AioStack:
    """Attach ``stack`` as host ``name`` to the running :class:`VirtualTimeLoop`'s simulator."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualTimeLoop):
        raise RuntimeError("attach() needs a running VirtualTimeLoop")
    return loop.attach(name, stack, on_event=on_event)


class SimulatedLoop(NetworkLoopMixin, VirtualTimeLoop):  # type: ignore[misc]
    """A virtual-time loop whose networking is a :class:`SimNetwork`'s hosts."""

    def __init__(self, network: SimNetwork) -> None:
        VirtualTimeLoop.__init__(self, network.simulator)
        self._simtcp_setup(network)


def _run_due_timers(stack: Stack) -> None:
    """What is due at time 0 (DAD that is off makes addresses usable at once)."""
    due = stack.poll_at()
    while due is not None and due <= 0:
        stack.handle_timer(now=0)
        due = stack.poll_at()


class SimNetwork(Network):
    """Simulated hosts on one switch, in virtual time; asyncio programs run on them unchanged.

    Each :meth:`add_host` makes a stack (seeded from the network's seed and the
    host's index) with ``eth0`` at its address and ``lo`` at 127.0.0.1/8,
    cabled to the switch with its own :class:`LinkProfile` (both directions).
    Every host's ``lo`` also has ::1. With ``prefix6`` (``"2001:db8::/64"``) every
    host is dual-stack: ``eth0`` also gets the prefix's next IPv6 address, and its
    name resolves to both families. IPv6 addresses skip DAD
    (``Ip6Config(dad_transmits=0)`` unless ``config`` says otherwise), so a program
    may use them, ::1 too, at virtual time 0.
    :meth:`loop_factory` is for ``asyncio.Runner(loop_factory=net.loop_factory)``;
    :meth:`run` is that in one call. A network runs one loop in its life.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        prefix: str = "10.0.0.0/24",
        prefix6: str | None = None,
        prefer_ipv6: bool = False,
    ) -> None:
        super().__init__(prefer_ipv6=prefer_ipv6)
        self.seed = seed
        self.simulator = Simulator(seed)
        self._prefix = ipaddress.IPv4Network(prefix)
        self._prefix6 = ipaddress.IPv6Network(prefix6) if prefix6 else None
        self._profiles: dict[str, LinkProfile] = {}
        self.links: dict[str, Link] = {}
        self.loop: SimulatedLoop | None = None

    def add_host(
        self,
        name: str,
        address: str | None = None,
        *,
        address6: str | None = None,
        profile: LinkProfile | None = None,
        config: StackConfig | None = None,
    ) -> Host:
        """A host named ``name`` at ``address`` (default: the next address of the prefix),
        and at ``address6`` (default: the next of ``prefix6``, if the network has one)."""
        if self.loop is not None:
            raise RuntimeError("add hosts before the loop starts")
        index = len(self.hosts) + 1
        if address is None:
            address = str(self._prefix.network_address + index)
        prefix6 = self._prefix6
        if address6 is None and prefix6 is not None:
            address6 = str(prefix6.network_address + index)
        mac = f"02:00:00:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}"
        if config is None:
            config = StackConfig(seed=self.seed * 1000 + index, ip6=Ip6Config(dad_transmits=0))
        stack = Stack(config)
        stack.add_interface("eth0", mac=mac)
        stack.add_address("eth0", f"{address}/{self._prefix.prefixlen}")
        addresses = [address, "127.0.0.1", "::1"]
        if address6 is not None:
            length = prefix6.prefixlen if prefix6 is not None else 64
            stack.add_address("eth0", f"{address6}/{length}")
            addresses[1:1] = [address6]
        add_loopback(stack, ipv6=True)
        _run_due_timers(stack)
        self._profiles[name] = profile or LinkProfile()
        return self.register(Host(name, stack, addresses))

    def loop_factory(self) -> SimulatedLoop:
        """A new :class:`SimulatedLoop` driving every host (for ``asyncio.Runner``)."""
        if self.loop is not None:
            raise RuntimeError("this SimNetwork already ran a loop; make a new network")
        loop = SimulatedLoop(self)
        self.loop = loop
        self.simulator.add_switch("switch")
        for name, host in self.hosts.items():
            host.driver = loop.attach(name, host.stack)
            self.links[name] = self.simulator.connect_to_switch(
                "switch", (name, "eth0"), self._profiles[name]
            )
        return loop

    def run(self, main: Coroutine[Any, Any, _T], *, host: str | None = None) -> _T:
        """Run ``main`` to completion in virtual time (on ``host`` when given)."""
        if host is None:
            result: _T = run_with(self.loop_factory, main)
            return result
        with self.host(host):
            result = run_with(self.loop_factory, main)
            return result


def run(
    main: Coroutine[Any, Any, _T],
    network: SimNetwork,
    *,
    host: str | None = None,
) -> _T:
    """``asyncio.run`` on a simulated network, on every supported Python (3.11+)."""
    return network.run(main, host=host)


__all__ = [
    "SimLink",
    "SimNetwork",
    "SimulatedLoop",
    "VirtualTimeDeadlock",
    "VirtualTimeLoop",
    "attach",
    "run",
]
