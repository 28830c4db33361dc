"""The neighbour cache (RFC 826, RFC 1122 §2.3.2): resolution, queueing, expiry, re-validation.

An entry is learned from replies and requests aimed at us (RFC 826's "merge"
rule: requests for others only refresh entries we already hold). It lives for
``entry_lifetime``; if it was used in that time it is re-validated with up to
``max_requests`` unicast probes, otherwise it is forgotten. Packets for an
unresolved address wait in a small per-destination queue while broadcast
requests go out every ``request_interval``; when the last request goes
unanswered the queue is dropped and the caller is told, so a router can send
ICMP host unreachable (RFC 1812 §4.3.3.1 in spirit).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from functools import partial

from ..config import ArpConfig
from ..errors import DropReason, ParseError
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHandle, TimerHeap
from ..wire.arp import OPERATION_REPLY, OPERATION_REQUEST, ArpPacket
from ..wire.checksum import Buffer
from ..wire.ethernet import BROADCAST_MAC, ZERO_MAC


@dataclass(slots=True)
class QueuedPacket:
    """An IPv4 datagram waiting on resolution; ``forwarded`` asks for ICMP on failure."""

    datagram: bytes
    forwarded: bool


@dataclass(slots=True)
class Neighbour:
    interface: str
    mac: bytes
    confirmed_at: Instant
    timer: TimerHandle
    used: bool = False
    probes_sent: int = 0


@dataclass(slots=True)
class PendingResolution:
    interface: str
    source: int
    timer: TimerHandle
    queue: deque[QueuedPacket] = field(default_factory=deque)
    requests_sent: int = 0


SendArp = Callable[[str, bytes, ArpPacket], None]
"""send_arp(interface, destination MAC, packet)."""
Transmit = Callable[[str, bytes, bytes], None]
"""transmit(interface, destination MAC, IPv4 datagram)."""
Unresolved = Callable[[QueuedPacket, Instant], None]
"""Called for each queued packet dropped because resolution failed."""


class NeighbourCache:
    """IPv4 -> MAC for every interface, with bounded queues of waiting packets."""

    def __init__(
        self,
        config: ArpConfig,
        *,
        timers: TimerHeap,
        stats: Stats,
        send_arp: SendArp,
        transmit: Transmit,
        unresolved: Unresolved,
    ) -> None:
        self._config = config
        self._timers = timers
        self._stats = stats
        self._send_arp = send_arp
        self._transmit = transmit
        self._unresolved = unresolved
        self._entries: dict[int, Neighbour] = {}
        self._pending: dict[int, PendingResolution] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def pending_packets(self) -> int:
        return sum(len(pending.queue) for pending in self._pending.values())

    def resolved_mac(self, interface: str, next_hop: int) -> bytes | None:
        """The MAC :meth:`resolve_and_send` would send to at once (the entry is marked used,
        as sending does), or None when it would queue and resolve instead."""
        entry = self._entries.get(next_hop)
        if entry is None or entry.interface != interface:
            return None
        entry.used = True
        return entry.mac

    # --- sending --------------------------------------------------------------

    def resolve_and_send(
        self,
        interface: str,
        next_hop: int,
        source: int,
        datagram: bytes,
        *,
        forwarded: bool,
        now: Instant,
    ) -> None:
        """Send ``datagram`` to ``next_hop`` now if its MAC is known, else queue and resolve."""
        entry = self._entries.get(next_hop)
        if entry is not None and entry.interface == interface:
            entry.used = True
            self._transmit(interface, entry.mac, datagram)
            return
        pending = self._pending.get(next_hop)
        if pending is None:
            if len(self._pending) >= self._config.cache_limit:
                # A sweep of unanswered destinations must not grow memory at the sender's rate.
                self._stats.drop(DropReason.ARP_QUEUE_FULL)
                return
            timer = self._timers.new_timer(partial(self._retry, next_hop))
            pending = PendingResolution(interface, source, timer)
            self._pending[next_hop] = pending
            self._request(next_hop, pending, now)
        if len(pending.queue) >= self._config.queue_limit:
            self._stats.drop(DropReason.ARP_QUEUE_FULL)
            return
        pending.queue.append(QueuedPacket(datagram, forwarded))

    def _request(self, target: int, pending: PendingResolution, now: Instant) -> None:
        pending.requests_sent += 1
        self._stats.count("arp.requests_out")
        self._send_arp(
            pending.interface,
            BROADCAST_MAC,
            ArpPacket(OPERATION_REQUEST, b"", pending.source, ZERO_MAC, target),
        )
        self._timers.arm(pending.timer, now + self._config.request_interval)

    def _retry(self, target: int, now: Instant) -> None:
        pending = self._pending.get(target)
        if pending is None:
            return
        if pending.requests_sent < self._config.max_requests:
            self._request(target, pending, now)
            return
        del self._pending[target]
        self._stats.count("arp.resolution_failed")
        for packet in pending.queue:
            self._stats.drop(DropReason.ARP_UNRESOLVED)
            self._unresolved(packet, now)

    # --- receiving ------------------------------------------------------------

    def frame_received(
        self,
        interface: str,
        payload: Buffer,
        *,
        source_mac: bytes,
        our_mac: bytes,
        ours: Container[int],
        now: Instant,
    ) -> None:
        """An ARP packet from an Ethernet frame of ``interface``; ``ours``: our addresses."""
        try:
            packet = ArpPacket.parse(payload)
        except ParseError as error:
            self._stats.drop(error.reason)
            return
        if packet.sender_mac != source_mac:
            # ARP carries no checksum; a sender MAC that disagrees with the frame's source is
            # damage (or a spoof) that would poison the cache for a whole lifetime.
            self._stats.drop(DropReason.MALFORMED)
            return
        self.packet_received(
            interface,
            packet,
            our_mac=our_mac,
            target_is_ours=packet.target_ip in ours,
            sender_is_ours=packet.sender_ip in ours,
            now=now,
        )

    def packet_received(
        self,
        interface: str,
        packet: ArpPacket,
        *,
        our_mac: bytes,
        target_is_ours: bool,
        sender_is_ours: bool,
        now: Instant,
    ) -> None:
        """RFC 826's reception algorithm, with our own addresses protected."""
        if packet.operation not in (OPERATION_REQUEST, OPERATION_REPLY):
            self._stats.drop(DropReason.MALFORMED)
            return
        self._stats.count(
            "arp.requests_in" if packet.operation == OPERATION_REQUEST else "arp.replies_in"
        )
        if sender_is_ours:
            # Someone claims one of our addresses: never let it into the cache.
            self._stats.drop(DropReason.ARP_OWN_ADDRESS_CLAIMED)
            return
        sender = packet.sender_ip
        if sender != 0 and (sender in self._entries or target_is_ours or sender in self._pending):
            self._learn(interface, sender, packet.sender_mac, now)
        if target_is_ours and packet.operation == OPERATION_REQUEST:
            self._stats.count("arp.replies_out")
            self._send_arp(
                interface,
                packet.sender_mac,
                ArpPacket(
                    OPERATION_REPLY, our_mac, packet.target_ip, packet.sender_mac, packet.sender_ip
                ),
            )

    def _learn(self, interface: str, address: int, mac: bytes, now: Instant) -> None:
        entry = self._entries.get(address)
        if entry is None:
            if len(self._entries) >= self._config.cache_limit:
                self._evict_oldest()
            timer = self._timers.new_timer(partial(self._expire, address))
            entry = Neighbour(interface, mac, now, timer)
            self._entries[address] = entry
        else:
            entry.interface, entry.mac, entry.confirmed_at = interface, mac, now
            entry.probes_sent = 0
            entry.used = False  # a fresh lifetime: re-validated again only if used in it
        self._timers.arm(entry.timer, now + self._config.entry_lifetime)
        pending = self._pending.pop(address, None)
        if pending is not None:
            self._timers.cancel(pending.timer)
            for queued in pending.queue:
                self._transmit(interface, mac, queued.datagram)

    def _evict_oldest(self) -> None:
        oldest = next(iter(self._entries))
        self._timers.cancel(self._entries.pop(oldest).timer)
        self._stats.count("arp.evicted")

    def _expire(self, address: int, now: Instant) -> None:
        """Lifetime over: re-validate an entry in use with unicast probes, else forget it."""
        entry = self._entries.get(address)
        if entry is None:
            return
        if not entry.used or entry.probes_sent >= self._config.max_requests:
            del self._entries[address]
            self._stats.count("arp.expired")
            return
        entry.probes_sent += 1
        self._stats.count("arp.requests_out")
        self._send_arp(
            entry.interface, entry.mac, ArpPacket(OPERATION_REQUEST, b"", 0, ZERO_MAC, address)
        )
        self._timers.arm(entry.timer, now + self._config.request_interval)

    def announce(self, interface: str, address: int) -> None:
        """A gratuitous ARP request announcing ``address`` (RFC 5227 §3 style)."""
        self._stats.count("arp.gratuitous_out")
        self._send_arp(
            interface, BROADCAST_MAC, ArpPacket(OPERATION_REQUEST, b"", address, ZERO_MAC, address)
        )
