"""The immediate ACK of every second segment waits for the host's flush, so reply data carries it.

RFC 1122 §4.2.3.2 / RFC 5681 §4.2: the ACK is still owed every second full
segment, and leaves before the next segment of the connection is processed;
only one still owed when the host collects its output (``TcpLayer.flush_acks``,
called by ``Stack.frames_to_send``) may ride on data the application sent.
"""

from __future__ import annotations

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import ArpConfig, StackConfig
from simtcp.events import ConnectionAccepted, DataReceived
from simtcp.stack import Stack
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment

from .harness import A_ADDR, B_ADDR, Pair, make_pair

MSS = 1448


def established(*, flushing: bool, stretch: int = 0) -> tuple[Pair, int, int]:
    # A buffer the unscaled SYN window already offers whole: reading sends no window update.
    config = TcpConfig(msl=SECOND, nodelay=True, receive_buffer=60_000)
    pair = make_pair(
        config, TcpConfig(msl=SECOND, nodelay=True, receive_buffer=60_000, max_stretch_ack=stretch)
    )
    pair.b.layer.listen(80)
    client = pair.a.layer.connect(B_ADDR, 80, now=0)
    pair.run(100 * MILLISECOND)
    server = next(
        e.connection for e in pair.b.host.take_events() if isinstance(e, ConnectionAccepted)
    )
    if flushing:
        pair.b.layer.flush_acks(now=pair.now)  # B's host flushes before collecting output
    pair.a.host.take_sent()
    pair.b.host.take_sent()
    return pair, client, server


def deliver_to_b(pair: Pair, segments: list[TcpSegment], now: int) -> None:
    for segment in segments:
        pair.b.receive(segment, source=A_ADDR, now=now)


def acks(segments: list[TcpSegment], base: int) -> list[tuple[int, int]]:
    """(ACK number relative to ``base``, payload length) of each segment."""
    return [((segment.ack - base) & 0xFFFFFFFF, len(segment.payload)) for segment in segments]


def test_reply_data_carries_the_ack_of_two_segments() -> None:
    pair, client, server = established(flushing=True)
    now = pair.now
    pair.a.layer.send(client, b"q" * (2 * MSS), now=now)
    request = pair.a.host.take_sent()
    base = request[0].seq
    deliver_to_b(pair, request, now + 10 * MILLISECOND)
    assert pair.b.host.take_sent() == []  # owed, not sent yet
    assert pair.b.layer.receive(server, now=now + 10 * MILLISECOND) == b"q" * (2 * MSS)
    pair.b.layer.send(server, b"reply", now=now + 10 * MILLISECOND)
    pair.b.layer.flush_acks(now=now + 10 * MILLISECOND)
    assert acks(pair.b.host.take_sent(), base) == [(2 * MSS, 5)]  # one frame, not two


def test_without_reply_the_owed_ack_leaves_at_the_flush() -> None:
    pair, client, _ = established(flushing=True)
    pair.a.layer.send(client, b"q" * (2 * MSS), now=pair.now)
    request = pair.a.host.take_sent()
    deliver_to_b(pair, request, pair.now + 10 * MILLISECOND)
    pair.b.layer.flush_acks(now=pair.now + 10 * MILLISECOND)
    assert acks(pair.b.host.take_sent(), request[0].seq) == [(2 * MSS, 0)]
    pair.b.layer.flush_acks(now=pair.now + 10 * MILLISECOND)
    assert pair.b.host.take_sent() == []  # owed once, sent once


def test_a_burst_is_still_acked_every_second_segment() -> None:
    for flushing in (True, False):
        pair, client, server = established(flushing=flushing)
        now = pair.now + 10 * MILLISECOND
        pair.a.layer.send(client, b"q" * (4 * MSS), now=pair.now)
        request = pair.a.host.take_sent()
        assert len(request) == 4
        deliver_to_b(pair, request, now)
        pair.b.layer.receive(server, now=now)
        pair.b.layer.send(server, b"reply", now=now)
        pair.b.layer.flush_acks(now=now)
        expected = (
            [(2 * MSS, 0), (4 * MSS, 5)] if flushing else [(2 * MSS, 0), (4 * MSS, 0), (4 * MSS, 5)]
        )
        assert acks(pair.b.host.take_sent(), request[0].seq) == expected


def test_an_owed_ack_is_not_held_past_the_instant_it_was_owed() -> None:
    pair, client, _ = established(flushing=True)
    pair.a.layer.send(client, b"q" * (2 * MSS), now=pair.now)
    request = pair.a.host.take_sent()
    deliver_to_b(pair, request, pair.now + 10 * MILLISECOND)
    # The host never collected output; the next arrival (a pure ACK) at a later
    # time first sends what was owed, then handles its own segment.
    pair.a.layer.send(client, b"z", now=pair.now)
    late = pair.a.host.take_sent()
    deliver_to_b(pair, late, pair.now + 20 * MILLISECOND)
    sent = pair.b.host.take_sent()
    assert acks(sent, request[0].seq)[0] == (2 * MSS, 0)


def test_thinning_lets_an_owed_ack_stretch_up_to_its_limit() -> None:
    pair, client, server = established(flushing=True, stretch=3 * MSS)
    now = pair.now + 10 * MILLISECOND
    pair.a.layer.send(client, b"q" * (6 * MSS), now=pair.now)
    request = pair.a.host.take_sent()
    assert len(request) == 6
    deliver_to_b(pair, request, now)
    pair.b.layer.send(server, b"reply", now=now)
    pair.b.layer.flush_acks(now=now)
    # The ACK owed after 2 segments stretches over the 3rd; once it covers 3 MSS it
    # leaves before the 4th; the one owed after the 6th rides on the reply.
    assert acks(pair.b.host.take_sent(), request[0].seq) == [(3 * MSS, 0), (6 * MSS, 5)]


class RecordingStack(Stack):
    """A Stack that keeps every frame it hands to the simulator."""

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self.written: list[bytes] = []

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        frames = super().frames_to_send(now=now)
        self.written += [frame for _, frame in frames]
        return frames


def test_an_echo_over_the_simulator_writes_no_pure_ack() -> None:
    """Stack.frames_to_send flushes owed ACKs after the application had its turn."""
    sim = Simulator(1)
    stacks = []
    for number in (1, 2):
        stack = RecordingStack(
            StackConfig(
                seed=number,
                arp=ArpConfig(entry_lifetime=10**12),
                tcp=TcpConfig(nodelay=True, receive_buffer=60_000),
            )
        )
        stack.add_interface("eth0", mac=f"02:00:00:00:00:{number:02x}")
        stack.add_address("eth0", f"10.0.0.{number}/24")
        sim.add_host(f"host{number}", stack)
        stacks.append(stack)
    client, server = stacks
    sim.connect(("host1", "eth0"), ("host2", "eth0"), LinkProfile(delay=5 * MILLISECOND))
    server.tcp_listen(80)

    def echo(now: int) -> None:
        event = server.next_event()
        while event is not None:
            if isinstance(event, DataReceived):
                server.send(event.connection, server.receive(event.connection, now=now), now=now)
            event = server.next_event()

    sim.add_process(echo)
    handle = client.tcp_connect("10.0.0.2", 80, now=sim.now)
    sim.run_for(100 * MILLISECOND)
    server.written.clear()
    client.send(handle, b"e" * (2 * MSS), now=sim.now)
    sim.run_for(100 * MILLISECOND)
    tcp_payloads = [
        len(TcpSegment.parse(frame[34:]).payload) for frame in server.written if frame[23] == 6
    ]
    assert tcp_payloads == [MSS, MSS]  # the echo carried the ACK: no pure ACK frame
