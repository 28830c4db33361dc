"""Request/response exchange time in the simulator: Nagle, delayed ACKs and small writes.

A client writes a request in one ``send``; the server, on reading a whole
request, writes its response in the same step, in one ``send`` or in several
(a header and a body, as an HTTP server does). The client sends the next
request once it has read the whole response. Every pattern runs with the
default configuration (autocorking, Minshall's Nagle) and with
``autocorking=False, minshall_nagle=False`` (RFC 896's rule as it was before
the small-write change), side by side from the same run. Figures are virtual
milliseconds per exchange (deterministic) and the exchanges that took more
than one delayed-ACK timeout longer than the RTT ("stalls").

    python3 bench/bench_small_writes.py [--exchanges 1000] [--delay-ms 1]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.backends.sim import Simulator  # noqa: E402
from simtcp.config import ArpConfig, StackConfig, TcpConfig  # noqa: E402
from simtcp.events import ConnectionEstablished, DataReceived  # noqa: E402
from simtcp.stack import Stack  # noqa: E402
from simtcp.time import MILLISECOND, SECOND  # noqa: E402

PATTERNS: dict[str, tuple[int, tuple[int, ...]]] = {
    # name: (request bytes, the response's sends in one step)
    "1 send, 200 B": (100, (200,)),
    "2 sends, 100+100 B": (100, (100, 100)),
    "2 sends, 200+2000 B": (100, (200, 2000)),
    "1 send, 2000 B": (100, (2000,)),
    "3 sends, 300x3 B": (100, (300, 300, 300)),
    "2 sends, 1448+10 B": (100, (1448, 10)),
}


@dataclass
class Result:
    per_exchange_us: float
    stalls: int


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


class Server:
    """Reads whole requests and writes each response as ``response``'s sends, in one step."""

    def __init__(self, stack: Stack, request: int, response: tuple[int, ...]) -> None:
        self.stack, self.request, self.response = stack, request, response
        self.pending = 0

    def __call__(self, now: int) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            if isinstance(event, DataReceived):
                self.pending += len(stack.receive(event.connection, now=now))
                while self.pending >= self.request:
                    self.pending -= self.request
                    for size in self.response:
                        stack.send(event.connection, b"r" * size, now=now)


class Client:
    """Sends a request, waits for the whole response, ``exchanges`` times; times each."""

    def __init__(self, stack: Stack, request: int, total: int, exchanges: int) -> None:
        self.stack, self.request, self.total, self.exchanges = stack, request, total, exchanges
        self.handle = stack.tcp_connect("10.0.0.2", 80, now=0)
        self.received = 0
        self.started = 0
        self.durations: list[int] = []

    def __call__(self, now: int) -> None:
        stack = self.stack
        while (event := stack.next_event()) is not None:
            if isinstance(event, DataReceived):
                self.received += len(stack.receive(self.handle, now=now))
                if self.received < self.total:
                    continue
                self.received -= self.total
                self.durations.append(now - self.started)
                if len(self.durations) >= self.exchanges:
                    continue
            elif not isinstance(event, ConnectionEstablished):
                continue
            self.started = now
            stack.send(self.handle, b"q" * self.request, now=now)


def run_exchanges(
    tcp: TcpConfig, request: int, response: tuple[int, ...], exchanges: int, delay: int
) -> Result:
    """Run ``exchanges`` request/response rounds; virtual time per round and stalls."""
    sim, client_stack, server_stack = two_hosts(tcp, delay)
    server_stack.tcp_listen(80)
    client = Client(client_stack, request, sum(response), exchanges)
    sim.add_process(Server(server_stack, request, response))
    sim.add_process(client)
    sim.run_until(lambda: len(client.durations) >= exchanges, timeout=3600 * SECOND)
    durations = client.durations
    stalls = sum(1 for d in durations if d >= 2 * delay + tcp.delayed_ack)
    return Result(per_exchange_us=sum(durations) / max(len(durations), 1), stalls=stalls)


BEFORE: dict[str, bool] = {"autocorking": False, "minshall_nagle": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=1000)
    parser.add_argument("--delay-ms", type=float, default=1.0, help="one-way link delay")
    args = parser.parse_args()
    delay = int(args.delay_ms * MILLISECOND)
    print(f"{args.exchanges} exchanges, RTT {2 * delay / 1000:.1f} ms, delayed ACK 40 ms")
    header = ("before ms/ex", "stalls", "after ms/ex", "stalls")
    print(
        f"{'response written as':24} {header[0]:>12} {header[1]:>7} {header[2]:>12} {header[3]:>7}"
    )
    for name, (request, response) in PATTERNS.items():
        cells = []
        for overrides in (BEFORE, {}):
            tcp = TcpConfig(**overrides)
            result = run_exchanges(tcp, request, response, args.exchanges, delay)
            cells.append(f"{result.per_exchange_us / 1000:12.2f} {result.stalls:7d}")
        print(f"{name:24} {' '.join(cells)}")


if __name__ == "__main__":
    main()
