"""`simtcp serve --queues N`: the seed server as one worker process per TAP queue.

:mod:`simtcp.backends.multiqueue` holds the design (how the kernel steers flows
to queues, what each worker shares with the others and how) and the
supervisor; this module is the glue to :mod:`simtcp.programs.serve`: which
queues a worker gets, privileges, the one ``ready`` line, the merged status
snapshot and the summed stop line.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from simtcp.backends.multiqueue import Supervisor, WorkerBody, WorkerLink, aggregate

if TYPE_CHECKING:
    from simtcp.backends.privilege import Account
    from simtcp.backends.tap import TapDevice, TapLoop
    from simtcp.stack import Stack

    from .serve import _Resources

EXIT_OK = 0
EXIT_FAILURE = 1
PROFILE_ENV = "SIMTCP_WORKER_PROFILE"
"""Set to a path prefix, each worker runs under cProfile and writes ``PREFIX.INDEX`` at exit
(bench/bench_multiqueue.py --profile; with --keep-root, or a prefix the workers may write)."""


def serve_queues(
    args: argparse.Namespace,
    prog: str,
    devices: list[TapDevice],
    resources: _Resources,
    account: Account | None,
) -> int:
    """Fork a worker per queue over ``devices`` (tap0's queues, then tap1's); serve until
    a signal (0) or a worker's failure (1, in one line). The caller removes the devices."""
    from . import serve

    count = args.queues
    parent = os.getpid()

    def on_ready(pids: list[int]) -> None:
        netns0 = args.netns
        netns1 = args.netns1 or args.netns
        for line in serve._describe(args, netns0, netns1, [devices[0], devices[count]]):
            print(f"{prog}: {line}", flush=True)
        workers = ",".join(str(pid) for pid in pids)
        print(
            f"{prog}: TCP echo on port {serve.ECHO_PORT} on {count} queues; ready (pid "
            f"{pids[0]}; workers {workers}; supervisor {parent}; Ctrl-C to stop)",
            flush=True,
        )

    status = resources.status

    def answer_status(snapshots: list[Any]) -> None:
        if status is not None:
            status.answer(merge_snapshots([s for s in snapshots if s is not None]))

    supervisor = Supervisor(count)
    supervisor.start(_worker_body(args, prog, devices, resources, account, parent))
    result = supervisor.run(
        on_ready=on_ready,
        status_fd=status.fileno() if status is not None else None,
        answer_status=answer_status,
    )
    if result.failure is not None:
        print(f"{prog}: error: {result.failure}; stopped the others", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    print(f"{prog}: {stop_line([f for f in result.finals if f is not None])}", flush=True)
    return EXIT_OK


def stop_line(finals: list[dict[str, Any]]) -> str:
    """The single-process stop line over every worker's final report, and how the
    connections spread over the workers."""
    from .serve import stop_text

    zero = dict.fromkeys(("frames_in", "frames_out", "gso_in", "gso_out", "gro_merged"), 0)
    counts = aggregate([zero, *(final["loop"] for final in finals)])
    stats = aggregate(final["stats"] for final in finals)
    accepted = sum(final["accepted"] for final in finals)
    echoed = sum(final["echoed"] for final in finals)
    shares = "+".join(str(final["accepted"]) for final in finals) or "0"
    line = stop_text(counts, stats, accepted, echoed)
    return f"{line} (over {len(finals)} workers: {shares} connections)"


def _worker_body(
    args: argparse.Namespace,
    prog: str,
    devices: list[TapDevice],
    resources: _Resources,
    account: Account | None,
    parent: int,
) -> WorkerBody:
    """What each forked worker runs: keep its own queues, drop privileges, serve."""
    from . import serve

    count = args.queues

    def body(link: WorkerLink) -> int:
        mine = [devices[link.index], devices[count + link.index]]
        for device in devices:  # only our own queues stay open here
            if device not in mine:
                with contextlib.suppress(OSError):
                    os.close(device.fd)
        if resources.status is not None:  # the supervisor answers it; never unlink it here
            with contextlib.suppress(OSError):
                os.close(resources.status.fileno())
            resources.status = None
        if account is not None:
            serve._drop(prog, account, parent=parent)
        from simtcp.backends.privilege import die_with_parent

        if not die_with_parent(parent, signal.SIGTERM):  # nobody would remove the devices
            return EXIT_OK
        profile = os.environ.get(PROFILE_ENV)
        if not profile:
            return serve._run(args, prog, mine, resources, link)
        import cProfile

        profiler = cProfile.Profile()
        try:
            return profiler.runcall(serve._run, args, prog, mine, resources, link)
        finally:
            profiler.dump_stats(f"{profile}.{link.index}")

    return body


def watch_supervisor(link: WorkerLink, loop: TapLoop, stack: Stack) -> None:
    """In a worker: answer the supervisor's status requests and take the other workers'
    relayed ARP replies, between two loop turns."""
    from simtcp.backends.multiqueue import ArpRelayingStack

    from .status import snapshot

    def counters() -> dict[str, int]:
        relayed = {"arp_relayed_out": link.relayed_out, "arp_relay_lost": link.relay_lost}
        return {**loop.counters, **relayed}

    def answer(now: int) -> None:
        if link.pending_requests():
            link.send("status", snapshot(stack, counters()))

    loop.watch_readable(link.control_fd, answer)
    driven = loop.stack
    if isinstance(driven, ArpRelayingStack):

        def relayed(now: int) -> None:
            loop.counters["arp_relayed_in"] = loop.counters.get("arp_relayed_in", 0) + (
                driven.receive_relayed(now)
            )

        loop.watch_readable(link.relay_fd, relayed)


def merge_snapshots(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """One status snapshot (:mod:`simtcp.programs.status`'s schema) of all workers: their
    connections listed together, their counters and loop counters summed."""
    if not snapshots:
        return {}
    merged: dict[str, Any] = {key: value for key, value in snapshots[0].items()}
    hosts: dict[str, dict[str, Any]] = {}
    for snapshot in snapshots:
        for name, host in snapshot.get("hosts", {}).items():
            into = hosts.setdefault(name, {"connections": [], "counters": {}})
            into["connections"] += host.get("connections", [])
            into["counters"] = aggregate([into["counters"], host.get("counters", {})])
    merged["hosts"] = hosts
    merged["loop"] = aggregate(snapshot.get("loop", {}) for snapshot in snapshots)
    merged["workers"] = [
        {
            "queue": index,
            "connections": sum(
                len(host.get("connections", [])) for host in snapshot.get("hosts", {}).values()
            ),
            "loop": snapshot.get("loop", {}),
        }
        for index, snapshot in enumerate(snapshots)
    ]
    return merged


__all__ = ["PROFILE_ENV", "merge_snapshots", "serve_queues", "stop_line", "watch_supervisor"]
