"""CUBIC (RFC 9438): the window curve, its regions, the 0.7 decrease, RTO behaviour."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.congestion import CongestionControl
from simtcp.tcp.cubic import Cubic, cubic_factory, integer_cbrt
from simtcp.time import MILLISECOND, SECOND

MSS = 1000


def _in_avoidance(cwnd_segments: int) -> Cubic:
    """A CUBIC that had a loss at ``cwnd_segments`` and sits in congestion avoidance."""
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.cwnd = cwnd_segments * MSS
    cubic.on_enter_recovery(cwnd_segments * MSS, now=0)
    cubic.on_exit_recovery(cwnd_segments * MSS)
    return cubic


def test_factory_makes_a_congestion_control() -> None:
    cc = cubic_factory(mss=MSS, initial_window_segments=10)
    assert isinstance(cc, CongestionControl)
    assert cc.name == "cubic"
    assert cc.cwnd == 10 * MSS


@given(st.integers(min_value=0, max_value=10**30))
@settings(max_examples=200, deadline=None)
def test_integer_cbrt(value: int) -> None:
    root = integer_cbrt(value)
    assert root**3 <= value < (root + 1) ** 3


def test_loss_reduces_to_seven_tenths_and_remembers_w_max() -> None:
    cubic = _in_avoidance(100)
    assert cubic.ssthresh == 70 * MSS
    assert cubic.cwnd == 70 * MSS
    assert cubic.w_max == 100 * MSS


def test_recovery_inflates_like_newreno() -> None:
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.cwnd = 100 * MSS
    cubic.on_enter_recovery(100 * MSS, now=0)
    assert cubic.cwnd == 73 * MSS
    cubic.on_dupack_in_recovery()
    assert cubic.cwnd == 74 * MSS


def test_fast_convergence_lowers_w_max_on_a_smaller_peak() -> None:
    cubic = _in_avoidance(100)
    cubic.cwnd = 80 * MSS
    cubic.on_enter_recovery(80 * MSS, now=0)
    assert cubic.w_max == 80 * MSS * 17 // 20  # cwnd * (1 + beta) / 2
    assert cubic.ssthresh == 56 * MSS


def test_without_fast_convergence_w_max_is_the_window() -> None:
    cubic = Cubic(mss=MSS, initial_window_segments=10, fast_convergence=False)
    cubic.cwnd = 100 * MSS
    cubic.on_enter_recovery(100 * MSS, now=0)
    cubic.on_exit_recovery(100 * MSS)
    cubic.cwnd = 80 * MSS
    cubic.on_enter_recovery(80 * MSS, now=0)
    assert cubic.w_max == 80 * MSS


def test_k_and_curve_match_the_rfc_formula() -> None:
    cubic = _in_avoidance(100)
    cubic.on_ack(MSS, 70 * MSS, now=1 * SECOND)  # starts the epoch at t = 1 s
    # K = cbrt((W_max - cwnd_epoch) / C) = cbrt(30 / 0.4) seconds.
    expected_k = (30 / 0.4) ** (1 / 3)
    assert abs(cubic.k_us / SECOND - expected_k) < 1e-6
    for t_seconds in (0.0, 1.0, 2.5, expected_k, 5.0, 8.0):
        rfc = 0.4 * (t_seconds - expected_k) ** 3 + 100  # segments
        ours = cubic.w_cubic(round(t_seconds * SECOND)) / MSS
        assert abs(ours - rfc) < 0.01, (t_seconds, ours, rfc)
    assert cubic.w_cubic(cubic.k_us) == 100 * MSS  # the plateau at W_max


def _drive(cubic: Cubic, *, start_us: int, end_us: int, rtt_us: int) -> list[tuple[int, int, int]]:
    """One window of ACKs per RTT (one per MSS); (RTT start, cwnd, W_est) after each RTT."""
    points = []
    now = start_us
    while now < end_us:
        count = cubic.cwnd // MSS
        for index in range(count):  # ACKs spread evenly over the round trip
            cubic.on_ack(MSS, cubic.cwnd, now + index * rtt_us // count)
        points.append((now, cubic.cwnd, cubic.w_est))
        now += rtt_us
    return points


def test_concave_then_plateau_then_convex() -> None:
    cubic = _in_avoidance(1000)  # large window: the cubic curve dominates Reno's
    rtt = 100 * MILLISECOND
    cubic.on_rtt_sample(rtt)
    points = _drive(cubic, start_us=0, end_us=18 * SECOND, rtt_us=rtt)
    k = cubic.k_us
    assert abs(k - 9_085_603) < 2  # cbrt(300 / 0.4) s
    before = [cwnd for t, cwnd, _ in points if t < k - SECOND]
    around = [cwnd for t, cwnd, _ in points if abs(t - k) < 300 * MILLISECOND]
    after = [cwnd for t, cwnd, _ in points if t > k + SECOND]
    growth_before = [b - a for a, b in zip(before, before[1:], strict=False)]
    growth_after = [b - a for a, b in zip(after, after[1:], strict=False)]
    # Concave: growth slows as W_max nears; convex: growth speeds up past it.
    assert all(a >= b for a, b in zip(growth_before, growth_before[1:], strict=False))
    assert all(a <= b for a, b in zip(growth_after, growth_after[1:], strict=False))
    assert growth_before[0] > 5 * growth_before[-1] > 0
    assert growth_after[-1] > 5 * growth_after[0] > 0
    assert all(abs(cwnd - 1000 * MSS) < 3 * MSS for cwnd in around)
    assert before[-1] < 1000 * MSS < after[-1]


def test_cwnd_tracks_the_curve_one_rtt_ahead() -> None:
    cubic = _in_avoidance(1000)
    rtt = 100 * MILLISECOND
    cubic.on_rtt_sample(rtt)
    points = _drive(cubic, start_us=0, end_us=14 * SECOND, rtt_us=rtt)
    for t, cwnd, w_est in points:
        # Each ACK closes 1/cwnd of the gap to W_cubic(t + RTT) (RFC 9438 §4.4, §4.5),
        # so after one RTT of ACKs cwnd lies between the curve now and one RTT ahead.
        assert w_est < cubic.w_cubic(t + rtt)
        assert cubic.w_cubic(t + rtt) - 2 * MSS <= cwnd <= cubic.w_cubic(t + 2 * rtt), (t, cwnd)


def test_reno_friendly_region_with_short_rtt() -> None:
    # With a tiny window and a short RTT, Reno's AIMD outgrows the cubic curve.
    cubic = _in_avoidance(10)
    rtt = 1 * MILLISECOND
    cubic.on_rtt_sample(rtt)
    _drive(cubic, start_us=0, end_us=300 * MILLISECOND, rtt_us=rtt)
    assert cubic.w_cubic(300 * MILLISECOND) < cubic.w_est
    assert cubic.cwnd >= cubic.w_est
    assert cubic.cwnd > 7 * MSS + 100 * MSS  # ~alpha (0.53) then 1 segment per RTT


def test_rto_sets_one_segment_and_restarts_with_k_zero() -> None:
    cubic = _in_avoidance(100)
    cubic.on_rto(70 * MSS, first=True)
    assert cubic.cwnd == MSS
    assert cubic.ssthresh == 49 * MSS
    cubic.on_rto(MSS, first=False)  # a backoff keeps ssthresh
    assert cubic.ssthresh == 49 * MSS
    cubic.cwnd = cubic.ssthresh  # slow start done
    cubic.on_ack(MSS, cubic.cwnd, now=5 * SECOND)
    assert cubic.k_us == 0
    assert cubic.w_max == 49 * MSS
    assert cubic.epoch_start == 5 * SECOND


def test_slow_start_below_ssthresh() -> None:
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.on_ack(MSS, 10 * MSS, now=0)
    assert cubic.cwnd == 11 * MSS
    cubic.on_ack(5 * MSS, 10 * MSS, now=0)
    assert cubic.cwnd == 12 * MSS  # at most 1 SMSS per ACK (RFC 5681 §3.1, RFC 9438 §4.10)


@given(
    st.integers(min_value=4, max_value=2000),
    st.integers(min_value=1, max_value=400),
    st.integers(min_value=1, max_value=200),
)
@settings(max_examples=60, deadline=None)
def test_window_never_shrinks_in_avoidance(loss_at: int, rtt_ms: int, rounds: int) -> None:
    cubic = _in_avoidance(loss_at)
    cubic.on_rtt_sample(rtt_ms * MILLISECOND)
    previous = cubic.cwnd
    now = 0
    for _ in range(rounds):
        cubic.on_ack(MSS, cubic.cwnd, now)
        assert previous <= cubic.cwnd <= previous * 3 // 2 + MSS
        previous = cubic.cwnd
        now += rtt_ms * MILLISECOND // 10
