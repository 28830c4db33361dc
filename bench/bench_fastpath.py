#!/usr/bin/env python3
"""Header prediction's win: the same traffic with ``TcpConfig(fast_path=False)`` and ``True``.

Run from the repository: ``python3 bench/bench_fastpath.py [--mbytes 16] [--rounds 3]``.

Other engineers change the engine at the same time, so a before/after across
commits measures their work too; this compares the switch in the same code,
the same process, the same traffic (the property test
``tests/property/test_fastpath_equivalence.py`` shows the frames are identical
either way, so only the CPU differs). Figures only, no assertions.

1. Simulator (:func:`simtcp.programs.transfer.run_transfer`, both stacks in this
   process): bulk one way, both ways at once, 1% loss each way, and a GRO
   receive link (merged segments). Per row, off and on: CPU seconds per MB
   (best of ``--rounds``; it counts both ends, the simulator and the harness's
   byte checking), TCP segments processed per CPU second (both stacks'
   ``tcp.segments_in``), and the share of them the fast path took.
2. ``--tap`` (root): ``bench/tap_echo.py``'s simtcp echo stream over a TAP,
   with the server started through this script so its default ``TcpConfig``
   has the fast path off or on, rounds interleaved; CPU seconds per MB of the
   server process and its hit rate. ``--no-offload`` as in tap_echo.py.

``--profile [PREFIX]`` profiles one simulator bulk run per setting (data in
``PREFIX.<setting>``, or a temporary file) and prints the top 25 functions by
own time (``bench/_profile.py``).
"""

from __future__ import annotations

import argparse
import atexit
import cProfile
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, print_top, profile_path  # noqa: E402

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.config import TcpConfig  # noqa: E402
from simtcp.programs.transfer import TransferResult, TransferSpec, run_transfer  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402

MB = 1_000_000
SERVE_FLAG = "--bench-fast-path="
"""Passed through tap_echo.py's server command line: ``on:FILE`` or ``off:FILE``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    name: str
    spec: TransferSpec


def rows(size: int) -> list[Row]:
    link = LinkProfile(delay=1 * MILLISECOND)
    lossy = LinkProfile(delay=1 * MILLISECOND, loss=0.01)
    gro = LinkProfile(delay=1 * MILLISECOND, gro=True)
    tcp = TcpConfig(receive_buffer=1 << 20, send_buffer=1 << 20)
    return [
        Row(
            name="bulk one way", spec=TransferSpec(bytes=size, forward=link, backward=link, tcp=tcp)
        ),
        Row(
            name="both ways",
            spec=TransferSpec(
                bytes=size // 2, reverse_bytes=size // 2, forward=link, backward=link, tcp=tcp
            ),
        ),
        Row(name="1% loss", spec=TransferSpec(bytes=size, forward=lossy, backward=lossy, tcp=tcp)),
        Row(
            name="GRO receive link",
            spec=TransferSpec(bytes=size, forward=gro, backward=link, tcp=tcp),
        ),
    ]


def with_fast_path(spec: TransferSpec, on: bool) -> TransferSpec:
    tcp = {name: getattr(spec.tcp, name) for name in TcpConfig.__dataclass_fields__}
    fields = {name: getattr(spec, name) for name in TransferSpec.__dataclass_fields__}
    fields["tcp"] = TcpConfig(**(tcp | {"fast_path": on}))  # type: ignore[arg-type]
    return TransferSpec(**fields)  # type: ignore[arg-type]


def measure(spec: TransferSpec) -> tuple[TransferResult, int, int]:
    """One run: its result, segments processed by both stacks, and fast-path hits."""
    result = run_transfer(spec)
    counters = [result.client_stats, result.server_stats]
    segments = sum(c.get("tcp.segments_in", 0) for c in counters)
    hits = sum(c.get("tcp.fast_path_data", 0) + c.get("tcp.fast_path_ack", 0) for c in counters)
    return result, segments, hits


def bench_simulator(size: int, rounds: int) -> list[dict[str, object]]:
    print(
        f"simulator, {size / MB:g} MB per row, best of {rounds} (CPU s/MB counts both ends, "
        "the simulator and the byte checking)"
    )
    print(
        f"  {'':18} {'CPU s/MB off':>12} {'on':>8} {'saved':>6}   "
        f"{'segments/CPU s off':>18} {'on':>8}   {'hit rate':>8}  same virtual time"
    )
    table = []
    for row in rows(size):
        best: dict[bool, tuple[float, TransferResult, int, int]] = {}
        for _ in range(rounds):
            for on in (False, True):
                result, segments, hits = measure(with_fast_path(row.spec, on))
                if not result.ok:
                    print(f"  {row.name}: transfer failed ({result.reason})")
                if on not in best or result.cpu_seconds < best[on][0]:
                    best[on] = (result.cpu_seconds, result, segments, hits)
        (off_cpu, off, off_segments, _), (on_cpu, on_result, on_segments, hits) = (
            best[False],
            best[True],
        )
        mbytes = on_result.bytes / MB
        figures = {
            "row": row.name,
            "cpu_s_per_mb_off": off_cpu / mbytes,
            "cpu_s_per_mb_on": on_cpu / mbytes,
            "segments_per_cpu_s_off": off_segments / off_cpu,
            "segments_per_cpu_s_on": on_segments / on_cpu,
            "hit_rate": hits / on_segments,
            "same_virtual_time": off.virtual_seconds == on_result.virtual_seconds,
        }
        table.append(figures)
        print(
            f"  {row.name:18} {off_cpu / mbytes:12.4f} {on_cpu / mbytes:8.4f} "
            f"{1 - on_cpu / off_cpu:6.1%}   {off_segments / off_cpu:18,.0f} "
            f"{on_segments / on_cpu:8,.0f}   {hits / on_segments:8.1%}  "
            f"{figures['same_virtual_time']}"
        )
    return table


def profile_simulator(size: int, option: str, top: int) -> None:
    spec = rows(size)[0].spec
    for on in (False, True):
        label = f"bulk one way, fast path {'on' if on else 'off'}"
        path = profile_path(option, label)
        assert path is not None
        profiler = cProfile.Profile()
        profiler.enable()
        run_transfer(with_fast_path(spec, on))
        profiler.disable()
        profiler.dump_stats(path)
        print_top(profiler, f"{label} ({path})", top)


# --- over a TAP, through bench/tap_echo.py ---------------------------------------


def bench_tap(size: int, rounds: int, offload: bool) -> list[dict[str, object]]:
    sys.path.insert(0, str(REPO / "bench"))
    import tap_echo  # type: ignore[import-not-found]

    tap_echo.SERVER = Path(__file__).resolve()
    base: tuple[str, ...] = () if offload else ("--no-offload",)
    runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory() as directory:
        for index in range(rounds):
            for setting in ("off", "on"):
                counts = os.path.join(directory, f"{setting}{index}.json")
                figures = tap_echo.bench_simtcp(size, 0, (*base, f"{SERVE_FLAG}{setting}:{counts}"))
                with open(counts) as stream:
                    figures |= json.load(stream)
                runs[setting].append(figures)
    print(
        f"TAP echo (tap_echo.py's simtcp stream), {size / MB:g} MB, offloads "
        f"{'on' if offload else 'off'}, best of {rounds}:"
    )
    table = []
    for setting in ("off", "on"):
        best = min(runs[setting], key=lambda figures: figures["cpu_s_per_mb"])
        calls = best["segments"] or 1
        print(
            f"  fast path {setting:3}: {best['mb_s']:7.1f} MB/s  {best['cpu_s_per_mb']:.4f} "
            f"CPU s/MB   {best['segments']:.0f} segments to connections, "
            f"fast path took {best['hits'] / calls:.1%}"
        )
        table.append({"fast_path": setting} | best)
    return table


def serve(argv: list[str]) -> int:
    """Run echo_reply_server with the default TcpConfig's fast path set by SERVE_FLAG."""
    flag = next(arg for arg in argv if arg.startswith(SERVE_FLAG))
    argv.remove(flag)
    setting, _, counts_path = flag[len(SERVE_FLAG) :].partition(":")
    TcpConfig.__init__.__kwdefaults__["fast_path"] = setting == "on"
    from simtcp.tcp import fastpath, states

    counts = {"segments": 0, "hits": 0}
    arrives = states.segment_arrives

    def counting_arrives(owner, conn, segment, now):  # type: ignore[no-untyped-def]
        counts["segments"] += 1
        arrives(owner, conn, segment, now)

    taken = fastpath.try_fast_path

    def counting_fast_path(conn, segment, now):  # type: ignore[no-untyped-def]
        hit = taken(conn, segment, now)
        counts["hits"] += hit
        return hit

    states.segment_arrives = counting_arrives
    fastpath.try_fast_path = counting_fast_path

    def write_counts() -> None:
        with open(counts_path, "w") as stream:
            json.dump(counts, stream)

    atexit.register(write_counts)
    from simtcp.programs.serve import main as serve_main

    sys.argv = [sys.argv[0], *argv]
    return serve_main(prog="echo_reply_server.py")


def main() -> int:
    if any(arg.startswith(SERVE_FLAG) for arg in sys.argv[1:]):
        return serve(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=16, help="MB (10^6) per simulator row")
    parser.add_argument("--rounds", type=int, default=3)
    add_profile_option(parser)  # here: one simulator bulk run per setting
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--tap", action="store_true", help="also the TAP echo stream (root)")
    parser.add_argument("--tap-mbytes", type=float, default=32)
    parser.add_argument("--no-offload", action="store_true", help="TAP without offloads")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    figures: dict[str, object] = {
        "simulator": bench_simulator(int(args.mbytes * MB), max(1, args.rounds))
    }
    if args.tap:
        if os.geteuid() != 0:
            print("bench_fastpath.py --tap: needs root", file=sys.stderr)
            return 2
        figures["tap"] = bench_tap(
            int(args.tap_mbytes * MB), max(1, args.rounds), not args.no_offload
        )
    if args.profile is not None:
        profile_simulator(int(args.mbytes * MB), args.profile, args.top)
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
