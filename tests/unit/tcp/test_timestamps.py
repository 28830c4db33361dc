"""RFC 7323 in the engine: negotiation, full-sized segments, PAWS, RTTM."""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, SYN, MssOption, NopOption, TimestampsOption, flags_to_str

from .harness import A_ADDR, B_ADDR, make_pair
from .scenario import Scenario

FAST = TcpConfig(msl=1 * SECOND)


def test_negotiated_when_both_offer_and_full_segments_are_mss_minus_12() -> None:
    pair = make_pair(FAST, FAST)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    info = pair.a.layer.info(client)
    assert info.timestamps and info.window_scaling
    assert info.mss == 1460 - 12
    # Nagle with timestamps: a bulk sender writing MSS-sized (1460) chunks must not
    # leave every segment "short" and wait for the peer's delayed ACK (40 ms).
    start = pair.now
    received = bytearray()
    chunk = b"z" * 1460
    for _ in range(150):
        assert pair.a.layer.send(client, chunk, now=pair.now) == 1460
    pair.run(
        pair.now + 5 * SECOND,
        on_step=lambda: received.extend(pair.b.layer.receive(server, now=pair.now)),
        stop=lambda: len(received) == 150 * 1460,
    )
    assert len(received) == 150 * 1460
    assert pair.now - start < 200 * MILLISECOND  # a handful of RTTs, not 200 delayed ACKs
    sizes = [len(s.payload) for t, source, s in pair.log if source == A_ADDR and s.payload]
    assert max(sizes) == 1448
    assert sum(size == 1448 for size in sizes) >= len(sizes) - 2
    segments_from_a = [s for t, source, s in pair.log if source == A_ADDR and t > 0]
    assert all(s.timestamps is not None for s in segments_from_a)


def test_not_negotiated_when_one_side_does_not_offer() -> None:
    pair = make_pair(FAST, TcpConfig(msl=1 * SECOND, timestamps=False))
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    assert not pair.a.layer.info(client).timestamps
    assert pair.a.layer.info(client).mss == 1460
    syn_ack = next(s for t, source, s in pair.log if source == B_ADDR)
    assert syn_ack.timestamps is None
    pair.a.layer.send(client, b"x" * 3000, now=pair.now)
    pair.run(pair.now + 100 * MILLISECOND)
    assert all(s.timestamps is None for t, source, s in pair.log if source == A_ADDR and t > 0)


def timestamped_scenario() -> Scenario:
    scenario = Scenario()
    scenario.listen()
    ts = (NopOption(), NopOption(), TimestampsOption(5000, 0))
    replies = scenario.send(SYN, options=(MssOption(1460),) + ts)
    assert replies[0].timestamps is not None and replies[0].timestamps.echo_reply == 5000
    scenario.our_iss = replies[0].seq
    scenario.peer_nxt += 1
    scenario.send(
        ACK, options=(NopOption(), NopOption(), TimestampsOption(5001, replies[0].timestamps.value))
    )
    scenario.handle = next(
        e.connection for e in scenario.events() if isinstance(e, ConnectionAccepted)
    )
    return scenario


def test_paws_drops_an_old_duplicate_and_acks() -> None:
    scenario = timestamped_scenario()
    handle = scenario.handle or 0
    new = (NopOption(), NopOption(), TimestampsOption(6000, 0))
    scenario.send(ACK, payload=b"fresh", options=new)
    scenario.peer_nxt += 5
    old = (NopOption(), NopOption(), TimestampsOption(5500, 0))  # behind TS.Recent
    replies = scenario.send(ACK, payload=b"stale", options=old)
    assert [flags_to_str(r.flags) for r in replies] == ["."]
    assert replies[0].ack == scenario.peer_nxt
    assert replies[0].timestamps is not None and replies[0].timestamps.echo_reply == 6000
    assert scenario.layer.receive(handle, now=scenario.now) == b"fresh"
    assert scenario.host.stats["drop.tcp_paws"] == 1


def test_paws_across_the_tsval_wrap() -> None:
    scenario = Scenario()
    scenario.listen()
    ts_near_wrap = 2**32 - 10
    replies = scenario.send(
        SYN, options=(MssOption(1460), NopOption(), NopOption(), TimestampsOption(ts_near_wrap, 0))
    )
    scenario.our_iss = replies[0].seq
    scenario.peer_nxt += 1
    scenario.send(ACK, options=(NopOption(), NopOption(), TimestampsOption(5, 0)))  # wrapped
    handle = next(e.connection for e in scenario.events() if isinstance(e, ConnectionAccepted))
    scenario.send(ACK, payload=b"new", options=(NopOption(), NopOption(), TimestampsOption(6, 0)))
    assert scenario.layer.receive(handle, now=scenario.now) == b"new"
    scenario.peer_nxt += 3
    replies = scenario.send(
        ACK, payload=b"old", options=(NopOption(), NopOption(), TimestampsOption(2**32 - 5, 0))
    )
    assert scenario.host.stats["drop.tcp_paws"] == 1
    assert scenario.layer.receive(handle, now=scenario.now) == b""


def test_missing_timestamps_are_dropped_but_rst_is_not() -> None:
    scenario = timestamped_scenario()
    assert scenario.send(ACK, payload=b"bare") == []
    assert scenario.layer.info(scenario.handle or 0).bytes_readable == 0
    scenario.send(0x04)  # RST without TSopt, at RCV.NXT
    assert scenario.state() == "CLOSED"


def test_rtt_measured_from_echoes() -> None:
    pair = make_pair(FAST, FAST, delay=25 * MILLISECOND)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(200 * MILLISECOND)
    pair.a.layer.send(client, b"x" * 50_000, now=pair.now)
    pair.run(pair.now + 2 * SECOND)
    srtt = pair.a.layer.info(client).srtt
    assert srtt is not None and 50 * MILLISECOND <= srtt <= 95 * MILLISECOND


def test_ts_recent_is_not_advanced_by_a_segment_that_is_then_dropped() -> None:
    """RFC 7323 §4.3 / §5.3 R3 and RFC 9293 §3.10.7.4's order: only an accepted segment
    updates TS.Recent. Here an in-window segment with a far-future TSval is dropped by
    a later check (no ACK bit; then an ACK of data never sent); the next in-order
    segment with an ordinary TSval must still be accepted, not rejected by PAWS."""
    scenario = timestamped_scenario()
    handle = scenario.handle or 0
    future = (NopOption(), NopOption(), TimestampsOption(0x7000_0000, 0))
    assert scenario.send(0, payload=b"noack", options=future) == []  # no ACK bit: dropped
    scenario.send(ACK, ack=scenario.our_nxt + 50_000, payload=b"badack", options=future)
    ordinary = (NopOption(), NopOption(), TimestampsOption(5002, 0))
    scenario.send(ACK, payload=b"fine", options=ordinary)
    assert scenario.layer.receive(handle, now=scenario.now) == b"fine"
    assert scenario.host.stats["drop.tcp_paws"] == 0
