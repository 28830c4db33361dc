"""Link impairments: loss, reordering, duplication, corruption, delay, a rate-limited queue, MTU.

One :class:`Impairment` models one direction of a link. It is pure: it takes a
frame and the time it was sent and returns when (and in which form) copies of
it reach the far end. The simulator (``backends/sim.py``) schedules those
arrivals on its event heap; the TAP backend can hold them in a timer heap in
front of the kernel. All chance comes from the ``random.Random`` passed in, so
a seed replays the same impairments frame for frame.

The order of the stages mirrors a real path: the MTU check at the sender, then
the bottleneck queue and its serialization delay (drop-tail), then the wire
(loss, duplication, corruption, propagation delay with jitter, reordering).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from simtcp.errors import ConfigError
from simtcp.time import MILLISECOND, SECOND, Duration, Instant

from .codel import CoDel

ETHERNET_HEADER_LENGTH = 14
QDISCS = ("droptail", "codel")
JITTER_DISTRIBUTIONS = ("uniform", "normal", "pareto")
PARETO_SHAPE = 3.0
"""Shape of the Pareto jitter: heavy-tailed, with a finite mean and variance."""

COUNTER_NAMES = (
    "sent",
    "delivered",
    "lost",
    "duplicated",
    "corrupted",
    "reordered",
    "queue_drops",
    "mtu_drops",
)
"""Keys of :attr:`Impairment.counters`; ``sent`` counts frames offered to the link."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkProfile:
    """How one direction of a link treats frames. The default is a perfect, instant wire."""

    loss: float = 0.0
    """Probability (0..1) that a frame vanishes on the wire."""
    reorder: float = 0.0
    """Probability (0..1) that a frame is held back by ``reorder_delay`` so later frames
    overtake it."""
    reorder_delay: Duration = 1 * MILLISECOND
    """Extra delay, in microseconds, of a frame chosen by ``reorder``."""
    duplicate: float = 0.0
    """Probability (0..1) that a frame arrives twice (the copy right behind the original)."""
    corrupt: float = 0.0
    """Probability (0..1) that one random bit of a frame (any byte, headers included) flips;
    each copy of a duplicated frame is drawn separately."""
    delay: Duration = 0
    """One-way propagation delay, in microseconds."""
    jitter: Duration = 0
    """Each frame's delay is drawn uniformly from ``delay - jitter .. delay + jitter``
    (never below zero). Jitter alone does not reorder: a frame never arrives before
    the frame sent ahead of it, unless ``reorder`` chose the earlier one."""
    jitter_distribution: str = "uniform"
    """How ``jitter`` is drawn: ``uniform`` (above), ``normal`` (delay plus a normal draw
    of standard deviation ``jitter``, never below zero) or ``pareto`` (delay plus a
    heavy-tailed extra of mean ``jitter``). None of them reorders."""
    rate: int = 0
    """Bottleneck rate in bits per second; 0 means unlimited (no serialization delay)."""
    queue_limit: int = 128 * 1024
    """Bytes the bottleneck may hold (waiting or being serialized); a frame that does not
    fit is dropped (drop-tail). Only used when ``rate`` is set."""
    queue_packets: int = 0
    """Frames the bottleneck may hold (drop-tail by packets, like a ``limit`` in packets);
    0 means no limit but ``queue_limit``'s bytes. Only used when ``rate`` is set."""
    qdisc: str = "droptail"
    """The bottleneck's queue discipline: ``droptail`` (the limits above) or ``codel``
    (RFC 8289, :mod:`simtcp.backends.codel`, within the same limits)."""
    codel_target: Duration = 5 * MILLISECOND
    """CoDel's TARGET: the standing queue delay it tolerates (RFC 8289 §4.3)."""
    codel_interval: Duration = 100 * MILLISECOND
    """CoDel's INTERVAL: how long the delay may stay above target (RFC 8289 §4.4)."""
    burst_enter: float = 0.0
    """Gilbert-Elliott bursty loss (netem's ``loss gemodel p r``): the chance per frame
    that the link goes from the good to the bad state; 0 turns the model off."""
    burst_leave: float = 1.0
    """The chance per frame that the link goes from the bad back to the good state."""
    burst_loss: float = 1.0
    """Loss probability in the bad state (1 - h in the model's terms)."""
    burst_good_loss: float = 0.0
    """Loss probability in the good state (1 - k)."""
    mtu: int | None = None
    """Largest IP payload the link carries: frames longer than ``mtu + 14`` are dropped and
    counted. None means no limit."""
    gso: bool = False
    """The sending end is an offloading NIC (DESIGN.md "Offload-ready"; the simulator does
    it, not :class:`Impairment`): it finishes the TCP/UDP checksums of every frame and cuts
    TCP segments longer than ``mtu`` (1500 when None) into MTU-sized frames before they
    reach the wire. Pair it with ``InterfaceOffload(tx_checksum=True, max_segment=...)``
    on the sending stack's interface."""
    gro: bool = False
    """The receiving end merges consecutive in-order TCP segments of a flow that arrive at
    the same instant into one frame (Linux GRO) before the host sees them."""

    def __post_init__(self) -> None:
        if self.qdisc not in QDISCS:
            raise ConfigError(f"LinkProfile.qdisc must be one of {', '.join(QDISCS)}")
        if self.jitter_distribution not in JITTER_DISTRIBUTIONS:
            raise ConfigError(
                f"LinkProfile.jitter_distribution must be one of {', '.join(JITTER_DISTRIBUTIONS)}"
            )
        for name in (
            "loss",
            "reorder",
            "duplicate",
            "corrupt",
            "burst_enter",
            "burst_leave",
            "burst_loss",
            "burst_good_loss",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"LinkProfile.{name} must be within 0..1, not {value!r}")
        for name in (
            "reorder_delay",
            "delay",
            "jitter",
            "rate",
            "queue_packets",
            "codel_target",
            "codel_interval",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"LinkProfile.{name} must not be negative")
        if self.queue_limit < 1:
            raise ConfigError("LinkProfile.queue_limit must be at least 1 byte")
        if self.mtu is not None and self.mtu < 0:
            raise ConfigError("LinkProfile.mtu must not be negative")

    @property
    def is_fifo(self) -> bool:
        """True when frames cross unchanged, in order and at most once: no reordering,
        duplication, corruption or jitter (loss, the MTU and the queue may still drop them)."""
        return (
            self.reorder == 0.0
            and self.duplicate == 0.0
            and self.corrupt == 0.0
            and self.jitter == 0
        )

    @property
    def is_perfect(self) -> bool:
        """True when the profile never touches a frame (only a fixed delay, if any)."""
        return (
            self.loss == 0.0
            and self.reorder == 0.0
            and self.duplicate == 0.0
            and self.corrupt == 0.0
            and self.jitter == 0
            and self.rate == 0
            and self.mtu is None
            and self.burst_enter == 0.0
        )


def flip_random_bit(frame: bytes, rng: random.Random) -> bytes:
    """``frame`` with one bit, chosen by ``rng``, inverted."""
    if not frame:
        return frame
    position = rng.randrange(len(frame) * 8)
    corrupted = bytearray(frame)
    corrupted[position >> 3] ^= 1 << (position & 7)
    return bytes(corrupted)


class Impairment:
    """One direction of a link: ``apply(frame, now)`` says when copies of it arrive."""

    __slots__ = (
        "_profile",
        "_perfect",
        "fifo",
        "gso",
        "gro",
        "_frame_limit",
        "_rng",
        "counters",
        "_last_arrival_at",
        "_queue",
        "_queue_bytes",
        "_busy_until_scaled",
        "_plain_queue",
        "codel",
        "_bad_state",
    )

    def __init__(self, profile: LinkProfile, rng: random.Random) -> None:
        self._rng = rng
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        """Frames seen so far: ``sent = lost + queue_drops + mtu_drops + delivered -
        duplicated`` (``delivered`` counts copies when they are scheduled)."""
        self._last_arrival_at: Instant = 0
        # The bottleneck: frames still in it as (finish_at, size), and the instant
        # the transmitter frees up, in units of 1/rate microseconds so that
        # serialization times add up exactly with integers.
        self._queue: deque[tuple[Instant, int]] = deque()
        self._queue_bytes = 0
        self._busy_until_scaled = 0
        self._profile = profile
        self._perfect = True
        self.fifo = True
        """The profile :attr:`~LinkProfile.is_fifo`: :meth:`arrival_at` may stand in for
        :meth:`apply`."""
        self.gso = self.gro = False
        self._frame_limit: int | None = None
        self._plain_queue = True
        self.codel: CoDel | None = None
        """CoDel's state while the profile's ``qdisc`` is ``codel`` (``codel.drops``)."""
        self._bad_state = False  # Gilbert-Elliott: the link is in its bad (bursty) state
        self._derive(profile)

    @property
    def profile(self) -> LinkProfile:
        return self._profile

    @profile.setter
    def profile(self, profile: LinkProfile) -> None:
        """Change the profile mid-run (a link fault); queue state and counters carry on."""
        old_rate, new_rate = self._profile.rate, profile.rate
        if old_rate != new_rate:
            # Keep the instant the transmitter frees up, re-expressed in the new units.
            busy_until = -(-self._busy_until_scaled // old_rate) if old_rate else 0
            self._busy_until_scaled = busy_until * new_rate
        self._profile = profile
        self._derive(profile)

    def _derive(self, profile: LinkProfile) -> None:
        """Flags read per frame, kept as plain attributes (a profile is frozen)."""
        self._perfect = profile.is_perfect
        self.fifo = profile.is_fifo
        self.gso = profile.gso
        self.gro = profile.gro
        self._frame_limit = None if profile.mtu is None else profile.mtu + ETHERNET_HEADER_LENGTH
        self._plain_queue = profile.qdisc == "droptail" and not profile.queue_packets
        if profile.qdisc != "codel":
            self.codel = None
        elif self.codel is None:
            self.codel = CoDel(profile.codel_target, profile.codel_interval)

    def arrival_at(self, size: int, now: Instant) -> Instant:
        """When a frame of ``size`` bytes sent at ``now`` arrives, or -1 when the MTU, the
        queue or loss drops it: :meth:`apply` for a :attr:`fifo` profile, without building
        lists (same answer, same counters, the same draws from the random stream). Only
        valid while :attr:`fifo` holds."""
        counters = self.counters
        counters["sent"] += 1
        profile = self._profile
        if not self._perfect:
            limit = self._frame_limit
            if limit is not None and size > limit:
                counters["mtu_drops"] += 1
                return -1
            rate = profile.rate
            if rate and not self._plain_queue:
                finished_at = self._enqueue(size, now, profile)
                if finished_at is None:
                    counters["queue_drops"] += 1
                    return -1
                now = finished_at
            elif rate:  # _enqueue, inlined
                queue = self._queue
                while queue and queue[0][0] <= now:
                    self._queue_bytes -= queue.popleft()[1]
                if self._queue_bytes + size > profile.queue_limit:
                    counters["queue_drops"] += 1
                    return -1
                start_scaled = now * rate
                if start_scaled < self._busy_until_scaled:
                    start_scaled = self._busy_until_scaled
                self._busy_until_scaled = finish_scaled = start_scaled + size * 8 * SECOND
                now = -(-finish_scaled // rate)  # the last bit has left
                queue.append((now, size))
                self._queue_bytes += size
            if profile.loss and self._rng.random() < profile.loss:
                counters["lost"] += 1
                return -1
            if profile.burst_enter and self._burst_lost(profile):
                counters["lost"] += 1
                return -1
        arrival_at = now + profile.delay
        if arrival_at < self._last_arrival_at:  # FIFO; or the delay was lowered mid-run
            arrival_at = self._last_arrival_at
        self._last_arrival_at = arrival_at
        counters["delivered"] += 1
        return arrival_at

    def apply(self, frame: bytes, now: Instant) -> list[tuple[Instant, bytes]]:
        """The (deliver_at, frame) pairs that reach the far end of ``frame`` sent at ``now``."""
        counters = self.counters
        counters["sent"] += 1
        profile = self._profile
        if self._perfect:
            arrival_at = now + profile.delay
            if arrival_at < self._last_arrival_at:  # the delay was lowered mid-run
                arrival_at = self._last_arrival_at
            self._last_arrival_at = arrival_at
            counters["delivered"] += 1
            return [(arrival_at, frame)]
        limit = self._frame_limit
        if limit is not None and len(frame) > limit:
            counters["mtu_drops"] += 1
            return []
        departed_at = now
        if profile.rate:
            finished_at = self._enqueue(len(frame), now, profile)
            if finished_at is None:
                counters["queue_drops"] += 1
                return []
            departed_at = finished_at
        rng = self._rng
        if profile.loss and rng.random() < profile.loss:
            counters["lost"] += 1
            return []
        if profile.burst_enter and self._burst_lost(profile):
            counters["lost"] += 1
            return []
        if profile.duplicate and rng.random() < profile.duplicate:
            counters["duplicated"] += 1
            counters["delivered"] += 2
            first = self._wire(frame, departed_at, profile, rng)
            return [first, self._wire(frame, departed_at, profile, rng)]
        counters["delivered"] += 1
        return [self._wire(frame, departed_at, profile, rng)]

    def _wire(
        self, frame: bytes, departed_at: Instant, profile: LinkProfile, rng: random.Random
    ) -> tuple[Instant, bytes]:
        """One copy's trip along the wire: corruption, delay and jitter, reordering."""
        if profile.corrupt and rng.random() < profile.corrupt:
            frame = flip_random_bit(frame, rng)
            self.counters["corrupted"] += 1
        delay = profile.delay
        if profile.jitter:
            delay = max(0, delay + self._jitter(profile, rng))
        arrival_at = departed_at + delay
        if arrival_at < self._last_arrival_at:
            arrival_at = self._last_arrival_at  # the wire is FIFO: jitter never reorders
        if profile.reorder and rng.random() < profile.reorder:
            self.counters["reordered"] += 1
            return arrival_at + profile.reorder_delay, frame  # later frames may pass it
        self._last_arrival_at = arrival_at
        return arrival_at, frame

    @staticmethod
    def _jitter(profile: LinkProfile, rng: random.Random) -> int:
        jitter, distribution = profile.jitter, profile.jitter_distribution
        if distribution == "uniform":
            return rng.randint(-jitter, jitter)
        if distribution == "normal":
            return round(rng.gauss(0.0, jitter))
        # Pareto with x_m = 1 has mean a / (a - 1): shifted and scaled to mean ``jitter``.
        return round(jitter * (rng.paretovariate(PARETO_SHAPE) - 1.0) * (PARETO_SHAPE - 1.0))

    def _burst_lost(self, profile: LinkProfile) -> bool:
        """Gilbert-Elliott: move between the good and the bad state, then lose by state."""
        rng = self._rng
        if self._bad_state:
            if rng.random() < profile.burst_leave:
                self._bad_state = False
        elif rng.random() < profile.burst_enter:
            self._bad_state = True
        loss = profile.burst_loss if self._bad_state else profile.burst_good_loss
        return loss > 0.0 and rng.random() < loss

    def _enqueue(self, size: int, now: Instant, profile: LinkProfile) -> Instant | None:
        """Admit ``size`` bytes to the bottleneck; the instant its last bit leaves, or None."""
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._queue_bytes -= queue.popleft()[1]
        if self._queue_bytes + size > profile.queue_limit:
            return None
        if profile.queue_packets and len(queue) >= profile.queue_packets:
            return None
        rate = profile.rate
        start_scaled = max(now * rate, self._busy_until_scaled)
        codel = self.codel
        if codel is not None:
            start_at = -(-start_scaled // rate)
            if codel.should_drop(start_at - now, start_at, self._queue_bytes + size):
                return None
        finish_scaled = start_scaled + size * 8 * SECOND
        self._busy_until_scaled = finish_scaled
        finished_at = -(-finish_scaled // rate)  # ceiling: the last bit has left
        queue.append((finished_at, size))
        self._queue_bytes += size
        return finished_at

    def room_at(self, size: int, now: Instant) -> Instant:
        """The first instant (``now`` or later) at which the bottleneck would admit a frame
        of ``size`` bytes without dropping it; ``now`` on a link without a rate."""
        profile = self._profile
        if not profile.rate:
            return now
        queue = self._queue
        while queue and queue[0][0] <= now:
            self._queue_bytes -= queue.popleft()[1]
        excess = self._queue_bytes + size - profile.queue_limit
        packet_limit = profile.queue_packets
        excess_packets = len(queue) + 1 - packet_limit if packet_limit else 0
        if excess <= 0 and excess_packets <= 0:
            return now
        for index, (finish_at, entry_size) in enumerate(queue):
            excess -= entry_size
            if excess <= 0 and index + 1 >= excess_packets:
                return finish_at
        return queue[-1][0] if queue else now

    @property
    def queued_bytes(self) -> int:
        """Bytes in the bottleneck as of the last frame offered to it."""
        return self._queue_bytes
