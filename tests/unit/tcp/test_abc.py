"""Appropriate Byte Counting (RFC 3465) in NewReno and CUBIC, and its engine wiring.

Slow start grows cwnd by min(N, L) per ACK of N new bytes (RFC 3465 §2.2), L
being ``CongestionControl.abc_limit`` (one SMSS when 0: RFC 5681 §3.1 equation
3); one ACK never takes cwnd further past ssthresh than RFC 5681's min(N, SMSS)
would, and after an RTO L is one SMSS until slow start ends (RFC 3465 §2.3).
Congestion avoidance counts bytes (RFC 3465 §2.1): how many ACKs carry them
does not matter.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.errors import ConfigError
from simtcp.tcp import TcpConfig
from simtcp.tcp.congestion import CongestionControl, NewReno
from simtcp.tcp.cubic import Cubic
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK

from .scenario import Scenario

MSS = 1000


def _algorithm(name: str, *, abc_limit: int = 0) -> CongestionControl:
    factory = NewReno if name == "newreno" else Cubic
    return factory(mss=MSS, initial_window_segments=10, abc_limit=abc_limit)


ALGORITHMS = ("newreno", "cubic")


@pytest.mark.parametrize("name", ALGORITHMS)
@pytest.mark.parametrize(
    ("acked", "limit", "growth"),
    [
        (44 * MSS, 45 * MSS, 44 * MSS),  # a 44-segment stretch ACK counts whole under L = 45
        (44 * MSS, 2 * MSS, 2 * MSS),  # RFC 3465 §2.3's L = 2*SMSS
        (44 * MSS, 0, MSS),  # no limit set: RFC 5681 §3.1, min(N, SMSS)
        (44 * MSS, MSS, MSS),
        (2 * MSS, 45 * MSS, 2 * MSS),  # a delayed ACK of two segments
        (500, 45 * MSS, 500),  # N below SMSS: N (RFC 5681 §3.1 too)
        (3 * MSS + 7, 3 * MSS, 3 * MSS),
    ],
)
def test_stretch_ack_in_slow_start_grows_cwnd_by_min_of_n_and_l(
    name: str, acked: int, limit: int, growth: int
) -> None:
    cc = _algorithm(name, abc_limit=limit)
    before = cc.cwnd
    cc.on_ack(acked, before, 0)
    assert cc.cwnd == before + growth


@pytest.mark.parametrize("name", ALGORITHMS)
def test_byte_counting_stops_at_ssthresh_plus_what_rfc5681_allows(name: str) -> None:
    cc = _algorithm(name, abc_limit=45 * MSS)
    cc.ssthresh = 20 * MSS + 300
    cc.on_ack(30 * MSS, cc.cwnd, 0)
    assert cc.cwnd == 20 * MSS + 300  # capped at ssthresh, not 40 * MSS
    cc.ssthresh = cc.cwnd + 200  # one standard increase (1000) would pass ssthresh ...
    before = cc.cwnd
    cc.on_ack(30 * MSS, before, 0)
    assert cc.cwnd == before + MSS  # ... so RFC 5681 §3.1's overshoot, and no more


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(ALGORITHMS),
    segments=st.integers(1, 60),
    cwnd=st.integers(MSS, 200 * MSS),
    ssthresh=st.integers(2 * MSS, 400 * MSS),
    acked=st.integers(1, 100 * MSS),
)
def test_slow_start_increase_bounds(
    name: str, segments: int, cwnd: int, ssthresh: int, acked: int
) -> None:
    cc = _algorithm(name, abc_limit=segments * MSS)
    cc.cwnd, cc.ssthresh = cwnd, ssthresh
    if cwnd >= ssthresh:
        return
    cc.on_ack(acked, cwnd, 0)
    increase = cc.cwnd - cwnd
    standard = min(acked, MSS)  # RFC 5681 §3.1 equation 3
    assert standard <= increase <= max(min(acked, segments * MSS), standard)
    assert cc.cwnd <= max(ssthresh, cwnd + standard)
    if cwnd + min(acked, segments * MSS) <= ssthresh:
        assert increase == min(acked, segments * MSS)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_slow_start_after_an_rto_counts_one_smss_per_ack_until_ssthresh(name: str) -> None:
    cc = _algorithm(name, abc_limit=45 * MSS)
    cc.cwnd = 40 * MSS
    cc.on_rto(40 * MSS, first=True)
    assert cc.cwnd == MSS
    cc.on_ack(10 * MSS, MSS, SECOND)
    assert cc.cwnd == 2 * MSS  # RFC 3465 §2.3: L = 1*SMSS after a timeout
    cc.cwnd = cc.ssthresh
    cc.on_ack(MSS, cc.cwnd, 2 * SECOND)  # congestion avoidance: that slow start is over
    cc.cwnd, cc.ssthresh = 10 * MSS, 100 * MSS
    cc.on_ack(10 * MSS, cc.cwnd, 3 * SECOND)
    assert cc.cwnd == 20 * MSS  # a later slow start counts bytes again


def test_recovery_ends_the_post_rto_limit() -> None:
    cc = _algorithm("newreno", abc_limit=45 * MSS)
    cc.on_rto(40 * MSS, first=True)
    cc.on_enter_recovery(8 * MSS, 0)
    cc.on_exit_recovery(2 * MSS)
    cc.ssthresh = 100 * MSS
    before = cc.cwnd
    cc.on_ack(10 * MSS, before, 0)
    assert cc.cwnd == before + 10 * MSS


def _newreno_in_avoidance(cwnd: int) -> NewReno:
    cc = NewReno(mss=MSS, initial_window_segments=10, abc_limit=45 * MSS)
    cc.cwnd, cc.ssthresh = cwnd, cwnd
    return cc


@pytest.mark.parametrize("per_ack", [MSS, 2 * MSS, 7 * MSS, 9 * MSS, 20 * MSS])
def test_newreno_avoidance_counts_bytes_not_acks(per_ack: int) -> None:
    # RFC 3465 §2.1: one SMSS per cwnd of bytes acknowledged, however they are split.
    cc = _newreno_in_avoidance(20 * MSS)
    acked = 0
    while acked < 20 * MSS + 21 * MSS + 22 * MSS:  # three windows' worth
        cc.on_ack(per_ack, cc.cwnd, 0)
        acked += per_ack
    assert cc.cwnd == 23 * MSS


def test_newreno_avoidance_stretch_ack_of_a_window_adds_one_smss() -> None:
    cc = _newreno_in_avoidance(20 * MSS)
    cc.on_ack(20 * MSS, 20 * MSS, 0)
    assert cc.cwnd == 21 * MSS  # RFC 5681 §3.1's SMSS*SMSS/cwnd per ACK would give +50 bytes


def _cubic_in_avoidance() -> Cubic:
    cubic = Cubic(mss=MSS, initial_window_segments=10, abc_limit=45 * MSS)
    cubic.cwnd = 100 * MSS
    cubic.on_enter_recovery(100 * MSS, 0)  # W_max 100 MSS, ssthresh 70 MSS
    cubic.on_exit_recovery(70 * MSS)
    cubic.on_rtt_sample(20 * MILLISECOND)
    assert cubic.cwnd == cubic.ssthresh == 70 * MSS
    return cubic


@pytest.mark.parametrize("pieces", [2, 5, 16])
def test_cubic_avoidance_counts_bytes_not_acks(pieces: int) -> None:
    # RFC 9438 §4.3-§4.5 grow per segment acknowledged (target - cwnd)/cwnd and
    # alpha/cwnd: a stretch ACK of 16 segments grows cwnd about as much as 16 ACKs.
    now = 0
    one, many = _cubic_in_avoidance(), _cubic_in_avoidance()
    for _ in range(30):
        now += 20 * MILLISECOND
        one.on_ack(16 * MSS, one.cwnd, now)
        for _ in range(pieces):
            many.on_ack(16 * MSS // pieces, many.cwnd, now)
    assert one.cwnd > 75 * MSS  # it grew well beyond a few bytes per ACK
    assert abs(one.cwnd - many.cwnd) <= MSS


def test_config_rejects_a_negative_limit() -> None:
    with pytest.raises(ConfigError):
        TcpConfig(abc_limit_segments=-1)


@pytest.mark.parametrize(
    ("segments", "hystart", "new_segments"),
    [(1, False, 11), (3, False, 13), (45, False, 20), (1, True, 11), (45, True, 20)],
)
def test_engine_applies_the_configured_limit_to_a_stretch_ack(
    segments: int, hystart: bool, new_segments: int
) -> None:
    """One ACK of the whole initial window (10 segments) lets 10 + min(10, L) go; with
    HyStart++ but without SACK, L stays the configured one (see test_hystart for 8)."""
    config = TcpConfig(
        window_scaling=False,
        timestamps=False,
        sack=False,
        rack=False,
        abc_limit_segments=segments,
        hystart=hystart,
    )
    scenario = Scenario(config=config)
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"d" * 100_000, now=scenario.now)
    flight = scenario.sent()
    assert len(flight) == 10
    end = flight[-1].seq + len(flight[-1].payload)
    replies = scenario.send(ACK, ack=end, window=65535)
    assert sum(len(segment.payload) for segment in replies) == new_segments * 1460


@pytest.mark.parametrize("config", [TcpConfig(), TcpConfig(abc_limit_segments=0)])
def test_engine_default_and_route_limit_without_tso_are_rfc5681(config: TcpConfig) -> None:
    """The default (1), and 0 on a route without TSO: L = SMSS, one more per ACK."""
    scenario = Scenario(
        config=replace(
            config, window_scaling=False, timestamps=False, sack=False, rack=False, hystart=False
        )
    )
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"d" * 100_000, now=scenario.now)
    flight = scenario.sent()
    end = flight[-1].seq + len(flight[-1].payload)
    replies = scenario.send(ACK, ack=end, window=65535)
    assert sum(len(segment.payload) for segment in replies) == 11 * 1460
