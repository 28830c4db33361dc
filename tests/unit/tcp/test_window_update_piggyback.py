"""A window update owed after a read waits for the host's flush, so reply data carries it.

RFC 9293 §3.8.6.2.2 / RFC 1122 §4.2.3.3: once reading has opened the window
enough, the receiver must tell the sender. With a host that flushes owed ACKs
before collecting output (``TcpLayer.flush_acks``), the update is queued like an
immediate ACK: an echo's reply, sent before the flush, carries it (RFC 1122
§4.2.3.2 piggybacking) and no pure ACK frame is written; without a reply the
pure ACK leaves at the flush, at the time of the read.
"""

from __future__ import annotations

from simtcp.events import ConnectionAccepted
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment

from .harness import A_ADDR, B_ADDR, Pair, make_pair

MSS = 1448
BUFFER = 4 * MSS


def filled(*, flushing: bool) -> tuple[Pair, int, int, int]:
    """B's receive window filled by A (and acknowledged, window 0); returns the data's ISN."""
    config = TcpConfig(msl=SECOND, nodelay=True, receive_buffer=BUFFER, window_scaling=False)
    pair = make_pair(config, config)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(
        e.connection for e in pair.b.host.take_events() if isinstance(e, ConnectionAccepted)
    )
    if flushing:
        pair.b.layer.flush_acks(now=pair.now)
    pair.a.host.take_sent()
    pair.b.host.take_sent()
    pair.a.layer.send(client, b"q" * BUFFER, now=pair.now)
    request = pair.a.host.take_sent()
    assert [len(segment.payload) for segment in request] == [MSS] * 4
    now = pair.now + 10 * MILLISECOND
    for segment in request:
        pair.b.receive(segment, source=A_ADDR, now=now)
    if flushing:
        pair.b.layer.flush_acks(now=now)
    closing = pair.b.host.take_sent()
    assert closing[-1].window == 0  # every byte unread: the window is closed
    return pair, server, now, request[0].seq


def summary(segments: list[TcpSegment], base: int) -> list[tuple[int, int, int]]:
    """(ACK number relative to ``base``, window, payload length) of each segment."""
    return [
        ((segment.ack - base) & 0xFFFFFFFF, segment.window, len(segment.payload))
        for segment in segments
    ]


def test_the_reply_carries_the_window_update() -> None:
    pair, server, now, base = filled(flushing=True)
    later = now + 5 * MILLISECOND
    assert pair.b.layer.receive(server, now=later) == b"q" * BUFFER
    assert pair.b.host.take_sent() == []  # owed, not sent yet
    pair.b.layer.send(server, b"reply", now=later)
    pair.b.layer.flush_acks(now=later)
    assert summary(pair.b.host.take_sent(), base) == [(BUFFER, BUFFER, 5)]  # one frame


def test_without_a_reply_the_window_update_leaves_at_the_flush() -> None:
    pair, server, now, base = filled(flushing=True)
    later = now + 5 * MILLISECOND
    pair.b.layer.receive(server, now=later)
    pair.b.layer.flush_acks(now=later)
    assert summary(pair.b.host.take_sent(), base) == [(BUFFER, BUFFER, 0)]
    pair.b.layer.flush_acks(now=later)
    assert pair.b.host.take_sent() == []  # owed once, sent once


def test_a_host_that_never_flushes_gets_the_update_at_once() -> None:
    pair, server, now, base = filled(flushing=False)
    later = now + 5 * MILLISECOND
    pair.b.layer.receive(server, now=later)
    assert summary(pair.b.host.take_sent(), base) == [(BUFFER, BUFFER, 0)]


def test_an_update_owed_earlier_leaves_before_a_later_read_is_queued() -> None:
    pair, server, now, base = filled(flushing=True)
    later = now + 5 * MILLISECOND
    pair.b.layer.receive(server, MSS, now=later)
    pair.b.layer.receive(server, MSS, now=later)  # the window opens: an update is owed
    # The host did not collect output before the next read, 1 ms later: the
    # update owed at ``later`` leaves first (with the window as it is by then),
    # instead of waiting in the queue for the host's next flush.
    pair.b.layer.receive(server, now=later + MILLISECOND)
    assert summary(pair.b.host.take_sent(), base) == [(BUFFER, BUFFER, 0)]
    pair.b.layer.flush_acks(now=later + MILLISECOND)
    assert pair.b.host.take_sent() == []
