"""Small writes: autocorking, Minshall's Nagle and TCP_CORK (issue 15, "Small writes").

Several ``send`` calls of one step (before the host collects output with
``Stack.frames_to_send``) leave in as few full-sized segments as possible
(Linux's autocorking), and Nagle (RFC 896, RFC 1122 §4.2.3.4) with delayed
ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2) never adds a delayed-ACK wait to a
request/response exchange whose response was written in one step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import ArpConfig, StackConfig
from simtcp.events import ConnectionEstablished, DataReceived
from simtcp.stack import Stack
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment

DELAY = 1 * MILLISECOND
RTT = 2 * DELAY


class RecordingStack(Stack):
    """A Stack that keeps the sequence number and payload length of every TCP frame it
    hands out."""

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self.payloads: list[tuple[int, int]] = []

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        frames = super().frames_to_send(now=now)
        for _, frame in frames:
            if frame[12:14] == b"\x08\x00" and frame[23] == 6:
                header = (frame[14] & 15) * 4
                segment = TcpSegment.parse(frame[14 + header :])
                self.payloads.append((segment.seq, len(segment.payload)))
        return frames

    def data_segments(self) -> list[int]:
        """Payload sizes of the data segments, each sent for the first time (a tail loss
        probe, RFC 8985 §7, resends the last one while the peer delays its ACK)."""
        seen: set[int] = set()
        sizes = []
        for seq, size in self.payloads:
            if size and seq not in seen:
                seen.add(seq)
                sizes.append(size)
        return sizes


@dataclass
class Exchange:
    """A client that sends ``request`` bytes and waits for the whole response."""

    request: int
    response: tuple[int, ...]
    durations: list[int] = field(default_factory=list)


def pair(tcp: TcpConfig) -> tuple[Simulator, RecordingStack, RecordingStack]:
    sim = Simulator(1)
    stacks = []
    for number in (1, 2):
        stack = RecordingStack(
            StackConfig(seed=number, arp=ArpConfig(entry_lifetime=10**12), tcp=tcp)
        )
        stack.add_interface("eth0", mac=f"02:00:00:00:00:{number:02x}")
        stack.add_address("eth0", f"10.0.0.{number}/24")
        sim.add_host(f"host{number}", stack)
        stacks.append(stack)
    sim.connect(("host1", "eth0"), ("host2", "eth0"), LinkProfile(delay=DELAY))
    return sim, stacks[0], stacks[1]


def run_exchanges(
    tcp: TcpConfig, request: int, response: tuple[int, ...], count: int
) -> tuple[Exchange, RecordingStack]:
    """``count`` request/response rounds; the server writes ``response`` in one step."""
    sim, client, server = pair(tcp)
    server.tcp_listen(80)
    exchange = Exchange(request, response)
    total = sum(response)
    progress = {"server": 0, "client": 0, "started": -1}
    handle = client.tcp_connect("10.0.0.2", 80, now=0)

    def server_app(now: int) -> None:
        while (event := server.next_event()) is not None:
            if isinstance(event, DataReceived):
                progress["server"] += len(server.receive(event.connection, now=now))
                while progress["server"] >= request:
                    progress["server"] -= request
                    for size in response:
                        assert server.send(event.connection, b"r" * size, now=now) == size

    def client_app(now: int) -> None:
        while (event := client.next_event()) is not None:
            if isinstance(event, DataReceived):
                progress["client"] += len(client.receive(handle, now=now))
                if progress["client"] < total:
                    continue
                progress["client"] -= total
                exchange.durations.append(now - progress["started"])
                if len(exchange.durations) == count:
                    continue
            elif not isinstance(event, ConnectionEstablished):
                continue
            progress["started"] = now
            client.send(handle, b"q" * request, now=now)

    sim.add_process(server_app)
    sim.add_process(client_app)
    assert sim.run_until(lambda: len(exchange.durations) >= count, timeout=3600 * SECOND)
    return exchange, server


def stalls(exchange: Exchange, tcp: TcpConfig) -> int:
    return sum(1 for duration in exchange.durations if duration >= RTT + tcp.delayed_ack)


def test_a_response_written_in_two_sends_in_one_step_leaves_in_one_segment() -> None:
    tcp = TcpConfig()
    exchange, server = run_exchanges(tcp, 100, (100, 200), 1)
    assert server.data_segments() == [300]
    assert exchange.durations == [RTT]


def test_without_autocorking_the_second_send_waits_for_the_delayed_ack() -> None:
    """The behaviour the fix removes, kept one switch away (``autocorking=False``)."""
    tcp = TcpConfig(autocorking=False)
    exchange, server = run_exchanges(tcp, 100, (100, 200), 1)
    assert server.data_segments() == [100, 200]
    # The client delays its ACK of the lone first segment; the second follows the ACK.
    assert exchange.durations == [2 * RTT + tcp.delayed_ack]


@pytest.mark.parametrize(
    "response", [(200,), (100, 100), (200, 2000), (2000,), (300, 300, 300), (1448, 10)]
)
def test_a_thousand_exchanges_take_no_delayed_ack_stall(response: tuple[int, ...]) -> None:
    tcp = TcpConfig()
    exchange, server = run_exchanges(tcp, 100, response, 1000)
    assert stalls(exchange, tcp) == 0
    assert set(exchange.durations) == {RTT}
    # As few segments as the bytes need: one full-sized segment per MSS, one short.
    mss = 1448  # 1460 less the timestamps option
    per_exchange = -(-sum(response) // mss)
    assert len(server.data_segments()) == 1000 * per_exchange


def test_a_full_segment_then_a_tail_does_not_wait_with_minshall_nagle() -> None:
    """A response of one full segment and a short tail, written in two sends: the tail
    is held by RFC 896 as written (a full segment is unacknowledged), not by Minshall's
    rule (no small segment is), which Linux applies."""
    for minshall, expected in ((True, RTT), (False, 2 * RTT + TcpConfig().delayed_ack)):
        tcp = TcpConfig(minshall_nagle=minshall)
        exchange, _ = run_exchanges(tcp, 100, (1448, 10), 3)
        assert set(exchange.durations) == {expected}


def test_nodelay_connections_are_autocorked_too() -> None:
    tcp = TcpConfig(nodelay=True)
    _, server = run_exchanges(tcp, 100, (10, 20, 30), 5)
    assert server.data_segments() == [60] * 5


def established(tcp: TcpConfig) -> tuple[Simulator, RecordingStack, RecordingStack, int, int]:
    sim, client, server = pair(tcp)
    server.tcp_listen(80)
    handle = client.tcp_connect("10.0.0.2", 80, now=0)
    sim.run_for(10 * MILLISECOND)
    accepted = [server.next_event() for _ in range(2)]
    connection = next(e.connection for e in accepted if e is not None and hasattr(e, "connection"))
    while client.next_event() is not None:
        pass
    server.payloads.clear()
    return sim, client, server, handle, connection


def drain_client(client: Stack, handle: int, now: int) -> bytes:
    data = b""
    while (event := client.next_event()) is not None:
        if isinstance(event, DataReceived):
            data += client.receive(handle, now=now)
    return data


def test_tcp_cork_holds_short_segments_until_cleared() -> None:
    sim, client, server, handle, connection = established(TcpConfig())
    server.tcp_set_cork(connection, True, now=sim.now)
    for _ in range(4):
        server.send(connection, b"x" * 500, now=sim.now)
    sim.run_for(150 * MILLISECOND)  # corked: only the full segment left
    assert server.data_segments() == [1448]
    server.tcp_set_cork(connection, False, now=sim.now)
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == [1448, 552]
    assert drain_client(client, handle, sim.now) == b"x" * 2000


def test_tcp_cork_holds_data_200_ms_at_most() -> None:
    """tcp(7): "a 200 millisecond ceiling on the time for which output is corked", counted
    from the first byte held; the cork stays set for what follows."""
    sim, client, server, handle, connection = established(TcpConfig())
    server.tcp_set_cork(connection, True, now=sim.now)
    started = sim.now
    server.send(connection, b"c" * 100, now=sim.now)
    sim.run_for(50 * MILLISECOND)
    server.send(connection, b"c" * 100, now=sim.now)
    sim.run_until(lambda: bool(server.data_segments()), timeout=SECOND)
    assert sim.now - started == 200 * MILLISECOND
    assert server.data_segments() == [200]
    server.send(connection, b"d" * 10, now=sim.now)  # still corked: a new ceiling
    again = sim.now
    sim.run_until(lambda: len(server.data_segments()) == 2, timeout=SECOND)
    assert sim.now - again == 200 * MILLISECOND
    sim.run_for(10 * MILLISECOND)
    assert drain_client(client, handle, sim.now) == b"c" * 200 + b"d" * 10


def test_a_fin_is_not_held_by_tcp_cork() -> None:
    sim, client, server, handle, connection = established(TcpConfig())
    server.tcp_set_cork(connection, True, now=sim.now)
    server.send(connection, b"y" * 10, now=sim.now)
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == []
    server.shutdown(connection, now=sim.now)
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == [10]
    assert drain_client(client, handle, sim.now) == b"y" * 10


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=12), nodelay=st.booleans())
def test_writes_of_one_step_leave_in_as_few_full_segments_as_possible(
    sizes: list[int], nodelay: bool
) -> None:
    """Invariant: whatever the split of one step's writes (within the initial window),
    the segments are full-sized but the last, and as few as the bytes need."""
    mss = 1448
    total = sum(sizes)
    assume(total <= 10 * mss)  # RFC 6928's initial window: nothing waits for an ACK
    sim, client, server, handle, connection = established(TcpConfig(nodelay=nodelay))
    for size in sizes:
        assert server.send(connection, b"w" * size, now=sim.now) == size
    sim.run_for(10 * MILLISECOND)
    segments = server.data_segments()
    assert len(segments) == -(-total // mss)
    assert all(size == mss for size in segments[:-1])
    assert drain_client(client, handle, sim.now) == b"w" * total


def test_setting_nodelay_flushes_even_while_corked() -> None:
    """tcp(7): setting TCP_NODELAY forces out pending output, even with TCP_CORK set."""
    sim, client, server, handle, connection = established(TcpConfig())
    server.tcp_set_cork(connection, True, now=sim.now)
    server.send(connection, b"z" * 10, now=sim.now)
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == []
    server.tcp_set_nodelay(connection, True, now=sim.now)
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == [10]
    server.send(connection, b"z" * 10, now=sim.now)  # still corked afterwards
    sim.run_for(10 * MILLISECOND)
    assert server.data_segments() == [10]
    assert drain_client(client, handle, sim.now) == b"z" * 10


def test_packetdrill_scripts_switch_autocorking_by_its_linux_sysctl() -> None:
    from simtcp.drill.commands import SYSCTLS

    assert SYSCTLS["net.ipv4.tcp_autocorking"]("0") == {"autocorking": False}
    assert SYSCTLS["net.ipv4.tcp_autocorking"]("1") == {"autocorking": True}
    TcpConfig(**SYSCTLS["net.ipv4.tcp_autocorking"]("0"))  # type: ignore[arg-type]
