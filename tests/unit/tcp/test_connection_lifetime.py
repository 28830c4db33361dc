"""No Connection outlives its close plus TIME-WAIT (issue 15, flat memory).

Counted with the garbage collector disabled: ``gc.get_objects`` then also
holds objects kept only by a reference cycle, so a cycle through the timer's
callback closure (conn -> timer -> closure -> conn) counts as a leak, as it
does on a busy server where collection lags far behind.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from simtcp.events import ConnectionAccepted
from simtcp.tcp.connection import Connection
from simtcp.time import MILLISECOND, SECOND
from simtcp.timers import TimerHeap
from simtcp.wire.tcp import SYN

from .harness import B_ADDR, Pair, make_pair


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def connection_objects() -> int:
    return sum(1 for item in gc.get_objects() if type(item) is Connection)


def short_exchange(pair: Pair, *, server_closes: bool) -> None:
    a, b = pair.a.layer, pair.b.layer
    client = a.connect(B_ADDR, 80, now=pair.now)
    pair.run_for(30 * MILLISECOND)
    a.send(client, b"GET / HTTP/1.0\r\n\r\n", now=pair.now)
    pair.run_for(30 * MILLISECOND)
    events = pair.b.host.take_events()
    server = next(e.connection for e in events if isinstance(e, ConnectionAccepted))
    b.receive(server, now=pair.now)
    b.send(server, b"x" * 300, now=pair.now)
    pair.run_for(30 * MILLISECOND)
    assert len(a.receive(client, now=pair.now)) == 300
    first, first_handle, second, second_handle = (
        (b, server, a, client) if server_closes else (a, client, b, server)
    )
    first.close(first_handle, now=pair.now)
    pair.run_for(30 * MILLISECOND)
    second.receive(second_handle, now=pair.now)
    second.close(second_handle, now=pair.now)
    pair.run_for(30 * MILLISECOND)
    pair.a.host.take_events()
    pair.b.host.take_events()
    pair.log.clear()


@pytest.mark.parametrize("server_closes", [True, False], ids=["server-closes", "client-closes"])
def test_no_connection_outlives_close_and_time_wait(no_gc: None, server_closes: bool) -> None:
    pair = make_pair()
    pair.b.layer.listen(80)
    before = connection_objects()
    for _ in range(40):
        short_exchange(pair, server_closes=server_closes)
    live = pair.a.layer.connection_count() + pair.b.layer.connection_count()
    assert live == 40  # the closing end's TIME-WAITs (2*MSL is 60 s)
    assert connection_objects() - before == live
    pair.run_for(2 * pair.a.layer.config.msl + SECOND)
    assert pair.a.layer.connection_count() + pair.b.layer.connection_count() == 0
    assert connection_objects() - before == 0


def test_a_new_syn_ends_time_wait_at_once(no_gc: None) -> None:
    """RFC 6191 §2: a SYN with a newer TSval reopens a port held in TIME-WAIT."""
    pair = make_pair()
    pair.b.layer.listen(80)
    short_exchange(pair, server_closes=True)
    (old,) = pair.b.layer.connections_info()
    assert old.state == "TIME-WAIT"
    pair.run_for(SECOND)
    client = pair.a.layer.connect(B_ADDR, 80, local_port=old.remote_port, now=pair.now)
    pair.run_for(50 * MILLISECOND)  # well inside the 1 s SYN retransmission timeout
    assert pair.a.layer.info(client).state == "ESTABLISHED"
    assert pair.b.host.stats.counters()["tcp.time_wait_reopened"] == 1
    syns = [s for _, source, s in pair.log if s.flags & SYN and source != B_ADDR]
    assert len(syns) == 1


def test_discarded_timer_drops_its_callback_and_the_heap_compacts() -> None:
    heap = TimerHeap()
    owners = [object() for _ in range(200)]
    timers = [heap.new_timer(lambda now, owner=owner: None) for owner in owners]
    for index, timer in enumerate(timers):
        heap.arm(timer, 1000 + index)
    for timer in timers[:150]:
        heap.discard(timer)
        assert timer.callback.__name__ == "_discarded"
    assert len(heap) <= 2 * 50 + 64
    assert heap.poll_at() == 1150
    assert heap.run_due(10_000) == 50
