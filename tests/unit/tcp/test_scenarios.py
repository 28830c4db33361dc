"""Whole-connection scenarios over the in-memory link: opens, closes, loss, windows, limits."""

from __future__ import annotations

from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    ConnectionTimedOut,
    DataReceived,
    PeerClosed,
    SendSpaceAvailable,
)
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, FIN, RST, SYN, TcpSegment, flags_to_str

from .harness import A_ADDR, B_ADDR, Pair, make_pair
from .scenario import PEER, Scenario

FAST = TcpConfig(msl=1 * SECOND)


def connect(pair: Pair, *, port: int = 80) -> tuple[int, int]:
    """Listen on B, connect from A, run the handshake; return (client, server) handles."""
    pair.b.layer.listen(port)
    client = pair.a.layer.connect(B_ADDR, port, now=pair.now)
    pair.run(
        pair.now + 1 * SECOND,
        stop=lambda: any(isinstance(e, ConnectionAccepted) for e in pair.b.host.events),
    )
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    pair.run(pair.now + 100 * MILLISECOND)
    pair.a.host.events.clear()
    pair.b.host.events.clear()
    return client, server


def flags_sent(pair: Pair, sender: int) -> list[str]:
    return [flags_to_str(segment.flags) for _, source, segment in pair.log if source == sender]


def test_simultaneous_open() -> None:
    pair = make_pair(FAST, FAST)
    a = pair.a.layer.connect(B_ADDR, 4000, local_port=3000, now=0)
    b = pair.b.layer.connect(A_ADDR, 3000, local_port=4000, now=0)
    pair.run(1 * SECOND)
    assert pair.a.layer.info(a).state == "ESTABLISHED"
    assert pair.b.layer.info(b).state == "ESTABLISHED"
    # RFC 9293 Figure 8: SYN, then SYN-ACK from each side, no third packet needed.
    assert flags_sent(pair, A_ADDR) == ["S", "S."]
    assert flags_sent(pair, B_ADDR) == ["S", "S."]
    assert pair.a.host.events == [ConnectionEstablished(connection=a)]
    pair.a.layer.send(a, b"ping", now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert pair.b.layer.receive(b, now=pair.now) == b"ping"


def test_simultaneous_close() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.close(client, now=pair.now)
    pair.b.layer.close(server, now=pair.now)
    pair.run(pair.now + 15 * MILLISECOND)
    # Each FIN crossed the other: both ends passed CLOSING (RFC 9293 Figure 13).
    assert pair.a.layer.info(client).state in ("CLOSING", "TIME-WAIT")
    pair.run(pair.now + 100 * MILLISECOND)
    assert pair.a.layer.info(client).state == "TIME-WAIT"
    assert pair.b.layer.info(server).state == "TIME-WAIT"
    pair.run(pair.now + 3 * SECOND)
    assert pair.a.layer.connection_count() == 0 and pair.b.layer.connection_count() == 0
    assert pair.a.host.events == [ConnectionClosed(connection=client)]
    assert pair.b.host.events == [ConnectionClosed(connection=server)]


def test_lost_syn_ack_is_recovered_by_the_repeated_syn() -> None:
    lost = []

    def lose_first_syn_ack(segment: TcpSegment, sender: int) -> list[int]:
        if segment.flags == SYN | ACK and not lost:
            lost.append(segment)
            return []
        return [0]

    pair = make_pair(FAST, FAST, fault=lose_first_syn_ack)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(5 * SECOND, stop=lambda: bool(pair.a.host.events))
    assert pair.a.host.events == [ConnectionEstablished(connection=client)]
    # The SYN was repeated after the initial RTO (1 s); B answered it with a new SYN-ACK.
    assert flags_sent(pair, A_ADDR)[:2] == ["S", "S"]
    assert [t for t, source, s in pair.log if source == A_ADDR][1] == 1 * SECOND
    assert flags_sent(pair, B_ADDR).count("S.") >= 2


def test_lost_fin_is_retransmitted() -> None:
    lost = []

    def lose_first_fin(segment: TcpSegment, sender: int) -> list[int]:
        if segment.flags & FIN and not lost:
            lost.append(segment)
            return []
        return [0]

    pair = make_pair(FAST, FAST, fault=lose_first_fin)
    client, server = connect(pair)
    pair.a.layer.close(client, now=pair.now)
    closed_at = pair.now
    pair.run(pair.now + 5 * SECOND, stop=lambda: bool(pair.b.host.events))
    assert pair.b.host.events == [PeerClosed(connection=server)]
    assert pair.now - closed_at >= 200 * MILLISECOND  # it took a retransmission timeout
    assert pair.a.layer.info(client).retransmits == 1


def test_fin_goes_out_at_close_even_behind_nagle() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.send(client, b"a" * 100, now=pair.now)  # unacknowledged small segment
    pair.a.host.sent.clear()
    pair.a.layer.send(client, b"b" * 10, now=pair.now)  # Nagle holds this one
    assert pair.a.host.sent == []
    pair.a.layer.close(client, now=pair.now)
    # RFC 9293 §3.10.4: the FIN follows the queued data at once, Nagle or not.
    assert [flags_to_str(s.flags) for _, _, s in pair.a.host.sent] == ["FP."]
    assert bytes(pair.a.host.sent[0][2].payload) == b"b" * 10


def test_zero_window_opens_again_without_losing_a_byte() -> None:
    small = TcpConfig(msl=1 * SECOND, receive_buffer=8192, window_scaling=False)
    pair = make_pair(FAST, small)
    client, server = connect(pair)
    data = bytes(range(256)) * 64  # 16 KiB into an 8 KiB receive buffer
    assert pair.a.layer.send(client, data, now=pair.now) == len(data)
    pair.run(pair.now + 2 * SECOND)
    assert pair.b.layer.info(server).rcv_wnd == 0
    assert pair.b.layer.info(server).bytes_readable == 8192
    assert pair.a.layer.info(client).snd_wnd == 0
    probes_before = pair.a.host.stats["tcp.window_probes"]
    pair.run(pair.now + 10 * SECOND)
    assert pair.a.host.stats["tcp.window_probes"] > probes_before  # the persist timer probes
    got = pair.b.layer.receive(server, now=pair.now)
    pair.run(pair.now + 2 * SECOND)
    got += pair.b.layer.receive(server, now=pair.now)
    assert got == data


def test_persist_probes_back_off() -> None:
    small = TcpConfig(msl=1 * SECOND, receive_buffer=4096, window_scaling=False)
    pair = make_pair(FAST, small)
    client, server = connect(pair)
    pair.a.layer.send(client, bytes(10_000), now=pair.now)
    pair.run(pair.now + 60 * SECOND)
    probe_times = [
        t
        for t, source, segment in pair.log
        if source == A_ADDR and not segment.payload and segment.flags == ACK and t > 1 * SECOND
    ]
    gaps = [b - a for a, b in zip(probe_times, probe_times[1:], strict=False)]
    assert len(gaps) >= 3
    assert all(later >= earlier for earlier, later in zip(gaps, gaps[1:], strict=False))
    assert pair.a.layer.info(client).state == "ESTABLISHED"  # an answering peer is alive


def test_slow_reader_loses_nothing() -> None:
    receiver = TcpConfig(msl=1 * SECOND, receive_buffer=16 * 1024, receive_buffer_max=0)
    pair = make_pair(TcpConfig(msl=1 * SECOND, send_buffer=64 * 1024), receiver)
    client, server = connect(pair)
    data = bytes((i * 7) & 0xFF for i in range(300_000))
    sent = 0
    received = bytearray()
    for round_number in range(200):
        while sent < len(data):
            taken = pair.a.layer.send(client, data[sent : sent + 50_000], now=pair.now)
            if not taken:
                break
            sent += taken
        if round_number < 30:
            # The application does not read for 5 s, then reads a little.
            pair.run(pair.now + 5 * SECOND)
            assert pair.b.layer.info(server).bytes_readable <= 16 * 1024
            assert pair.b.layer.info(server).rcv_wnd == 0  # the window closed, nothing lost
            received += pair.b.layer.receive(server, 3000, now=pair.now)
        else:
            pair.run(pair.now + 1 * SECOND)  # then it reads everything it gets
            received += pair.b.layer.receive(server, now=pair.now)
        if len(received) == len(data):
            break
    assert bytes(received) == data
    assert any(isinstance(e, SendSpaceAvailable) for e in pair.a.host.events)


def test_peer_that_stops_acking_times_out() -> None:
    config = TcpConfig(msl=1 * SECOND, data_retries=4, max_rto=2 * SECOND)
    silent = {"on": False}

    def blackhole(segment: TcpSegment, sender: int) -> list[int]:
        return [] if silent["on"] else [0]

    pair = make_pair(config, FAST, fault=blackhole)
    client, server = connect(pair)
    silent["on"] = True
    pair.a.layer.send(client, b"hello?" * 100, now=pair.now)
    start = pair.now
    pair.run(pair.now + 60 * SECOND, stop=lambda: bool(pair.a.host.events))
    assert pair.a.host.events == [
        ConnectionTimedOut(connection=client),
        ConnectionClosed(connection=client),
    ]
    assert pair.a.layer.connection_count() == 0
    retransmissions = [t - start for t, source, s in pair.log if source == A_ADDR and t > start]
    # 4 retransmissions, the RTO doubling each time up to max_rto (RFC 6298 §5.5).
    # RTO = max(SRTT + 4 RTTVAR, min_rto) = 200 ms, doubled per expiry (RFC 6298 §5.5),
    # and the fifth expiry (capped at max_rto = 2 s) gives up.
    ms = MILLISECOND
    assert retransmissions == [200 * ms, 600 * ms, 1400 * ms, 3000 * ms]
    assert pair.now - start == 5000 * ms


def test_syn_retry_limit_times_out() -> None:
    config = TcpConfig(syn_retries=3, initial_rto=1 * SECOND)
    pair = make_pair(config, FAST, fault=lambda segment, sender: [])
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(60 * SECOND)
    syn_times = [t for t, source, s in pair.log if source == A_ADDR]
    assert syn_times == [0, 1 * SECOND, 3 * SECOND, 7 * SECOND]  # backoff 1, 2, 4 s
    assert pair.a.host.events == [
        ConnectionTimedOut(connection=client),
        ConnectionClosed(connection=client),
    ]
    assert pair.now == 60 * SECOND and pair.a.layer.connection_count() == 0


def test_half_close_the_other_way() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.b.layer.shutdown(server, now=pair.now)  # the passive side stops writing first
    pair.run(pair.now + 100 * MILLISECOND)
    assert pair.a.host.events == [PeerClosed(connection=client)]
    pair.a.layer.send(client, b"still talking", now=pair.now)
    pair.run(pair.now + 100 * MILLISECOND)
    assert pair.b.layer.receive(server, now=pair.now) == b"still talking"
    pair.a.layer.close(client, now=pair.now)
    pair.run(pair.now + 100 * MILLISECOND)
    assert pair.b.layer.info(server).state == "TIME-WAIT"  # the first to FIN waits
    assert pair.a.layer.connection_count() == 0
    pair.b.layer.close(server, now=pair.now)
    pair.run(pair.now + 3 * SECOND)
    assert pair.b.layer.connection_count() == 0


def test_abort_sends_reset_and_frees_at_once() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.abort(client, now=pair.now)
    assert pair.a.layer.connection_count() == 0
    assert pair.a.host.events == [ConnectionClosed(connection=client)]
    assert [flags_to_str(s.flags) for _, _, s in pair.a.host.sent] == ["R"]
    pair.run(pair.now + 100 * MILLISECOND)
    assert [type(e).__name__ for e in pair.b.host.events] == ["ConnectionReset", "ConnectionClosed"]
    assert pair.b.layer.connection_count() == 0


def test_close_with_unread_data_resets() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.send(client, b"unread", now=pair.now)
    pair.run(pair.now + 100 * MILLISECOND)
    pair.b.layer.close(server, now=pair.now)
    # RFC 1122 §4.2.2.13: data would be lost, so the peer hears a RST, not a FIN.
    assert [flags_to_str(s.flags) for _, _, s in pair.b.host.sent] == ["R"]


def test_delayed_ack_every_second_full_segment_and_within_the_delay() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    full = b"x" * 1460
    assert scenario.send(ACK, payload=full) == []
    scenario.peer_nxt += 1460
    replies = scenario.send(ACK, payload=full)
    scenario.peer_nxt += 1460
    assert [flags_to_str(r.flags) for r in replies] == ["."]  # the second one: ACK now
    assert replies[0].ack == scenario.peer_nxt
    assert scenario.send(ACK, payload=b"y" * 100) == []
    scenario.peer_nxt += 100
    assert scenario.advance(40 * MILLISECOND - 1) == []
    replies = scenario.advance(1)
    assert [r.ack for r in replies] == [scenario.peer_nxt]


def test_out_of_order_data_is_acked_at_once_and_delivered_when_the_hole_fills() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    start = scenario.peer_nxt
    replies = scenario.send(ACK, seq=start + 100, payload=b"B" * 100)
    assert [(flags_to_str(r.flags), r.ack) for r in replies] == [(".", start)]  # a dup ACK
    assert scenario.layer.info(scenario.handle or 0).bytes_out_of_order == 100
    replies = scenario.send(ACK, seq=start, payload=b"A" * 100)
    assert [r.ack for r in replies] == [start + 200]  # filling the hole is ACKed at once
    assert scenario.layer.receive(scenario.handle or 0, now=scenario.now) == b"A" * 100 + b"B" * 100


def test_sequence_numbers_across_the_wrap() -> None:
    # Receive side: the peer's ISN sits just below 2**32.
    scenario = Scenario(peer_iss=2**32 - 300)
    scenario.enter("ESTABLISHED")
    handle = scenario.handle or 0
    payload = bytes(range(200)) * 3  # 600 bytes crossing zero
    for offset in range(0, 600, 150):
        scenario.send(ACK, seq=scenario.peer_nxt + offset, payload=payload[offset : offset + 150])
    assert scenario.layer.receive(handle, now=scenario.now) == payload
    assert scenario.layer.info(handle).rcv_nxt == (2**32 - 300 + 1 + 600) & 0xFFFFFFFF
    # Send side: choose ``now`` so that our ISN lands just below 2**32 (RFC 6528 clock).
    probe = make_pair(FAST, FAST)
    offset = probe.a.layer.info(
        probe.a.layer.connect(B_ADDR, 80, local_port=3000, now=0)
    ).snd_una  # the keyed hash
    at = 4 * ((2**32 - 500 - offset) % 2**32)
    pair = make_pair(FAST, FAST)
    pair.now = at
    pair.b.layer.listen(80)
    a_handle = pair.a.layer.connect(B_ADDR, 80, local_port=3000, now=at)
    assert pair.a.layer.info(a_handle).snd_una == 2**32 - 500
    pair.run(pair.now + 1 * SECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    data = bytes(range(256)) * 20
    pair.a.layer.send(a_handle, data, now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert pair.b.layer.receive(server, now=pair.now) == data
    assert pair.a.layer.info(a_handle).snd_una < 10_000  # wrapped past zero


def test_listen_backlog_drops_extra_syns_and_counts_them() -> None:
    scenario = Scenario(config=TcpConfig(syn_cookies=False))
    scenario.listener = scenario.layer.listen(80, backlog=2)
    for port in (5001, 5002, 5003):
        segment = TcpSegment(port, 80, 1000, 0, SYN, 65535)
        scenario.layer.segment_received(PEER, B_ADDR, segment, now=0)
    assert [flags_to_str(s.flags) for s in scenario.sent()] == ["S.", "S."]
    assert scenario.host.stats["drop.tcp_backlog_full"] == 1
    assert scenario.layer.connection_count() == 2
    assert scenario.layer.info(scenario.listener).syn_queued == 2


def test_ephemeral_ports_are_seeded_and_distinct() -> None:
    config = TcpConfig(ephemeral_ports=(50000, 50009))
    ports = []
    pair = make_pair(config, FAST)
    for _ in range(10):
        handle = pair.a.layer.connect(B_ADDR, 80, now=0)
        ports.append(pair.a.layer.info(handle).local_port)
    assert sorted(ports) == list(range(50000, 50010))
    again = make_pair(config, FAST)
    assert [
        again.a.layer.info(again.a.layer.connect(B_ADDR, 80, now=0)).local_port for _ in range(10)
    ] == ports


def test_reset_only_at_exactly_rcv_nxt() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    replies = scenario.send(RST, seq=scenario.peer_nxt + 10)
    assert [flags_to_str(r.flags) for r in replies] == ["."]  # RFC 5961 §3.2 challenge ACK
    assert scenario.state() == "ESTABLISHED"
    assert scenario.send(RST) == []
    assert scenario.state() == "CLOSED"


def test_fin_before_its_data_is_held_until_the_data_arrives() -> None:
    scenario = Scenario()
    scenario.enter("ESTABLISHED")
    start = scenario.peer_nxt
    scenario.send(FIN | ACK, seq=start + 5)
    assert scenario.state() == "ESTABLISHED"
    replies = scenario.send(ACK, seq=start, payload=b"12345")
    assert scenario.state() == "CLOSE-WAIT"
    assert replies[-1].ack == start + 6
    assert scenario.layer.receive(scenario.handle or 0, now=scenario.now) == b"12345"
    assert [type(e) for e in scenario.events()] == [DataReceived, PeerClosed]


def test_keepalive_probes_then_times_out() -> None:
    config = TcpConfig(
        keepalive=True,
        keepalive_idle=10 * SECOND,
        keepalive_interval=1 * SECOND,
        keepalive_probes=3,
    )
    scenario = Scenario(config=config)
    scenario.enter("ESTABLISHED")
    start = scenario.now
    assert scenario.advance(10 * SECOND - 2 * MILLISECOND) == []
    probes = []
    for _ in range(3):
        probes += scenario.advance(1 * SECOND)
    assert [(flags_to_str(p.flags), p.seq) for p in probes][:1] == [(".", scenario.our_nxt - 1)]
    assert len(probes) == 3
    scenario.advance(1 * SECOND)
    assert scenario.state() == "CLOSED"
    assert [type(e) for e in scenario.events()] == [ConnectionTimedOut, ConnectionClosed]
    del start


def test_connection_to_a_closed_port_is_refused() -> None:
    pair = make_pair(FAST, FAST)
    client = pair.a.layer.connect(B_ADDR, 81, now=0)
    pair.run(1 * SECOND)
    assert [type(e).__name__ for e in pair.a.host.events] == ["ConnectionReset", "ConnectionClosed"]
    assert pair.a.layer.connection_count() == 0
    del client


def test_duplicate_segments_do_not_duplicate_bytes() -> None:
    pair = make_pair(FAST, FAST, fault=lambda segment, sender: [0, 3 * MILLISECOND])
    client, server = connect(pair)
    data = bytes(range(256)) * 100
    pair.a.layer.send(client, data, now=pair.now)
    pair.run(pair.now + 2 * SECOND)
    assert pair.b.layer.receive(server, now=pair.now) == data


def test_syn_cookies_let_a_client_in_during_a_syn_flood() -> None:
    config = TcpConfig(msl=1 * SECOND)
    pair = make_pair(config, config)
    listener = pair.b.layer.listen(80, backlog=4)
    for port in range(1000, 1100):  # spoofed SYNs from an address that never answers
        pair.b.layer.segment_received(
            0x0A000063, B_ADDR, TcpSegment(port, 80, port, 0, SYN, 1000), now=0
        )
    assert pair.b.layer.connection_count() == 4  # no memory for the other 96
    assert pair.b.host.stats["tcp.syn_cookies_sent"] == 96
    pair.b.host.sent.clear()
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(200 * MILLISECOND)
    accepted = [e for e in pair.b.host.events if isinstance(e, ConnectionAccepted)]
    assert len(accepted) == 1 and accepted[0].listener == listener
    server = accepted[0].connection
    assert pair.b.host.stats["tcp.syn_cookies_accepted"] == 1
    info = pair.b.layer.info(server)
    assert info.timestamps and info.sack and info.window_scaling  # restored from the TSecr
    assert info.mss == 1460 - 12
    data = bytes(range(256)) * 400
    pair.a.layer.send(client, data, now=pair.now)
    pair.run(pair.now + 2 * SECOND)
    assert pair.b.layer.receive(server, now=pair.now) == data


def test_a_forged_cookie_ack_is_reset() -> None:
    scenario = Scenario()
    scenario.listener = scenario.layer.listen(80, backlog=1)
    replies = scenario.send(ACK, seq=5000, ack=123456)
    assert [flags_to_str(r.flags) for r in replies] == ["R"]
    assert scenario.layer.connection_count() == 0


def test_bytes_stay_readable_after_an_orderly_end_until_drained() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.send(client, b"last words", now=pair.now)
    pair.a.layer.close(client, now=pair.now)
    pair.run(pair.now + 100 * MILLISECOND)
    pair.b.layer.shutdown(server, now=pair.now)  # B never read, only stopped writing
    pair.run(pair.now + 100 * MILLISECOND)
    assert pair.b.layer.connection_count() == 0  # LAST-ACK -> CLOSED: the TCB is gone
    assert ConnectionClosed(connection=server) not in pair.b.host.events
    assert pair.b.layer.receive(server, 4, now=pair.now) == b"last"
    assert pair.b.layer.receive(server, now=pair.now) == b" words"
    assert pair.b.host.events[-1] == ConnectionClosed(connection=server)
    pair.run(pair.now + 3 * SECOND)
    assert pair.a.layer.connection_count() == 0


def test_nodelay_per_connection_releases_a_held_segment() -> None:
    pair = make_pair(FAST, FAST)
    client, server = connect(pair)
    pair.a.layer.send(client, b"a" * 100, now=pair.now)
    pair.a.host.sent.clear()
    pair.a.layer.send(client, b"b" * 10, now=pair.now)
    assert pair.a.host.sent == []  # Nagle holds it behind the unacknowledged 100 bytes
    pair.a.layer.set_nodelay(client, True, now=pair.now)
    assert [bytes(s.payload) for _, _, s in pair.a.host.sent] == [b"b" * 10]


def test_receive_buffer_autotuning_grows_only_for_a_reader_that_keeps_up() -> None:
    tuned = TcpConfig(msl=1 * SECOND, receive_buffer=64 * 1024, receive_buffer_max=1024 * 1024)
    pair = make_pair(TcpConfig(msl=1 * SECOND, send_buffer=2 * 1024 * 1024), tuned)
    client, server = connect(pair)
    pair.a.layer.send(client, bytes(2_000_000), now=pair.now)
    pair.run(pair.now + 10 * SECOND, on_step=lambda: pair.b.layer.receive(server, now=pair.now))
    assert pair.b.host.stats["tcp.receive_buffer_grown"] >= 1
    assert pair.b.layer.info(server).rcv_wnd > 64 * 1024
    slow = make_pair(FAST, tuned)
    client, server = connect(slow)
    slow.a.layer.send(client, bytes(500_000), now=slow.now)
    for _ in range(5):
        slow.run(slow.now + 2 * SECOND)
        slow.b.layer.receive(server, 1000, now=slow.now)
    assert slow.b.host.stats["tcp.receive_buffer_grown"] == 0
