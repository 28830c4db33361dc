#!/usr/bin/env python3
"""Lossless goodput with the default (auto-tuned) buffers next to fixed 256 KiB ones (issue 15).

Run from the repository: ``python3 bench/bench_buffers.py [--scale 1.0]``.

One stream through the simulator over three lossless paths: 100 Mbit/s and
1 Gbit/s with 40 ms RTT, 10 Gbit/s with 1 ms RTT. The bottleneck queue holds
one bandwidth-delay product (the classic router buffer sizing; the link
profile's default 128 KiB would be a quarter BDP at 100 Mbit/40 ms), so
"lossless" means no random loss; slow start may still overflow the queue once.
For each path: goodput (bytes over the virtual seconds of the transfer) as a
share of the link rate, with ``TcpConfig()``'s defaults (send and receive
auto-tuning up to 4 MiB / 6 MiB) and with both buffers fixed at 256 KiB
(auto-tuning off: the window-limited figure). Figures only.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.config import TcpConfig  # noqa: E402
from simtcp.programs.transfer import TransferSpec, run_transfer  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402

PATHS = (
    ("100 Mbit/s, 40 ms", 100_000_000, 20 * MILLISECOND, 64 << 20),
    ("1 Gbit/s, 40 ms", 1_000_000_000, 20 * MILLISECOND, 384 << 20),
    ("10 Gbit/s, 1 ms", 10_000_000_000, MILLISECOND // 2, 384 << 20),
)
FIXED = dataclasses.replace(
    TcpConfig(),
    send_buffer=256 * 1024,
    receive_buffer=256 * 1024,
    send_buffer_max=0,
    receive_buffer_max=0,
)


def goodput(rate: int, delay: int, size: int, tcp: TcpConfig) -> tuple[float, float, int]:
    """(share of the link, CPU seconds, retransmits)."""
    bdp = rate * 2 * delay // 8 // 1_000_000
    profile = LinkProfile(delay=delay, rate=rate, queue_limit=max(bdp, 64 * 1024))
    spec = TransferSpec(bytes=size, forward=profile, backward=profile, tcp=tcp)
    started = time.process_time()
    result = run_transfer(spec)
    assert result.ok, result.reason
    share = result.bytes * 8 / result.virtual_seconds / rate
    return share, time.process_time() - started, result.retransmits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="scale the transfer sizes")
    parser.add_argument("--send-buffer-max", type=int, default=None)
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_buffers")
    defaults = TcpConfig()
    if args.send_buffer_max is not None:
        defaults = dataclasses.replace(defaults, send_buffer_max=args.send_buffer_max)
    print(f"{'path':20} {'defaults':>10} {'fixed 256 KiB':>14}   (bytes; CPU s; retransmits)")
    for name, rate, delay, size in PATHS:
        size = int(size * args.scale)
        tuned = goodput(rate, delay, size, defaults)
        fixed = goodput(rate, delay, size, FIXED)
        print(
            f"{name:20} {tuned[0]:>9.1%} {fixed[0]:>14.1%}   ({size >> 20} MiB; "
            f"{tuned[1]:.0f}/{fixed[1]:.0f} s; {tuned[2]}/{fixed[2]})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
