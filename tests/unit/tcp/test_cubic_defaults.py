"""CUBIC as the default congestion control, and the RFC 9438 rules the others leave out."""

from __future__ import annotations

from simtcp.tcp import TcpConfig
from simtcp.tcp.congestion import NewReno, create
from simtcp.tcp.cubic import ALPHA_DEN, ALPHA_NUM, Cubic
from simtcp.time import MILLISECOND

MSS = 1000


def test_cubic_is_the_default_and_newreno_one_option_away() -> None:
    config = TcpConfig()
    assert config.congestion_control == "cubic"
    assert config.prr and config.hystart
    default = create(config.congestion_control, mss=MSS, initial_window_segments=10)
    assert isinstance(default, Cubic)
    other = create("newreno", mss=MSS, initial_window_segments=10)
    assert isinstance(other, NewReno) and not isinstance(other, Cubic)


def test_multiplicative_decrease_uses_the_flight_not_cwnd() -> None:
    # RFC 9438 §4.6: ssthresh = flight_size * beta_cubic, at least 2 SMSS;
    # W_max and cwnd_prior remember cwnd.
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.cwnd = 100 * MSS
    cubic.on_enter_recovery(60 * MSS, now=0)  # application-limited: 60 in flight
    assert cubic.ssthresh == 42 * MSS
    assert cubic.w_max == 100 * MSS and cubic.cwnd_prior == 100 * MSS
    small = Cubic(mss=MSS, initial_window_segments=10)
    small.on_enter_recovery(2 * MSS, now=0)
    assert small.ssthresh == 2 * MSS


def test_reno_friendly_alpha_becomes_one_at_cwnd_prior() -> None:
    # RFC 9438 §4.3: W_est grows by alpha_cubic = 3(1-beta)/(1+beta) segments per
    # window of ACKs until it reaches cwnd_prior, then by one segment (Reno).
    cubic = Cubic(mss=MSS, initial_window_segments=10)
    cubic.cwnd = 100 * MSS
    cubic.on_enter_recovery(100 * MSS, now=0)
    cubic.on_exit_recovery(100 * MSS)
    cubic.on_rtt_sample(MILLISECOND)
    cubic.on_ack(MSS, 70 * MSS, now=0)  # starts the epoch: W_est = cwnd_epoch = 70
    start = cubic.w_est
    for _ in range(69):  # the rest of one window of ACKs
        cubic.on_ack(MSS, 70 * MSS, now=0)
    alpha = MSS * ALPHA_NUM // ALPHA_DEN  # 0.53 SMSS per window
    assert abs((cubic.w_est - start) - alpha) <= MSS // 50
    cubic.w_est = cubic.cwnd_prior  # reached: alpha is one from now on
    before = cubic.w_est
    for _ in range(100):  # one window of ACKs at 100 segments
        cubic.on_ack(MSS, 100 * MSS, now=0)
    assert abs((cubic.w_est - before) - MSS) <= MSS // 50
    assert cubic.cwnd >= cubic.w_est  # the Reno-friendly region sets cwnd
