"""Hypothesis: two TCP layers over a lossy, reordering, duplicating in-memory link.

Whatever the faults, each direction delivers exactly the bytes sent, in order,
once; both ends close, pass TIME-WAIT and leave no connection or timer behind.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.events import ConnectionAccepted, ConnectionClosed, Event, PeerClosed
from simtcp.tcp import TcpConfig, TcpLayer
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import TcpSegment
from tests.unit.tcp.harness import B_ADDR, Fault, Pair, make_pair

CONFIG = TcpConfig(
    msl=2 * SECOND,
    send_buffer=64 * 1024,
    receive_buffer=64 * 1024,
    data_retries=40,
    syn_retries=30,
    max_rto=4 * SECOND,
)


def lossy_link(rng: random.Random, loss: float, reorder: float, duplicate: float) -> Fault:
    """Drop with ``loss``; delay up to 30 ms with ``reorder``; copy late with ``duplicate``."""

    def fault(segment: TcpSegment, sender: int) -> list[int]:
        if rng.random() < loss:
            return []
        copies = [rng.randrange(30 * MILLISECOND) if rng.random() < reorder else 0]
        if rng.random() < duplicate:
            copies.append(rng.randrange(50 * MILLISECOND))
        return copies

    return fault


class App:
    """One end's application: write everything, read everything, close after the peer."""

    def __init__(self, layer: TcpLayer, data: bytes, chunk: int) -> None:
        self.layer = layer
        self.data = data
        self.chunk = chunk
        self.handle: int | None = None
        self.sent = 0
        self.received = bytearray()
        self.peer_closed = False
        self.closed = False
        self.gone = False

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ConnectionAccepted):
                self.handle = event.connection
            elif isinstance(event, PeerClosed) and event.connection == self.handle:
                self.peer_closed = True
            elif isinstance(event, ConnectionClosed) and event.connection == self.handle:
                self.gone = True

    def step(self, now: int) -> None:
        handle = self.handle
        if handle is None or self.closed:
            return
        assert not self.gone, "connection ended before the application closed it"
        layer = self.layer
        if layer.info(handle).state == "SYN-SENT":
            return
        while self.sent < len(self.data):
            taken = layer.send(handle, self.data[self.sent : self.sent + self.chunk], now=now)
            if taken == 0:
                break
            self.sent += taken
        self.received += layer.receive(handle, now=now)
        if self.sent < len(self.data):
            return
        if self.peer_closed:
            layer.close(handle, now=now)
            self.closed = True
        elif layer.info(handle).state == "ESTABLISHED":
            layer.shutdown(handle, now=now)


def run_transfer(pair: Pair, a_data: bytes, b_data: bytes, *, chunk: int) -> None:
    """A connects to B; both send, read, half-close, close; everything must come out exact."""
    client = App(pair.a.layer, a_data, chunk)
    server = App(pair.b.layer, b_data, chunk)
    pair.b.layer.listen(80)
    client.handle = pair.a.layer.connect(B_ADDR, 80, now=pair.now)

    def on_step() -> None:
        client.on_events(pair.a.host.take_events())
        server.on_events(pair.b.host.take_events())
        client.step(pair.now)
        server.step(pair.now)

    def finished() -> bool:
        # A stray duplicate SYN may still hold a half-open connection: wait for it too.
        return (
            client.gone
            and server.gone
            and pair.a.layer.connection_count() == 0
            and pair.b.layer.connection_count() == 0
        )

    pair.run(900 * SECOND, on_step=on_step, stop=finished)
    assert bytes(server.received) == a_data
    assert bytes(client.received) == b_data
    assert client.closed and server.closed and finished()
    assert pair.a.layer.connection_count() == 0 and pair.b.layer.connection_count() == 0
    assert pair.a.timers.poll_at() is None and pair.b.timers.poll_at() is None


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    loss=st.sampled_from([0.0, 0.01, 0.05, 0.1, 0.3]),
    reorder=st.sampled_from([0.0, 0.1, 0.3]),
    duplicate=st.sampled_from([0.0, 0.05, 0.2]),
    a_size=st.integers(0, 120_000),
    b_size=st.integers(0, 40_000),
    chunk=st.sampled_from([1, 100, 1460, 5000, 100_000]),
)
def test_lossy_transfer_delivers_exactly(
    seed: int, loss: float, reorder: float, duplicate: float, a_size: int, b_size: int, chunk: int
) -> None:
    rng = random.Random(seed)
    a_data = rng.randbytes(a_size)
    b_data = rng.randbytes(b_size)
    pair = make_pair(CONFIG, CONFIG, seed=seed, fault=lossy_link(rng, loss, reorder, duplicate))
    run_transfer(pair, a_data, b_data, chunk=chunk)


def test_regression_duplicate_syn_after_close() -> None:
    """Seed 606: a duplicated SYN reaching the listener after close made a timer-less half-open."""
    rng = random.Random(606)
    a_data, b_data = rng.randbytes(10), rng.randbytes(10)
    pair = make_pair(CONFIG, CONFIG, seed=606, fault=lossy_link(rng, 0.3, 0.0, 0.2))
    run_transfer(pair, a_data, b_data, chunk=1)


def test_regression_go_back_n_ack_war() -> None:
    """Seed 120: pure ACKs at a stepped-back SND.NXT started an endless ACK war."""
    rng = random.Random(120)
    a_data, b_data = rng.randbytes(100_000), rng.randbytes(50_000)
    pair = make_pair(CONFIG, CONFIG, seed=120, fault=lossy_link(rng, 0.1, 0.3, 0.2))
    run_transfer(pair, a_data, b_data, chunk=100)


def option_config(draw_flags: tuple[bool, bool, bool], congestion: str) -> TcpConfig:
    sack, timestamps, window_scaling = draw_flags
    return TcpConfig(
        msl=2 * SECOND,
        send_buffer=128 * 1024,
        receive_buffer=96 * 1024,
        data_retries=40,
        syn_retries=30,
        max_rto=4 * SECOND,
        sack=sack,
        timestamps=timestamps,
        window_scaling=window_scaling,
        congestion_control=congestion,
    )


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    a_flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    b_flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    congestion=st.sampled_from(["newreno", "cubic"]),
    loss=st.sampled_from([0.0, 0.02, 0.1]),
    reorder=st.sampled_from([0.0, 0.2]),
    duplicate=st.sampled_from([0.0, 0.1]),
    a_size=st.integers(0, 300_000),
    b_size=st.integers(0, 100_000),
)
def test_every_option_combination_delivers_exactly(
    seed: int,
    a_flags: tuple[bool, bool, bool],
    b_flags: tuple[bool, bool, bool],
    congestion: str,
    loss: float,
    reorder: float,
    duplicate: float,
    a_size: int,
    b_size: int,
) -> None:
    rng = random.Random(seed)
    a_data = rng.randbytes(a_size)
    b_data = rng.randbytes(b_size)
    pair = make_pair(
        option_config(a_flags, congestion),
        option_config(b_flags, congestion),
        seed=seed,
        fault=lossy_link(rng, loss, reorder, duplicate),
    )
    run_transfer(pair, a_data, b_data, chunk=16_384)
