"""HyStart++ (RFC 9406): leave slow start when the RTT grows, before a loss does.

Slow start doubles cwnd every round trip until a loss, by which time the
bottleneck queue (or the host's own egress queue) has overflowed by up to a
window's worth. HyStart++ watches the smallest RTT of each round (RFC 9406
§4.2: at least ``N_RTT_SAMPLE`` samples): when it rises by more than
``RttThresh`` over the previous round's, the queue is building, and slow
start gives way to Conservative Slow Start (CSS), which grows a quarter as
fast; after ``CSS_ROUNDS`` rounds of CSS, congestion avoidance begins
(ssthresh = cwnd). An RTT that falls back below the baseline during CSS
means the rise was noise: slow start resumes.

A pure object: the congestion control feeds it RTT samples and the ACKs of
slow start (with SND.NXT, to know when a round ends) and asks for the growth
divisor; it only runs in the initial slow start (RFC 9406 §4.3).
"""

from __future__ import annotations

from ..time import MILLISECOND, Duration

MIN_RTT_THRESH: Duration = 4 * MILLISECOND
MAX_RTT_THRESH: Duration = 16 * MILLISECOND
MIN_RTT_DIVISOR = 8
N_RTT_SAMPLE = 8
CSS_GROWTH_DIVISOR = 4
CSS_ROUNDS = 5
HYSTART_L_SEGMENTS = 8
"""L of RFC 9406 §4.2 for a sender that does not pace: slow start adds min(N, L * SMSS)."""


class HyStart:
    """RFC 9406 §4.2's state for one connection's initial slow start."""

    __slots__ = (
        "window_end",
        "last_round_min_rtt",
        "current_round_min_rtt",
        "rtt_sample_count",
        "css_baseline_min_rtt",
        "css_rounds",
        "pending_rtt",
        "exited",
    )

    def __init__(self) -> None:
        self.window_end: int | None = None
        """SND.NXT when the current round began; the ACK that covers it ends the round."""
        self.last_round_min_rtt: Duration | None = None  # None: infinity
        self.current_round_min_rtt: Duration | None = None
        self.rtt_sample_count = 0
        self.css_baseline_min_rtt: Duration | None = None
        """Set while in CSS: the round minimum that triggered it."""
        self.css_rounds = 0
        self.pending_rtt: Duration | None = None
        """The smallest RTT sample since the last ACK was counted (samples come first)."""
        self.exited = False
        """CSS ran its rounds: congestion avoidance takes over (ssthresh = cwnd)."""

    @property
    def in_css(self) -> bool:
        return self.css_baseline_min_rtt is not None

    def on_rtt_sample(self, rtt: Duration) -> None:
        if self.pending_rtt is None or rtt < self.pending_rtt:
            self.pending_rtt = rtt

    def on_ack(self, ack: int, snd_nxt: int) -> int:
        """An ACK of new data in slow start; returns the growth divisor (1, or
        ``CSS_GROWTH_DIVISOR`` in CSS), or 0 when slow start must end now."""
        if self.window_end is None or ack >= self.window_end:
            self._new_round(snd_nxt)
        rtt = self.pending_rtt
        if rtt is not None:
            self.pending_rtt = None
            current = self.current_round_min_rtt
            if current is None or rtt < current:
                self.current_round_min_rtt = rtt
            self.rtt_sample_count += 1
        if self.exited:
            return 0
        if self.in_css:
            return self._css_check()
        self._slow_start_check()
        return CSS_GROWTH_DIVISOR if self.in_css else 1

    def _new_round(self, snd_nxt: int) -> None:
        """RFC 9406 §4.2: at the start of each round of slow start and CSS."""
        self.last_round_min_rtt = self.current_round_min_rtt
        self.current_round_min_rtt = None
        self.rtt_sample_count = 0
        self.window_end = snd_nxt
        if self.in_css:
            self.css_rounds += 1
            if self.css_rounds >= CSS_ROUNDS:
                self.exited = True  # §4.2: CSS_ROUNDS rounds of CSS end slow start

    def _slow_start_check(self) -> None:
        """Standard slow start: a round whose minimum RTT rose by RttThresh starts CSS."""
        last, current = self.last_round_min_rtt, self.current_round_min_rtt
        if self.rtt_sample_count < N_RTT_SAMPLE or last is None or current is None:
            return
        rtt_thresh = max(MIN_RTT_THRESH, min(last // MIN_RTT_DIVISOR, MAX_RTT_THRESH))
        if current >= last + rtt_thresh:
            self.css_baseline_min_rtt = current
            self.css_rounds = 0

    def _css_check(self) -> int:
        """CSS: back to slow start when the RTT falls below the baseline (a false exit)."""
        current = self.current_round_min_rtt
        baseline = self.css_baseline_min_rtt
        if (
            self.rtt_sample_count >= N_RTT_SAMPLE
            and current is not None
            and baseline is not None
            and current < baseline
        ):
            self.css_baseline_min_rtt = None
            return 1
        return CSS_GROWTH_DIVISOR
