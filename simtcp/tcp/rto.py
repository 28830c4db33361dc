"""The retransmission timeout estimator of RFC 6298, in integer microseconds."""

from __future__ import annotations

from ..time import MICROSECOND, SECOND, Duration

_SYN_TIMEOUT_RTO: Duration = 3 * SECOND
"""RFC 6298 §5.7: the RTO once data flows after the SYN (or SYN-ACK) timed out."""

_CLOCK_GRANULARITY: Duration = 1000 * MICROSECOND
"""G of RFC 6298 §2: the granularity of our (simulated or real) clock, taken as 1 ms."""


class RtoEstimator:
    """SRTT, RTTVAR and RTO (RFC 6298 §2), with exponential backoff (§5.5)."""

    __slots__ = ("srtt", "rttvar", "_base_rto", "backoff", "min_rto", "max_rto")

    def __init__(self, *, initial_rto: Duration, min_rto: Duration, max_rto: Duration) -> None:
        self.srtt: Duration | None = None
        self.rttvar: Duration = 0
        self._base_rto = initial_rto
        self.backoff = 0
        self.min_rto = min_rto
        self.max_rto = max_rto

    @property
    def rto(self) -> Duration:
        """The current timeout, backoff included, clamped to [min_rto, max_rto] (§2.4, §2.5)."""
        rto = max(self._base_rto, self.min_rto)
        rto = rto << self.backoff if self.backoff < 32 else self.max_rto
        return min(rto, self.max_rto)

    def sample(self, rtt: Duration) -> None:
        """Take one RTT measurement (Karn's rule is the caller's job, RFC 6298 §3)."""
        rtt = max(rtt, 1)
        srtt = self.srtt
        if srtt is None:
            # RFC 6298 §2.2: the first measurement.
            srtt = rtt
            self.rttvar = rtt // 2
        else:
            # RFC 6298 §2.3 with alpha = 1/8, beta = 1/4.
            self.rttvar = (3 * self.rttvar + abs(srtt - rtt)) // 4
            srtt = (7 * srtt + rtt) // 8
        self.srtt = srtt
        self._base_rto = srtt + max(_CLOCK_GRANULARITY, 4 * self.rttvar)
        # RFC 6298 §5.7 allows a fresh sample to end the backoff.
        self.backoff = 0

    def back_off(self) -> None:
        """Double the timeout after it expired (RFC 6298 §5.5)."""
        if self.rto < self.max_rto:
            self.backoff += 1

    def reset_backoff(self) -> None:
        self.backoff = 0

    def handshake_done(self, *, syn_timed_out: bool) -> None:
        """The connection is established: end the SYN's backoff.

        RFC 6298 §5.7: if the timer expired during the handshake and no RTT sample
        was taken, the RTO is re-initialised to 3 s (when it was below that) for
        the data that follows.
        """
        self.backoff = 0
        if syn_timed_out and self.srtt is None and self._base_rto < _SYN_TIMEOUT_RTO:
            self._base_rto = _SYN_TIMEOUT_RTO
