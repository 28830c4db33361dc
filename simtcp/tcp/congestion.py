"""Pluggable congestion control: the interface, NewReno (RFC 5681, RFC 6582), a registry.

The engine detects the events (new ACK, three duplicate ACKs, partial and full
ACKs during recovery, RTO) and keeps the recovery point; an algorithm only
decides what ``cwnd`` and ``ssthresh`` become. Adding an algorithm (CUBIC in
the next issue) is a subclass plus one entry in :data:`ALGORITHMS`.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from ..time import Duration, Instant


class CongestionControl:
    """The interface every algorithm implements; all sizes are bytes."""

    name = "base"
    __slots__ = ("mss", "cwnd", "ssthresh", "_acked_in_ca")

    def __init__(self, *, mss: int, initial_window_segments: int) -> None:
        self.mss = mss
        # RFC 6928 §2: IW = min(N*MSS, max(2*MSS, 14600)) for N = 10; other N taken as given.
        initial = initial_window_segments * mss
        if initial_window_segments == 10:
            initial = min(initial, max(2 * mss, 14600))
        self.cwnd = max(initial, mss)
        self.ssthresh = 1 << 30  # RFC 5681 §3.1: arbitrarily high at first
        self._acked_in_ca = 0

    def set_mss(self, mss: int) -> None:
        """The effective MSS changed (handshake or PMTU); keep cwnd at least one segment."""
        self.mss = mss
        self.cwnd = max(self.cwnd, mss)

    def on_rtt_sample(self, rtt: Duration) -> None:
        """An RTT measurement; algorithms that need it (CUBIC) override this."""

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
        mss = self.mss
        if self.cwnd < self.ssthresh:
            # RFC 5681 §3.1 (3.2): cwnd += min(N, SMSS) per ACK (RFC 3465's L=2 is
            # "not allowed as part of the standard").
            self.cwnd += min(acked, mss)
            return
        # RFC 5681 §3.1 (3.3), counted in bytes (RFC 3465 §2.1).
        self._acked_in_ca += acked
        if self._acked_in_ca >= self.cwnd:
            self._acked_in_ca -= self.cwnd
            self.cwnd += mss

    def on_enter_recovery(self, flight_size: int, now: Instant) -> None:
        # RFC 5681 §3.2 steps 2 and 3 (equation 4).
        self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.ssthresh + 3 * self.mss
        self._acked_in_ca = 0

    def on_dupack_in_recovery(self) -> None:
        self.cwnd += self.mss  # RFC 5681 §3.2 step 4

    def on_partial_ack(self, acked: int) -> None:
        # RFC 6582 §3.2 step 5: deflate by the amount acked, add back one MSS if >= MSS.
        self.cwnd = max(self.cwnd - acked, self.mss)
        if acked >= self.mss:
            self.cwnd += self.mss

    def on_exit_recovery(self, flight_size: int) -> None:
        # RFC 6582 §3.2 step 6, option (1) with the burst-avoiding minimum.
        self.cwnd = max(min(self.ssthresh, flight_size + self.mss), self.mss)

    def on_rto(self, flight_size: int, *, first: bool) -> None:
        # RFC 5681 §3.1 (4) and §5: ssthresh only on the first timeout of a series.
        if first:
            self.ssthresh = max(flight_size // 2, 2 * self.mss)
        self.cwnd = self.mss
        self._acked_in_ca = 0


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
