"""Short connections with and without TCP Fast Open (RFC 7413) in the simulator.

A client opens ``--connections`` connections one after the other, each sending a
request with its connect (``Stack.tcp_connect(..., data=)``) and reading the
response; the server answers at once and closes. Printed side by side from the
same run: virtual milliseconds from connect to the whole response, for Fast
Open off (the default) and on (the first connection fetches the cookie, the
rest carry the request in the SYN), and the CPU seconds each run took.

    python3 bench/bench_fast_open.py [--connections 200] [--delay-ms 10]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.backends.sim import Simulator  # noqa: E402
from simtcp.config import ArpConfig, StackConfig, TcpConfig  # noqa: E402
from simtcp.events import ConnectionClosed, DataReceived, PeerClosed  # noqa: E402
from simtcp.stack import Stack  # noqa: E402
from simtcp.time import MILLISECOND, SECOND  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n"
RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"


def two_hosts(tcp: TcpConfig, delay: int) -> tuple[Simulator, Stack, Stack]:
    sim = Simulator(1)
    stacks = []
    for number in (1, 2):
        stack = Stack(StackConfig(seed=number, arp=ArpConfig(entry_lifetime=10**12), tcp=tcp))
        stack.add_interface("eth0", mac=f"02:00:00:00:00:{number:02x}")
        stack.add_address("eth0", f"10.0.0.{number}/24")
        sim.add_host(f"host{number}", stack)
        stacks.append(stack)
    sim.connect(("host1", "eth0"), ("host2", "eth0"), LinkProfile(delay=delay))
    return sim, stacks[0], stacks[1]


def serve(server: Stack) -> Callable[[int], None]:
    """Answer each request at once and close."""

    def process(now: int) -> None:
        while (event := server.next_event()) is not None:
            if isinstance(event, DataReceived) and server.receive(event.connection, now=now):
                server.send(event.connection, RESPONSE, now=now)
                server.close(event.connection, now=now)

    return process


class Client:
    """Connects with the request as data, reads the response, closes, and again."""

    def __init__(self, stack: Stack, connections: int) -> None:
        self.stack, self.connections = stack, connections
        self.times: list[int] = []
        self.started = self.got = 0

    def start(self, now: int) -> None:
        self.started, self.got = now, 0
        self.stack.tcp_connect("10.0.0.2", 80, data=REQUEST, now=now)

    def __call__(self, now: int) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            if isinstance(event, DataReceived):
                self.got += len(stack.receive(event.connection, now=now))
                if self.got == len(RESPONSE):
                    self.times.append(now - self.started)
            elif isinstance(event, PeerClosed):
                stack.close(event.connection, now=now)
            elif isinstance(event, ConnectionClosed) and len(self.times) < self.connections:
                self.start(now)


def run(tcp: TcpConfig, connections: int, delay: int) -> tuple[list[int], float]:
    """Connect-to-response times (us) of ``connections`` sequential exchanges, CPU s."""
    sim, client_stack, server = two_hosts(tcp, delay)
    server.tcp_listen(80, fast_open_queue=64)
    client = Client(client_stack, connections)
    sim.add_process(serve(server))
    sim.add_process(client)
    client_stack.ping("10.0.0.2", identifier=1, sequence=1, now=0)  # warm ARP
    sim.run_for(100 * MILLISECOND)
    while client_stack.next_event() is not None:
        pass
    started = time.process_time()
    client.start(sim.now)
    sim.run_until(lambda: len(client.times) >= connections, timeout=3600 * SECOND)
    return client.times, time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--delay-ms", type=float, default=10.0, help="one-way link delay")
    args = parser.parse_args()
    delay = int(args.delay_ms * MILLISECOND)
    print(f"{args.connections} connections, RTT {2 * delay / 1000:.1f} ms")
    print(f"{'':22} {'first ms':>9} {'rest ms (mean)':>15} {'CPU s':>7}")
    for name, tcp in (
        ("Fast Open off", TcpConfig()),
        ("Fast Open on", TcpConfig(fast_open_client=True, fast_open_server=True)),
    ):
        times, cpu = run(tcp, args.connections, delay)
        rest = times[1:] or times
        print(f"{name:22} {times[0] / 1000:9.2f} {sum(rest) / len(rest) / 1000:15.2f} {cpu:7.2f}")


if __name__ == "__main__":
    main()
