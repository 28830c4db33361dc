"""Handshake, data both ways, close, and retransmission between two in-memory layers."""

from __future__ import annotations

from simtcp.events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    DataReceived,
    PeerClosed,
)
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment

from .harness import A_ADDR, B_ADDR, make_pair

FAST = TcpConfig(msl=1 * SECOND)


def test_handshake_data_close_both_ways() -> None:
    pair = make_pair(FAST, FAST)
    listener = pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(1 * SECOND)
    a_events = pair.a.host.take_events()
    b_events = pair.b.host.take_events()
    assert a_events == [ConnectionEstablished(connection=client)]
    accepted = b_events[0]
    assert isinstance(accepted, ConnectionAccepted)
    assert accepted.listener == listener and accepted.remote_address == "10.0.0.1"
    server = accepted.connection
    assert pair.a.layer.info(client).state == "ESTABLISHED"
    assert pair.b.layer.info(server).state == "ESTABLISHED"

    payload = bytes(range(256)) * 400  # 102,400 bytes
    assert pair.a.layer.send(client, payload, now=pair.now) == len(payload)
    received = bytearray()

    def read() -> None:
        received.extend(pair.b.layer.receive(server, now=pair.now))

    pair.run(pair.now + 5 * SECOND, on_step=read)
    assert bytes(received) == payload
    assert any(isinstance(e, DataReceived) for e in pair.b.host.take_events())

    # Half-close: A stops writing, B still sends, A still reads.
    pair.a.layer.shutdown(client, now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert PeerClosed(connection=server) in pair.b.host.take_events()
    assert pair.a.layer.info(client).state == "FIN-WAIT-2"
    assert pair.b.layer.info(server).state == "CLOSE-WAIT"
    pair.b.layer.send(server, b"reply", now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert pair.a.layer.receive(client, now=pair.now) == b"reply"
    pair.b.layer.close(server, now=pair.now)
    pair.run(pair.now + 1 * SECOND)
    assert pair.a.layer.info(client).state == "TIME-WAIT"
    assert PeerClosed(connection=client) in pair.a.host.events
    pair.a.layer.close(client, now=pair.now)
    pair.run(pair.now + 5 * SECOND)
    assert ConnectionClosed(connection=client) in pair.a.host.events
    assert ConnectionClosed(connection=server) in pair.b.host.events
    assert pair.a.layer.connection_count() == 0
    assert pair.b.layer.connection_count() == 0


def test_retransmission_after_loss() -> None:
    dropped: list[int] = []

    def lose_third_data_segment(segment: TcpSegment, sender: int) -> list[int]:
        if sender == A_ADDR and segment.payload:
            dropped.append(segment.seq)
            if len(dropped) == 3:
                return []
        return [0]

    pair = make_pair(FAST, FAST, fault=lose_third_data_segment)
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(e.connection for e in pair.b.host.events if isinstance(e, ConnectionAccepted))
    payload = b"x" * 20000
    pair.a.layer.send(client, payload, now=pair.now)
    received = bytearray()
    pair.run(
        pair.now + 5 * SECOND,
        on_step=lambda: received.extend(pair.b.layer.receive(server, now=pair.now)),
    )
    assert bytes(received) == payload
    assert pair.a.layer.info(client).retransmits >= 1
