"""``simtcp sim campaign``: many seeds, in chunks, on one of three engines.

A campaign is a :class:`CampaignPlan` (the command line's options, picklable) and a
range of seeds. The seeds are cut into chunks (:func:`choose_chunk_size`); an engine
(:mod:`simtcp.programs.campaign_engines`: this process, a local process pool, or Dask
distributed) runs :func:`run_chunk` on each and hands the results back as they finish.
The driver here counts every seed exactly once (a chunk that comes back twice, after a
worker died, is ignored the second time), draws the progress bar, writes each failure to
the failure store as it arrives, and prints the report and the coverage at the end.

With ``--explore`` every seed draws its own impairment mix and transfer size from the
seed (:func:`draw`), so a campaign explores a space of links instead of one point; the
link options then become the upper bounds of the draws. Each failure's replay command
spells out the drawn values, so it replays the one run without ``--explore``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import signal
import sys
import threading
import time
import types
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TextIO

from simtcp.programs import sim
from simtcp.programs.failure_store import FailureStore, StoreError
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.tcp import machine
from simtcp.time import MILLISECOND

CHUNKS_PER_SLOT = 8
"""Chunks each parallel slot gets at least: the last ones even out the tail, and a lost
worker costs at most one chunk per slot of work done again."""
MAX_CHUNK = 100
"""Seeds per chunk at most, on up to 100 slots (beyond, as many seeds as slots): at ~4 ms
a seed a chunk of 100 is ~0.4 s of work against Dask's ~1 ms per task (see README
"Campaigns")."""

# The engine's counters a campaign reports coverage of: recovery paths, then the
# states entered (``tcp.state.<name>``).
RECOVERY_COUNTERS: dict[str, str] = {
    "tcp.fast_retransmits": "fast retransmit (RFC 5681 3.2, RFC 6675)",
    "tcp.rack_lost_segments": "RACK loss detection (RFC 8985 6.2)",
    "tcp.loss_probes": "tail loss probe (RFC 8985 7)",
    "tcp.rto_expirations": "retransmission timeout (RFC 6298 5)",
    "tcp.syn_retransmits": "SYN retransmission (RFC 6298 5, RFC 9293 3.8.1)",
    "tcp.out_of_order_segments": "out-of-order queue (RFC 9293 3.10.7.4)",
    "tcp.window_probes": "zero-window probe (RFC 9293 3.8.6.1)",
    "tcp.challenge_acks": "challenge ACK (RFC 5961 3-5)",
    "tcp.syn_cookies_sent": "SYN cookies (RFC 4987 3.6)",
    "tcp.resets_received": "reset received (RFC 9293 3.5.3)",
    "tcp.receive_buffer_grown": "receive buffer auto-tuning",
    "drop.bad_checksum": "corrupted segment dropped (RFC 9293 3.1)",
}
STATE_COUNTERS: dict[str, str] = {
    machine.STATE_COUNTERS[state]: state.value for state in machine.State
}
"""Every state of RFC 9293 §3.3.2, counted by ``machine.enter`` as it is entered."""
COVERED = (*RECOVERY_COUNTERS, *STATE_COUNTERS)

# The space --explore draws from: each impairment is present in half the seeds, with a
# value up to the option given (or this default maximum when the option is left out).
EXPLORE_MAXIMA: dict[str, float] = {
    "loss": 0.1,
    "reorder": 0.05,
    "duplicate": 0.02,
    "corrupt": 0.01,
}
EXPLORE_DELAYS_MS = (1, 5, 10, 20, 50, 100)
EXPLORE_RATES_MBIT = (1, 10, 100, 1000)


class CampaignError(Exception):
    """A campaign cannot run (bad engine, store, options): one line, exit status 2."""


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    """What every seed of a campaign runs: the options, and whether to draw from the seed."""

    options: dict[str, object]
    explore: bool = False
    pcap_failures: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CampaignPlan:
        return cls(
            options=dict(vars(args)),
            explore=bool(getattr(args, "explore", False)),
            pcap_failures=bool(getattr(args, "pcap_failures", False)),
        )

    def namespace(self, seed: int) -> argparse.Namespace:
        """The ``simtcp sim transfer`` options of ``seed`` (drawn, with ``--explore``)."""
        args = argparse.Namespace(**self.options)
        return draw(args, seed) if self.explore else args

    def spec(self, seed: int) -> TransferSpec:
        return sim.spec_from_args(self.namespace(seed), seed)

    def replay(self, seed: int) -> str:
        return sim.replay_command(self.namespace(seed), seed)


def draw(args: argparse.Namespace, seed: int) -> argparse.Namespace:
    """The link and the size of ``seed`` of an exploring campaign (the same on any machine:
    ``random.Random`` seeded with a string hashes it with SHA-512)."""
    rng = random.Random(f"simtcp-explore-{seed}")
    drawn = argparse.Namespace(**vars(args))
    for name, default in EXPLORE_MAXIMA.items():
        top = getattr(args, name) or default
        # Rounded to 4 decimals so that the replay command is short and exact.
        value = round(rng.uniform(0.0, top), 4) if rng.random() < 0.5 else 0.0
        setattr(drawn, name, value)
    delays = [
        d * MILLISECOND for d in EXPLORE_DELAYS_MS if not args.delay or d * 1000 <= args.delay
    ]
    drawn.delay = rng.choice(delays or [args.delay]) if rng.random() < 0.75 else 0
    drawn.jitter = (drawn.delay // 4 // MILLISECOND) * MILLISECOND if rng.random() < 0.25 else 0
    rates = [r * 10**6 for r in EXPLORE_RATES_MBIT if not args.rate or r * 10**6 <= args.rate]
    drawn.rate = rng.choice(rates or [args.rate]) if rng.random() < 0.75 else 0
    # Sizes log-uniform from 1K up to --bytes: most runs are short, some are long.
    low, high = 1024, max(1024, args.bytes)
    drawn.bytes = int(low * (high / low) ** rng.random()) // 1024 * 1024
    drawn.both_directions = args.both_directions or rng.random() < 0.25
    return drawn


# --- one chunk (runs on a worker) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    seeds: range


@dataclass(slots=True)
class ChunkResult:
    """What a worker sends back for one chunk."""

    index: int
    outcomes: list[sim.SeedOutcome]
    reached: Counter[str] = field(default_factory=Counter)
    """Per covered counter, how many seeds of the chunk made it move."""
    pcaps: dict[int, bytes] = field(default_factory=dict)
    worker: str = ""
    """host:pid of the process that ran it."""


def run_chunk(plan: CampaignPlan, chunk: Chunk) -> ChunkResult:
    """Run every seed of ``chunk`` (a top-level function: workers import it by name)."""
    import os
    import socket

    result = ChunkResult(chunk.index, [], worker=f"{socket.gethostname()}:{os.getpid()}")
    for seed in chunk.seeds:
        spec = plan.spec(seed)
        run = run_transfer(spec)
        result.outcomes.append(
            sim.SeedOutcome(
                seed=seed,
                ok=run.ok,
                reason=run.reason,
                virtual_seconds=run.virtual_seconds,
                cpu_seconds=run.cpu_seconds,
                retransmits=run.retransmits,
            )
        )
        for name in COVERED:
            if run.client_stats.get(name, 0) + run.server_stats.get(name, 0):
                result.reached[name] += 1
        if not run.ok and plan.pcap_failures:
            stream = io.BytesIO()
            run_transfer(spec, pcap=stream)  # deterministic: the same run, recorded
            result.pcaps[seed] = stream.getvalue()
    return result


def choose_chunk_size(seeds: int, slots: int, asked: int | None = None) -> tuple[int, str]:
    """Seeds per chunk for ``slots`` parallel workers, and why."""
    if asked is not None:
        return asked, "as asked (--chunk-size)"
    if slots <= 1:
        return 1, "one process: no per-task overhead to amortize"
    size = -(-seeds // (slots * CHUNKS_PER_SLOT))
    # At least as many seeds as slots (while each slot still gets a chunk): the scheduler
    # then sees at most one task per seed-time (~250 tasks/s at ~4 ms a seed), however
    # large the cluster.
    size = max(size, min(slots, -(-seeds // slots)))
    cap = max(MAX_CHUNK, slots)
    size = max(1, min(cap, size))
    return size, (
        f"{seeds} seeds / ({slots} slots x {CHUNKS_PER_SLOT} chunks each), at least "
        f"min({slots} slots, seeds per slot) and at most {cap}: per-task overhead (~1 ms "
        "on Dask) stays under 1% of a chunk's work and the scheduler under ~250 tasks/s, "
        "while the tail balances and a lost worker costs one chunk per slot"
    )


def make_chunks(seeds: range, size: int) -> list[Chunk]:
    return [
        Chunk(index, seeds[start : start + size])
        for index, start in enumerate(range(0, len(seeds), size))
    ]


# --- the driver --------------------------------------------------------------------------


@dataclass(slots=True)
class Tally:
    """Every seed counted exactly once, whatever the engine hands back."""

    seeds: range
    outcomes: dict[int, sim.SeedOutcome] = field(default_factory=dict)
    reached: Counter[str] = field(default_factory=Counter)
    chunks_done: set[int] = field(default_factory=set)
    duplicates: int = 0
    ran_on: dict[int, str] = field(default_factory=dict)
    """Chunk index -> the worker (host:pid) whose result was counted."""

    @property
    def workers(self) -> set[str]:
        return set(self.ran_on.values())

    def add(self, result: ChunkResult) -> bool:
        """Count a chunk's result; False (and nothing counted) if it was counted already."""
        if result.index in self.chunks_done:
            self.duplicates += 1
            return False
        self.chunks_done.add(result.index)
        for outcome in result.outcomes:
            if outcome.seed in self.outcomes or outcome.seed not in self.seeds:
                raise RuntimeError(f"seed {outcome.seed} came back twice or unasked")
            self.outcomes[outcome.seed] = outcome
        self.reached.update(result.reached)
        self.ran_on[result.index] = result.worker
        return True

    @property
    def failed(self) -> int:
        return sum(not outcome.ok for outcome in self.outcomes.values())

    def sorted(self) -> list[sim.SeedOutcome]:
        return [self.outcomes[seed] for seed in sorted(self.outcomes)]


def drive(
    plan: CampaignPlan,
    results: Iterator[ChunkResult],
    tally: Tally,
    bar: sim.ProgressBar,
    store: FailureStore | None,
    campaign_id: str,
) -> None:
    """Consume results as they finish: count, draw, store each failure at once."""
    bar.update(0, 0)
    for result in results:
        if interrupted.is_set():
            raise KeyboardInterrupt  # the engine swallowed the one Ctrl-C raised
        if not tally.add(result):
            continue
        if store is not None:
            for outcome in result.outcomes:
                if not outcome.ok:
                    store.record(
                        campaign=campaign_id,
                        spec=plan.spec(outcome.seed),
                        replay=plan.replay(outcome.seed),
                        reason=outcome.reason,
                        pcap=result.pcaps.get(outcome.seed),
                    )
        bar.update(len(tally.outcomes), tally.failed)
    if len(tally.outcomes) != len(tally.seeds):
        raise RuntimeError(f"{len(tally.seeds) - len(tally.outcomes)} seeds never came back")


interrupted = threading.Event()
"""Set by Ctrl-C during a campaign (see :func:`_catch_interrupt`)."""


@contextlib.contextmanager
def _catch_interrupt() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt as usual and also sets :data:`interrupted`: were the
    KeyboardInterrupt to land where it is swallowed (a garbage-collector callback, such as
    the one Dask's in-process scheduler installs), the driver still stops at the next
    result."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # started in the background
    ):
        yield
        return

    def handler(signum: int, frame: types.FrameType | None) -> None:
        interrupted.set()
        while frame is not None:
            if frame.f_code.co_name == "_gc_callback":
                return  # an exception here would be "ignored" (and printed): the flag does it
            frame = frame.f_back
        raise KeyboardInterrupt

    interrupted.clear()
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run(args: argparse.Namespace) -> int:
    """``simtcp sim campaign``: the exit status."""
    from simtcp.programs import campaign_engines

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    plan = CampaignPlan.from_args(args)
    plan.spec(seeds.start)  # a bad option fails here, before any engine starts
    store = _open_store(args.store) if args.store else None
    tally = Tally(seeds)
    campaign_id = uuid.uuid4().hex[:12]
    wall_start = time.perf_counter()
    try:
        with (
            _catch_interrupt(),
            campaign_engines.open_engine(
                args.scheduler, args.workers, connect_timeout=args.connect_timeout
            ) as engine,
        ):
            wall_start = time.perf_counter()  # the seeds' wall time, not the engine's start
            size, why = choose_chunk_size(len(seeds), engine.slots, args.chunk_size)
            chunks = make_chunks(seeds, size)
            print(
                f"engine: {engine.description}; {len(chunks)} chunks of {size} seeds ({why})",
                file=sys.stderr,
            )
            stream = engine.stream(plan, chunks)
            try:
                drive(plan, stream, tally, _bar(len(seeds)), store, campaign_id)
            finally:
                stream.close()  # on Ctrl-C: cancel what is queued before the engine closes
    except KeyboardInterrupt:
        where = f"; {tally.failed} failures kept in {args.store}" if store is not None else ""
        print(
            f"\nsimtcp sim campaign: interrupted after {len(tally.outcomes)} of {len(seeds)} "
            f"seeds{where}",
            file=sys.stderr,
        )
        return 130
    except (campaign_engines.EngineError, StoreError) as error:
        raise sim.UsageError(f"simtcp sim campaign: {error}") from None
    finally:
        if store is not None:
            store.close()
    wall = time.perf_counter() - wall_start
    with sim._reader_may_leave():
        report(args, plan, tally, wall, engine.description, sys.stdout)
    return sim.EXIT_FAILED if tally.failed else sim.EXIT_OK


def _bar(total: int) -> sim.ProgressBar:
    return sim.ProgressBar(total, sys.stderr)


def _open_store(path: str) -> FailureStore:
    try:
        return FailureStore(path)
    except StoreError as error:
        raise sim.UsageError(f"simtcp sim campaign: {error}") from None


# --- the report ---------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    plan: CampaignPlan,
    tally: Tally,
    wall: float,
    engine: str,
    out: TextIO,
) -> None:
    outcomes = tally.sorted()
    failures = [outcome for outcome in outcomes if not outcome.ok]
    seeds = tally.seeds
    link = "drawn from each seed (--explore)" if plan.explore else sim.describe_link(args)
    size = f"up to {sim.format_size(args.bytes)}" if plan.explore else sim.format_size(args.bytes)
    print(
        f"campaign: seeds {seeds.start}..{seeds.stop - 1}, {size} bytes per transfer, link {link}",
        file=out,
    )
    for outcome in failures:
        print(f"  seed {outcome.seed} FAILED: {outcome.reason}", file=out)
        print(f"    {plan.replay(outcome.seed)}", file=out)
    passed = sorted((o for o in outcomes if o.ok), key=lambda outcome: outcome.virtual_seconds)
    retransmits = sum(outcome.retransmits for outcome in outcomes)
    if passed:
        # The slowest success is where performance bugs hide: show its replay too.
        median, slowest = passed[len(passed) // 2], passed[-1]
        print(
            f"virtual time of the ok seeds: median {median.virtual_seconds:.3f}s, slowest "
            f"{slowest.virtual_seconds:.3f}s (seed {slowest.seed}: {plan.replay(slowest.seed)})",
            file=out,
        )
    print(coverage_text(tally.reached, len(outcomes)), file=out)
    workers = f"{args.workers} worker(s)" if not args.scheduler else engine
    again = (
        f", {tally.duplicates} chunk result(s) seen twice and ignored" if tally.duplicates else ""
    )
    print(
        f"{len(outcomes) - len(failures)} ok, {len(failures)} failed of {len(outcomes)} "
        f"seeds; {retransmits} retransmits, wall {wall:.2f}s with {workers}{again}",
        file=out,
    )
    if args.json:
        record = {
            "ok": not failures,
            "seeds": len(outcomes),
            "failed": [outcome.seed for outcome in failures],
            "replay": [plan.replay(outcome.seed) for outcome in failures],
            "wall_seconds": round(wall, 6),
            "retransmits": retransmits,
            "coverage": {name: tally.reached.get(name, 0) for name in COVERED},
        }
        print(json.dumps(record), file=out)
    out.flush()


def coverage_text(reached: Counter[str], seeds: int) -> str:
    """Which recovery paths and states the seeds reached, from the engine's counters."""
    lines = [f"coverage (seeds of {seeds} whose counters moved):"]
    for group, names in (("recovery", RECOVERY_COUNTERS), ("states", STATE_COUNTERS)):
        hit = [f"{what} {reached[name]}" for name, what in names.items() if reached.get(name)]
        missed = [what for name, what in names.items() if not reached.get(name)]
        lines.append(f"  {group} reached: {'; '.join(hit) or 'none'}")
        if missed:
            lines.append(f"  {group} not reached: {'; '.join(missed)}")
    return "\n".join(lines)


def add_options(parser: argparse.ArgumentParser) -> None:
    """The campaign's engine, chunking, exploring and store options."""
    group = parser.add_argument_group("engine and failure store")
    group.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="run the chunks on Dask distributed: tcp://host:8786 (a running 'dask "
        "scheduler') or 'local' (a LocalCluster of --workers processes); needs the "
        "cluster extra. Without it --workers is a local process pool",
    )
    group.add_argument(
        "--chunk-size",
        type=sim._integer(1, 1_000_000),
        default=None,
        metavar="N",
        help=f"seeds per task (default: ~{CHUNKS_PER_SLOT} chunks per worker, at most {MAX_CHUNK})",
    )
    group.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long to try to reach --scheduler (default 10)",
    )
    group.add_argument(
        "--explore",
        action="store_true",
        help="draw each seed's impairments and size from the seed (the link options "
        "become upper bounds)",
    )
    group.add_argument(
        "--store",
        metavar="FILE",
        help="keep every failure in this SQLite file (accumulates across campaigns; "
        "see 'simtcp sim failures')",
    )
    group.add_argument(
        "--pcap-failures",
        action="store_true",
        help="with --store: record a pcap of each failing run (run again, deterministically)",
    )


def validate(args: argparse.Namespace) -> None:
    if args.pcap_failures and not args.store:
        raise sim.UsageError("simtcp sim campaign: --pcap-failures needs --store FILE")
    if not args.connect_timeout > 0:
        raise sim.UsageError("simtcp sim campaign: --connect-timeout must be positive")
    if args.scheduler is not None and args.scheduler != "local" and "://" not in args.scheduler:
        raise sim.UsageError(
            f"simtcp sim campaign: --scheduler {args.scheduler!r} is neither 'local' nor an "
            "address like tcp://host:8786"
        )


__all__ = [
    "CampaignPlan",
    "Chunk",
    "ChunkResult",
    "Tally",
    "choose_chunk_size",
    "draw",
    "make_chunks",
    "run",
    "run_chunk",
]
