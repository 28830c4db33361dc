#!/usr/bin/env python3
"""100,000 short connections over a TAP: memory and rate stay flat (issue 15).

Run as root from the repository: ``sudo python3 bench/bench_tap_soak.py [--count 100000]``.

The asyncio server on ``simtcp.aio`` runs in this process over a fresh TAP
whose kernel side sits in a namespace made here and removed at the end
(``tests/integration/soak.py``, the same code the integration test runs with
3,000 connections). Two runs: the server closing first (its TIME-WAITs) and
the client closing first. Printed per run: RSS at the start (after a warm-up
and its TIME-WAIT), after the run and after TIME-WAIT; ``Connection`` objects
left (live or in uncollected cycles) after TIME-WAIT; and the seconds the first
and the last 10,000 connections took. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from tests.integration.soak import run_soak  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--block", type=int, default=10_000)
    parser.add_argument("--msl", type=float, default=30.0, help="MSL in seconds (default 30)")
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_tap_soak")
    from pyroute2 import netns

    for client_closes in (False, True):
        name = f"soak{secrets.token_hex(3)}"
        netns.create(name)
        try:
            result = run_soak(
                name,
                count=args.count,
                client_closes=client_closes,
                rounds=1,
                block=args.block,
                msl_s=args.msl,
                timeout=3600,
            )
        finally:
            with contextlib.suppress(OSError):
                netns.remove(name)
        (round_,) = result.rounds
        blocks = round_.client["block_seconds"]
        mode = "client closes" if client_closes else "server closes"
        print(
            f"{mode}: {args.count} connections, {round_.client['failed']} failed, "
            f"{round_.client['seconds']:.1f} s; RSS start {result.rss_start_kib / 1024:.1f} MiB, "
            f"after {round_.rss_after_kib / 1024:.1f} MiB "
            f"({round_.live_after} live), after TIME-WAIT "
            f"{round_.rss_after_time_wait_kib / 1024:.1f} MiB; Connection objects left "
            f"{round_.objects_after_time_wait}; first {args.block}: "
            f"{args.block / blocks[0]:.0f}/s, last {args.block}: {args.block / blocks[-1]:.0f}/s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
