"""RFC disagreements found by the packetdrill corpus (tests/scenarios), pinned per segment."""

from __future__ import annotations

from simtcp.tcp import TcpConfig
from simtcp.tcp.congestion import NewReno
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, FIN, RST, SYN, MssOption

from .scenario import Scenario


def test_read_that_leaves_the_capped_window_unchanged_sends_no_ack() -> None:
    # RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3: a 256 KiB buffer without window scaling
    # always offers 65535; reading 1000 bytes cannot move the right edge, and an ACK
    # would be a duplicate ACK to the peer (RFC 5681 §2).
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.send(ACK, payload=b"a" * 1000)
    scenario.peer_nxt += 1000
    scenario.advance(40 * MILLISECOND)  # the delayed ACK
    assert scenario.layer.receive(handle, 2000, now=scenario.now) == b"a" * 1000
    assert scenario.sent() == []


def test_read_that_reopens_a_small_window_sends_an_update() -> None:
    # The same rule still announces a window that grows by at least min(buffer/2, MSS).
    scenario = Scenario(config=TcpConfig(window_scaling=False, receive_buffer=4096))
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    for _ in range(2):
        scenario.send(ACK, payload=b"b" * 1460)
        scenario.peer_nxt += 1460
    scenario.send(ACK, payload=b"b" * 1176)
    scenario.peer_nxt += 1176
    scenario.advance(40 * MILLISECOND)
    scenario.layer.receive(handle, 100, now=scenario.now)
    assert scenario.sent() == []  # 100 bytes: silly
    scenario.layer.receive(handle, 1500, now=scenario.now)
    updates = scenario.sent()
    assert [u.window for u in updates] == [1600]


def test_ack_of_a_retransmission_keeps_the_backoff() -> None:
    # RFC 6298 §5 and §3 (Karn): the ACK of a retransmitted segment is no RTT sample,
    # so the doubled RTO stays for the next data until a valid sample is taken.
    scenario = Scenario(config=TcpConfig(window_scaling=False, timestamps=False))
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"c" * 1000, now=scenario.now)
    first = scenario.sent()
    assert [len(s.payload) for s in first] == [1000]
    rto = scenario.layer.info(handle).rto
    assert scenario.advance(rto)  # timed out and resent; the RTO doubles
    scenario.send(ACK, ack=first[0].seq + 1000)
    scenario.layer.send(handle, b"d" * 1000, now=scenario.now)
    assert [len(s.payload) for s in scenario.sent()] == [1000]
    assert scenario.advance(2 * rto - 1) == []  # not yet: the backoff was kept
    assert [len(s.payload) for s in scenario.advance(1)] == [1000]


def test_rto_is_three_seconds_after_a_syn_timeout_without_a_sample() -> None:
    # RFC 6298 §5.7: the SYN was resent (no sample, Karn); data then uses RTO = 3 s.
    scenario = Scenario(config=TcpConfig(window_scaling=False, timestamps=False))
    scenario.syn_sent()
    handle = scenario.handle or 0
    assert [s.flags for s in scenario.advance(1000 * MILLISECOND)] == [SYN]
    scenario.send(SYN | ACK, ack=scenario.our_iss + 1, options=(MssOption(1460),))
    scenario.peer_nxt += 1
    assert scenario.layer.info(handle).rto == 3 * SECOND
    scenario.layer.send(handle, b"e" * 100, now=scenario.now)
    assert [len(s.payload) for s in scenario.sent()] == [100]
    assert scenario.advance(3 * SECOND - 1) == []
    assert [len(s.payload) for s in scenario.advance(1)] == [100]


def test_rto_stays_initial_after_a_handshake_without_timeout() -> None:
    # Without a SYN timeout the handshake's own sample sets the RTO (RFC 6298 §2.2).
    scenario = Scenario(config=TcpConfig(window_scaling=False, timestamps=False))
    scenario.syn_sent()
    handle = scenario.handle or 0
    scenario.now += 100 * MILLISECOND
    scenario.send(SYN | ACK, ack=scenario.our_iss + 1, options=(MssOption(1460),))
    assert scenario.layer.info(handle).rto < 3 * SECOND


def test_rst_at_the_right_edge_is_outside_the_window() -> None:
    # RFC 9293 §3.10.7.4: RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND. A RST at the last octet
    # of the window draws a challenge ACK (RFC 5961 §3.2); one at RCV.NXT+RCV.WND is
    # dropped in silence.
    scenario = Scenario(config=TcpConfig(window_scaling=False, receive_buffer=4096))
    scenario.enter("ESTABLISHED")
    edge = scenario.peer_nxt + 4096
    assert scenario.send(RST, seq=edge) == []
    assert scenario.host.stats["drop.tcp_rst_invalid"] == 1
    scenario.now += 600 * MILLISECOND  # past the challenge-ACK rate limit
    assert [s.flags for s in scenario.send(RST, seq=edge - 1)] == [ACK]
    assert scenario.state() == "ESTABLISHED"


def test_bare_fin_after_a_gap_draws_an_immediate_duplicate_ack() -> None:
    # RFC 5681 §4.2: an out-of-order segment (here a FIN beyond a hole) is ACKed at once.
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    replies = scenario.send(FIN | ACK, seq=scenario.peer_nxt + 100)
    assert [(s.flags, s.ack) for s in replies] == [(ACK, scenario.peer_nxt)]
    assert scenario.state() == "ESTABLISHED"


def test_limited_transmit_on_the_first_two_duplicate_acks() -> None:
    # RFC 5681 §3.2 step 1, RFC 3042: the first and second duplicate ACKs each send
    # one new segment; the third retransmits SND.UNA's.
    scenario = Scenario(
        config=TcpConfig(window_scaling=False, timestamps=False, sack=False, rack=False)
    )
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    scenario.layer.send(handle, b"f" * 20000, now=scenario.now)
    flight = scenario.sent()
    una = flight[0].seq
    end = flight[-1].seq + len(flight[-1].payload)
    first = scenario.send(ACK, ack=una)
    assert [(s.seq, len(s.payload)) for s in first] == [(end, 1460)]
    second = scenario.send(ACK, ack=una)
    assert [(s.seq, len(s.payload)) for s in second] == [(end + 1460, 1460)]
    third = scenario.send(ACK, ack=una)
    assert [s.seq for s in third][:1] == [una]


def test_slow_start_grows_by_at_most_one_smss_per_ack() -> None:
    # RFC 5681 §3.1: cwnd += min(N, SMSS); an ACK of two segments adds one.
    cc = NewReno(mss=1000, initial_window_segments=10)
    cc.on_ack(2000, 10_000, 0)
    assert cc.cwnd == 11_000
    cc.on_ack(500, 10_000, 0)
    assert cc.cwnd == 11_500
