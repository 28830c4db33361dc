#!/usr/bin/env python3
"""Bulk TCP through the simulator: wall and CPU cost, goodput, and scaling with connections.

Run from the repository: ``python3 bench/bench_sim_transfer.py [--mbytes 16] [--quick]``.

Every figure comes from :func:`simtcp.transfer.run_transfer`: two stacks in one
process, one link, the client sends seeded bytes and the server checks each
byte as it arrives. CPU seconds are this process's, so they count both ends,
the simulator and the checking harness (generating and comparing the data
costs a few ms per MB, measured and printed first).

1. ``16 MiB`` over a 100 Mbit/s link with 20 ms one-way delay (each direction,
   128 KiB drop-tail queue), lossless and with 1% loss each way; goodput is the
   bytes over the virtual time from connect to the last byte and FIN, as a
   fraction of the link's 100 Mbit/s (its ceiling is lower: Ethernet, IP and TCP
   headers take 4% at 1500-byte frames, and slow start from 10 segments plus
   the handshake cost about 0.25 s of the ~1.4 s the bytes need). A second
   lossless row halves the delay (20 ms RTT), in case "a 20 ms link" means the
   round trip. The 1% loss rows use NewReno (the default, with SACK) and
   CUBIC. The default receive buffer (256 KiB) is half the 40 ms path's
   500 KB bandwidth-delay product, so two more rows give both ends 1-2 MiB
   buffers: with a 1 MiB queue (no drops), and with a 512 KiB queue that the
   window overflows (loss recovery). The last row moves four times the bytes
   with 1 MiB buffers, so slow start weighs less: closer to steady state.
2. The same work per connection (``--per-connection`` bytes, default 128 KiB)
   over 1, 10, 100 and 1,000 concurrent connections on a 1 ms link without a
   rate limit: CPU seconds per MB should stay flat if no per-tick work scans
   all connections. Small counts are repeated so each row moves at least
   ~12 MB.

Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from backends.impair import LinkProfile  # noqa: E402
from simtcp.config import TcpConfig  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402
from simtcp.transfer import PatternStream, TransferSpec, run_transfer  # noqa: E402

MB = 1_000_000
MiB = 1 << 20
LINK_RATE = 100_000_000
SEED = 2026


def harness_cost_per_mb(size: int = 16 * MiB) -> float:
    """CPU seconds per MB the harness spends generating and comparing the data."""
    start = time.process_time()
    sender, receiver = PatternStream(1, "x"), PatternStream(1, "x")
    for offset in range(0, size, 65536):
        assert sender.read(offset, 65536) == receiver.read(offset, 65536)
    return (time.process_time() - start) / (size / MB)


def bulk_cases(size: int) -> list[tuple[str, TransferSpec]]:
    path = LinkProfile(delay=20 * MILLISECOND, rate=LINK_RATE)
    lossy = replace(path, loss=0.01)
    deep = replace(path, queue_limit=MiB)
    shallow = replace(path, queue_limit=512 * 1024)

    def spec(profile: LinkProfile, buffers: int | None = None,
             congestion_control: str = "newreno") -> TransferSpec:
        tcp = TcpConfig(congestion_control=congestion_control)
        if buffers is not None:
            tcp = replace(tcp, send_buffer=buffers, receive_buffer=buffers)
        return TransferSpec(bytes=size, seed=SEED, forward=profile, backward=profile, tcp=tcp)

    return [
        ("no loss", spec(path)),
        ("no loss, 10 ms one-way", spec(replace(path, delay=10 * MILLISECOND))),
        ("1% loss", spec(lossy)),
        ("1% loss, CUBIC", spec(lossy, congestion_control="cubic")),
        ("no loss, 1M buf, 1M q", spec(deep, MiB)),
        ("no loss, 2M buf, 512K q", spec(shallow, 2 * MiB)),
        ("4x bytes, 1M buf, 1M q", replace(spec(deep, MiB), bytes=4 * size)),
    ]


def bulk_rows(size: int) -> None:
    defaults = TcpConfig()
    print(f"\n{size / MiB:g} MiB over 100 Mbit/s, 20 ms one-way (40 ms RTT), seed {SEED}; "
          f"default buffers: send {defaults.send_buffer // 1024} KiB, receive "
          f"{defaults.receive_buffer // 1024} KiB; 128 KiB queue")
    print(f"{'case':<24}{'ok':>4}{'wall s':>8}{'cpu s':>7}{'virtual s':>10}"
          f"{'goodput':>11}{'of link':>8}{'cpu s/MB':>9}{'rexmits':>8}{'q drops':>8}")
    for name, spec in bulk_cases(size):
        result = run_transfer(spec)
        goodput = result.bytes_delivered * 8 / result.virtual_seconds
        drops = sum(counts["queue_drops"] for counts in result.link_stats.values())
        print(f"{name:<24}{'yes' if result.ok else 'NO':>4}{result.wall_seconds:>8.2f}"
              f"{result.cpu_seconds:>7.2f}{result.virtual_seconds:>10.2f}"
              f"{goodput / 1e6:>6.1f}Mb/s{goodput / LINK_RATE:>8.1%}"
              f"{result.cpu_seconds / (result.bytes / MB):>9.4f}{result.retransmits:>8}"
              f"{drops:>8}")
        if not result.ok:
            print(f"    failed: {result.reason}")


def scaling_rows(per_connection: int, counts: list[int]) -> None:
    path = LinkProfile(delay=1 * MILLISECOND)
    print(f"\n{per_connection / 1024:g} KiB per connection, 1 ms link, no rate limit")
    print(f"{'connections':>11}{'runs':>6}{'MB':>8}{'ok':>5}{'wall s':>9}{'cpu s':>8}"
          f"{'cpu s/MB':>10}{'virtual s':>11}")
    for count in counts:
        runs = max(1, 100 // count)
        wall = cpu = virtual = 0.0
        moved = 0
        ok = True
        for run in range(runs):
            spec = TransferSpec(bytes=per_connection, seed=SEED + run, forward=path,
                                backward=path, connections=count)
            result = run_transfer(spec)
            ok = ok and result.ok
            wall += result.wall_seconds
            cpu += result.cpu_seconds
            virtual += result.virtual_seconds
            moved += result.bytes
        print(f"{count:>11}{runs:>6}{moved / MB:>8.1f}{'yes' if ok else 'NO':>5}{wall:>9.2f}"
              f"{cpu:>8.2f}{cpu / (moved / MB):>10.4f}{virtual / runs:>11.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mbytes", type=int, default=16, help="MiB per bulk transfer")
    parser.add_argument("--per-connection", type=int, default=128 * 1024,
                        help="bytes per connection in the scaling series")
    parser.add_argument("--quick", action="store_true", help="stop the series at 100")
    args = parser.parse_args()
    print(f"harness (generate + compare the data): {harness_cost_per_mb():.4f} cpu s/MB")
    bulk_rows(args.mbytes * MiB)
    scaling_rows(args.per_connection, [1, 10, 100] if args.quick else [1, 10, 100, 1000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
