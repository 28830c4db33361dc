#!/usr/bin/env python3
"""Seeds per second of one campaign on the local pool and on a Dask LocalCluster, same run.

Run from the repository: ``python3 bench/bench_campaign_engines.py [--seeds 10000]``.

The same campaign (``--bytes 16K --loss 0.1 --reorder 0.02 --delay 10ms --rate 10Mbit``,
heavy impairment, seeds 1..N) runs on a local pool of ``--workers`` processes and on a
LocalCluster of as many single-threaded worker processes, with the chunk size the
campaign would choose. Each engine is started before its clock starts (its start-up is
reported on its own line). Printed per engine: wall seconds, seeds/s, seeds per CPU
second of the workers (the figure that does not depend on what else the machine runs),
and the per-chunk overhead: the wall time of ``--empty`` chunks of zero seeds, per chunk
and per slot. Then whether both engines gave the same outcomes, and the arithmetic of a
100-node cluster from the measured figures. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp.programs import campaign, campaign_engines  # noqa: E402
from simtcp.programs.sim import build_parser  # noqa: E402

LINK = ["--bytes", "16K", "--loss", "0.1", "--reorder", "0.02", "--delay", "10ms"]
LINK += ["--rate", "10Mbit"]


def measure(scheduler: str | None, workers: int, seeds: range, empty: int) -> dict[str, object]:
    plan = campaign.CampaignPlan.from_args(
        build_parser().parse_args(["campaign", "--seeds", "1", *LINK])
    )
    started = time.perf_counter()
    with campaign_engines.open_engine(scheduler, workers) as engine:
        startup = time.perf_counter() - started
        size, _ = campaign.choose_chunk_size(len(seeds), engine.slots)
        chunks = campaign.make_chunks(seeds, size)
        tally = campaign.Tally(seeds)
        begin = time.perf_counter()
        for result in engine.stream(plan, chunks):
            tally.add(result)
        wall = time.perf_counter() - begin
        blanks = [campaign.Chunk(index, range(0)) for index in range(empty)]
        begin = time.perf_counter()
        for _ in engine.stream(plan, blanks):
            pass
        overhead = (time.perf_counter() - begin) / empty
    cpu = sum(outcome.cpu_seconds for outcome in tally.outcomes.values())
    return {
        "engine": engine.description,
        "startup": startup,
        "chunk": size,
        "chunks": len(chunks),
        "wall": wall,
        "cpu": cpu,
        "slots": engine.slots,
        "overhead": overhead,
        "outcomes": [(o.seed, o.ok, o.reason, o.virtual_seconds) for o in tally.sorted()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--empty", type=int, default=500, help="empty chunks for the overhead")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--cores-per-node", type=int, default=8)
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_campaign_engines")
    seeds = range(1, args.seeds + 1)
    print(f"campaign: {args.seeds} seeds, {' '.join(LINK)}, {args.workers} workers")
    runs = [measure(None, args.workers, seeds, args.empty)]
    runs.append(measure("local", args.workers, seeds, args.empty))
    for run in runs:
        wall, cpu, n = float(run["wall"]), float(run["cpu"]), args.seeds  # type: ignore[arg-type]
        print(
            f"  {run['engine']}: started in {run['startup']:.2f}s; {run['chunks']} chunks of "
            f"{run['chunk']}; wall {wall:.1f}s = {n / wall:.0f} seeds/s; "
            f"{n / cpu:.0f} seeds per worker CPU second; "
            f"empty chunk {float(run['overhead']) * 1e3:.2f} ms wall "  # type: ignore[arg-type]
            f"({float(run['overhead']) * int(run['slots']) * 1e3:.2f} ms per slot)"  # type: ignore[arg-type]
        )
    print(f"  same outcomes on both engines: {runs[0]['outcomes'] == runs[1]['outcomes']}")
    dask = runs[1]
    per_core = args.seeds / float(dask["cpu"])  # type: ignore[arg-type]
    cores = args.nodes * args.cores_per_node
    rate = per_core * cores
    million = 1_000_000
    size, _ = campaign.choose_chunk_size(million, cores)
    tasks = rate / size
    print(
        f"on paper, {args.nodes} nodes x {args.cores_per_node} cores = {cores} worker "
        f"processes x {per_core:.0f} seeds/s (the LocalCluster's seeds per worker CPU "
        f"second) = {rate:,.0f} seeds/s; 1,000,000 seeds in chunks of {size} "
        f"({million // size} tasks) take ~{million / rate:.0f}s plus the cluster's start, "
        f"and the scheduler sees {tasks:,.0f} tasks/s (~{tasks / 10:.0f}% of a core at "
        "Dask's documented ~1 ms per task)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
