"""CUBIC congestion control (RFC 9438) behind the same interface as NewReno.

All arithmetic is on integers: windows in bytes, time in microseconds, so the
same inputs give the same windows on every machine. With ``C = 0.4`` segments
per second cubed and ``t`` in microseconds, RFC 9438 §4.2's window

    W_cubic(t) = C * (t - K)**3 + W_max            (segments, t in seconds)

becomes, in bytes, ``W_max + 2 * mss * (t_us - K_us)**3 // (5 * 10**18)``.

Recovery follows the engine's RFC 5681 / RFC 6582 shape (inflation by one MSS
per duplicate ACK, deflation on partial ACKs) exactly like :class:`NewReno`;
only the multiplicative decrease (beta 0.7, RFC 9438 §4.6), W_max with fast
convergence (§4.7), and the growth in congestion avoidance (§4.2-§4.5,
including the Reno-friendly estimate of §4.3) differ; slow start is the shared
:meth:`CongestionControl.slow_start` (RFC 9438 §4.10: RFC 5681 §3.1, with RFC
3465 byte counting when ``abc_limit`` allows). A timeout that ends a
fast recovery is part of the congestion event recovery already answered: it
keeps that event's ssthresh and W_max instead of taking them from the window
that duplicate-ACK inflation pumped up (see :meth:`Cubic._rto_in_recovery`).

Registration: ``congestion.ALGORITHMS`` is owned by another module; the one
entry to add there is ``ALGORITHMS["cubic"] = cubic_factory`` through a late
import (``cubic`` subclasses ``CongestionControl``, so ``congestion`` may not
import this module at its top).
"""

from __future__ import annotations

from ..time import Duration, Instant
from .congestion import CongestionControl

BETA_NUM, BETA_DEN = 7, 10
"""beta_cubic = 0.7 (RFC 9438 §4.6)."""
C_NUM, C_DEN = 2, 5
"""C = 0.4 (RFC 9438 §5)."""
ALPHA_NUM, ALPHA_DEN = 9, 17
"""alpha_cubic = 3 * (1 - beta) / (1 + beta) = 0.9 / 1.7 (RFC 9438 §4.3)."""
_US3_PER_S3 = 10**18


def integer_cbrt(value: int) -> int:
    """The largest integer ``r`` with ``r**3 <= value`` (``value >= 0``)."""
    if value <= 0:
        return 0
    root = int(float(value) ** (1 / 3) + 0.5)  # then corrected exactly below
    while root**3 > value:
        root -= 1
    while (root + 1) ** 3 <= value:
        root += 1
    return root


class Cubic(CongestionControl):
    """RFC 9438 CUBIC with fast convergence and the Reno-friendly region."""

    name = "cubic"
    __slots__ = (
        "w_max",
        "cwnd_prior",
        "epoch_start",
        "cwnd_epoch",
        "k_us",
        "w_est",
        "rtt",
        "fast_convergence",
        "_cubic_frac",
        "_est_frac",
        "_after_rto",
        "_recovering",
    )

    def __init__(
        self,
        *,
        mss: int,
        initial_window_segments: int,
        fast_convergence: bool = True,
        abc_limit: int = 0,
    ) -> None:
        super().__init__(
            mss=mss, initial_window_segments=initial_window_segments, abc_limit=abc_limit
        )
        self.w_max = 0
        """W_max: the window just before the last reduction, fast convergence applied (bytes)."""
        self.cwnd_prior = 0
        """cwnd_prior of RFC 9438 §4.6: cwnd when the last congestion event happened."""
        self.epoch_start: Instant | None = None
        """t_epoch: when the current congestion avoidance stage began (None: not yet)."""
        self.cwnd_epoch = 0
        self.k_us = 0
        """K of RFC 9438 §4.2, in microseconds."""
        self.w_est = 0
        """W_est of RFC 9438 §4.3, in bytes."""
        self.rtt: Duration = 0
        """The RTT added to ``t`` for the target (RFC 9438 §4.2); see :meth:`on_rtt_sample`."""
        self.fast_convergence = fast_convergence
        self._cubic_frac = 0
        self._est_frac = 0
        self._after_rto = False
        self._recovering = False
        """Between on_enter_recovery and the full ACK (or RTO, or next on_ack) that ends it."""

    # --- what the engine may add: an RTT feed ---------------------------------

    def on_rtt_sample(self, rtt: Duration) -> None:
        """Latest RTT sample; the target looks one RTT ahead (RFC 9438 §4.2)."""
        super().on_rtt_sample(rtt)
        self.rtt = max(rtt, 0)

    # --- the window curve -------------------------------------------------------

    def w_cubic(self, elapsed_us: int) -> int:
        """W_cubic(t) in bytes for ``t = elapsed_us`` since the epoch (RFC 9438 eq. 1)."""
        delta = elapsed_us - self.k_us
        # Truncate toward zero, so W_cubic(0) is never below cwnd_epoch.
        magnitude = C_NUM * self.mss * abs(delta) ** 3 // (C_DEN * _US3_PER_S3)
        return self.w_max + magnitude if delta >= 0 else self.w_max - magnitude

    def _start_epoch(self, now: Instant) -> None:
        """First ACK of a congestion avoidance stage (RFC 9438 §4.2, §4.8 after an RTO)."""
        self.epoch_start = now
        self.cwnd_epoch = self.cwnd
        self._cubic_frac = 0
        self._est_frac = 0
        self.w_est = self.cwnd
        if self._after_rto or self.w_max <= self.cwnd:
            # §4.8: after a timeout K is 0 and W_max is cwnd at the stage's start;
            # likewise when the window already exceeds W_max (nothing to approach).
            self.k_us = 0
            self.w_max = self.cwnd
            self._after_rto = False
            return
        # K = cbrt((W_max - cwnd_epoch) / C), in seconds -> microseconds.
        self.k_us = integer_cbrt(
            (self.w_max - self.cwnd_epoch) * C_DEN * _US3_PER_S3 // (C_NUM * self.mss)
        )

    # --- the CongestionControl interface ---------------------------------------------

    def on_ack(self, acked: int, flight_size: int, now: Instant) -> None:
        self._recovering = False  # the engine calls on_ack only outside recovery
        if self.cwnd < self.ssthresh:
            # RFC 9438 §4.10: slow start as RFC 5681 §3.1, or RFC 3465 §2.2 byte counting.
            self.slow_start(acked)
            return
        self._slow_start_after_rto = False
        epoch_start = self.epoch_start
        if epoch_start is None:
            self._start_epoch(now)
            epoch_start = now
        elapsed = now - epoch_start
        cwnd = self.cwnd
        self._grow_estimate(acked)
        if self.w_cubic(elapsed) < self.w_est:
            self.cwnd = max(cwnd, self.w_est)  # §4.3: the Reno-friendly region
            return
        # §4.4 / §4.5: concave and convex regions share the per-ACK rule.
        target = self.w_cubic(elapsed + self.rtt)
        if target < cwnd:
            target = cwnd
        elif 2 * target > 3 * cwnd:
            target = cwnd * 3 // 2
        growth = (target - cwnd) * acked + self._cubic_frac
        self.cwnd = cwnd + growth // cwnd
        self._cubic_frac = growth % cwnd

    def _grow_estimate(self, acked: int) -> None:
        """W_est += alpha * segments_acked / cwnd, in bytes (RFC 9438 §4.3)."""
        if self.w_est >= self.cwnd_prior:
            alpha_num, alpha_den = 1, 1
        else:
            alpha_num, alpha_den = ALPHA_NUM, ALPHA_DEN
        growth = alpha_num * acked * self.mss + self._est_frac
        denominator = alpha_den * self.cwnd
        self.w_est += growth // denominator
        self._est_frac = growth % denominator

    def _congestion_event(self, flight_size: int) -> None:
        """RFC 9438 §4.6 and §4.7: remember W_max, cut ssthresh to 0.7 of the flight."""
        cwnd = self.cwnd
        if self.fast_convergence and cwnd < self.w_max:
            self.w_max = cwnd * (BETA_DEN + BETA_NUM) // (2 * BETA_DEN)
        else:
            self.w_max = cwnd
        self.cwnd_prior = cwnd
        self.ssthresh = max(flight_size * BETA_NUM // BETA_DEN, 2 * self.mss)
        self.epoch_start = None
        self._acked_in_ca = 0
        self._slow_start_after_rto = False

    def on_enter_recovery(self, flight_size: int, now: Instant) -> None:
        self._congestion_event(flight_size)
        self._recovering = True
        # Same recovery shape as NewReno (RFC 5681 §3.2 step 3 inflation).
        self.cwnd = self.ssthresh + 3 * self.mss

    def on_dupack_in_recovery(self) -> None:
        self.cwnd += self.mss

    def on_partial_ack(self, acked: int) -> None:
        self.cwnd = max(self.cwnd - acked, self.mss)
        if acked >= self.mss:
            self.cwnd += self.mss

    def on_exit_recovery(self, flight_size: int) -> None:
        self._recovering = False
        self.cwnd = max(min(self.ssthresh, flight_size + self.mss), self.mss)
        self.epoch_start = None  # the next ACK starts a new epoch from this window

    def on_rto(self, flight_size: int, *, first: bool) -> None:
        # RFC 9438 §4.8: cwnd as Reno (one segment), ssthresh with beta_cubic, and
        # the next avoidance stage starts with K = 0 from its own window.
        if first and self._recovering:
            self._rto_in_recovery(flight_size)
        elif first:
            self._congestion_event(flight_size)
        self._recovering = False
        self.cwnd = self.mss
        self.epoch_start = None
        self._after_rto = True
        self._slow_start_after_rto = True  # RFC 3465 §2.3: L = SMSS until ssthresh

    def _rto_in_recovery(self, flight_size: int) -> None:
        """The timer expired before fast recovery's full ACK: the same congestion event.

        Recovery already cut ssthresh to beta * FlightSize and recorded W_max and
        cwnd_prior from the window before the loss (RFC 9438 §4.6, §4.7). Since
        then RFC 5681 §3.2 step 4 inflation has let new data out for every
        duplicate ACK, so SND.MAX - SND.UNA (and the inflated cwnd) now count
        bytes the receiver already holds above the holes: without SACK it can
        reach the whole send buffer, and 0.7 of it is far above the path. Taking
        W_max, cwnd_prior and ssthresh again from those figures would restart
        slow start towards a window that the last overshoot proved too large, and
        NewReno's one repair per RTT (RFC 6582 §3.2 step 5) ends in another RTO.
        RFC 5681 §3.1 only bounds ssthresh from above after a timeout ("no more
        than" equation 4, with beta_cubic for CUBIC per RFC 9438 §4.8), so the
        lower of the two is kept and W_max / cwnd_prior stay those of the loss.
        """
        bound = max(flight_size * BETA_NUM // BETA_DEN, 2 * self.mss)
        self.ssthresh = min(self.ssthresh, bound)
        self._acked_in_ca = 0


def cubic_factory(*, mss: int, initial_window_segments: int) -> CongestionControl:
    """The registry entry for ``congestion_control="cubic"``."""
    return Cubic(mss=mss, initial_window_segments=initial_window_segments)
