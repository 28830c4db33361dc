#!/usr/bin/env python3
"""TCP goodput over IPv6 next to IPv4, in the same run: the simulator, and (``--tap``) a TAP.

Run from the repository: ``python3 bench/bench_ipv6.py [--mbytes 16] [--rounds 3] [--tap]``.
Figures only, no assertions.

1. Simulator (:func:`simtcp.programs.transfer.run_transfer`, both stacks in this
   process, the same seeds, rounds interleaved): bulk transfers over IPv4 and
   over IPv6 between the same dual-stack hosts, on a 100 Mbit/s 20 ms link, the
   same with 1% loss, and a 1 ms link without a rate limit (CPU-bound). Per row
   and family: goodput in virtual time (of the link's 100 Mbit/s where there is
   one) and CPU seconds per MB (best of ``--rounds``; both ends, the simulator
   and the byte checking). IPv6's header is 20 bytes longer (MSS 1440 instead
   of 1460) and takes no fast path, so the CPU row is the interesting one (these
   links offload nothing, for either family).
2. ``--tap`` (root): the seed server (``echo_reply_server.py``, its TAP
   offloads on) in a namespace made here; the kernel's Python socket client
   echoes ``--mbytes`` through simtcp's port 80 over 10.0.0.1 and over
   2001:db8::1, rounds interleaved; MB/s echoed and the server's CPU per MB,
   with the server's TAP offloads on (its default) and with ``--no-offload``.
   Both families use TSO and checksum offload with offloads on (IPv6 since the
   TUN_F_TSO6 / GSO TCPV6 work); the ``--no-offload`` rows compare them at the
   same per-frame cost.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.programs.transfer import run_transfer  # noqa: E402
from simtcp.programs.transfer_spec import TransferSpec  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402

MB = 1_000_000
RATE = 100_000_000

CASES = {
    "100 Mbit/s, 20 ms": LinkProfile(delay=20 * MILLISECOND, rate=RATE, queue_limit=1 << 20),
    "100 Mbit/s, 20 ms, 1% loss": LinkProfile(
        delay=20 * MILLISECOND, rate=RATE, queue_limit=1 << 20, loss=0.01
    ),
    "1 ms, no rate limit": LinkProfile(delay=MILLISECOND),
}


def simulator(size: int, rounds: int) -> None:
    print(f"simulator: {size / MB:.1f} MB client -> server, best of {rounds} (rounds interleaved)")
    header = (
        f"{'case':28} {'IPv4 Mb/s':>10} {'IPv6 Mb/s':>10} "
        f"{'IPv4 cpu s/MB':>14} {'IPv6 cpu s/MB':>14} {'v6/v4 cpu':>10}"
    )
    print(header)
    for name, profile in CASES.items():
        best: dict[int, tuple[float, float]] = {}
        for _ in range(rounds):
            for version in (4, 6):
                spec = TransferSpec(
                    bytes=size, seed=11, ip_version=version, forward=profile, backward=profile
                )
                result = run_transfer(spec)
                if not result.ok:
                    raise RuntimeError(f"{name} over IPv{version}: {result.reason}")
                goodput = size * 8 / result.virtual_seconds / 1e6
                cpu = result.cpu_seconds / (size / MB)
                if version not in best or cpu < best[version][1]:
                    best[version] = (goodput, cpu)
        (g4, c4), (g6, c6) = best[4], best[6]
        print(f"{name:28} {g4:10.2f} {g6:10.2f} {c4:14.4f} {c6:14.4f} {c6 / c4:9.2f}x")


def tap(size: int, rounds: int) -> None:
    import tap_echo  # bench/tap_echo.py: namespaces, the server, the socket client

    print(f"\nTAP: kernel socket client echoing {size / MB:.1f} MB through simtcp's port 80")
    print(f"{'server':22} {'family':8} {'MB/s':>8} {'server cpu s/MB':>16}")
    for label, extra in (("offloads on (default)", ()), ("--no-offload", ("--no-offload",))):
        for family, (rate, cpu) in _tap_rows(tap_echo, size, rounds, extra).items():
            print(f"{label:22} {family:8} {rate:8.1f} {cpu:16.4f}")


def _tap_rows(
    tap_echo: Any, size: int, rounds: int, extra: tuple[str, ...]
) -> dict[str, tuple[float, float]]:
    """Best MB/s (and its CPU per MB) of each family, rounds interleaved, one server."""
    results: dict[str, list[tuple[float, float]]] = {"IPv4": [], "IPv6": []}
    with tap_echo.namespace() as ns:
        server = tap_echo.Server(ns, *extra)
        try:
            tap_echo.nsrun(ns, "ping", "-c", "3", "-i", "0.05", "10.0.0.1")
            deadline = time.monotonic() + 30  # simtcp's IPv6 addresses go through DAD first
            while True:
                try:
                    tap_echo.nsrun(ns, "ping", "-6", "-c", "1", "-W", "1", "2001:db8::1")
                    break
                except RuntimeError:
                    if time.monotonic() > deadline:
                        raise
            for _ in range(rounds):
                for family, host in (("IPv4", "10.0.0.1"), ("IPv6", "2001:db8::1")):
                    before = tap_echo.cpu_seconds(server.worker_pid)
                    seconds = tap_echo.echo_stream(ns, host, 80, size)
                    cpu = tap_echo.cpu_seconds(server.worker_pid) - before
                    results[family].append((size / MB / seconds, cpu / (size / MB)))
        finally:
            server.stop()
    return {family: max(rows) for family, rows in results.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tap", action="store_true", help="also over a TAP (needs root)")
    parser.add_argument("--tap-mbytes", type=float, default=64)
    args = parser.parse_args()
    simulator(int(args.mbytes * MB), args.rounds)
    if args.tap:
        tap(int(args.tap_mbytes * MB), args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
