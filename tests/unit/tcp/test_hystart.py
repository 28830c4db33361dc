"""HyStart++ (RFC 9406 §4.2-§4.3) as a pure object and inside the congestion control."""

from __future__ import annotations

from simtcp.tcp.congestion import INITIAL_SSTHRESH, NewReno
from simtcp.tcp.cubic import Cubic
from simtcp.tcp.hystart import CSS_GROWTH_DIVISOR, CSS_ROUNDS, N_RTT_SAMPLE, HyStart
from simtcp.time import MILLISECOND

MSS = 1000


def _round(hystart: HyStart, start: int, rtt: int, acks: int = N_RTT_SAMPLE) -> list[int]:
    """One round of ``acks`` ACKs (one RTT sample each) starting at byte ``start``;
    SND.NXT runs ``acks`` segments ahead. Returns the divisors answered."""
    divisors = []
    for index in range(acks):
        hystart.on_rtt_sample(rtt)
        ack = start + (index + 1) * MSS
        divisors.append(hystart.on_ack(ack, snd_nxt=ack + acks * MSS))
    return divisors


def _slow_start_rounds(hystart: HyStart, rtts: list[int]) -> tuple[int, list[int]]:
    """Rounds with these minimum RTTs; (next round's start, last round's divisors)."""
    start, divisors = 0, []
    for rtt in rtts:
        divisors = _round(hystart, start, rtt)
        start = hystart.window_end or 0
    return start, divisors


def test_the_round_ends_when_the_ack_covers_window_end() -> None:
    hystart = HyStart()
    hystart.on_rtt_sample(40 * MILLISECOND)
    hystart.on_ack(MSS, snd_nxt=10 * MSS)  # the first ACK starts round one
    assert hystart.window_end == 10 * MSS and hystart.rtt_sample_count == 1
    hystart.on_rtt_sample(41 * MILLISECOND)
    hystart.on_ack(5 * MSS, snd_nxt=14 * MSS)
    assert hystart.window_end == 10 * MSS  # still round one
    assert hystart.current_round_min_rtt == 40 * MILLISECOND
    hystart.on_rtt_sample(42 * MILLISECOND)
    hystart.on_ack(10 * MSS, snd_nxt=20 * MSS)  # covers windowEnd: round two
    assert hystart.window_end == 20 * MSS
    assert hystart.last_round_min_rtt == 40 * MILLISECOND
    assert hystart.current_round_min_rtt == 42 * MILLISECOND
    assert hystart.rtt_sample_count == 1


def test_rtt_rise_below_the_threshold_keeps_slow_start() -> None:
    # RttThresh = max(4 ms, min(lastRoundMinRTT / 8, 16 ms)) = 5 ms for 40 ms.
    hystart = HyStart()
    _, divisors = _slow_start_rounds(hystart, [40 * MILLISECOND, 44 * MILLISECOND + 999])
    assert divisors == [1] * N_RTT_SAMPLE and not hystart.in_css


def test_rtt_rise_by_the_threshold_enters_css_after_n_rtt_sample_samples() -> None:
    hystart = HyStart()
    _, divisors = _slow_start_rounds(hystart, [40 * MILLISECOND, 45 * MILLISECOND])
    # Not before the eighth sample of the round (N_RTT_SAMPLE), then CSS.
    assert divisors == [1] * (N_RTT_SAMPLE - 1) + [CSS_GROWTH_DIVISOR]
    assert hystart.css_baseline_min_rtt == 45 * MILLISECOND


def test_threshold_is_clamped_to_4_and_16_ms() -> None:
    low = HyStart()
    _slow_start_rounds(low, [10 * MILLISECOND, 13 * MILLISECOND + 999])
    assert not low.in_css  # 10/8 = 1.25 ms is raised to MIN_RTT_THRESH, 4 ms
    low = HyStart()
    _slow_start_rounds(low, [10 * MILLISECOND, 14 * MILLISECOND])
    assert low.in_css
    high = HyStart()
    _slow_start_rounds(high, [400 * MILLISECOND, 415 * MILLISECOND + 999])
    assert not high.in_css  # 400/8 = 50 ms is capped at MAX_RTT_THRESH, 16 ms
    high = HyStart()
    _slow_start_rounds(high, [400 * MILLISECOND, 416 * MILLISECOND])
    assert high.in_css


def test_too_few_samples_never_leave_slow_start() -> None:
    hystart = HyStart()
    start = 0
    for rtt in (40, 80, 160):
        _round(hystart, start, rtt * MILLISECOND, acks=N_RTT_SAMPLE - 1)
        start = hystart.window_end or 0
    assert not hystart.in_css


def test_css_rtt_below_the_baseline_resumes_slow_start() -> None:
    hystart = HyStart()
    start, _ = _slow_start_rounds(hystart, [40 * MILLISECOND, 50 * MILLISECOND])
    assert hystart.in_css
    divisors = _round(hystart, start, 49 * MILLISECOND)  # below cssBaselineMinRtt
    assert divisors[-1] == 1 and not hystart.in_css


def test_css_rounds_end_slow_start() -> None:
    hystart = HyStart()
    start, _ = _slow_start_rounds(hystart, [40 * MILLISECOND, 50 * MILLISECOND])
    answers = []
    for _ in range(CSS_ROUNDS):
        answers.append(_round(hystart, start, 50 * MILLISECOND)[0])
        start = hystart.window_end or 0
    # The first ACK of each CSS round counts it; the CSS_ROUNDS-th ends slow start.
    assert answers == [CSS_GROWTH_DIVISOR] * (CSS_ROUNDS - 1) + [0]


def _cc_in_css(cc: NewReno | Cubic) -> int:
    """Drive ``cc`` through two rounds whose RTT rises into CSS; return the next ack."""
    cc.start_hystart()
    ack = 0
    for rtt in (40 * MILLISECOND, 50 * MILLISECOND):
        for _ in range(N_RTT_SAMPLE):
            cc.on_rtt_sample(rtt)
            ack += MSS
            cc.hystart_ack(ack, snd_nxt=ack + N_RTT_SAMPLE * MSS)
            cc.on_ack(MSS, 0, now=0)
    return ack


def test_css_grows_cwnd_a_quarter_as_fast_then_hands_over_to_avoidance() -> None:
    for cc in (
        NewReno(mss=MSS, initial_window_segments=10),
        Cubic(mss=MSS, initial_window_segments=10),
    ):
        ack = _cc_in_css(cc)
        assert cc.hystart is not None and cc.hystart.in_css
        before = cc.cwnd
        cc.on_rtt_sample(50 * MILLISECOND)
        cc.hystart_ack(ack + MSS, snd_nxt=ack + 20 * MSS)
        cc.on_ack(MSS, 0, now=0)
        assert cc.cwnd == before + MSS // CSS_GROWTH_DIVISOR
        assert cc.ssthresh == INITIAL_SSTHRESH
        ack += MSS
        for _ in range(CSS_ROUNDS):
            end = cc.hystart.window_end if cc.hystart is not None else ack
            ack = max(ack, end or 0)
            cc.hystart_ack(ack, snd_nxt=ack + 20 * MSS)
            cc.on_ack(MSS, 0, now=0)
        assert cc.hystart is None
        assert cc.ssthresh < INITIAL_SSTHRESH  # ssthresh = cwnd: avoidance from here
        assert cc.cwnd >= cc.ssthresh


def test_only_the_initial_slow_start_uses_hystart() -> None:
    cc = NewReno(mss=MSS, initial_window_segments=10)
    cc.on_rto(20 * MSS, first=True)
    cc.start_hystart()
    assert cc.hystart is None  # RFC 9406 §4.3: after a timeout, standard slow start
    cc = NewReno(mss=MSS, initial_window_segments=10)
    cc.start_hystart()
    assert cc.hystart is not None
    cc.on_enter_recovery(20 * MSS, now=0)
    cc.hystart_ack(MSS, snd_nxt=2 * MSS)
    assert cc.hystart is None  # a loss ended slow start before HyStart did


def _queue_building_transfer(hystart: bool) -> tuple[int, int, int]:
    """2000 segments through a bottleneck of one segment per ms (RTT 20 ms plus the
    queue, which never drops): (ssthresh, cwnd, largest queueing delay in ms) at the end."""
    from simtcp.events import ConnectionAccepted
    from simtcp.tcp import TcpConfig
    from simtcp.wire.tcp import TcpSegment

    from .harness import A_ADDR, B_ADDR, make_pair

    busy_until = [0]
    worst = [0]

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if sender != A_ADDR or not segment.payload:
            return [0]
        leaves_at = max(pair.now, busy_until[0]) + MILLISECOND
        busy_until[0] = leaves_at
        worst[0] = max(worst[0], leaves_at - pair.now)
        return [leaves_at - pair.now]

    config = TcpConfig(hystart=hystart, msl=1_000_000, receive_buffer=4 << 20)
    pair = make_pair(config, config, fault=fault)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    data = bytes(2000 * 1448)
    offset = [0]

    def step() -> None:
        if offset[0] < len(data):
            offset[0] += pair.a.layer.send(client, data[offset[0] :], now=pair.now)
        pair.b.layer.receive(server, now=pair.now)

    step()
    pair.run(pair.now + 10_000_000, on_step=step)
    info = pair.a.layer.info(client)
    assert info.retransmits == 0 and info.bytes_in_send_buffer == 0
    return info.ssthresh, info.cwnd, worst[0] // MILLISECOND


def test_hystart_ends_slow_start_on_the_rtt_rise_before_any_loss() -> None:
    ssthresh, cwnd, queue_ms = _queue_building_transfer(hystart=True)
    std_ssthresh, std_cwnd, std_queue_ms = _queue_building_transfer(hystart=False)
    assert std_ssthresh == INITIAL_SSTHRESH  # standard slow start never left
    assert ssthresh < INITIAL_SSTHRESH  # CSS ran its rounds: ssthresh = cwnd, no loss
    assert queue_ms < std_queue_ms  # and the queue it built is shorter
    assert cwnd < std_cwnd


def test_hystart_takes_l_of_8_segments_with_sack_only() -> None:
    # RFC 9406 §4.2: L = 8 SMSS for a sender that does not pace; without SACK the
    # engine keeps L = 1 (a NewReno sender repairs one hole per RTT).
    from simtcp.tcp import TcpConfig
    from simtcp.wire.tcp import ACK

    from .scenario import Scenario
    from .test_sack_engine import sack_scenario

    for scenario, expected in (
        (sack_scenario(), 18),
        (Scenario(config=TcpConfig(sack=False, rack=False, timestamps=False)), 11),
    ):
        if scenario.handle is None:
            scenario.enter("ESTABLISHED")
        handle = scenario.handle or 0
        scenario.layer.send(handle, b"d" * 100_000, now=scenario.now)
        flight = scenario.sent()
        assert len(flight) == 10
        end = flight[-1].seq + len(flight[-1].payload)
        replies = scenario.send(ACK, ack=end, window=65535)
        assert sum(len(s.payload) for s in replies) == expected * 1460
