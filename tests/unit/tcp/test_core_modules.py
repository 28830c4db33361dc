"""Single modules of the engine with explicit values: seq, RTO, NewReno, buffers, ISN."""

from __future__ import annotations

from simtcp.rng import SeededRandom
from simtcp.tcp import TcpConfig
from simtcp.tcp.buffers import ReceiveBuffer, SendBuffer
from simtcp.tcp.congestion import NewReno, create
from simtcp.tcp.isn import initial_sequence_number
from simtcp.tcp.rto import RtoEstimator
from simtcp.tcp.seq import seq_diff, seq_le, seq_lt, to_wire, unwrap
from simtcp.time import MILLISECOND, SECOND


def test_unwrap_is_nearest_to_the_reference_across_the_wrap() -> None:
    reference = 2**32 - 10  # absolute, just below the first wrap
    assert unwrap(5, reference) == 2**32 + 5
    assert unwrap(2**32 - 20, reference) == 2**32 - 20
    assert unwrap(to_wire(reference + 2**31 - 1), reference) == reference + 2**31 - 1
    assert unwrap(to_wire(reference - 2**31), reference) == reference - 2**31
    assert unwrap(7, 5 * 2**32 + 3) == 5 * 2**32 + 7


def test_wire_comparisons_modulo_2_32() -> None:
    assert seq_lt(2**32 - 1, 0) and not seq_lt(0, 2**32 - 1)
    assert seq_le(5, 5) and seq_diff(3, 2**32 - 3) == 6


def test_rto_follows_rfc_6298() -> None:
    rto = RtoEstimator(initial_rto=1 * SECOND, min_rto=200 * MILLISECOND, max_rto=60 * SECOND)
    assert rto.rto == 1 * SECOND  # §2.1
    rto.sample(100 * MILLISECOND)  # §2.2: SRTT = R, RTTVAR = R/2, RTO = SRTT + 4 RTTVAR
    assert (rto.srtt, rto.rttvar, rto.rto) == (100_000, 50_000, 300_000)
    rto.sample(200 * MILLISECOND)  # §2.3
    assert rto.rttvar == (3 * 50_000 + 100_000) // 4
    assert rto.srtt == (7 * 100_000 + 200_000) // 8
    assert rto.rto == rto.srtt + 4 * rto.rttvar
    for _ in range(20):
        rto.sample(1 * MILLISECOND)
    assert rto.rto == 200 * MILLISECOND  # §2.4: the minimum
    rto.back_off()
    rto.back_off()
    assert rto.rto == 800 * MILLISECOND  # §5.5: doubled from the clamped value
    for _ in range(20):
        rto.back_off()
    assert rto.rto == 60 * SECOND  # §2.5: the maximum
    rto.reset_backoff()
    assert rto.rto == 200 * MILLISECOND


def test_newreno_windows() -> None:
    cc = NewReno(mss=1000, initial_window_segments=10)
    assert cc.cwnd == 10_000  # RFC 6928: min(10*MSS, max(2*MSS, 14600))
    cc.on_ack(1000, 10_000, 0)
    assert cc.cwnd == 11_000  # slow start
    cc.on_enter_recovery(20_000, 0)
    assert (cc.ssthresh, cc.cwnd) == (10_000, 13_000)  # RFC 5681 §3.2 (4), step 3
    cc.on_dupack_in_recovery()
    assert cc.cwnd == 14_000
    cc.on_partial_ack(3000)
    assert cc.cwnd == 12_000  # RFC 6582: deflate by 3000, add back one MSS
    cc.on_exit_recovery(5000)
    assert cc.cwnd == 6000  # min(ssthresh, FlightSize + MSS)
    cc.cwnd = 10_000
    for _ in range(10):
        cc.on_ack(1000, 10_000, 0)
    assert cc.cwnd == 11_000  # congestion avoidance: one MSS per window
    cc.on_rto(8000, first=True)
    assert (cc.ssthresh, cc.cwnd) == (4000, 1000)
    cc.on_rto(1000, first=False)
    assert cc.ssthresh == 4000  # RFC 5681 §3.1: not lowered again on a repeated timeout
    assert create("NewReno", mss=1000, initial_window_segments=4).cwnd == 4000


def test_send_buffer_bounds_and_acknowledgement() -> None:
    buffer = SendBuffer(base=100, capacity=10)
    assert buffer.append(b"0123456789abc") == 10
    assert buffer.slice(103, 4) == b"3456"
    buffer.acknowledge(105)
    assert (buffer.base, buffer.end, buffer.free_space) == (105, 110, 5)
    buffer.acknowledge(111)  # the FIN's sequence number: beyond the data
    assert len(buffer) == 0 and buffer.base == 110


def test_receive_buffer_reassembles_out_of_order_blocks() -> None:
    buffer = ReceiveBuffer(capacity=100, max_blocks=3)
    assert buffer.add(20, b"CCCC", 0) == 0
    assert buffer.add(10, b"BB", 0) == 0
    assert buffer.add(12, b"bbbbbbbb", 0) == 0  # adjacent to and overlapping others
    assert buffer.out_of_order_blocks() == [(10, 24)]
    assert buffer.add(40, b"X", 0) == 0
    assert buffer.add(50, b"Y", 0) == 0
    assert buffer.add(60, b"Z", 0) == -1  # a fourth separate block is refused
    assert buffer.add(0, b"A" * 10, 0) == 24  # fills the hole: pulls [10, 24)
    assert buffer.read(-1) == b"A" * 10 + b"BB" + b"bbbbbbbb" + b"CCCC"
    assert buffer.out_of_order_blocks() == [(40, 41), (50, 51)]


def test_isn_is_keyed_and_advances_with_the_clock() -> None:
    rng = SeededRandom(1)
    first = initial_sequence_number(rng, 1, 2, 3, 4, now=0)
    assert initial_sequence_number(rng, 1, 2, 3, 4, now=4_000_000) == (first + 1_000_000) % 2**32
    assert initial_sequence_number(rng, 1, 2, 3, 5, now=0) != first
    assert initial_sequence_number(SeededRandom(2), 1, 2, 3, 4, now=0) != first


def test_newreno_exit_with_nothing_in_flight_leaves_two_segments() -> None:
    """RFC 6582 §3.2 step 3 option (1): min(ssthresh, max(FlightSize, SMSS) + SMSS)."""
    cc = NewReno(mss=1000, initial_window_segments=10)
    cc.on_enter_recovery(20_000, 0)
    cc.on_exit_recovery(0)
    assert cc.cwnd == 2000
    cc.on_enter_recovery(20_000, 0)
    cc.on_exit_recovery(500)
    assert cc.cwnd == 2000


def test_buffers_auto_tune_by_default_up_to_path_sized_maxima() -> None:
    """Issue 15: send and receive auto-tuning on by default (tcp_moderate_rcvbuf=1),
    ceilings above Linux's tcp_wmem / tcp_rmem maxima (4 MiB / 6 MiB hold less than
    the 5 MB bandwidth-delay product of 1 Gbit/s at 40 ms)."""
    config = TcpConfig()
    assert config.receive_buffer_max == 16 * 1024 * 1024 > config.receive_buffer
    assert config.send_buffer_max == 8 * 1024 * 1024 > config.send_buffer
    assert config.send_buffer_max > 5_000_000 * 3 // 2


def test_a_full_send_buffer_grows_toward_two_congestion_windows() -> None:
    from .scenario import Scenario

    scenario = Scenario(config=TcpConfig(send_buffer=4096))
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    info = scenario.layer.info(handle)
    taken = scenario.layer.send(handle, b"x" * 1_000_000, now=scenario.now)
    # Grown from 4096 to two windows (Linux's tcp_sndbuf_expand).
    assert taken == 2 * max(info.cwnd, info.snd_wnd) > 4096
    assert scenario.host.stats["tcp.send_buffer_grown"] == 1
