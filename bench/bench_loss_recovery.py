"""Goodput under random loss through the simulator, next to the Mathis et al. bound.

One bulk TCP connection on a 100 Mbit/s link with a 40 ms RTT (20 ms each way,
a bottleneck queue of one bandwidth-delay product), random loss on the data
direction, for NewReno and CUBIC with and without SACK (RACK-TLP rides on
SACK). Each row sends for a fixed stretch of virtual time after slow start and
counts the bytes the receiver got and the sender's RTO expirations. The bound
is MSS/RTT * 1.22/sqrt(p) (Mathis, Semke, Mahdavi, Ott 1997), the steady-state
rate of a Reno sender that recovers every loss by fast retransmit.

    python3 bench/bench_loss_recovery.py [--seconds 8] [--seed 1]
        [--abc-limit-segments L] [--max-stretch-ack BYTES]

``--abc-limit-segments`` and ``--max-stretch-ack`` set those TcpConfig fields on
both stacks (RFC 3465 byte counting in slow start; ACK thinning at the receiver).

Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp import DataReceived, Stack, StackConfig, TcpConfig  # noqa: E402
from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.backends.sim import Simulator  # noqa: E402
from simtcp.time import MILLISECOND, SECOND  # noqa: E402

RATE = 100_000_000
ONE_WAY = 20 * MILLISECOND
BDP = RATE // 8 * 2 * ONE_WAY // SECOND
MSS = 1460
CHUNK = 256 * 1024


def run(
    loss: float, congestion: str, sack: bool, seconds: int, seed: int, base: TcpConfig | None = None
) -> tuple[float, int]:
    """Goodput in Mbit/s over ``seconds`` of virtual time after a 2 s warm-up, and RTOs
    (``base``: the TcpConfig to start from, the default one when None)."""
    tcp = replace(
        base or TcpConfig(),
        congestion_control=congestion,
        sack=sack,
        send_buffer=4 * BDP,
        receive_buffer=4 * BDP,
    )
    sim = Simulator(seed)
    client = Stack(StackConfig(seed=seed, tcp=tcp))
    server = Stack(StackConfig(seed=seed + 1, tcp=tcp))
    for name, stack, mac, address in (
        ("client", client, "02:00:00:00:00:01", "10.0.0.1/24"),
        ("server", server, "02:00:00:00:00:02", "10.0.0.2/24"),
    ):
        stack.add_interface("eth0", mac=mac)
        stack.add_address("eth0", address)
        sim.add_host(name, stack)
    data = LinkProfile(delay=ONE_WAY, rate=RATE, queue_limit=BDP, loss=loss)
    sim.connect(("client", "eth0"), ("server", "eth0"), data, replace(data, loss=0.0))
    server.tcp_listen(80)
    connection = client.tcp_connect("10.0.0.2", 80, now=sim.now)
    payload = bytes(CHUNK)
    received = [0]

    def pump(now: int) -> None:
        while client.send(connection, payload, now=now) == CHUNK:
            pass
        while (event := server.next_event()) is not None:
            if isinstance(event, DataReceived):
                received[0] += len(server.receive(event.connection, now=now))
        while client.next_event() is not None:
            pass

    sim.add_process(pump)
    sim.run_for(2 * SECOND)
    start_bytes, start_rtos = received[0], client.stats().get("tcp.rto_expirations", 0)
    sim.run_for(seconds * SECOND)
    goodput = (received[0] - start_bytes) * 8 / seconds / 1e6
    return goodput, client.stats().get("tcp.rto_expirations", 0) - start_rtos


def mathis(loss: float) -> float:
    if loss == 0:
        return RATE / 1e6
    rtt = 2 * ONE_WAY / SECOND
    return min(RATE / 1e6, MSS * 8 / rtt * 1.22 / math.sqrt(loss) / 1e6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=8, help="measured virtual seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--abc-limit-segments",
        type=int,
        default=None,
        help="TcpConfig.abc_limit_segments (default: the config's)",
    )
    parser.add_argument(
        "--max-stretch-ack",
        type=int,
        default=None,
        help="TcpConfig.max_stretch_ack (default: the config's)",
    )
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_loss_recovery")
    base = TcpConfig()
    if args.abc_limit_segments is not None:
        base = replace(base, abc_limit_segments=args.abc_limit_segments)
    if args.max_stretch_ack is not None:
        base = replace(base, max_stretch_ack=args.max_stretch_ack)
    print(f"abc_limit_segments {base.abc_limit_segments}, max_stretch_ack {base.max_stretch_ack}")
    print(
        f"100 Mbit/s, RTT 40 ms, queue {BDP // 1024} KiB, {args.seconds} virtual s measured "
        f"after a 2 s warm-up, seed {args.seed}"
    )
    print(
        f"{'loss':>6} {'cc':>8} {'sack':>5} {'goodput Mbit/s':>15} {'Mathis bound':>13} "
        f"{'ratio':>6} {'RTOs':>5} {'cpu s':>6}"
    )
    for loss in (0.0, 0.001, 0.01, 0.05):
        for congestion in ("newreno", "cubic"):
            for sack in (True, False):
                cpu = time.process_time()
                goodput, rtos = run(loss, congestion, sack, args.seconds, args.seed, base)
                cpu = time.process_time() - cpu
                bound = mathis(loss)
                print(
                    f"{loss:>6.1%} {congestion:>8} {'on' if sack else 'off':>5} "
                    f"{goodput:>15.2f} {bound:>13.2f} {goodput / bound:>6.2f} {rtos:>5} "
                    f"{cpu:>6.1f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
