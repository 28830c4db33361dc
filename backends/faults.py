"""Scripted faults on a simulated network: partitions, held frames, crashes, fault rules.

Theory of operation
-------------------
A :class:`FaultNet` sits on a :class:`~simtcp.backends.sim.Simulator` and
knows its hosts by name, each with its IPv4 addresses (turmoil's shape: a
host is a name with addresses, and a test breaks, holds and releases the
traffic between names). Every action runs at once when called, or later
in virtual time through :meth:`FaultNet.at`, so "partition the primary from
the replicas for 10 s" is two lines and replays from the seed.

Where a frame is judged:

- **On delivery** (the simulator's delivery gate): a frame reaching a host
  interface is dropped while a partition separates its origin host from
  that host, or while its link direction is down; it is kept while its link
  or its origin or destination host is held, and delivered again, in order
  or in a seeded shuffle, at :meth:`FaultNet.release`. Frames already in
  flight when a partition starts are judged when they arrive, like a cable
  cut. The origin is the host owning the IPv4 (or ARP sender) source
  address, so a partition holds across routers; a frame from an unknown
  address is judged by the host that put it on the link.
- **On send** (the simulator's send hook): :class:`FaultRule` objects, plain
  data, match frames by host pair, protocol, port, TCP flags or a predicate
  over a :class:`PacketView`, and drop, delay, duplicate, corrupt or hold
  the frames they match; :meth:`FaultNet.on_send` callbacks see every frame.

A **crash** puts a dead node in the host's place: its stack, its queued
output and its application processes are gone, and frames to it vanish (the
peer sees what a real crash gives: silence, then a timeout, or a reset from
the restarted host). A **restart** builds a fresh stack with the host's
factory and runs its start function again. A **pause** stops the host's
timers and processes and parks the frames that reach it until **resume**.

Neither hook is installed while no fault needs it, so a run without faults
takes the simulator's plain path and replays exactly as before.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simtcp.errors import ConfigError
from simtcp.time import Duration, Instant
from simtcp.wire.ipv4 import ip_from_str, ip_to_str

from .impair import LinkProfile, flip_random_bit
from .sim import FrameNode, Link, SimulationError, Simulator

if TYPE_CHECKING:
    from .sim import _Direction

__all__ = [
    "ACTIONS",
    "FaultNet",
    "FaultRule",
    "HostHandle",
    "PacketView",
    "Partition",
    "view_packet",
]

ACTIONS = ("drop", "delay", "duplicate", "corrupt", "hold")
_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp"}
_FLAG_LETTERS = "FSRPAUEC"  # bit 0 (FIN) upwards, RFC 9293 §3.1 and RFC 3168 §6.1


def _flag_letters(flags: int) -> str:
    return "".join(letter for bit, letter in enumerate(_FLAG_LETTERS) if flags >> bit & 1)


@dataclass(frozen=True, slots=True)
class PacketView:
    """What a fault rule sees of a frame: parsed headers, no payload copy."""

    protocol: str  # "tcp", "udp", "icmp", "arp", "ipv4" (other), "ethernet" (other)
    source: str = ""
    destination: str = ""
    source_port: int = 0
    destination_port: int = 0
    flags: str = ""  # TCP flags as letters, e.g. "SA"
    seq: int = 0
    ack: int = 0
    payload_length: int = 0


def view_packet(frame: bytes) -> PacketView:
    """Parse the headers of an Ethernet frame; never raises (a short frame is ``ethernet``)."""
    if len(frame) < 14:
        return PacketView("ethernet")
    ethertype = frame[12] << 8 | frame[13]
    if ethertype == 0x0806 and len(frame) >= 42:
        return PacketView("arp", ip_to_str(_u32(frame, 28)), ip_to_str(_u32(frame, 38)))
    if ethertype != 0x0800 or len(frame) < 34:
        return PacketView("ethernet")
    header_length = (frame[14] & 0x0F) * 4
    total_length = frame[16] << 8 | frame[17]
    source, destination = ip_to_str(_u32(frame, 26)), ip_to_str(_u32(frame, 30))
    protocol = _PROTOCOLS.get(frame[23], "ipv4")
    start = 14 + header_length
    if protocol == "tcp" and len(frame) >= start + 20:
        ports_seq_ack = struct.unpack_from("!HHII", frame, start)
        offset = (frame[start + 12] >> 4) * 4
        return PacketView(
            "tcp",
            source,
            destination,
            ports_seq_ack[0],
            ports_seq_ack[1],
            _flag_letters(frame[start + 13]),
            ports_seq_ack[2],
            ports_seq_ack[3],
            max(0, total_length - header_length - offset),
        )
    if protocol == "udp" and len(frame) >= start + 8:
        ports = struct.unpack_from("!HH", frame, start)
        return PacketView("udp", source, destination, ports[0], ports[1], "", 0, 0, 0)
    return PacketView(protocol, source, destination)


def _u32(frame: bytes, offset: int) -> int:
    value: int = struct.unpack_from("!I", frame, offset)[0]
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultRule:
    """Which frames (every field that is set must match) and what to do with them."""

    action: str
    """One of :data:`ACTIONS`."""
    source: str | None = None
    """The sending host's name."""
    destination: str | None = None
    """The host owning the destination address."""
    protocol: str | None = None
    """``tcp``, ``udp``, ``icmp`` or ``arp``."""
    port: int | None = None
    """Either port (source or destination) of a TCP or UDP frame."""
    flags: str = ""
    """TCP flags that must all be set, e.g. ``"SA"`` (SYN-ACK), ``"F"`` (any FIN)."""
    not_flags: str = ""
    """TCP flags that must all be clear, e.g. ``flags="S", not_flags="A"``: a bare SYN."""
    predicate: Callable[[PacketView], bool] | None = None
    """Any further test over the parsed frame."""
    nth: int | None = None
    """Act only on the nth matching frame (1-based); None: on every one."""
    delay: Duration = 0
    """For ``delay``: how long the frame waits before it enters its link."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"fault action must be one of {', '.join(ACTIONS)}")
        for letter in self.flags + self.not_flags:
            if letter not in _FLAG_LETTERS:
                raise ConfigError(f"unknown TCP flag {letter!r} (use FSRPAUEC)")
        if self.nth is not None and self.nth < 1:
            raise ConfigError("FaultRule.nth counts from 1")
        if self.delay < 0:
            raise ConfigError("FaultRule.delay must not be negative")

    def matches(self, source: str, destination: str, packet: PacketView) -> bool:
        if self.source is not None and self.source != source:
            return False
        if self.destination is not None and self.destination != destination:
            return False
        if self.protocol is not None and self.protocol != packet.protocol:
            return False
        if self.port is not None and self.port not in (packet.source_port, packet.destination_port):
            return False
        if self.flags or self.not_flags:
            if packet.protocol != "tcp":
                return False
            if any(letter not in packet.flags for letter in self.flags):
                return False
            if any(letter in packet.flags for letter in self.not_flags):
                return False
        return self.predicate is None or self.predicate(packet)


class _RuleState:
    __slots__ = ("rule", "matched", "applied")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.matched = 0
        self.applied = 0


class HostHandle:
    """A named host of a :class:`FaultNet`: its addresses, its current node, its processes."""

    def __init__(
        self,
        net: FaultNet,
        name: str,
        addresses: tuple[str, ...],
        factory: Callable[[], FrameNode] | None,
        start: Callable[[HostHandle], None] | None,
    ) -> None:
        self.net = net
        self.name = name
        self.addresses = addresses
        self.factory = factory
        self.start = start
        self.state = "up"  # "up", "paused" or "down"
        self.generation = 0  # bumped by each crash: a restarted host's processes are new
        self.node: FrameNode = _DeadNode()
        self._processes: list[Callable[[Instant], None]] = []

    def add_process(self, callback: Callable[[Instant], None]) -> None:
        """Run ``callback(now)`` after every step while the host is up (not paused, not
        crashed); a crash removes it."""

        def process(now: Instant) -> None:
            if self.state == "up":
                callback(now)

        self._processes.append(process)
        self.net.sim.add_process(process)

    def _drop_processes(self) -> None:
        for process in self._processes:
            self.net.sim.remove_process(process)
        self._processes.clear()


class _DeadNode:
    """A crashed host: takes frames and does nothing."""

    def __init__(self) -> None:
        self.dropped = 0

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        self.dropped += 1

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        return []

    def poll_at(self) -> Instant | None:
        return None

    def handle_timer(self, *, now: Instant) -> None:
        return None


class _PausedNode(_DeadNode):
    """A stalled host: no timers, no output; what reaches it waits for the resume."""

    def __init__(self, inner: FrameNode) -> None:
        super().__init__()
        self.inner = inner
        self.parked: list[tuple[str, bytes]] = []

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: Instant) -> None:
        self.parked.append((interface, bytes(frame)))


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition: the (origin, destination) host pairs it cuts; give it to ``repair``."""

    blocked: frozenset[tuple[str, str]]


def _rng(seed: int, name: str) -> random.Random:
    digest = hashlib.blake2b(f"simtcp-faults:{seed}:{name}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class FaultNet:
    """Named hosts with addresses on a :class:`Simulator`, and the faults scripted on them."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.hosts: dict[str, HostHandle] = {}
        self._owner: dict[int, str] = {}  # IPv4 address -> host name
        self._partitions: list[Partition] = []
        self._blocked: set[tuple[str, str]] = set()
        self._down: set[str] = set()  # direction names
        self._held_links: set[str] = set()  # direction names
        self._held_hosts: set[str] = set()
        self._held: list[tuple[_Direction | None, tuple[str, str] | None, bytes]] = []
        self._rules: list[_RuleState] = []
        self._watchers: list[Callable[[str, str, bytes, Instant], None]] = []
        self._releases = 0
        self._corrupt_rng = _rng(sim.seed, "corrupt")
        self.counters = {"partitioned": 0, "down": 0, "held": 0, "released": 0, "rule_drops": 0}

    # --- hosts --------------------------------------------------------------
    def add_host(
        self,
        name: str,
        factory: Callable[[], FrameNode],
        *,
        addresses: Iterable[str] = (),
        start: Callable[[HostHandle], None] | None = None,
    ) -> HostHandle:
        """Build a host with ``factory()``, add it to the simulator, run ``start(handle)``
        (which adds the host's processes). A restart calls both again."""
        host = self.adopt(name, addresses, factory=factory, start=start, add=True)
        if start is not None:
            start(host)
        return host

    def adopt(
        self,
        name: str,
        addresses: Iterable[str] = (),
        *,
        factory: Callable[[], FrameNode] | None = None,
        start: Callable[[HostHandle], None] | None = None,
        add: bool = False,
    ) -> HostHandle:
        """Know host ``name`` (added to the simulator already, unless ``add``) by name and
        addresses; without a ``factory`` it can crash but not restart."""
        if name in self.hosts:
            raise SimulationError(f"host {name!r} is already known")
        clean = tuple(address.split("/")[0] for address in addresses)
        for address in clean:
            number = ip_from_str(address)
            if number in self._owner:
                raise SimulationError(f"address {address} belongs to {self._owner[number]!r}")
        host = HostHandle(self, name, clean, factory, start)
        if add:
            assert factory is not None
            host.node = factory()
            self.sim.add_host(name, host.node)
        else:
            host.node = self.sim.node(name)
        for address in clean:
            self._owner[ip_from_str(address)] = name
        self.hosts[name] = host
        return host

    def owner(self, address: str) -> str | None:
        """The host owning ``address``, if any."""
        return self._owner.get(ip_from_str(address))

    def _handle(self, name: str) -> HostHandle:
        host = self.hosts.get(name)
        if host is None:
            raise SimulationError(f"no host named {name!r}")
        return host

    # --- time ---------------------------------------------------------------
    def at(
        self, at: Instant, action: Callable[..., object], *args: object, **kwargs: object
    ) -> None:
        """Run ``action(*args, **kwargs)`` at virtual time ``at``:
        ``net.at(5 * SECOND, net.partition, ["a"], ["b"], one_way=True)``."""
        if at < 0:
            raise SimulationError("an event's time must not be negative")

        def run() -> None:
            action(*args, **kwargs)

        self.sim.call_at(at, run)

    # --- partitions and links ----------------------------------------------
    def partition(
        self, side_a: Iterable[str], side_b: Iterable[str], *, one_way: bool = False
    ) -> Partition:
        """Cut traffic between two sets of hosts; ``one_way``: only from ``side_a`` to
        ``side_b`` (``side_a`` still hears ``side_b``). Returns it, for :meth:`repair`."""
        a, b = list(side_a), list(side_b)
        for name in a + b:
            self._handle(name)
        pairs = {(x, y) for x in a for y in b}
        if not one_way:
            pairs |= {(y, x) for x, y in pairs}
        partition = Partition(frozenset(pairs))
        self._partitions.append(partition)
        self._refresh()
        return partition

    def repair(self, partition: Partition) -> None:
        self._partitions.remove(partition)
        self._refresh()

    def heal(self) -> None:
        """Repair every partition and bring every link up (held frames stay held)."""
        self._partitions.clear()
        self._down.clear()
        self._refresh()

    def link_down(self, link: Link, direction: str = "both") -> None:
        """Frames on ``link`` (``ab``, ``ba`` or ``both`` directions) vanish until it is up."""
        self._down |= self._directions(link, direction)
        self._refresh()

    def link_up(self, link: Link, direction: str = "both") -> None:
        self._down -= self._directions(link, direction)
        self._refresh()

    def set_profile(
        self, link: Link, ab: LinkProfile | None = None, ba: LinkProfile | None = None
    ) -> None:
        """Change a link's impairments now (schedule it with :meth:`at`)."""
        link.set_profile(ab=ab, ba=ba)

    @staticmethod
    def _directions(link: Link, direction: str) -> set[str]:
        if direction not in ("ab", "ba", "both"):
            raise SimulationError("direction must be 'ab', 'ba' or 'both'")
        names = set()
        if direction in ("ab", "both"):
            names.add(link.ab_name)
        if direction in ("ba", "both"):
            names.add(link.ba_name)
        return names

    # --- holding --------------------------------------------------------------
    def hold(self, *, host: str | None = None, link: Link | None = None) -> None:
        """Keep (not drop) every frame to or from ``host``, or on ``link``, until released."""
        if host is not None:
            self._handle(host)
            self._held_hosts.add(host)
        if link is not None:
            self._held_links |= self._directions(link, "both")
        self._refresh()

    def release(
        self, *, host: str | None = None, link: Link | None = None, shuffle: bool = False
    ) -> int:
        """Stop the hold on ``host`` or ``link`` (every hold, and the frames rules held,
        when neither is given) and deliver now what no other hold keeps, in the order it
        was held or in a shuffle drawn from the seed; returns how many frames went."""
        if host is None and link is None:
            self._held_hosts.clear()
            self._held_links.clear()
            held, self._held = self._held, []
        else:
            self._held_hosts.discard(host or "")
            if link is not None:
                self._held_links -= self._directions(link, "both")
            held = [entry for entry in self._held if not self._still_held(entry)]
            self._held = [entry for entry in self._held if self._still_held(entry)]
        if shuffle:
            self._releases += 1
            _rng(self.sim.seed, f"release:{self._releases}").shuffle(held)
        for direction, endpoint, frame in held:
            if direction is not None:
                self.sim.redeliver(direction, frame)
            else:
                assert endpoint is not None
                self.sim.transmit(endpoint, frame)
        self.counters["released"] += len(held)
        self._refresh()
        return len(held)

    def _still_held(self, entry: tuple[_Direction | None, tuple[str, str] | None, bytes]) -> bool:
        direction, _, frame = entry
        if direction is None:
            return True  # held by a rule: only a full release lets it go
        return self._holds(direction, frame)

    def _holds(self, direction: _Direction, frame: bytes) -> bool:
        source = direction.source
        origin = self._origin(frame, source.host if source is not None else "")
        return (
            direction.name in self._held_links
            or origin in self._held_hosts
            or direction.target.host in self._held_hosts
        )

    @property
    def held(self) -> list[bytes]:
        """Frames held now, in the order they were held."""
        return [frame for _, _, frame in self._held]

    # --- crash, restart, pause -------------------------------------------------
    def crash(self, name: str) -> None:
        """The host dies: its stack, output and processes are lost; frames to it vanish."""
        host = self._handle(name)
        host._drop_processes()
        host.state = "down"
        host.generation += 1
        host.node = _DeadNode()
        self.sim.replace_node(name, host.node)
        self.sim.clear_host_queue(name)

    def restart(self, name: str) -> None:
        """A fresh stack from the host's factory, same name and addresses, start run again."""
        host = self._handle(name)
        if host.factory is None:
            raise SimulationError(f"host {name!r} has no factory to restart with")
        if host.state != "down":
            self.crash(name)
        host.node = host.factory()
        self.sim.replace_node(name, host.node)
        host.state = "up"
        if host.start is not None:
            host.start(host)

    def pause(self, name: str) -> None:
        """Stall the host: no timers, no processes, no output; arriving frames wait."""
        host = self._handle(name)
        if host.state != "up":
            return
        host.state = "paused"
        self.sim.replace_node(name, _PausedNode(host.node))

    def resume(self, name: str) -> None:
        host = self._handle(name)
        if host.state != "paused":
            return
        paused = self.sim.replace_node(name, host.node)
        host.state = "up"
        assert isinstance(paused, _PausedNode)
        for interface, frame in paused.parked:
            host.node.receive_frame(interface, frame, now=self.sim.now)

    # --- rules and watching -----------------------------------------------------
    def add_rule(self, rule: FaultRule) -> FaultRule:
        for name in (rule.source, rule.destination):
            if name is not None:
                self._handle(name)
        self._rules.append(_RuleState(rule))
        self._refresh()
        return rule

    def remove_rule(self, rule: FaultRule) -> None:
        self._rules = [state for state in self._rules if state.rule is not rule]
        self._refresh()

    def rule_counts(self) -> list[tuple[FaultRule, int, int]]:
        """Each rule with the frames it matched and the frames it acted on."""
        return [(state.rule, state.matched, state.applied) for state in self._rules]

    def on_send(self, callback: Callable[[str, str, bytes, Instant], None]) -> None:
        """``callback(host, interface, frame, now)`` for every frame a host sends."""
        self._watchers.append(callback)
        self._refresh()

    def in_flight(self, link: Link | None = None) -> list[tuple[Instant, str, PacketView]]:
        """Frames on their way (on ``link`` only, if given): arrival time, direction, view."""
        return [
            (entry.arrive_at, entry.direction, view_packet(entry.frame))
            for entry in self.sim.in_flight(link)
        ]

    # --- the hooks ------------------------------------------------------------
    def _refresh(self) -> None:
        self._blocked = set().union(*(p.blocked for p in self._partitions))
        gated = self._blocked or self._down or self._held_links or self._held_hosts
        self.sim.delivery_gate = self._gate if gated else None
        self.sim.send_hook = self._on_send if self._rules or self._watchers else None

    def _origin(self, frame: bytes, fallback: str) -> str:
        if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
            return self._owner.get(_u32(frame, 26), fallback)
        if len(frame) >= 42 and frame[12:14] == b"\x08\x06":
            return self._owner.get(_u32(frame, 28), fallback)
        return fallback

    def _destination(self, frame: bytes) -> str:
        if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
            return self._owner.get(_u32(frame, 30), "")
        if len(frame) >= 42 and frame[12:14] == b"\x08\x06":
            return self._owner.get(_u32(frame, 38), "")
        return ""

    def _gate(self, direction: _Direction, frame: bytes, now: Instant) -> bool:
        if direction.name in self._down:
            self.counters["down"] += 1
            return False
        source = direction.source
        origin = self._origin(frame, source.host if source is not None else "")
        target = direction.target.host
        if target and (origin, target) in self._blocked:
            self.counters["partitioned"] += 1
            return False
        if (
            direction.name in self._held_links
            or origin in self._held_hosts
            or target in self._held_hosts
        ):
            self._held.append((direction, None, frame))
            self.counters["held"] += 1
            return False
        return True

    def _on_send(self, host: str, interface: str, frame: bytes, now: Instant) -> list[bytes] | None:
        for watcher in self._watchers:
            watcher(host, interface, frame, now)
        if not self._rules:
            return None
        packet = view_packet(frame)
        destination = self._destination(frame)
        for state in self._rules:
            rule = state.rule
            if not rule.matches(host, destination, packet):
                continue
            state.matched += 1
            if rule.nth is not None and state.matched != rule.nth:
                continue
            state.applied += 1
            return self._act(rule, (host, interface), frame)
        return None

    def _act(self, rule: FaultRule, endpoint: tuple[str, str], frame: bytes) -> list[bytes]:
        action = rule.action
        if action == "drop":
            self.counters["rule_drops"] += 1
            return []
        if action == "duplicate":
            return [frame, frame]
        if action == "corrupt":
            # Flip a bit past the Ethernet and IPv4 headers: the transport checksum
            # (RFC 9293 §3.1) must catch it, as a real corrupted segment would be.
            start = 14 + (frame[14] & 0x0F) * 4 if len(frame) > 34 else 0
            tail = flip_random_bit(frame[start:], self._corrupt_rng)
            return [frame[:start] + tail]
        if action == "hold":
            self._held.append((None, endpoint, frame))
            self.counters["held"] += 1
            return []
        sim = self.sim
        sim.call_at(sim.now + rule.delay, lambda: sim.transmit(endpoint, frame))
        return []
