"""Figures for issue 16: a burst into host queues, and the cost of scripted faults.

    python3 bench/bench_faults.py [--connections 4000] [--events 1000]

1. ``--connections`` connections each send 4 KiB at the same instant over a
   10 Gbit/s link (128 KiB drop-tail bottleneck), without host egress queues
   and with them (``TransferSpec.host_queue``, a txqueuelen of 1000): virtual
   time to finish, retransmissions, queue drops and CPU seconds, side by side.
2. ``--events`` partition+heal pairs in one simulated second on an idle
   network (the events' own cost), then one 1 MB transfer over a 10 ms,
   100 Mbit/s link, clean and with those events in its first simulated
   second: CPU per simulated second of each.
"""

from __future__ import annotations

import argparse
import time

from _profile import add_profile_option, start_profiling

from simtcp.backends.faults import FaultNet
from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Simulator
from simtcp.config import StackConfig
from simtcp.programs.scenario_apps import Sender, Sink, make_stack
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.tcp.config import TcpConfig
from simtcp.time import MILLISECOND, SECOND


def burst(connections: int, host_queue: int | None) -> None:
    link = LinkProfile(rate=10_000_000_000)
    spec = TransferSpec(
        bytes=4096,
        connections=connections,
        seed=1,
        forward=link,
        backward=link,
        host_queue=host_queue,
    )
    result = run_transfer(spec)
    drops = sum(stats["queue_drops"] for stats in result.link_stats.values())
    label = "none" if host_queue is None else f"txqueuelen {host_queue}"
    print(
        f"burst {connections} x 4 KiB, host queue {label:>16}: ok={result.ok} "
        f"virtual {result.virtual_seconds:9.3f} s, retransmits {result.retransmits:6d}, "
        f"queue drops {drops:6d}, cpu {result.cpu_seconds:6.1f} s"
    )


def faulty_transfer(events: int) -> None:
    sim = Simulator(seed=5)
    net = FaultNet(sim)
    sink = Sink(port=80, seed=5)
    sender = Sender("10.0.0.2", 80, 1_000_000, seed=5)
    tcp = TcpConfig(data_retries=100, syn_retries=100)
    for index, (name, start) in enumerate((("a", sender.start), ("b", sink.start)), 1):
        address = f"10.0.0.{index}"
        net.add_host(
            name,
            lambda address=address, index=index: make_stack(
                StackConfig(seed=index, tcp=tcp), f"02:00:00:00:00:0{index}", f"{address}/24"
            ),
            addresses=[address],
            start=start,
        )
    sim.connect(("a", "eth0"), ("b", "eth0"), LinkProfile(delay=10 * MILLISECOND, rate=100_000_000))
    step = SECOND // (2 * events) if events else 0
    for number in range(events):
        net.at(2 * number * step, net.partition, ["a"], ["b"])
        net.at((2 * number + 1) * step, net.heal)
    cpu = time.process_time()
    sim.run_for(SECOND)
    first = time.process_time() - cpu
    steps = sim.counters["steps"]
    sim.run_until(lambda: sender.done, timeout=3600 * SECOND)
    cpu = time.process_time() - cpu
    print(
        f"1 MB transfer, {events:5d} partition+heal pairs in its first second: "
        f"{sender.outcome}, intact={sink.intact}, done by {sim.now / SECOND:6.3f} s; "
        f"first simulated second {first * 1000:6.1f} ms cpu ({steps} steps), "
        f"whole run {cpu * 1000:6.1f} ms cpu = {cpu / sim.now * SECOND * 1000:6.1f} ms "
        f"per simulated second"
    )


def events_alone(events: int) -> None:
    """The cost of the events themselves: partitions and heals on an idle network."""
    sim = Simulator(seed=5)
    net = FaultNet(sim)
    for index in (1, 2):
        net.add_host(
            f"h{index}",
            lambda index=index: make_stack(
                StackConfig(seed=index), f"02:00:00:00:00:0{index}", f"10.0.0.{index}/24"
            ),
            addresses=[f"10.0.0.{index}"],
        )
    sim.connect(("h1", "eth0"), ("h2", "eth0"), LinkProfile(delay=MILLISECOND))
    step = SECOND // (2 * events)
    for number in range(events):
        net.at(2 * number * step, net.partition, ["h1"], ["h2"])
        net.at((2 * number + 1) * step, net.heal)
    cpu = time.process_time()
    sim.run_for(SECOND)
    cpu = time.process_time() - cpu
    print(
        f"{events} partition+heal pairs in one simulated second, idle network: "
        f"{cpu * 1000:.1f} ms cpu ({cpu / (2 * events) * 1e6:.1f} us per event)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=4000)
    parser.add_argument("--events", type=int, default=1000)
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_faults")
    events_alone(args.events)
    faulty_transfer(0)
    faulty_transfer(args.events)
    burst(args.connections, 1000)
    burst(args.connections, None)


if __name__ == "__main__":
    main()
