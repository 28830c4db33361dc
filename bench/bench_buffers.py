#!/usr/bin/env python3
"""Lossless goodput with the default (auto-tuned) buffers next to fixed 256 KiB ones (issue 15).

Run from the repository: ``python3 bench/bench_buffers.py [--scale 1.0]``.

One stream through the simulator over three lossless paths: 100 Mbit/s and
1 Gbit/s with 40 ms RTT, 10 Gbit/s with 1 ms RTT. The bottleneck queue holds
one bandwidth-delay product (the classic router buffer sizing; the link
profile's default 128 KiB would be a quarter BDP at 100 Mbit/40 ms), so
"lossless" means no random loss; slow start may still overflow the queue once.
Each transfer lasts seconds at the link's rate (1 GiB at 1 Gbit/s is 8.6 s, as
iperf3's 10 s default), so the handshake and the ~0.35 s slow start needs to
reach a 5 MB window at 40 ms RTT weigh as they would in such a measurement; at
384 MiB (3.2 s) they alone cap the share near 91% (``--scale 0.375``).
For each path: goodput (bytes over the virtual seconds of the transfer) as a
share of the link rate, in the same process for

- ``defaults``: ``TcpConfig()`` (CUBIC, HyStart++, PRR, buffers auto-tuned up
  to ``send_buffer_max`` / ``receive_buffer_max``);
- ``newreno``: the defaults with NewReno instead of CUBIC;
- ``no hystart``: the defaults with HyStart++ off;
- ``before``: the previous defaults (NewReno, no HyStart++, no PRR, 4 MiB /
  6 MiB buffer ceilings);
- ``fixed 256 KiB``: both buffers fixed at 256 KiB (auto-tuning off: the
  window-limited figure).

Figures only.
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
    ("1 Gbit/s, 40 ms", 1_000_000_000, 20 * MILLISECOND, 1024 << 20),
    ("10 Gbit/s, 1 ms", 10_000_000_000, MILLISECOND // 2, 384 << 20),
)
BEFORE = dataclasses.replace(
    TcpConfig(),
    congestion_control="newreno",
    hystart=False,
    prr=False,
    send_buffer_max=4 * 1024 * 1024,
    receive_buffer_max=6 * 1024 * 1024,
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
    columns = (
        ("defaults", defaults),
        ("newreno", dataclasses.replace(defaults, congestion_control="newreno")),
        ("no hystart", dataclasses.replace(defaults, hystart=False)),
        ("before", BEFORE),
        ("fixed 256 KiB", FIXED),
    )
    print(
        f"{'path':18} "
        + " ".join(f"{name:>14}" for name, _ in columns)
        + "   (MiB; retransmits per column; CPU s)"
    )
    for name, rate, delay, size in PATHS:
        size = int(size * args.scale)
        results = [goodput(rate, delay, size, tcp) for _, tcp in columns]
        print(
            f"{name:18} "
            + " ".join(f"{share:>14.1%}" for share, _, _ in results)
            + f"   ({size >> 20}; "
            + "/".join(str(retransmits) for _, _, retransmits in results)
            + f"; {sum(cpu for _, cpu, _ in results):.0f})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
