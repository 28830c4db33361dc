#!/usr/bin/env python3
"""Bulk TCP through the simulator: wall and CPU cost, goodput, and scaling with connections.

Run from the repository: ``python3 bench/bench_sim_transfer.py [--mbytes 16] [--quick]``.

Every figure comes from :func:`simtcp.programs.transfer.run_transfer`: two stacks in one
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
   round trip. The 1% loss rows use NewReno (with SACK; CUBIC is the default) and
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

3. The simulator alone: two trivial nodes (a window-limited sender of 1,514-byte
   frames, a receiver answering every second frame with a 66-byte one) over a
   100 Mbit/s 20 ms link, a 1 ms link without rate limit, and the rate-limited
   link with chance in it (1% duplication, corruption and reordering). The nodes
   cost next to nothing, so this is the simulator's own CPU per simulated MB
   (event heap, impairments, polling and draining the nodes once per step).

4. Tracing: the first lossless and the 1% loss bulk cases with the connection trace
   off and on (both stacks traced, JSON lines counted, not stored), interleaved in
   the same run; the cost and the trace's size per simulated MB.

``--trace-cost`` runs only (4). ``--profile [FILE]`` runs the first bulk case under
cProfile, prints the top 25 functions by own time (``bench/_profile.py``) and
each module's share of the time (builtins counted with the module that called them), grouped
into the simulator (``backends/``), the stack and TCP engine (``simtcp/``
below the API), and the harness (``simtcp/transfer.py``: the checking
applications and the pattern generator). Profiling inflates call-heavy code, so
read shares, not seconds.

Figures only, no assertions. CPU seconds, not wall seconds: the machine's cores
are shared.
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, print_top, profile_path  # noqa: E402

from simtcp.backends.impair import LinkProfile  # noqa: E402
from simtcp.backends.sim import Simulator  # noqa: E402
from simtcp.config import TcpConfig  # noqa: E402
from simtcp.programs.transfer import PatternStream, TransferSpec, run_transfer  # noqa: E402
from simtcp.time import MILLISECOND  # noqa: E402
from simtcp.trace import ConnectionTrace  # noqa: E402

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

    def spec(
        profile: LinkProfile, buffers: int | None = None, congestion_control: str = "newreno"
    ) -> TransferSpec:
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
    print(
        f"\n{size / MiB:g} MiB over 100 Mbit/s, 20 ms one-way (40 ms RTT), seed {SEED}; "
        f"default buffers: send {defaults.send_buffer // 1024} KiB, receive "
        f"{defaults.receive_buffer // 1024} KiB; 128 KiB queue"
    )
    print(
        f"{'case':<24}{'ok':>4}{'wall s':>8}{'cpu s':>7}{'virtual s':>10}"
        f"{'goodput':>11}{'of link':>8}{'cpu s/MB':>9}{'rexmits':>8}{'q drops':>8}"
    )
    for name, spec in bulk_cases(size):
        result = run_transfer(spec)
        goodput = result.bytes_delivered * 8 / result.virtual_seconds
        drops = sum(counts["queue_drops"] for counts in result.link_stats.values())
        print(
            f"{name:<24}{'yes' if result.ok else 'NO':>4}{result.wall_seconds:>8.2f}"
            f"{result.cpu_seconds:>7.2f}{result.virtual_seconds:>10.2f}"
            f"{goodput / 1e6:>6.1f}Mb/s{goodput / LINK_RATE:>8.1%}"
            f"{result.cpu_seconds / (result.bytes / MB):>9.4f}{result.retransmits:>8}"
            f"{drops:>8}"
        )
        if not result.ok:
            print(f"    failed: {result.reason}")


class _CountingSink:
    """Counts the bytes of a trace's JSON lines instead of storing them."""

    def __init__(self) -> None:
        self.size = 0

    def __call__(self, line: str) -> None:
        self.size += len(line)


def tracing_rows(size: int, repeats: int = 2) -> None:
    """Tracing off vs on (both stacks, JSON lines to a byte counter) in the same run,
    interleaved off/on so drift in the shared machine's speed hits both alike."""
    print(f"\nconnection trace (--trace) cost, {size / MiB:g} MiB, off/on interleaved x{repeats}")
    print(f"{'case':<24}{'off cpu s/MB':>13}{'on cpu s/MB':>12}{'cost':>7}{'trace MB/MB':>12}"
          f"{'records/MB':>11}")  # fmt: skip
    for name, spec in bulk_cases(size)[:3:2]:
        off: list[float] = []
        on: list[float] = []
        sink = _CountingSink()
        records = 0
        for _ in range(repeats):
            off.append(run_transfer(spec).cpu_seconds)
            sink.size = 0
            trace = ConnectionTrace(sink=sink, keep=False)
            on.append(run_transfer(spec, trace=trace).cpu_seconds)
            trace.close()
            records = trace.written
        megabytes = spec.bytes / MB
        best_off, best_on = min(off) / megabytes, min(on) / megabytes
        print(
            f"{name:<24}{best_off:>13.4f}{best_on:>12.4f}{best_on / best_off - 1:>7.0%}"
            f"{sink.size / spec.bytes:>12.3f}{records / megabytes:>11.0f}"
        )


def scaling_rows(per_connection: int, counts: list[int]) -> None:
    path = LinkProfile(delay=1 * MILLISECOND)
    print(f"\n{per_connection / 1024:g} KiB per connection, 1 ms link, no rate limit")
    print(
        f"{'connections':>11}{'runs':>6}{'MB':>8}{'ok':>5}{'wall s':>9}{'cpu s':>8}"
        f"{'cpu s/MB':>10}{'virtual s':>11}"
    )
    for count in counts:
        runs = max(1, 100 // count)
        wall = cpu = virtual = 0.0
        moved = 0
        ok = True
        for run in range(runs):
            spec = TransferSpec(
                bytes=per_connection,
                seed=SEED + run,
                forward=path,
                backward=path,
                connections=count,
            )
            result = run_transfer(spec)
            ok = ok and result.ok
            wall += result.wall_seconds
            cpu += result.cpu_seconds
            virtual += result.virtual_seconds
            moved += result.bytes
        print(
            f"{count:>11}{runs:>6}{moved / MB:>8.1f}{'yes' if ok else 'NO':>5}{wall:>9.2f}"
            f"{cpu:>8.2f}{cpu / (moved / MB):>10.4f}{virtual / runs:>11.3f}"
        )


class _WindowSender:
    """Keeps ``window`` frames unanswered in flight until ``total`` are sent."""

    FRAME = bytes.fromhex("02000000000202000000000188b5") + bytes(1500)

    def __init__(self, total: int, window: int) -> None:
        self.total = total
        self.window = window
        self.sent = 0
        self.answered = 0

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: int) -> None:
        self.answered += 2

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        count = min(self.total - self.sent, self.window - (self.sent - self.answered))
        if count <= 0:
            return []
        self.sent += count
        return [("eth0", self.FRAME)] * count

    def poll_at(self) -> int | None:
        return None

    def handle_timer(self, *, now: int) -> None:
        pass


class _Answerer:
    """Answers every second frame with a small one."""

    FRAME = bytes.fromhex("02000000000102000000000288b5") + bytes(52)

    def __init__(self) -> None:
        self.received = 0
        self.outbox: list[tuple[str, bytes]] = []

    def receive_frame(self, interface: str, frame: bytes | memoryview, *, now: int) -> None:
        self.received += 1
        if not self.received & 1:
            self.outbox.append(("eth0", self.FRAME))

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    def poll_at(self) -> int | None:
        return None

    def handle_timer(self, *, now: int) -> None:
        pass


def simulator_rows(frames: int = 20_000) -> None:
    path = LinkProfile(delay=20 * MILLISECOND, rate=LINK_RATE, queue_limit=MiB)
    cases = [
        ("100 Mbit/s, 20 ms", path),
        ("1 ms, no rate limit", LinkProfile(delay=1 * MILLISECOND)),
        ("100 Mbit/s, 20 ms, chance", replace(path, duplicate=0.01, corrupt=0.01, reorder=0.01)),
    ]
    print(
        f"\nthe simulator alone: {frames} frames of 1,514 bytes between trivial nodes (best of 3)"
    )
    print(f"{'link':<28}{'steps':>8}{'frames':>8}{'cpu s':>8}{'cpu s/MB':>10}{'us/frame':>9}")
    for name, profile in cases:
        best = None
        for _ in range(3):
            sim = Simulator(SEED)
            sender, answerer = _WindowSender(frames, 300), _Answerer()
            sim.add_host("a", sender)
            sim.add_host("b", answerer)
            sim.connect(("a", "eth0"), ("b", "eth0"), profile)
            start = time.process_time()
            sim.run_until(lambda a=answerer: a.received >= frames, timeout=3600 * 10**6)
            cpu = time.process_time() - start
            best = cpu if best is None else min(best, cpu)
        steps, arrived = sim.counters["steps"], sim.counters["frames_arrived"]
        print(
            f"{name:<28}{steps:>8}{arrived:>8}{best:>8.3f}{best / (frames * 1500 / MB):>10.4f}"
            f"{best / arrived * 1e6:>9.2f}"
        )


def _group(path: str) -> str:
    if "/backends/" in path:
        return "simulator"
    if path.endswith("simtcp/transfer.py") or path.endswith("/random.py"):
        return "harness"
    if "/simtcp/" in path:
        return "stack + engine"
    return "other"


def profile_rows(size: int, option: str) -> None:
    name, spec = bulk_cases(size)[0]
    profiler = cProfile.Profile()
    profiler.enable()
    result = run_transfer(spec)
    profiler.disable()
    path = profile_path(option, name)
    assert path is not None
    profiler.dump_stats(path)
    print_top(profiler, f"'{name}' ({path})")
    modules: collections.Counter[str] = collections.Counter()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (path, _, _), (_, _, own, _, callers) in stats.items():
        if path.startswith("~"):  # a builtin: charge each caller's share to its module
            for (caller, _, _), figures in callers.items():
                modules[caller] += figures[2]
        else:
            modules[path] += own
    total = sum(modules.values())
    groups: collections.Counter[str] = collections.Counter()
    for path, seconds in modules.items():
        groups[_group(path)] += seconds
    print(
        f"\nprofile of '{name}' ({'ok' if result.ok else 'FAILED'}), share of "
        f"{total:.2f} profiled s:"
    )
    for group, seconds in groups.most_common():
        print(f"  {group:<16}{seconds / total:>7.1%}")
    for path, seconds in modules.most_common(16):
        short = path.split("/main/")[-1] if "/main/" in path else path.rsplit("/", 2)[-1]
        print(f"    {seconds / total:>6.1%}  {short}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mbytes", type=int, default=16, help="MiB per bulk transfer")
    parser.add_argument(
        "--per-connection",
        type=int,
        default=128 * 1024,
        help="bytes per connection in the scaling series",
    )
    parser.add_argument("--quick", action="store_true", help="stop the series at 100")
    add_profile_option(parser)  # here: only profile the first bulk case, shares per module too
    parser.add_argument(
        "--trace-cost", action="store_true", help="only the tracing off/on rows (same run)"
    )
    args = parser.parse_args()
    if args.trace_cost:
        tracing_rows(args.mbytes * MiB)
        return 0
    if args.profile is not None:
        profile_rows(args.mbytes * MiB, args.profile)
        return 0
    print(f"harness (generate + compare the data): {harness_cost_per_mb():.4f} cpu s/MB")
    bulk_rows(args.mbytes * MiB)
    tracing_rows(args.mbytes * MiB)
    scaling_rows(args.per_connection, [1, 10, 100] if args.quick else [1, 10, 100, 1000])
    simulator_rows()
    return 0


if __name__ == "__main__":
    sys.exit(main())
