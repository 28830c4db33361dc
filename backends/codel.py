"""CoDel (RFC 8289), the controlled-delay queue discipline, for a simulated bottleneck.

The simulator's bottleneck (:class:`~simtcp.backends.impair.Impairment`) does
not keep packets in a list to dequeue later: it computes, when a packet is
offered, the instant the transmitter will start on it. Its packets leave in
the order they came, so every earlier packet's fate is known when a later
one is offered, and CoDel's dequeue-time decision (RFC 8289 §5.3) can be
made at once for the packet at its own dequeue instant, with the sojourn
time it will have had (§4.1: the time spent waiting, measured per packet).
A packet CoDel drops never occupies the transmitter.

One approximation: the "queue is nearly empty" test (§4.3, fewer than
``MAXPACKET`` bytes queued) looks at the backlog the packet met when it
arrived, not at what later packets added by the time it leaves.
"""

from __future__ import annotations

import math

from simtcp.time import MILLISECOND, Duration, Instant

MAX_PACKET = 1514
"""Bytes of the largest frame: below this backlog CoDel never drops (RFC 8289 §4.3)."""


class CoDel:
    """The state of RFC 8289's dequeue logic, fed one packet at a time in dequeue order."""

    __slots__ = (
        "target",
        "interval",
        "first_above_at",
        "drop_next_at",
        "count",
        "last_count",
        "dropping",
        "drops",
    )

    def __init__(self, target: Duration = 5 * MILLISECOND, interval: Duration = 100 * MILLISECOND):
        self.target = target
        self.interval = interval
        self.first_above_at: Instant | None = None
        self.drop_next_at: Instant = 0
        self.count = 0
        self.last_count = 0
        self.dropping = False
        self.drops = 0

    def _ok_to_drop(self, sojourn: Duration, now: Instant, backlog: int) -> bool:
        # RFC 8289 §5.4 dodequeue(): a standing queue above TARGET for a whole INTERVAL.
        if sojourn < self.target or backlog <= MAX_PACKET:
            self.first_above_at = None
            return False
        if self.first_above_at is None:
            self.first_above_at = now + self.interval
            return False
        return now >= self.first_above_at

    def _control_law(self, at: Instant) -> Instant:
        # RFC 8289 §5.5: the next drop comes INTERVAL / sqrt(count) later.
        return at + int(self.interval / math.sqrt(self.count))

    def should_drop(self, sojourn: Duration, now: Instant, backlog: int) -> bool:
        """Whether the packet dequeued at ``now`` after waiting ``sojourn``, with ``backlog``
        bytes queued, is dropped (RFC 8289 §5.3 dequeue())."""
        ok_to_drop = self._ok_to_drop(sojourn, now, backlog)
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False
                return False
            if now < self.drop_next_at:
                return False
            self.count += 1
            self.drop_next_at = self._control_law(self.drop_next_at)
            self.drops += 1
            return True
        if not ok_to_drop:
            return False
        self.dropping = True
        delta = self.count - self.last_count
        # Re-entering soon after the last dropping state: resume near its drop rate.
        recent = now - self.drop_next_at < 16 * self.interval
        self.count = delta if delta > 1 and recent else 1
        self.drop_next_at = self._control_law(now)
        self.last_count = self.count
        self.drops += 1
        return True
