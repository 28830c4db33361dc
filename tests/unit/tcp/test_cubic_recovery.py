"""CUBIC when the retransmission timer fires during NewReno fast recovery.

RFC 5681 §3.2 step 4 inflates cwnd by one SMSS per duplicate ACK, so by the
time an RTO ends a recovery without SACK, SND.MAX - SND.UNA and cwnd count the
data sent past the holes, not what the path holds. The RTO belongs to the
congestion event recovery already answered (RFC 9438 §4.6), so it keeps the
ssthresh, W_max and cwnd_prior of that event, and only lowers ssthresh when
beta * FlightSize is smaller (RFC 5681 §3.1: "no more than" equation 4, with
beta_cubic per RFC 9438 §4.8).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.tcp.cubic import Cubic
from simtcp.time import SECOND

MSS = 1000


def _recovering(cwnd_segments: int, *, dupacks: int) -> Cubic:
    """A CUBIC in fast recovery entered at ``cwnd_segments``, inflated by ``dupacks``."""
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.cwnd = cwnd_segments * MSS
    cubic.on_enter_recovery(cwnd_segments * MSS, now=0)
    for _ in range(dupacks):
        cubic.on_dupack_in_recovery()  # RFC 5681 §3.2 step 4
    return cubic


def test_rto_in_recovery_keeps_the_recovery_ssthresh() -> None:
    cubic = _recovering(100, dupacks=130)
    assert cubic.cwnd == 203 * MSS  # 70 + 3 + 130: inflated well past the pre-loss window
    cubic.on_rto(200 * MSS, first=True)  # FlightSize inflated too
    assert cubic.cwnd == MSS  # RFC 5681 §3.1 loss window
    assert cubic.ssthresh == 70 * MSS  # not 0.7 * 200 segments = 140, twice the path
    assert cubic.w_max == 100 * MSS  # the window before the loss, not the inflated one
    assert cubic.cwnd_prior == 100 * MSS


def test_rto_in_recovery_with_a_small_flight_still_obeys_equation_4() -> None:
    cubic = _recovering(100, dupacks=0)
    cubic.on_rto(50 * MSS, first=True)
    assert cubic.ssthresh == 35 * MSS  # no more than beta_cubic * FlightSize
    assert cubic.w_max == 100 * MSS


def test_rto_in_recovery_never_goes_below_two_segments() -> None:
    cubic = _recovering(4, dupacks=0)
    cubic.on_rto(MSS, first=True)
    assert cubic.ssthresh == 2 * MSS


def test_rto_after_a_full_ack_is_a_new_congestion_event() -> None:
    cubic = _recovering(100, dupacks=20)
    cubic.on_exit_recovery(80 * MSS)
    cubic.cwnd = 90 * MSS
    cubic.on_rto(90 * MSS, first=True)
    assert cubic.ssthresh == 63 * MSS  # 0.7 * FlightSize (RFC 9438 §4.6, §4.8)
    assert cubic.w_max == 90 * MSS * 17 // 20  # fast convergence: 90 < W_max of 100
    assert cubic.cwnd_prior == 90 * MSS


def test_rto_after_new_acks_outside_recovery_is_a_new_congestion_event() -> None:
    # A tail loss probe's repair (RFC 8985 §7.4.2) reduces without engine recovery;
    # the next ordinary ACK ends that episode.
    cubic = _recovering(100, dupacks=0)
    cubic.cwnd = cubic.ssthresh
    cubic.on_ack(MSS, 70 * MSS, now=SECOND)
    window = cubic.cwnd
    cubic.on_rto(150 * MSS, first=True)
    assert cubic.ssthresh == 105 * MSS
    assert cubic.cwnd_prior == window


def test_backoffs_after_an_rto_in_recovery_keep_ssthresh() -> None:
    cubic = _recovering(100, dupacks=130)
    cubic.on_rto(200 * MSS, first=True)
    cubic.on_rto(200 * MSS, first=False)
    assert cubic.ssthresh == 70 * MSS
    assert cubic.cwnd == MSS


def test_second_rto_series_after_an_rto_in_recovery_is_a_new_event() -> None:
    cubic = _recovering(100, dupacks=130)
    cubic.on_rto(200 * MSS, first=True)
    cubic.on_ack(MSS, 10 * MSS, now=SECOND)  # slow start again
    cubic.on_rto(60 * MSS, first=True)
    assert cubic.ssthresh == 42 * MSS


def test_after_an_rto_in_recovery_avoidance_starts_with_k_zero() -> None:
    cubic = _recovering(100, dupacks=130)
    cubic.on_rto(200 * MSS, first=True)
    cubic.cwnd = cubic.ssthresh  # slow start done
    cubic.on_ack(MSS, cubic.cwnd, now=5 * SECOND)
    # RFC 9438 §4.8: K = 0 and W_max = cwnd at the start of the stage.
    assert cubic.k_us == 0
    assert cubic.w_max == 70 * MSS
    assert cubic.epoch_start == 5 * SECOND


@given(
    st.integers(min_value=2, max_value=5000),
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=1, max_value=10000),
    st.booleans(),
)
@settings(max_examples=200, deadline=None)
def test_rto_ssthresh_never_exceeds_equation_4(
    window: int, dupacks: int, flight: int, recovering: bool
) -> None:
    cubic = _recovering(window, dupacks=dupacks)
    before = cubic.ssthresh
    if not recovering:
        cubic.on_exit_recovery(window * MSS)
    cubic.on_rto(flight * MSS, first=True)
    # RFC 5681 §3.1 with beta_cubic (RFC 9438 §4.8): at most max(0.7 * FlightSize, 2 SMSS).
    assert cubic.ssthresh <= max(flight * MSS * 7 // 10, 2 * MSS)
    if recovering:
        assert cubic.ssthresh <= before  # one congestion event, one reduction (RFC 9438 §4.6)
