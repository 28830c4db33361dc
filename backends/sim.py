"""A deterministic network simulator: a virtual clock, lossy links, switches and pcap taps.

Theory of operation
-------------------
Hosts are sans-IO nodes (:class:`FrameNode`, which ``simtcp.Stack`` satisfies)
joined by point-to-point links or through learning switches. Each direction
of a link is an :class:`~simtcp.backends.impair.Impairment` with its own
:class:`LinkProfile` and its own random stream, derived from the simulator's
seed and the direction's name, so adding a link never changes the chances of
another and the same seed replays a run frame for frame.

Frames in flight sit in one heap of ``(arrive_at, sequence, direction, frame)``
tuples; the sequence number breaks ties in sending order. One step of the
simulation:

1. jumps the clock to the earliest of the next frame arrival and every node's
   ``poll_at()`` (never backwards; a deadline in the past fires now);
2. delivers every frame due by then, and fires ``handle_timer`` of every node
   whose deadline has come;
3. runs the application processes (callbacks that pop events and call the API);
4. drains every node's ``frames_to_send`` onto its links.

Cost: the simulator's own work is a few microseconds per frame
(``bench/bench_sim_transfer.py`` measures it alone). Frames are never copied
on their way (only corruption and GSO make new ones); heap entries are plain
tuples; a direction whose profile is FIFO (:attr:`LinkProfile.is_fifo`, the
common clean or merely lossy link) is scheduled by
:meth:`~simtcp.backends.impair.Impairment.arrival_at` without lists, drawing the same
random numbers as the general :meth:`~simtcp.backends.impair.Impairment.apply`; taps
cost nothing unless added. Each node is polled once per step (and once more
when a deadline is due): without a word from the node the simulator cannot
know its deadline did not move.

Scripted work (``call_at``) waits in a second heap and runs at the start of
the step at its instant, before that instant's frames are delivered. A fault
layer (``backends/faults.py``) sets two hooks, both None on the plain path:
``send_hook`` sees each frame a host sends, after the host's taps, and may
replace it; ``delivery_gate`` decides, for each frame at the end of its
direction, whether it is delivered. A host with egress queues
(``set_host_queue``, ``backends/egress.py``) feeds its link only while the
link's bottleneck has room, and is not drained while a queue is full.

Nothing here sleeps or reads the wall clock: time only moves when the
simulator jumps it, in integer microseconds. Output produced by API calls
made between runs (``stack.ping(..., now=sim.now)``) is drained at the start
of every ``step``, ``run_until`` and ``run_for``.

Pcap taps write in virtual time. A tap on a host interface records what the
host sends (when it sends it) and what it receives (when it arrives, after the
link's impairments). A tap on a link records what enters the link in both
directions, before impairments (losses included).

Offloads (DESIGN.md "Offload-ready"): a direction whose profile has ``gso``
behaves like an offloading NIC at its sending end: TCP segments larger than
the link's MTU are cut into MTU-sized frames and checksums are finished
(:func:`simtcp.backends.nic.nic_transmit`) before the frames meet the link taps and the
impairments, so a link tap shows wire frames while a host tap shows what the
host sent. A direction with ``gro`` merges, like Linux GRO, the frames that
arrive at its far end at the same instant, one after the other
(:func:`simtcp.backends.nic.gro_merge`); the host and its taps see the merged frames.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import BinaryIO, Protocol

from simtcp.backends.nic import gro_merge, nic_transmit
from simtcp.errors import SimtcpError
from simtcp.time import Duration, Instant
from simtcp.wire.pcap import PcapWriter

from .egress import EgressQueue
from .impair import Impairment, LinkProfile
from .switch import Switch

__all__ = [
    "FrameNode",
    "Link",
    "LinkProfile",
    "Simulator",
    "SimulationError",
    "SimulationStalled",
    "Switch",
]

SendHook = Callable[[str, str, bytes, Instant], "list[bytes] | None"]
"""``hook(host, interface, frame, now)`` sees every frame a host sends (after the host's
taps): None lets it go on unchanged; a list sends those frames instead (empty: consumed)."""

DeliveryGate = Callable[["_Direction", bytes, Instant], bool]
"""``gate(direction, frame, now)`` decides whether a frame that reached the end of a
direction is delivered (True) or consumed (False: dropped, or kept to deliver later)."""

Endpoint = tuple[str, str]
"""A host's interface: ``(host name, interface name)``."""

Process = Callable[[Instant], None]


class FrameNode(Protocol):
    """What the simulator drives: the core's contract (DESIGN.md "The core's contract")."""

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None: ...

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]: ...

    def poll_at(self) -> Instant | None: ...

    def handle_timer(self, *, now: Instant) -> None: ...


class SimulationError(SimtcpError):
    """Misuse of the simulator: unknown or duplicate names, an interface wired twice."""


class SimulationStalled(SimulationError):
    """Too many steps at one instant: a node keeps asking for a deadline that is already due."""


class _Port:
    """Where one direction of a link ends: a host's interface, or a switch port."""

    __slots__ = (
        "name",
        "node",
        "host",
        "interface",
        "taps",
        "outgoing",
        "switch",
        "index",
        "egress",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.node: FrameNode | None = None
        self.host = ""  # the host's name ("" for a switch port)
        self.interface = ""
        self.egress: EgressQueue | None = None
        self.taps: list[PcapWriter] = []
        self.outgoing: _Direction | None = None  # the direction leaving this port
        self.switch: Switch | None = None
        self.index = 0


class _Direction:
    """One direction of a link: its impairment, its far end and its taps."""

    __slots__ = ("name", "impairment", "target", "source", "link_taps", "arrived")

    def __init__(self, name: str, impairment: Impairment, target: _Port) -> None:
        self.name = name
        self.impairment = impairment
        self.target = target
        self.source: _Port | None = None  # where it starts (None: an injector)
        self.link_taps: list[PcapWriter] = []
        self.arrived = 0


class Link:
    """A point-to-point link (or a host's cable to a switch): two directions, ``ab`` and ``ba``."""

    __slots__ = ("name", "_ab", "_ba", "taps")

    def __init__(self, name: str, ab: _Direction, ba: _Direction) -> None:
        self.name = name
        self._ab = ab
        self._ba = ba
        self.taps: list[PcapWriter] = []
        ab.link_taps = self.taps
        ba.link_taps = self.taps

    @property
    def ab_name(self) -> str:
        return self._ab.name

    @property
    def ba_name(self) -> str:
        return self._ba.name

    @property
    def ab(self) -> Impairment:
        """The direction from the first endpoint given to ``connect`` to the second."""
        return self._ab.impairment

    @property
    def ba(self) -> Impairment:
        return self._ba.impairment

    def set_profile(self, ab: LinkProfile | None = None, ba: LinkProfile | None = None) -> None:
        """Change one or both directions mid-run (a link fault, a repair); None keeps one."""
        if ab is not None:
            self._ab.impairment.profile = ab
        if ba is not None:
            self._ba.impairment.profile = ba

    def stats(self) -> dict[str, dict[str, int]]:
        """Counters per direction, keyed by direction name; ``arrived`` counts frames that
        reached the far end (``delivered`` minus those still in flight)."""
        return {
            direction.name: {**direction.impairment.counters, "arrived": direction.arrived}
            for direction in (self._ab, self._ba)
        }


@dataclass(frozen=True, slots=True)
class InFlight:
    """A frame on its way: when it arrives, on which direction (``"a:eth0>b:eth0"``)."""

    arrive_at: Instant
    direction: str
    frame: bytes


class _Host:
    __slots__ = ("name", "node", "ports")

    def __init__(self, name: str, node: FrameNode) -> None:
        self.name = name
        self.node = node
        self.ports: dict[str, _Port] = {}


def _derived_rng(seed: int, name: str) -> random.Random:
    digest = hashlib.blake2b(f"simtcp-sim:{seed}:{name}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class Simulator:
    """Virtual time, hosts, links, switches, taps and application processes."""

    def __init__(self, seed: int = 0, *, max_steps_per_instant: int = 1_000_000) -> None:
        self.seed = seed
        self.now: Instant = 0
        """The virtual clock, in microseconds; it starts at 0 and only moves forward."""
        self.max_steps_per_instant = max_steps_per_instant
        self._heap: list[tuple[Instant, int, _Direction, bytes]] = []
        self._sequence = itertools.count()
        self._hosts: dict[str, _Host] = {}
        self._nodes: list[FrameNode] = []  # in the order added: polls and drains go in it
        self._node_ports: list[tuple[FrameNode, dict[str, _Port]]] = []
        self._switches: dict[str, Switch] = {}
        self._links: dict[str, Link] = {}
        self._processes: list[Process] = []
        self._injectors: dict[str, _Direction] = {}
        self._steps_at_now = 0
        self._earliest_deadline: Instant | None = None
        self._calls: list[tuple[Instant, int, Callable[[], None]]] = []
        self._blocked: set[int] = set()  # id() of nodes whose egress queue is full
        self.send_hook: SendHook | None = None
        self.delivery_gate: DeliveryGate | None = None
        self.counters = {"steps": 0, "frames_arrived": 0, "unattached": 0, "injected": 0}
        """``unattached`` counts frames a node sent on an interface wired to nothing."""

    # --- topology -----------------------------------------------------------
    def add_host(self, name: str, node: FrameNode) -> None:
        if name in self._hosts or name in self._switches:
            raise SimulationError(f"name {name!r} is already taken")
        host = _Host(name, node)
        self._hosts[name] = host
        self._nodes.append(node)
        self._node_ports.append((node, host.ports))

    def node(self, name: str) -> FrameNode:
        return self._host(name).node

    def add_switch(self, name: str, *, table_limit: int = 4096) -> Switch:
        if name in self._hosts or name in self._switches:
            raise SimulationError(f"name {name!r} is already taken")
        switch = Switch(name, table_limit=table_limit)
        self._switches[name] = switch
        return switch

    def connect(
        self,
        a: Endpoint,
        b: Endpoint,
        ab: LinkProfile | None = None,
        ba: LinkProfile | None = None,
    ) -> Link:
        """A point-to-point link between two host interfaces; ``ba`` defaults to ``ab``."""
        ab = ab if ab is not None else LinkProfile()
        port_a, port_b = self._free_port(a), self._free_port(b)
        return self._wire(port_a, port_b, ab, ba if ba is not None else ab)

    def connect_to_switch(
        self,
        switch: str,
        endpoint: Endpoint,
        profile: LinkProfile | None = None,
        back: LinkProfile | None = None,
    ) -> Link:
        """Cable ``endpoint`` to a new port of ``switch``: ``profile`` host to switch,
        ``back`` (default: the same) switch to host."""
        if switch not in self._switches:
            raise SimulationError(f"no switch named {switch!r}")
        the_switch = self._switches[switch]
        profile = profile if profile is not None else LinkProfile()
        port = self._free_port(endpoint)
        switch_port = _Port(f"{switch}[{len(the_switch.ports)}]")
        switch_port.switch = the_switch
        switch_port.index = len(the_switch.ports)
        link = self._wire(port, switch_port, profile, back if back is not None else profile)
        assert switch_port.outgoing is not None
        the_switch.ports.append(switch_port.outgoing)
        return link

    def add_pcap(self, target: Link | Endpoint, stream: BinaryIO | PcapWriter) -> PcapWriter:
        """Record frames in virtual time on a link or a host interface (see the module doc).

        ``stream`` is a binary file, or a :class:`~simtcp.wire.pcap.PcapWriter` (or a
        subclass that chooses what to record) to use as the tap."""
        writer = stream if isinstance(stream, PcapWriter) else PcapWriter(stream)
        if isinstance(target, Link):
            target.taps.append(writer)
        else:
            self._port(target).taps.append(writer)
        return writer

    def add_process(self, callback: Process) -> None:
        """Run ``callback(now)`` after every step (apps pop events and call the API there)."""
        self._processes.append(callback)

    def inject(self, endpoint: Endpoint, frame: bytes, *, delay: Duration = 0) -> None:
        """Deliver ``frame`` to a host interface ``delay`` from now, bypassing any link."""
        port = self._port(endpoint)
        direction = self._injectors.get(port.name)
        if direction is None:  # one per port: a perfect direction that only carries injections
            direction = _Direction(
                f"inject>{port.name}", Impairment(LinkProfile(), random.Random(0)), port
            )
            self._injectors[port.name] = direction
        self.counters["injected"] += 1
        heappush(self._heap, (self.now + delay, next(self._sequence), direction, frame))

    def call_at(self, at: Instant, callback: Callable[[], None]) -> None:
        """Run ``callback()`` at virtual time ``at`` (now, if that is past), before the
        frames due then are delivered; calls at one instant run in the order made."""
        heappush(self._calls, (max(at, self.now), next(self._sequence), callback))

    def remove_process(self, callback: Process) -> None:
        self._processes.remove(callback)

    def replace_node(self, name: str, node: FrameNode) -> FrameNode:
        """Put ``node`` in host ``name``'s place, on the same interfaces; returns the old one
        (a crash, a restart with a fresh stack, a paused process)."""
        host = self._host(name)
        old, host.node = host.node, node
        index = self._nodes.index(old)
        self._nodes[index] = node
        self._node_ports[index] = (node, host.ports)
        for port in host.ports.values():
            port.node = node
        self._blocked.discard(id(old))
        return old

    def set_host_queue(self, name: str, limit: int = 1000) -> None:
        """Give each interface of host ``name`` an egress queue (a qdisc of ``limit``
        frames, like ``txqueuelen``) in front of its link: see :mod:`.egress`."""
        host = self._host(name)
        for port in host.ports.values():
            port.egress = EgressQueue(limit)

    def clear_host_queue(self, name: str) -> None:
        """Forget what waits in host ``name``'s egress queues (the host crashed)."""
        for port in self._host(name).ports.values():
            if port.egress is not None:
                port.egress.frames.clear()

    def in_flight(self, link: Link | None = None) -> list[InFlight]:
        """Frames on their way (on ``link`` only, if given), in the order they arrive."""
        names = None if link is None else {link.ab_name, link.ba_name}
        return [
            InFlight(at, direction.name, frame)
            for at, _, direction, frame in sorted(self._heap, key=lambda entry: entry[:2])
            if names is None or direction.name in names
        ]

    def redeliver(self, direction: _Direction, frame: bytes, *, delay: Duration = 0) -> None:
        """Deliver ``frame`` at the far end of ``direction`` ``delay`` from now (a held
        frame released): it meets the delivery gate again."""
        heappush(self._heap, (self.now + delay, next(self._sequence), direction, frame))

    def transmit(self, endpoint: Endpoint, frame: bytes) -> None:
        """Send ``frame`` from a host interface now, as if the host had sent it, but past
        its taps and the send hook (a frame a fault rule delayed)."""
        port = self._port(endpoint)
        if port.outgoing is None:
            self.counters["unattached"] += 1
        elif port.egress is not None:
            self._enqueue_egress(port, frame, self.now)
        else:
            self._transmit(port.outgoing, frame, self.now)

    @property
    def links(self) -> dict[str, Link]:
        return dict(self._links)

    def link_stats(self) -> dict[str, dict[str, int]]:
        """Counters of every direction of every link, keyed by direction name."""
        result: dict[str, dict[str, int]] = {}
        for link in self._links.values():
            result.update(link.stats())
        return result

    @property
    def frames_in_flight(self) -> int:
        return len(self._heap)

    # --- running ------------------------------------------------------------
    def step(self) -> bool:
        """Drain pending output, then advance to the next arrival or deadline and handle it.

        Returns False (and leaves the clock alone) when nothing will ever happen.
        """
        self._drain(self.now)
        next_at = self._next_at()
        if next_at is None:
            return False
        self._advance(next_at)
        return True

    def run_until(self, condition: Callable[[], bool], *, timeout: Duration) -> bool:
        """Step until ``condition()`` holds (True) or ``timeout`` of virtual time passed
        (False, with the clock at the deadline). The condition is checked first."""
        deadline = self.now + timeout
        self._drain(self.now)
        nodes = self._nodes
        heap = self._heap
        calls = self._calls
        while not condition():
            # _next_at, inlined: this loop runs once per step.
            earliest: Instant | None = None
            for node in nodes:
                at = node.poll_at()
                if at is not None and (earliest is None or at < earliest):
                    earliest = at
            self._earliest_deadline = earliest
            next_at = (
                heap[0][0] if heap and (earliest is None or heap[0][0] < earliest) else (earliest)
            )
            if calls and (next_at is None or calls[0][0] < next_at):
                next_at = calls[0][0]
            if next_at is None or next_at > deadline:
                self.now = max(self.now, deadline)
                return False
            self._advance(next_at)
        return True

    def run_for(self, duration: Duration) -> None:
        """Run everything due within ``duration``; the clock ends at ``now + duration``."""
        self.run_until(lambda: False, timeout=duration)

    def _next_at(self) -> Instant | None:
        """The next instant anything happens; remembers the earliest node deadline."""
        earliest: Instant | None = None
        for node in self._nodes:
            deadline = node.poll_at()
            if deadline is not None and (earliest is None or deadline < earliest):
                earliest = deadline
        self._earliest_deadline = earliest
        heap = self._heap
        next_at = heap[0][0] if heap and (earliest is None or heap[0][0] < earliest) else earliest
        calls = self._calls
        if calls and (next_at is None or calls[0][0] < next_at):
            return calls[0][0]
        return next_at

    def _advance(self, next_at: Instant) -> None:
        """One step at ``next_at`` (or now, if that is in the past): the module doc's 1-4."""
        now = self.now
        if next_at > now:
            self.now = now = next_at
            self._steps_at_now = 0
        else:
            self._count_step_at_now()
        counters = self.counters
        counters["steps"] += 1
        calls = self._calls
        while calls and calls[0][0] <= now:
            heappop(calls)[2]()
        heap = self._heap
        gate = self.delivery_gate
        while heap and heap[0][0] <= now:
            _, _, direction, frame = heappop(heap)
            if gate is not None and not gate(direction, frame, now):
                continue
            direction.arrived += 1
            if direction.impairment.gro:
                self._arrive_gro(direction, frame, now)
                continue
            port = direction.target
            node = port.node
            if node is None:
                self._arrive(port, frame, now)
                continue
            counters["frames_arrived"] += 1  # _arrive, inlined for a host
            if port.taps:
                for tap in port.taps:
                    tap.write(now, frame)
            node.receive_frame(port.interface, frame, now=now)
        # A deadline armed while frames were delivered just now is not due yet
        # unless it is <= now; the next step (at this same instant) then fires it.
        earliest = self._earliest_deadline
        if earliest is not None and earliest <= now:
            for node in self._nodes:
                deadline = node.poll_at()
                if deadline is not None and deadline <= now:
                    node.handle_timer(now=now)
        for process in self._processes:
            process(now)
        self._drain(now)

    def _count_step_at_now(self) -> None:
        self._steps_at_now += 1
        if self._steps_at_now > self.max_steps_per_instant:
            raise SimulationStalled(
                f"more than {self.max_steps_per_instant} steps at t={self.now}us; "
                "a node's poll_at() stays due after handle_timer()"
            )

    def _arrive_gro(self, direction: _Direction, frame: bytes, now: Instant) -> None:
        """Merge ``frame`` with what else arrives on ``direction`` right now (GRO)."""
        heap, gate = self._heap, self.delivery_gate
        batch = [frame]
        while heap and heap[0][0] <= now and heap[0][2] is direction:
            frame = heappop(heap)[3]
            if gate is None or gate(direction, frame, now):
                batch.append(frame)
                direction.arrived += 1
        # GRO passes a lone frame through untouched: skip its checksum check.
        for merged in gro_merge(batch) if len(batch) > 1 else batch:
            self._arrive(direction.target, merged, now)

    def _arrive(self, port: _Port, frame: bytes, now: Instant) -> None:
        self.counters["frames_arrived"] += 1
        node = port.node
        if node is not None:
            for tap in port.taps:
                tap.write(now, frame)
            node.receive_frame(port.interface, frame, now=now)
            return
        switch = port.switch
        assert switch is not None
        for direction in switch.egress(port.index, frame):
            self._transmit(direction, frame, now)

    def _drain(self, now: Instant) -> None:
        heap = self._heap
        sequence = self._sequence
        blocked = self._blocked
        hook = self.send_hook
        for node, ports in self._node_ports:
            if blocked and id(node) in blocked:
                continue  # back-pressure: its output waits in the stack
            output = node.frames_to_send(now=now)
            if not output:
                continue
            for interface, frame in output:
                port = ports.get(interface)
                if port is None or port.outgoing is None:
                    self.counters["unattached"] += 1
                    continue
                direction = port.outgoing
                if port.taps:
                    for tap in port.taps:
                        tap.write(now, frame)
                if hook is not None or port.egress is not None:
                    self._send_slow(port, frame, now)
                    continue
                impairment = direction.impairment
                if impairment.gso:
                    self._transmit(direction, frame, now)
                    continue
                # _transmit_one, inlined: this runs for every frame sent.
                if direction.link_taps:
                    for tap in direction.link_taps:
                        tap.write(now, frame)
                if impairment.fifo:
                    arrive_at = impairment.arrival_at(len(frame), now)
                    if arrive_at >= 0:
                        heappush(heap, (arrive_at, next(sequence), direction, frame))
                    continue
                for arrive_at, copy in impairment.apply(frame, now):
                    heappush(heap, (arrive_at, next(sequence), direction, copy))

    def _send_slow(self, port: _Port, frame: bytes, now: Instant) -> None:
        """A host's frame when a send hook or an egress queue is in the way."""
        frames = [frame]
        if self.send_hook is not None:
            verdict = self.send_hook(port.host, port.interface, frame, now)
            if verdict is not None:
                frames = verdict
        direction = port.outgoing
        assert direction is not None
        for each in frames:
            if port.egress is not None:
                self._enqueue_egress(port, each, now)
            else:
                self._transmit(direction, each, now)

    def _enqueue_egress(self, port: _Port, frame: bytes, now: Instant) -> None:
        egress = port.egress
        assert egress is not None
        egress.frames.append(frame)
        self._pump_egress(port)

    def _pump_egress(self, port: _Port) -> None:
        """Move frames from a host's egress queue onto its link while the link's queue
        has room; wake up when it will have; block the host's output while full."""
        egress, direction, now = port.egress, port.outgoing, self.now
        assert egress is not None and direction is not None
        frames = egress.frames
        impairment = direction.impairment
        while frames:
            room_at = impairment.room_at(len(frames[0]), now)
            if room_at > now:
                if egress.wake_at is None or egress.wake_at > room_at:
                    egress.wake_at = room_at
                    self.call_at(room_at, functools.partial(self._wake_egress, port, room_at))
                break
            self._transmit(direction, frames.popleft(), now)
            egress.counters["sent"] += 1
        node = port.node
        assert node is not None
        if len(frames) >= egress.limit:
            if id(node) not in self._blocked:
                egress.counters["blocked"] += 1
            self._blocked.add(id(node))
        else:
            self._blocked.discard(id(node))

    def _wake_egress(self, port: _Port, at: Instant) -> None:
        egress = port.egress
        if egress is None or egress.wake_at != at:
            return  # a newer wake-up replaced this one
        egress.wake_at = None
        self._pump_egress(port)

    def _transmit(self, direction: _Direction, frame: bytes, now: Instant) -> None:
        impairment = direction.impairment
        if impairment.gso:
            for wire_frame in nic_transmit(frame, impairment.profile.mtu or 1500):
                self._transmit_one(direction, wire_frame, now)
            return
        self._transmit_one(direction, frame, now)

    def _transmit_one(self, direction: _Direction, frame: bytes, now: Instant) -> None:
        for tap in direction.link_taps:
            tap.write(now, frame)
        impairment = direction.impairment
        heap = self._heap
        sequence = self._sequence
        if impairment.fifo:
            arrive_at = impairment.arrival_at(len(frame), now)
            if arrive_at >= 0:
                heappush(heap, (arrive_at, next(sequence), direction, frame))
            return
        for arrive_at, copy in impairment.apply(frame, now):
            heappush(heap, (arrive_at, next(sequence), direction, copy))

    # --- helpers ------------------------------------------------------------
    def _host(self, name: str) -> _Host:
        host = self._hosts.get(name)
        if host is None:
            raise SimulationError(f"no host named {name!r}")
        return host

    def _port(self, endpoint: Endpoint) -> _Port:
        host_name, interface = endpoint
        host = self._host(host_name)
        port = host.ports.get(interface)
        if port is None:
            port = _Port(f"{host_name}:{interface}")
            port.node = host.node
            port.host = host_name
            port.interface = interface
            host.ports[interface] = port
        return port

    def _free_port(self, endpoint: Endpoint) -> _Port:
        port = self._port(endpoint)
        if port.outgoing is not None:
            raise SimulationError(f"{port.name} is already connected")
        return port

    def _wire(self, a: _Port, b: _Port, ab: LinkProfile, ba: LinkProfile) -> Link:
        name_ab, name_ba = f"{a.name}>{b.name}", f"{b.name}>{a.name}"
        forward = _Direction(name_ab, Impairment(ab, _derived_rng(self.seed, name_ab)), b)
        backward = _Direction(name_ba, Impairment(ba, _derived_rng(self.seed, name_ba)), a)
        a.outgoing, b.outgoing = forward, backward
        forward.source, backward.source = a, b
        link = Link(f"{a.name}<>{b.name}", forward, backward)
        self._links[link.name] = link
        return link
