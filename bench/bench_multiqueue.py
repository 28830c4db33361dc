#!/usr/bin/env python3
"""Multi-queue TAP: aggregate echo goodput of 16 streams with 1 and 2 queues (workers).

Run as root from the repository: ``sudo python3 bench/bench_multiqueue.py [--mbytes 128]``.
Everything lives in namespaces made here and removed at the end. Figures only,
no assertions. In one run, ``--rounds`` interleaved rounds of each setting:

- aggregate goodput (MB/s of payload echoed, all streams together) of
  ``--streams`` (16) concurrent kernel TCP connections (the Python socket client
  ``tests/integration/tcp_tool.py``, one process, a thread per connection)
  against ``echo_reply_server.py --queues Q`` for each Q of ``--queues``
  (default 1 2), offloads on;
- CPU seconds per MB echoed: of all simtcp workers together, and of the client
  (kernel TCP on the client side counts there; softirq work may land in either);
- how the connections spread over the workers (the server's stop line);
- the load average when each round started: the machine is shared, and every
  figure is only as good as the cores left to it.

``--profile PREFIX`` runs one more round per setting with every worker under
cProfile (``PREFIX.qQ.INDEX`` files) and prints the top functions of worker 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tap_echo import MB, TCP_TOOL, cpu_seconds, namespace, unique  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "echo_reply_server.py"
PROFILE_ENV = "SIMTCP_WORKER_PROFILE"


class QueuedServer:
    """echo_reply_server.py --queues Q in a namespace; stopped with SIGTERM by PID."""

    def __init__(self, ns: str, queues: int, profile: str | None = None) -> None:
        env = dict(os.environ)
        extra: list[str] = []
        interpreter = [sys.executable]
        if profile:
            extra.append("--keep-root")  # the profiles are written where root may
            if queues == 1:  # one process: profile it whole
                interpreter += ["-m", "cProfile", "-o", f"{profile}.0"]
            else:
                env[PROFILE_ENV] = profile
        self.process = subprocess.Popen(
            [*interpreter, str(SERVER), "--netns", ns, "--tap0", unique("smq0")]
            + ["--tap1", unique("smq1"), "--queues", str(queues), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        assert self.process.stdout is not None
        self.workers: list[int] = []
        for line in self.process.stdout:
            if "ready" in line:
                found = re.search(r"workers ([\d,]+)", line)
                pid = re.search(r"ready \(pid (\d+)", line)
                self.workers = (
                    [int(p) for p in found.group(1).split(",")]
                    if found
                    else [int(pid.group(1)) if pid else self.process.pid]
                )
                return
        errors = self.process.stderr.read() if self.process.stderr else ""
        raise RuntimeError(f"server failed: {errors}")

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.workers)

    def stop(self) -> str:
        """SIGTERM; the stop line."""
        if self.process.poll() is None:
            self.process.terminate()
        out, _ = self.process.communicate(timeout=30)
        return next((line for line in out.splitlines() if "stopped:" in line), "")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_round(queues: int, size: int, streams: int, profile: str | None = None) -> dict[str, float]:
    load = os.getloadavg()[0]
    with namespace() as ns:
        server = QueuedServer(ns, queues, profile)
        try:
            subprocess.run(
                ["ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.05", "10.0.0.1"],
                capture_output=True,
                timeout=30,
            )
            cpu_before, client_before = server.cpu(), _children_cpu()
            result = subprocess.run(
                ["ip", "netns", "exec", ns, sys.executable, str(TCP_TOOL), "clients"]
                + ["--host", "10.0.0.1", "--port", "80", "--count", str(streams)]
                + ["--bytes", str(size // streams), "--timeout", "300"],
                capture_output=True,
                text=True,
                timeout=700,
            )
            cpu, client = server.cpu() - cpu_before, _children_cpu() - client_before
        finally:
            line = server.stop()
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    if summary["ok"] != streams:
        raise RuntimeError(f"echo failed: {summary}")
    seconds = float(summary["seconds"])
    spread = re.search(r"workers: ([\d+]+) connections", line)
    return {
        "queues": queues,
        "mb_s": size / MB / seconds,
        "seconds": seconds,
        "server_cpu_s_per_mb": cpu / (size / MB),
        "client_cpu_s_per_mb": client / (size / MB),
        "load_1min": load,
        "spread": spread.group(1) if spread else str(streams),  # type: ignore[dict-item]
    }


def report(rounds: dict[int, list[dict[str, float]]], streams: int, mbytes: float) -> None:
    print(
        f"{streams} concurrent TCP echo streams, {mbytes:g} MB in all, offloads on; "
        f"{os.cpu_count()} cores; load average (1 min) at each round's start shown"
    )
    base = max(r["mb_s"] for r in rounds[min(rounds)])
    for queues, runs in rounds.items():
        top = max(runs, key=lambda r: r["mb_s"])
        median = statistics.median(r["mb_s"] for r in runs)
        print(
            f"  --queues {queues}: best {top['mb_s']:7.1f} MB/s (x{top['mb_s'] / base:.2f})  "
            f"median {median:7.1f}  server {min(r['server_cpu_s_per_mb'] for r in runs):.4f} "
            f"CPU s/MB  client {min(r['client_cpu_s_per_mb'] for r in runs):.4f} CPU s/MB"
        )
        print(
            "      rounds: "
            + "  ".join(
                f"{r['mb_s']:.1f} MB/s (load {r['load_1min']:.2f}, spread {r['spread']})"
                for r in runs
            )
        )
    print(json.dumps({str(q): runs for q, runs in rounds.items()}))


def print_profile(prefix: str, top: int) -> None:
    path = f"{prefix}.0"
    for _ in range(50):  # the worker writes it on its way out
        if os.path.exists(path):
            break
        time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        pstats.Stats(path).sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=128, help="MB (10^6) echoed per round")
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--queues", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per setting")
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile the workers (extra round)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_multiqueue.py: needs root", file=sys.stderr)
        return 2
    size, streams = int(args.mbytes * MB), max(1, args.streams)
    rounds: dict[int, list[dict[str, float]]] = {q: [] for q in args.queues}
    for _ in range(max(0, args.rounds)):
        for queues in args.queues:
            rounds[queues].append(one_round(queues, size, streams))
    if args.rounds > 0:
        report(rounds, streams, args.mbytes)
    if args.profile:
        for queues in args.queues:
            prefix = f"{args.profile}.q{queues}"
            one_round(queues, size, streams, profile=prefix)
            print(f"--- --queues {queues}, worker 0 ({prefix}.0) ---")
            print_profile(prefix, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
