"""Segments of several MSS (TSO): sizes, the window, cwnd, Nagle, FIN, and recovery per MSS.

The link of :class:`CuttingPair` does what a TSO link does: it cuts every segment
into MSS-sized pieces (FIN and PSH on the last), so the peer ACKs and SACKs
those pieces, while the test sees the segments the engine built.
"""

from __future__ import annotations

import dataclasses

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.tcp.rack import RackTlp
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import FIN, PSH, TcpSegment

from .harness import A_ADDR, B_ADDR, Endpoint, Fault, Pair, no_fault

MSS = 1448
"""1500 - 40 - 12 bytes of timestamps."""
MAX_SEGMENT = 65535 - 120
TSO = MAX_SEGMENT - MAX_SEGMENT % MSS
# A fixed 256 KiB receive window (no auto-tuning): the peer's window, not slow start's
# ACK clock, limits the sender, so its TSO segments reach the route limit.
FAST = TcpConfig(msl=1 * SECOND, receive_buffer_max=0)


def cut(segment: TcpSegment, size: int) -> list[TcpSegment]:
    """What a TSO link puts on the wire for ``segment`` (``wire.offload.segment_tcp``'s rules)."""
    payload = bytes(segment.payload)
    if len(payload) <= size:
        return [segment]
    offsets = range(0, len(payload), size)
    return [
        dataclasses.replace(
            segment,
            seq=(segment.seq + offset) & 0xFFFFFFFF,
            payload=payload[offset : offset + size],
            flags=segment.flags if offset == offsets[-1] else segment.flags & ~(FIN | PSH),
        )
        for offset in offsets
    ]


@dataclasses.dataclass
class CuttingPair(Pair):
    """A :class:`Pair` whose link cuts segments like TSO; ``built`` keeps what A built."""

    cut_size: int = MSS
    built: list[TcpSegment] = dataclasses.field(default_factory=list)

    def _collect(self) -> None:
        for endpoint in (self.a, self.b):
            pieces = []
            for source, destination, segment in endpoint.host.sent:
                if source == A_ADDR:
                    self.built.append(segment)
                pieces += [(source, destination, piece) for piece in cut(segment, self.cut_size)]
            endpoint.host.sent[:] = pieces
        super()._collect()


def make(
    config_a: TcpConfig = FAST,
    config_b: TcpConfig = FAST,
    *,
    fault: Fault = no_fault,
    max_segment: int = MAX_SEGMENT,
    cutting: bool = True,
) -> tuple[Pair, int, int]:
    """An established connection A -> B over a TSO link; (pair, client, server)."""
    a = Endpoint(A_ADDR, config_a, seed=1, max_segment=max_segment)
    b = Endpoint(B_ADDR, config_b, seed=2, max_segment=max_segment)
    pair: Pair = (
        CuttingPair(a, b, fault=fault)
        if cutting
        else Pair(a, b, delay=10 * MILLISECOND, fault=fault)
    )
    b.layer.listen(80)
    client = a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in b.host.take_events() if isinstance(e, ConnectionAccepted))
    a.host.take_events()
    return pair, client, server


def data_sizes(segments: list[TcpSegment]) -> list[int]:
    return [len(segment.payload) for segment in segments if segment.payload]


def send_all(
    pair: Pair, client: int, server: int, payload: bytes, duration: int = 30 * SECOND
) -> bytes:
    """Send ``payload`` as the buffer takes it, read everything B gets."""
    received = bytearray()
    offset = 0

    def step() -> None:
        nonlocal offset
        if offset < len(payload):
            offset += pair.a.layer.send(client, payload[offset:], now=pair.now)
        received.extend(pair.b.layer.receive(server, now=pair.now))

    step()
    pair.run(pair.now + duration, on_step=step, stop=lambda: len(received) == len(payload))
    return bytes(received)


PAYLOAD = bytes(range(251)) * 4000  # 1,004,000 bytes


def test_bulk_segments_are_mss_multiples_up_to_the_route_limit() -> None:
    # Standard slow start: with HyStart++'s faster ramp (RFC 9406 §4.2, L = 8) the
    # sender catches up with the 256 KiB receive window while nothing is outstanding,
    # where a short piece rightly goes at once (output._hold_small_segment).
    config = TcpConfig(msl=1 * SECOND, receive_buffer_max=0, hystart=False)
    pair, client, server = make(config, config)
    assert send_all(pair, client, server, PAYLOAD) == PAYLOAD
    assert isinstance(pair, CuttingPair)
    sizes = data_sizes(pair.built)
    assert max(sizes) == TSO  # the window grew to allow full TSO segments
    assert all(size <= TSO for size in sizes)
    # Only the segment ending the data may be short: the rest are whole MSS pieces.
    assert all(size % MSS == 0 for size in sizes[:-1])
    assert sum(sizes) == len(PAYLOAD)  # nothing lost, nothing resent


def test_offload_off_or_no_route_offload_sends_one_mss_at_most() -> None:
    for config, max_segment in (
        (TcpConfig(msl=SECOND, segmentation_offload=False), MAX_SEGMENT),
        (FAST, 0),
    ):
        pair, client, server = make(config, max_segment=max_segment)
        assert send_all(pair, client, server, PAYLOAD[:200_000]) == PAYLOAD[:200_000]
        assert isinstance(pair, CuttingPair)
        assert max(data_sizes(pair.built)) == MSS


def test_a_smaller_peer_mss_turns_tso_off() -> None:
    # The link cuts at the MSS its MTU leaves (1448): bigger than B accepts (988).
    pair, client, server = make(config_b=TcpConfig(msl=SECOND, mss=1000))
    assert send_all(pair, client, server, PAYLOAD[:100_000]) == PAYLOAD[:100_000]
    assert isinstance(pair, CuttingPair)
    assert max(data_sizes(pair.built)) == 1000 - 12


def test_the_initial_window_leaves_as_one_segment() -> None:
    pair, client, _ = make()
    pair.a.layer.send(client, PAYLOAD[:100_000], now=pair.now)
    sent = pair.a.host.take_sent()
    assert [len(segment.payload) for segment in sent] == [10 * MSS]  # RFC 6928 IW10
    assert not sent[0].flags & PSH


def test_peer_window_limits_and_sender_sws_holds_the_tail() -> None:
    for offload in (True, False):
        config_a = TcpConfig(msl=SECOND, segmentation_offload=offload)
        pair, client, _ = make(config_a, TcpConfig(msl=SECOND, receive_buffer=5000))
        pair.a.layer.send(client, b"x" * 100, now=pair.now)
        pair.a.layer.send(client, PAYLOAD[:20_000], now=pair.now)
        # 3 MSS fit the rest of the 5000-byte window; the 556 bytes left of it are below
        # half the largest window seen (RFC 9293 §3.8.6.2.1) and wait.
        sizes = data_sizes(pair.a.host.take_sent())
        assert sizes == ([100, 3 * MSS] if offload else [100, MSS, MSS, MSS])


def test_with_nothing_in_flight_the_whole_window_goes_at_once() -> None:
    pair, client, _ = make(config_b=TcpConfig(msl=SECOND, receive_buffer=5000))
    pair.a.layer.send(client, PAYLOAD[:20_000], now=pair.now)
    assert data_sizes(pair.a.host.take_sent()) == [5000]  # no ACK would clock a hold


def test_nagle_holds_only_the_short_last_piece() -> None:
    pair, client, _ = make()
    pair.a.layer.send(client, b"x" * 100, now=pair.now)  # in flight, unacknowledged
    pair.a.layer.send(client, b"y" * (3 * MSS + 500), now=pair.now)
    assert data_sizes(pair.a.host.take_sent()) == [100, 3 * MSS]  # RFC 896: 500 waits
    pair.a.layer.set_nodelay(client, True, now=pair.now)
    assert data_sizes(pair.a.host.take_sent()) == [500]


def test_without_nagle_the_short_piece_rides_along() -> None:
    pair, client, _ = make(TcpConfig(msl=SECOND, nodelay=True))
    pair.a.layer.send(client, b"x" * 100, now=pair.now)
    pair.a.layer.send(client, b"y" * (3 * MSS + 500), now=pair.now)
    sent = pair.a.host.take_sent()
    assert data_sizes(sent) == [100, 3 * MSS + 500]
    assert sent[-1].flags & PSH


def test_the_fin_rides_on_the_last_big_segment() -> None:
    pair, client, server = make(cutting=False)
    pair.a.layer.send(client, PAYLOAD[:20_000], now=pair.now)
    pair.a.layer.shutdown(client, now=pair.now)  # cwnd holds 10 MSS: the rest waits
    pair.run(pair.now + 1 * SECOND)
    sent = [
        (len(s.payload), s.flags & (FIN | PSH))
        for _, source, s in pair.log
        if source == A_ADDR and (s.payload or s.flags & FIN)
    ]
    assert sent == [(10 * MSS, 0), (20_000 - 10 * MSS, FIN | PSH)]
    assert pair.b.layer.receive(server, now=pair.now) == PAYLOAD[:20_000]


def test_after_a_timeout_the_retransmission_is_one_mss() -> None:
    lost: list[int] = []

    def lose_first_flight(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload and len(lost) < 10:
            lost.append(segment.seq)
            return []
        return [0]

    pair, client, server = make(TcpConfig(msl=SECOND, sack=False), fault=lose_first_flight)
    assert send_all(pair, client, server, PAYLOAD[:100_000]) == PAYLOAD[:100_000]
    assert isinstance(pair, CuttingPair)
    data = [segment for segment in pair.built if segment.payload]
    sizes = data_sizes(data)
    assert sizes[0] == 10 * MSS and sizes[1] == MSS  # RFC 6298 §5.4: one segment
    assert data[1].seq == data[0].seq
    assert max(sizes[2:]) > MSS  # go-back-N then slow start, in big segments again


def test_a_piece_lost_from_a_big_segment_is_resent_alone() -> None:
    dropped: list[int] = []

    def lose_fourth_piece(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload:
            dropped.append(segment.seq)
            if len(dropped) == 4:
                return []
        return [0]

    for config in (FAST, TcpConfig(msl=SECOND, rack=False), TcpConfig(msl=SECOND, sack=False)):
        dropped.clear()
        pair, client, server = make(config, fault=lose_fourth_piece)
        assert send_all(pair, client, server, PAYLOAD[:100_000]) == PAYLOAD[:100_000]
        assert isinstance(pair, CuttingPair)
        resent = [s for s in pair.built if s.payload and s.seq == dropped[3]]
        assert [len(s.payload) for s in resent] == [MSS]
        assert pair.a.layer.info(client).retransmits == 1


def test_rack_keeps_one_record_per_piece_of_a_big_segment() -> None:
    rack = RackTlp()
    last = rack.on_transmit_run(1000, 1000 + 4 * MSS + 10, MSS, fin=1, now=500)
    assert last == 504 and rack.outstanding_segments == 5
    # A partial cumulative ACK (2 pieces) and a SACK of the 4th piece.
    fourth = 1000 + 3 * MSS
    verdict = rack.on_ack(
        snd_una=1000 + 2 * MSS,
        sack_blocks=[(fourth, fourth + MSS)],
        dsack=False,
        snd_nxt=1000 + 4 * MSS + 11,
        srtt=None,
        in_recovery=False,
        now=20_000,
    )
    assert rack.outstanding_segments == 2 and rack.sacked_segments == 1
    # The 3rd piece was sent before the SACKed 4th: lost once the reordering window
    # passes (RFC 8985 §6.2 step 5), as one MSS.
    third = 1000 + 2 * MSS
    assert verdict.lost == () and verdict.reorder_at is not None
    verdict = rack.on_reorder_timeout(srtt=None, in_recovery=False, now=verdict.reorder_at)
    assert verdict.lost == ((third, third + MSS),)
    # Retransmitting a big range covers the records it overlaps, piece by piece.
    rack.on_transmit_run(third, fourth, MSS, fin=0, now=30_000)
    assert rack.outstanding_segments == 2
    verdict = rack.on_ack(
        snd_una=1000 + 4 * MSS + 11,
        sack_blocks=[],
        dsack=False,
        snd_nxt=1000 + 4 * MSS + 11,
        srtt=None,
        in_recovery=False,
        now=40_000,
    )
    assert rack.outstanding_segments == 0 and verdict.lost == ()


def test_fragmentation_needed_ends_big_segments() -> None:
    pair, client, server = make()
    pair.a.layer.send(client, PAYLOAD[:100_000], now=pair.now)
    first = pair.a.host.sent[-1][2]
    assert len(first.payload) == 10 * MSS
    info = pair.a.layer.info(client)
    before = len(pair.a.host.sent)
    pair.a.layer.icmp_error_received(
        icmp_type=3,
        code=4,
        next_hop_mtu=1000,
        quoted_source=A_ADDR,
        quoted_source_port=info.local_port,
        quoted_destination=B_ADDR,
        quoted_destination_port=80,
        quoted_seq=first.seq,
        now=pair.now,
    )
    # RFC 1191 §6.2: 1000 - 40 - 12 (timestamps), resent from SND.UNA in segments that fit.
    assert pair.a.layer.info(client).mss == 948
    resent = [segment for _, _, segment in pair.a.host.sent[before:]]
    assert resent[0].seq == first.seq and max(data_sizes(resent)) == 948
    received = bytearray()
    pair.run(
        pair.now + 20 * SECOND,
        on_step=lambda: received.extend(pair.b.layer.receive(server, now=pair.now)),
    )
    assert bytes(received) == PAYLOAD[:100_000]
    assert isinstance(pair, CuttingPair)
    later = data_sizes(pair.built[pair.built.index(resent[0]) :])
    assert max(later) == 948
