"""Virtual completion time of bulk transfers with stretch ACKs and Appropriate Byte Counting.

4 MB from client to server through the simulator, for each link (10 ms each way
with no rate limit, without and with 1% loss on the data direction; 100 Mbit/s,
without and with that loss),
congestion control (NewReno, CUBIC), ``TcpConfig.max_stretch_ack`` (0: an ACK
every second segment, RFC 5681 §4.2; 65535: one ACK per read batch) and
``TcpConfig.abc_limit_segments`` (1: RFC 5681 §3.1's min(N, SMSS) per ACK; 45:
RFC 3465 byte counting up to one 64 KiB TSO segment; 0: derived
from the route's TSO size). ``--tso`` gives both stacks TSO interfaces and the
link GSO/GRO, as between simtcp and a Linux peer over a TAP with offloads.
Figures are virtual seconds (deterministic for a seed) and pure ACKs the
receiver sent; the CPU seconds are noisy on a shared machine.

    python3 bench/bench_stretch_ack.py [--bytes 4000000] [--seeds 1,2,3] [--tso]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.config import ArpConfig, TcpConfig  # noqa: E402
from simtcp.link import InterfaceOffload  # noqa: E402
from simtcp.programs.transfer import TransferSpec, run_transfer  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402

OFFLOAD = InterfaceOffload(tx_checksum=True, max_segment=65535 - 120)
LINKS = {
    "10ms": LinkProfile(delay=10 * MILLISECOND),
    "10ms+1%": LinkProfile(delay=10 * MILLISECOND, loss=0.01),
    "100Mbit": LinkProfile(delay=10 * MILLISECOND, rate=100_000_000, queue_limit=256 * 1024),
    "100Mbit+1%": LinkProfile(
        delay=10 * MILLISECOND, rate=100_000_000, queue_limit=256 * 1024, loss=0.01
    ),
}


def run(
    link: str, cc: str, stretch: int, abc: int, size: int, seed: int, tso: bool
) -> tuple[float, int, int]:
    """Virtual seconds, retransmits and server stack frames sent for one transfer."""
    forward = LINKS[link]
    backward = replace(forward, loss=0.0)
    if tso:
        forward, backward = (replace(p, gso=True, gro=True) for p in (forward, backward))
    tcp = TcpConfig(
        congestion_control=cc,
        max_stretch_ack=stretch,
        abc_limit_segments=abc,
        send_buffer=4 * 1024 * 1024,
        receive_buffer=4 * 1024 * 1024,
    )
    spec = TransferSpec(
        bytes=size,
        seed=seed,
        forward=forward,
        backward=backward,
        tcp=tcp,
        arp=ArpConfig(entry_lifetime=10**12),
        offload=OFFLOAD if tso else None,
    )
    result = run_transfer(spec)
    if not result.ok:
        raise SystemExit(f"transfer failed: {result.reason}")
    acks = result.link_stats["server:eth0>client:eth0"]["sent"]
    return result.virtual_seconds, result.retransmits, acks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=4_000_000)
    parser.add_argument("--seeds", default="1,2,3", help="seeds averaged over (lossy link)")
    parser.add_argument("--tso", action="store_true", help="TSO interfaces, GSO/GRO link")
    parser.add_argument("--abc", default="1,0,45", help="abc_limit_segments values")
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_stretch_ack")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"{args.bytes} bytes, TSO {'on' if args.tso else 'off'}, seeds {seeds}; "
        "virtual s (mean over seeds), retransmits, server frames sent"
    )
    print(
        f"{'link':>11} {'cc':>8} {'stretch':>7} {'abc L':>5} {'virtual s':>10} "
        f"{'rexmit':>7} {'srv frames':>10} {'cpu s':>6}"
    )
    for link in LINKS:
        for cc in ("newreno", "cubic"):
            for stretch in (0, 65535):
                for abc in (int(a) for a in args.abc.split(",")):
                    cpu = time.process_time()
                    runs = [
                        run(link, cc, stretch, abc, args.bytes, seed, args.tso)
                        for seed in (seeds if "%" in link else seeds[:1])
                    ]
                    cpu = time.process_time() - cpu
                    seconds = sum(r[0] for r in runs) / len(runs)
                    rexmit = sum(r[1] for r in runs) / len(runs)
                    frames = sum(r[2] for r in runs) / len(runs)
                    print(
                        f"{link:>11} {cc:>8} {stretch:>7} {abc:>5} {seconds:>10.3f} "
                        f"{rexmit:>7.0f} {frames:>10.0f} {cpu:>6.1f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
