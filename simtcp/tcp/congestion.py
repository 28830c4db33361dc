"""Pluggable congestion control: the interface, NewReno (RFC 5681, RFC 6582), a registry.

The engine detects the events (new ACK, three duplicate ACKs, partial and full
ACKs during recovery, RTO) and keeps the recovery point; an algorithm only
decides what ``cwnd`` and ``ssthresh`` become. Adding an algorithm is a
subclass plus one entry in :data:`ALGORITHMS`. Slow start is shared
(:meth:`CongestionControl.slow_start`): RFC 5681 §3.1's min(N, SMSS) per ACK,
or RFC 3465 Appropriate Byte Counting up to ``abc_limit`` bytes, with
HyStart++ (RFC 9406, :mod:`.hystart`) ending the initial one early.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..time import Duration, Instant
from .hystart import CSS_GROWTH_DIVISOR, HYSTART_L_SEGMENTS, HyStart

INITIAL_SSTHRESH = 1 << 30
"""RFC 5681 §3.1: ssthresh starts arbitrarily high."""


class CongestionControl:
    """The interface every algorithm implements; all sizes are bytes."""

    name = "base"
    __slots__ = (
        "mss",
        "cwnd",
        "ssthresh",
        "abc_limit",
        "_acked_in_ca",
        "_slow_start_after_rto",
        "hystart",
        "hystart_used",
        "hystart_segments",
    )

    def __init__(self, *, mss: int, initial_window_segments: int, abc_limit: int = 0) -> None:
        self.mss = mss
        self.abc_limit = abc_limit
        """L of RFC 3465 §2.2 in bytes: the most one ACK adds to cwnd in slow start (0: one
        SMSS, RFC 5681 §3.1 equation 3). The engine sets it from
        ``TcpConfig.abc_limit_segments`` (:func:`.recovery.slow_start_limit`)."""
        self._slow_start_after_rto = False
        # RFC 6928 §2: IW = min(N*MSS, max(2*MSS, 14600)) for N = 10; other N taken as given.
        initial = initial_window_segments * mss
        if initial_window_segments == 10:
            initial = min(initial, max(2 * mss, 14600))
        self.cwnd = max(initial, mss)
        self.ssthresh = INITIAL_SSTHRESH  # RFC 5681 §3.1: arbitrarily high at first
        self._acked_in_ca = 0
        self.hystart: HyStart | None = None
        """HyStart++ (RFC 9406) while the initial slow start runs with it; see
        :meth:`start_hystart`."""
        self.hystart_used = False
        self.hystart_segments = HYSTART_L_SEGMENTS
        """L of RFC 9406 §4.2 in SMSS while HyStart++ runs (see :meth:`start_hystart`)."""

    def start_hystart(self, *, limit_segments: int = HYSTART_L_SEGMENTS) -> None:
        """Run HyStart++ in this slow start if it is the initial one (RFC 9406 §4.3:
        later slow starts, after an RTO, are standard), adding at most
        ``limit_segments`` SMSS per ACK (RFC 9406 §4.2's L)."""
        if not self.hystart_used and self.ssthresh == INITIAL_SSTHRESH:
            self.hystart = HyStart()
            self.hystart_segments = limit_segments
        self.hystart_used = True

    def hystart_ack(self, ack: int, snd_nxt: int) -> None:
        """An ACK of new data outside recovery, before :meth:`on_ack`: HyStart++'s
        rounds and checks (RFC 9406 §4.2); at the end of CSS, ssthresh = cwnd."""
        hystart = self.hystart
        if hystart is None:
            return
        if self.ssthresh != INITIAL_SSTHRESH:
            self.hystart = None  # a congestion event ended slow start first
            return
        if hystart.on_ack(ack, snd_nxt) == 0:
            self.ssthresh = self.cwnd  # §4.2: CSS_ROUNDS rounds of CSS: avoidance
            self.hystart = None

    def set_mss(self, mss: int) -> None:
        """The effective MSS changed (handshake or PMTU); keep cwnd at least one segment."""
        self.mss = mss
        self.cwnd = max(self.cwnd, mss)
        self.abc_limit = 0  # counted in SMSS: the engine sets it again for the new one

    def slow_start(self, acked: int) -> None:
        """cwnd < ssthresh: grow by the bytes acknowledged, at most L (RFC 3465 §2.2).

        ``cwnd += min(N, L)`` where N is the bytes this ACK newly acknowledges. With
        L = SMSS (``abc_limit`` 0) this is RFC 5681 §3.1 equation 3. A larger L keeps
        slow start doubling cwnd per RTT when the receiver ACKs many segments at once
        (delayed ACKs, RFC 3465 §2.3; stretch ACKs of a GRO receiver). Two bounds:

        - in the slow start that follows a retransmission timeout L is one SMSS (RFC
          3465 §2.3): a cumulative ACK may then cover data the receiver had held
          above the hole, not data that just left the network;
        - RFC 5681 §3.1 ends slow start once cwnd exceeds ssthresh, which one ACK may
          overshoot by its own increase of at most min(N, SMSS); a larger L never
          takes cwnd further past ssthresh than that.

        While HyStart++ runs (the initial slow start), RFC 9406 §4.2 sets L to 8 SMSS
        for a sender that does not pace: it ends slow start on the RTT's rise rather
        than on a loss, so it can afford doubling per RTT behind delayed ACKs; in its
        CSS the increase is min(N, L) / CSS_GROWTH_DIVISOR.
        """
        hystart = self.hystart
        cwnd = self.cwnd
        mss = self.mss
        limit = self.abc_limit
        if hystart is not None:
            if limit < self.hystart_segments * mss:
                limit = self.hystart_segments * mss
            if hystart.in_css:
                acked //= CSS_GROWTH_DIVISOR  # RFC 9406 §4.2: a quarter of the growth
        standard = acked if acked < mss else mss
        if limit <= mss or self._slow_start_after_rto:
            self.cwnd = cwnd + standard
            return
        grown = cwnd + (acked if acked < limit else limit)
        ceiling = self.ssthresh if self.ssthresh > cwnd + standard else cwnd + standard
        self.cwnd = grown if grown < ceiling else ceiling

    def on_rtt_sample(self, rtt: Duration) -> None:
        """An RTT measurement (HyStart++ counts it; CUBIC keeps it too)."""
        hystart = self.hystart
        if hystart is not None:
            hystart.on_rtt_sample(rtt)

    def on_ack(self, acked: int, flight_size: int, now: Instant) -> None:
        """New data acknowledged outside recovery."""
        raise NotImplementedError

    def on_enter_recovery(self, flight_size: int, now: Instant) -> None:
        """Third duplicate ACK: fast retransmit is about to happen."""
        raise NotImplementedError

    def on_dupack_in_recovery(self) -> None:
        """Another duplicate ACK while recovering: a segment left the network."""
        raise NotImplementedError

    def on_partial_ack(self, acked: int) -> None:
        """An ACK below the recovery point (RFC 6582 §3.2 step 5)."""
        raise NotImplementedError

    def on_exit_recovery(self, flight_size: int) -> None:
        """A full ACK covered the recovery point."""
        raise NotImplementedError

    def on_rto(self, flight_size: int, *, first: bool) -> None:
        """The retransmission timer expired (``first`` of a series of backoffs)."""
        raise NotImplementedError


class NewReno(CongestionControl):
    """RFC 5681 slow start / congestion avoidance with RFC 6582 NewReno recovery."""

    name = "newreno"
    __slots__ = ()

    def on_ack(self, acked: int, flight_size: int, now: Instant) -> None:
        if self.cwnd < self.ssthresh:
            self.slow_start(acked)  # RFC 5681 §3.1 (eq. 3) or RFC 3465 §2.2 with L > SMSS
            return
        self._slow_start_after_rto = False
        # RFC 5681 §3.1 (eq. 3.3), counted in bytes (RFC 3465 §2.1): one SMSS once a
        # cwnd's worth of bytes is acknowledged, however few ACKs carried them.
        mss = self.mss
        self._acked_in_ca += acked
        if self._acked_in_ca >= self.cwnd:
            self._acked_in_ca -= self.cwnd
            self.cwnd += mss

    def on_enter_recovery(self, flight_size: int, now: Instant) -> None:
        # RFC 5681 §3.2 steps 2 and 3 (equation 4).
        self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.ssthresh + 3 * self.mss
        self._acked_in_ca = 0
        self._slow_start_after_rto = False

    def on_dupack_in_recovery(self) -> None:
        self.cwnd += self.mss  # RFC 5681 §3.2 step 4

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 §3.2 step 5: deflate by the amount acked, add back one MSS if >= MSS.
        self.cwnd = max(self.cwnd - acked, self.mss)
        if acked >= self.mss:
            self.cwnd += self.mss

    def on_exit_recovery(self, flight_size: int) -> None:
        # RFC 6582 §3.2 step 3 (full acknowledgment), option (1):
        # min(ssthresh, max(FlightSize, SMSS) + SMSS): two segments with nothing in flight.
        self.cwnd = min(self.ssthresh, max(flight_size, self.mss) + self.mss)

    def on_rto(self, flight_size: int, *, first: bool) -> None:
        # RFC 5681 §3.1 (4) and §5: ssthresh only on the first timeout of a series.
        if first:
            self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.mss
        self._acked_in_ca = 0
        self._slow_start_after_rto = True  # RFC 3465 §2.3: L = SMSS until ssthresh


ALGORITHMS: dict[str, Callable[..., CongestionControl]] = {"newreno": NewReno, "reno": NewReno}


def create(name: str, *, mss: int, initial_window_segments: int) -> CongestionControl:
    """An algorithm by its config name; ConfigError for an unknown name."""
    factory = ALGORITHMS.get(name.lower())
    if factory is None and name.lower() == "cubic":
        from .cubic import cubic_factory  # late: cubic subclasses CongestionControl

        factory = ALGORITHMS["cubic"] = cubic_factory
    if factory is None:
        known = sorted({*ALGORITHMS, "cubic"})
        raise ConfigError(f"unknown congestion control {name!r} (known: {known})")
    return factory(mss=mss, initial_window_segments=initial_window_segments)
