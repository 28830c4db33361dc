#!/usr/bin/env python3
"""Many concurrent idle clients against the default listener, in the simulator (issue 15).

Run from the repository: ``python3 bench/bench_accept_queue.py [--counts 256 10000]``.

Each run is ``tests/unit/test_accept_queue_sim.py``'s scenario: one client
stack opens N connections (50 per virtual millisecond) to an
``EchoServer`` behind the default backlog (128); all stay idle until every one
is established, then each echoes 4 KiB. Printed per N: CPU seconds of the
whole run, and the memory the connections hold (tracemalloc, both stacks,
after all are established and idle) per connection. Figures only.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.time import MILLISECOND, SECOND  # noqa: E402
from tests.unit.test_accept_queue_sim import PAYLOAD, SERVER, make_clients  # noqa: E402


def run(count: int) -> tuple[float, float, float]:
    """(CPU s to connect and echo, bytes per idle connection, CPU s per connection)."""
    started = time.process_time()
    tracemalloc.start()
    clients = make_clients(count)
    sim, client = clients.sim, clients.client
    base = tracemalloc.get_traced_memory()[0]
    handles = [client.tcp_connect(SERVER, 7, now=sim.now)]
    sim.run_until(lambda: len(clients.established) == 1, timeout=SECOND)
    while len(handles) < count:
        batch = min(50, count - len(handles))
        handles += [client.tcp_connect(SERVER, 7, now=sim.now) for _ in range(batch)]
        sim.run_until(lambda: False, timeout=MILLISECOND)
    sim.run_until(lambda: len(clients.established) == count, timeout=10 * SECOND)
    sim.run_until(lambda: False, timeout=200 * MILLISECOND)
    held = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    for handle in handles:
        client.send(handle, PAYLOAD, now=sim.now)
    sim.run_until(
        lambda: all(clients.received.get(h, 0) == len(PAYLOAD) for h in handles),
        timeout=30 * SECOND,
    )
    echoed = sum(1 for h in handles if clients.received.get(h) == len(PAYLOAD))
    assert echoed == count, f"{echoed} of {count} echoed"
    cpu = time.process_time() - started
    return cpu, held / count / 2, cpu / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[256, 10_000])
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_accept_queue")
    for count in args.counts:
        cpu, per_connection, cpu_each = run(count)
        print(
            f"{count} idle clients: all in, all echoed 4 KiB; CPU {cpu:.1f} s "
            f"({cpu_each * 1e3:.2f} ms per connection, tracing on while connecting); "
            f"memory {per_connection / 1024:.1f} KiB per connection end",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
