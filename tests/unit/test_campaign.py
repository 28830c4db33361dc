"""Campaigns: chunking, exploring, counting once, and the engines (local pool and a real
Dask LocalCluster of two worker processes)."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp.programs import campaign, campaign_engines
from simtcp.programs.sim import build_parser, main, spec_from_args

SEEDS = range(1, 501)
REPO = pathlib.Path(__file__).resolve().parents[2]


def campaign_args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["campaign", "--seeds", "1", *extra])


def explore_plan() -> campaign.CampaignPlan:
    return campaign.CampaignPlan.from_args(campaign_args("--explore", "--bytes", "16K"))


def strip(tally: campaign.Tally) -> list[tuple[int, bool, str, float, int]]:
    return [(o.seed, o.ok, o.reason, o.virtual_seconds, o.retransmits) for o in tally.sorted()]


# --- chunking and exploring (no engine) ---------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), st.integers(1, 5000), st.integers(1, 400))
def test_chunks_cover_every_seed_once(first: int, count: int, slots: int) -> None:
    seeds = range(first, first + count)
    size, why = campaign.choose_chunk_size(count, slots)
    assert 1 <= size <= max(campaign.MAX_CHUNK, slots) and why
    chunks = campaign.make_chunks(seeds, size)
    assert [seed for chunk in chunks for seed in chunk.seeds] == list(seeds)
    assert [chunk.index for chunk in chunks] == list(range(len(chunks)))
    # Every slot gets chunks (about half a chunk at the least, when seeds are few), and a
    # big cluster's scheduler gets no more tasks per seed-time than it has slots.
    cap = max(campaign.MAX_CHUNK, slots)
    assert len(chunks) >= min(count, slots) // 2 or size == cap
    assert size >= min(slots, count // slots)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32))
def test_an_explored_seed_replays_as_one_transfer(seed: int) -> None:
    # The replay command spells out what the seed drew: it builds the very same spec.
    plan = explore_plan()
    words = shlex.split(plan.replay(seed))
    assert words[:3] == ["simtcp", "sim", "transfer"] and "--explore" not in words
    replayed = build_parser().parse_args(words[2:])
    assert spec_from_args(replayed, replayed.seed) == plan.spec(seed)
    assert plan.spec(seed).bytes <= 16 * 1024


def test_exploring_covers_a_space_not_a_point() -> None:
    specs = [explore_plan().spec(seed) for seed in range(200)]
    assert len({spec.forward for spec in specs}) > 150
    assert len({spec.bytes for spec in specs}) > 10
    assert sum(spec.forward.loss > 0 for spec in specs) in range(60, 140)
    assert sum(spec.reverse_bytes > 0 for spec in specs) in range(25, 80)


def test_a_chunk_seen_twice_is_counted_once() -> None:
    plan = explore_plan()
    tally = campaign.Tally(range(1, 5))
    chunks = campaign.make_chunks(tally.seeds, 2)
    results = [campaign.run_chunk(plan, chunk) for chunk in chunks]
    assert tally.add(results[0]) and not tally.add(results[0]) and tally.add(results[1])
    assert sorted(tally.outcomes) == [1, 2, 3, 4] and tally.duplicates == 1


def test_coverage_is_printed_from_the_engine_counters(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["campaign", "--seeds", "6", "--bytes", "32K", "--loss", "0.1", "--json"])
    out = capsys.readouterr().out
    assert status == 0
    assert "recovery reached: " in out and "fast retransmit" in out
    assert "states reached: CLOSED 6; LISTEN 6; SYN-SENT 6; SYN-RECEIVED 6; ESTABLISHED 6" in out
    assert '"tcp.state.time_wait": 6' in out  # every state, from machine.enter's counters
    assert '"coverage": {' in out


# --- the engines ---------------------------------------------------------------------------


def run_on(engine: Any, plan: campaign.CampaignPlan, size: int) -> campaign.Tally:
    tally = campaign.Tally(SEEDS)
    for result in engine.stream(plan, campaign.make_chunks(SEEDS, size)):
        tally.add(result)
    return tally


@pytest.fixture(scope="module")
def reference() -> campaign.Tally:
    """500 explored seeds on the local pool of two processes."""
    with campaign_engines.open_engine(None, 2) as engine:
        return run_on(engine, explore_plan(), 25)


@pytest.fixture(scope="module")
def cluster() -> Iterator[campaign_engines.DaskEngine]:
    """A real LocalCluster: a scheduler and two worker processes (each under a nanny)."""
    with campaign_engines.open_engine("local", 2) as engine:
        assert isinstance(engine, campaign_engines.DaskEngine)
        assert len(engine.client.nthreads()) == 2
        yield engine


def test_a_local_cluster_gives_the_pool_outcomes(
    reference: campaign.Tally, cluster: campaign_engines.DaskEngine
) -> None:
    tally = run_on(cluster, explore_plan(), 25)
    assert strip(tally) == strip(reference)
    assert tally.reached == reference.reached
    assert len(tally.workers) == 2  # both worker processes ran chunks


def test_a_worker_killed_mid_campaign_loses_and_doubles_no_seed(
    reference: campaign.Tally, cluster: campaign_engines.DaskEngine
) -> None:
    client = cluster.client
    pids = client.run(os.getpid)
    tally = campaign.Tally(SEEDS)
    killed: dict[str, Any] = {}
    for result in cluster.stream(explore_plan(), campaign.make_chunks(SEEDS, 25)):
        tally.add(result)
        if not killed:
            # Kill (by PID) a worker that is running chunks right now.
            busy, keys = next((a, keys) for a, keys in client.processing().items() if keys)
            os.kill(pids[busy], signal.SIGKILL)
            killed = {"pid": pids[busy], "chunks": {int(str(k).rsplit("-", 1)[1]) for k in keys}}
    assert strip(tally) == strip(reference)  # every seed exactly once, the same outcomes
    assert tally.duplicates == 0
    # What the dead worker held was run again by another process (the scheduler's retry).
    rerun = {c for c in killed["chunks"] if not tally.ran_on[c].endswith(f":{killed['pid']}")}
    assert rerun
    _wait_for(lambda: len(client.nthreads()) == 2)  # its nanny starts a new worker
    assert killed["pid"] not in client.run(os.getpid).values()


def test_leaving_the_stream_early_cancels_the_rest(cluster: campaign_engines.DaskEngine) -> None:
    stream = cluster.stream(explore_plan(), campaign.make_chunks(SEEDS, 5))
    next(stream)
    stream.close()  # what Ctrl-C in the driver does
    ours = "simtcp-chunk-"

    def left() -> list[str]:
        return cluster.client.run_on_scheduler(
            lambda dask_scheduler: [k for k in dask_scheduler.tasks if str(k).startswith(ours)]
        )  # type: ignore[no-any-return]

    _wait_for(lambda: not left())
    assert not left()


def _wait_for(condition: Any, seconds: float = 20.0) -> None:
    # Cluster state changes asynchronously; poll it (the test asserts on the state, never
    # on how long it took).
    give_up = time.monotonic() + seconds
    while not condition() and time.monotonic() < give_up:
        time.sleep(0.05)


def test_the_command_on_a_local_cluster_draws_the_same_bar_and_report(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["campaign", "--seeds", "30", "--bytes", "8K", "--loss", "0.05", "--json"]
    assert main(argv) == 0
    pool = capsys.readouterr()
    assert main([*argv, "--scheduler", "local", "--workers", "2"]) == 0
    dask = capsys.readouterr()
    assert "engine: Dask LocalCluster at tcp://" in dask.err and "chunks of" in dask.err
    bar = "[##############################] 30/30 seeds, 0 failed"
    assert bar in pool.err and bar in dask.err
    for key in ("ok", "seeds", "failed", "retransmits", "coverage"):
        assert (
            json.loads(pool.out.splitlines()[-1])[key] == json.loads(dask.out.splitlines()[-1])[key]
        )


@pytest.mark.timeout(120)
def test_ctrl_c_on_a_local_cluster_exits_130_and_leaves_no_process() -> None:
    # As a terminal's Ctrl-C: SIGINT to the whole process group (driver and workers).
    command = [sys.executable, "-m", "simtcp", "sim", "campaign", "--seeds", "100000"]
    command += ["--bytes", "8K", "--scheduler", "local", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        assert process.stderr is not None
        # "engine: ..." once the cluster is up, then the empty bar as the chunks go out.
        lines = [process.stderr.readline().decode() for _ in range(2)]
        assert lines[0].startswith("engine: Dask LocalCluster"), lines
        os.killpg(process.pid, signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = err.decode()
    assert process.returncode == 130, text
    assert "interrupted after " in text and "Traceback" not in text
    _wait_for(lambda: not _group_alive(process.pid))  # the last ones may take a moment
    assert not _group_alive(process.pid)  # no worker, nanny or tracker left behind


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_an_unreachable_scheduler_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["campaign", "--seeds", "3", "--scheduler", "tcp://127.0.0.1:9", "--connect-timeout"]
    assert main([*argv, "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("simtcp sim campaign: cannot reach the Dask scheduler at ")
    assert "\n" not in err.split("\n", 1)[-1] and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["--scheduler", "nowhere"], "is neither 'local' nor an address"),
        (["--pcap-failures"], "--pcap-failures needs --store FILE"),
        (["--connect-timeout", "0"], "--connect-timeout must be positive"),
        (["--chunk-size", "0"], "argument --chunk-size: must be at least"),
    ],
)
def test_bad_campaign_options_are_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["campaign", "--seeds", "3", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
