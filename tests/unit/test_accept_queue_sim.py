"""listen(2)'s backlog counts only connections not yet handed to the application (issue 15).

Many idle clients connect at once to a listener with the default backlog
(128) whose application reacts to data only (``simtcp.apps.EchoServer``
registers a connection on its ``ConnectionAccepted`` event and otherwise
waits for bytes). Every client must get in, without a SYN retransmission:
a connection whose event was handed over no longer counts. Then every client
echoes 4 KiB. :func:`run_idle_clients` is shared with
``bench/bench_accept_queue.py`` (10,000 clients, CPU seconds and memory per
connection).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from simtcp.apps import EchoServer
from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import StackConfig
from simtcp.events import ConnectionEstablished, DataReceived, Event
from simtcp.stack import Stack
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND

SERVER = "10.0.0.2"
PAYLOAD = bytes(range(256)) * 16  # 4 KiB


@dataclass
class IdleClients:
    """``count`` connections from one client stack; what each received."""

    sim: Simulator
    client: Stack
    server: Stack
    echo: EchoServer
    count: int
    established: set[int] = field(default_factory=set)
    received: dict[int, int] = field(default_factory=dict)

    def pump(self, now: int) -> None:
        while (event := self.server.next_event()) is not None:
            self.echo.handle_event(event, now)
        while (event := self.client.next_event()) is not None:
            self._client_event(event, now)

    def _client_event(self, event: Event, now: int) -> None:
        if isinstance(event, ConnectionEstablished):
            self.established.add(event.connection)
        elif isinstance(event, DataReceived):
            data = self.client.receive(event.connection, now=now)
            self.received[event.connection] = self.received.get(event.connection, 0) + len(data)


def make_clients(count: int, *, tcp: TcpConfig | None = None, pump: bool = True) -> IdleClients:
    sim = Simulator(1)
    stacks = []
    for index, address in enumerate(("10.0.0.1/24", SERVER + "/24")):
        stack = Stack(StackConfig(seed=index + 1, tcp=tcp or TcpConfig()))
        stack.add_interface("eth0", mac=f"02:00:00:00:00:0{index + 1}")
        stack.add_address("eth0", address, now=sim.now)
        sim.add_host(f"h{index}", stack)
        stacks.append(stack)
    sim.connect(("h0", "eth0"), ("h1", "eth0"), LinkProfile(delay=5 * MILLISECOND))
    client, server = stacks
    clients = IdleClients(sim, client, server, EchoServer(server, 7), count)
    if pump:
        sim.add_process(clients.pump)
    return clients


def run_idle_clients(count: int) -> IdleClients:
    """All connect within a few hundred ms and stay idle until all are in; then all
    echo 4 KiB at once."""
    clients = make_clients(count)
    sim, client = clients.sim, clients.client
    # One first, so that ARP has resolved (its queue holds a few frames only).
    handles = [client.tcp_connect(SERVER, 7, now=sim.now)]
    assert sim.run_until(lambda: len(clients.established) == 1, timeout=SECOND)
    # Then the rest, as fast as a client host opens them: 50 per millisecond.
    while len(handles) < count:
        batch = min(50, count - len(handles))
        handles += [client.tcp_connect(SERVER, 7, now=sim.now) for _ in range(batch)]
        sim.run_until(lambda: False, timeout=MILLISECOND)
    # Well inside the 1 s initial RTO: nobody's SYN needed a retransmission.
    in_time = (count // 50 + 900) * MILLISECOND
    all_in = sim.run_until(lambda: len(clients.established) == count, timeout=in_time)
    assert all_in, f"{len(clients.established)} of {count} established"
    sim.run_until(lambda: False, timeout=200 * MILLISECOND)  # idle
    for handle in handles:
        assert client.send(handle, PAYLOAD, now=sim.now) == len(PAYLOAD)
    done = sim.run_until(
        lambda: all(clients.received.get(h, 0) == len(PAYLOAD) for h in handles),
        timeout=10 * SECOND,
    )
    assert done, f"{sum(1 for h in handles if clients.received.get(h) == len(PAYLOAD))} echoed"
    return clients


@pytest.mark.parametrize("count", [256, 2000])
def test_idle_clients_beyond_the_backlog_all_get_in_and_echo(count: int) -> None:
    clients = run_idle_clients(count)
    stats = clients.client.stats()
    assert stats.get("tcp.syn_retransmits", 0) == 0
    assert clients.server.stats().get("drop.tcp_backlog_full", 0) == 0
    assert clients.echo.accepted == count
    listener = clients.server.tcp_info(clients.echo.listener)
    assert listener.queued == 0 and listener.syn_queued == 0


def test_a_listener_whose_events_are_not_taken_fills_at_the_backlog() -> None:
    """The other side of the rule: completed connections nobody was handed stay counted."""
    clients = make_clients(0, pump=False)
    sim, client, server = clients.sim, clients.client, clients.server
    listener = server.tcp_listen(8, backlog=4)
    client.tcp_connect(SERVER, 7, now=sim.now)  # resolves ARP
    sim.run_until(lambda: False, timeout=100 * MILLISECOND)
    for _ in range(6):
        client.tcp_connect(SERVER, 8, now=sim.now)
    sim.run_until(lambda: False, timeout=500 * MILLISECOND)
    info = server.tcp_info(listener)
    assert info.queued == 4
    assert server.stats()["drop.tcp_backlog_full"] >= 2
