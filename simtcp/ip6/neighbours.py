"""The IPv6 neighbour cache: RFC 4861 §7.3's state machine, one timer per entry.

States (RFC 4861 §7.3.2) and what moves an entry between them:

- INCOMPLETE: a packet wants a neighbour we have no link-layer address for.
  Multicast NS to its solicited-node group every RetransTimer, packets wait
  in a bounded queue; after MAX_MULTICAST_SOLICIT unanswered the entry goes
  and each queued packet is reported (ICMPv6 address unreachable, §7.2.2).
- REACHABLE: a solicited NA (or an upper-layer confirmation) arrived; after
  ReachableTime (randomised, §6.3.2) it becomes STALE.
- STALE: learnt unsolicited (an NS's source option, an unsolicited NA, an RA)
  or REACHABLE timed out. Sending to it moves it to DELAY.
- DELAY: after DELAY_FIRST_PROBE_TIME without confirmation, PROBE.
- PROBE: unicast NS every RetransTimer; MAX_UNICAST_SOLICIT unanswered and
  the entry is removed.

Reception follows §7.2.3 (NS with a source link-layer option), §7.2.5 (NA,
override and solicited flags) and §6.3.4 (RA's source option, IsRouter).
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv6Address

from ..config import Ip6Config
from ..errors import DropReason
from ..stats import Stats
from ..time import Instant
from ..timers import TimerHandle, TimerHeap


class NeighbourState(enum.Enum):
    INCOMPLETE = "incomplete"
    REACHABLE = "reachable"
    STALE = "stale"
    DELAY = "delay"
    PROBE = "probe"


@dataclass(slots=True)
class Neighbour6:
    interface: str
    address: IPv6Address
    nud_state: NeighbourState
    """Its neighbour unreachability detection state (RFC 4861 §7.3.2)."""
    timer: TimerHandle
    mac: bytes | None = None
    is_router: bool = False
    solicitations: int = 0
    queue: deque[bytes] = field(default_factory=deque)


Solicit = Callable[[str, IPv6Address, bytes | None, Instant], None]
"""solicit(interface, target, unicast MAC or None for the solicited-node group, now)."""
Transmit6 = Callable[[str, bytes, bytes], None]
"""transmit(interface, destination MAC, IPv6 datagram)."""
Unresolved6 = Callable[[str, bytes, Instant], None]
"""Told of each queued datagram dropped because resolution failed."""
Key = tuple[str, IPv6Address]


class NeighbourCache6:
    """(interface, IPv6 address) -> link-layer address, with RFC 4861's states."""

    def __init__(
        self,
        config: Ip6Config,
        *,
        timers: TimerHeap,
        stats: Stats,
        rng: random.Random,
        solicit: Solicit,
        transmit: Transmit6,
        unresolved: Unresolved6,
    ) -> None:
        self._config = config
        self._timers = timers
        self._stats = stats
        self._rng = rng
        self._solicit = solicit
        self._transmit = transmit
        self._unresolved = unresolved
        self._entries: dict[Key, Neighbour6] = {}
        self.retrans_timer = config.retrans_timer
        """RetransTimer, which an RA may change (RFC 4861 §6.3.4)."""
        self.base_reachable_time = config.reachable_time
        self.reachable_time = self._random_reachable_time()

    def __len__(self) -> int:
        return len(self._entries)

    def pending_packets(self) -> int:
        return sum(len(entry.queue) for entry in self._entries.values())

    def entry(self, interface: str, address: IPv6Address) -> Neighbour6 | None:
        return self._entries.get((interface, address))

    def set_base_reachable_time(self, duration: int) -> None:
        """An RA's Reachable Time (§6.3.4): recompute the random ReachableTime."""
        if duration != self.base_reachable_time:
            self.base_reachable_time = duration
            self.reachable_time = self._random_reachable_time()

    def _random_reachable_time(self) -> int:
        # RFC 4861 §6.3.2: uniformly between MIN_RANDOM_FACTOR (0.5) and MAX (1.5) times.
        base = self.base_reachable_time
        return base // 2 + self._rng.randrange(base + 1)

    # --- sending --------------------------------------------------------------

    def resolve_and_send(
        self, interface: str, next_hop: IPv6Address, datagram: bytes, now: Instant
    ) -> None:
        """Send now if the neighbour's address is known (STALE -> DELAY), else queue it."""
        key = (interface, next_hop)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new_entry(key, NeighbourState.INCOMPLETE)
            if entry is None:
                self._stats.drop(DropReason.ND_QUEUE_FULL)
                return
            entry.queue.append(datagram)
            self._send_solicitation(entry, now)
            return
        if entry.nud_state is NeighbourState.INCOMPLETE or entry.mac is None:
            if len(entry.queue) >= self._config.queue_limit:
                # RFC 4861 §7.2.2: the oldest packet makes room for the newest.
                entry.queue.popleft()
                self._stats.drop(DropReason.ND_QUEUE_FULL)
            entry.queue.append(datagram)
            return
        if entry.nud_state is NeighbourState.STALE:
            self._enter(entry, NeighbourState.DELAY, now + self._config.delay_first_probe)
        self._transmit(interface, entry.mac, datagram)

    def _new_entry(self, key: Key, state: NeighbourState) -> Neighbour6 | None:
        if len(self._entries) >= self._config.cache_limit and not self._evict():
            return None
        timer = self._timers.new_timer(partial(self._timer_fired, key))
        entry = Neighbour6(key[0], key[1], state, timer)
        self._entries[key] = entry
        return entry

    def _evict(self) -> bool:
        """Make room: the oldest entry that holds no waiting packets."""
        for key, entry in self._entries.items():
            if entry.nud_state is not NeighbourState.INCOMPLETE:
                self._remove(key, entry)
                self._stats.count("nd.evicted")
                return True
        return False

    def _remove(self, key: Key, entry: Neighbour6) -> None:
        del self._entries[key]
        self._timers.discard(entry.timer)

    def _send_solicitation(self, entry: Neighbour6, now: Instant) -> None:
        entry.solicitations += 1
        unicast = entry.mac if entry.nud_state is NeighbourState.PROBE else None
        self._solicit(entry.interface, entry.address, unicast, now)
        self._timers.arm(entry.timer, now + self.retrans_timer)

    def _enter(self, entry: Neighbour6, state: NeighbourState, deadline: Instant | None) -> None:
        entry.nud_state = state
        self._timers.arm(entry.timer, deadline)

    def _timer_fired(self, key: Key, now: Instant) -> None:
        entry = self._entries.get(key)
        if entry is None:
            return
        state = entry.nud_state
        if state is NeighbourState.REACHABLE:
            self._enter(entry, NeighbourState.STALE, None)
        elif state is NeighbourState.DELAY:
            entry.nud_state = NeighbourState.PROBE
            entry.solicitations = 0
            self._send_solicitation(entry, now)
        elif state is NeighbourState.INCOMPLETE:
            if entry.solicitations < self._config.max_multicast_solicit:
                self._send_solicitation(entry, now)
                return
            self._remove(key, entry)
            self._stats.count("nd.resolution_failed")
            for datagram in entry.queue:
                self._stats.drop(DropReason.ND_UNRESOLVED)
                self._unresolved(entry.interface, datagram, now)
        elif state is NeighbourState.PROBE:
            if entry.solicitations < self._config.max_unicast_solicit:
                self._send_solicitation(entry, now)
                return
            self._remove(key, entry)
            self._stats.count("nd.probe_failed")

    # --- receiving ------------------------------------------------------------

    def learned_unsolicited(
        self,
        interface: str,
        address: IPv6Address,
        mac: bytes,
        now: Instant,
        *,
        is_router: bool | None = None,
    ) -> None:
        """A source link-layer option from an NS, RS, RA or redirect (§7.2.3, §6.3.4)."""
        key = (interface, address)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._new_entry(key, NeighbourState.STALE)
            if entry is None:
                return
            entry.mac = mac
        elif entry.mac != mac:
            entry.mac = mac
            self._enter(entry, NeighbourState.STALE, None)
        if is_router is not None:
            entry.is_router = is_router
        self._flush(entry)

    def advertisement_received(
        self,
        interface: str,
        target: IPv6Address,
        mac: bytes | None,
        now: Instant,
        *,
        solicited: bool,
        override: bool,
        router: bool,
    ) -> None:
        """RFC 4861 §7.2.5: an NA for ``target``; without an entry it is ignored."""
        entry = self._entries.get((interface, target))
        if entry is None:
            self._stats.count("nd.na_unsolicited_ignored")
            return
        if entry.nud_state is NeighbourState.INCOMPLETE:
            if mac is None:
                return
            entry.mac = mac
            entry.is_router = router
            self._confirm_or_stale(entry, solicited, now)
            self._flush(entry)
            return
        changed = mac is not None and mac != entry.mac
        if not override and changed:
            if entry.nud_state is NeighbourState.REACHABLE:
                self._enter(entry, NeighbourState.STALE, None)
            return
        if mac is not None:
            entry.mac = mac
        if solicited:
            self._confirm_or_stale(entry, True, now)
        elif changed:
            self._enter(entry, NeighbourState.STALE, None)
        entry.is_router = router

    def _confirm_or_stale(self, entry: Neighbour6, solicited: bool, now: Instant) -> None:
        if solicited:
            entry.solicitations = 0
            self._enter(entry, NeighbourState.REACHABLE, now + self.reachable_time)
        else:
            self._enter(entry, NeighbourState.STALE, None)

    def confirm(self, interface: str, address: IPv6Address, now: Instant) -> None:
        """Upper-layer reachability confirmation (RFC 4861 §7.3.1): REACHABLE again."""
        entry = self._entries.get((interface, address))
        if entry is not None and entry.mac is not None:
            self._confirm_or_stale(entry, True, now)

    def _flush(self, entry: Neighbour6) -> None:
        mac = entry.mac
        if mac is None:
            return
        queue, entry.queue = entry.queue, deque()
        for datagram in queue:
            self._transmit(entry.interface, mac, datagram)

    def add_static(self, interface: str, address: IPv6Address, mac: bytes) -> None:
        """A permanent entry (like ``ip -6 neigh add ... nud permanent``): REACHABLE forever."""
        key = (interface, address)
        entry = self._entries.get(key) or self._new_entry(key, NeighbourState.REACHABLE)
        if entry is None:
            return
        entry.mac = mac
        self._enter(entry, NeighbourState.REACHABLE, None)
        self._flush(entry)

    def states(self) -> dict[tuple[str, IPv6Address], NeighbourState]:
        return {key: entry.nud_state for key, entry in self._entries.items()}


__all__ = ["Neighbour6", "NeighbourCache6", "NeighbourState"]
