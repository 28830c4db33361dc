#!/usr/bin/env python3
"""Small packets and latency: simtcp over TAP (offloads on and off) next to the kernel over veth.

Run as root from the repository: ``sudo python3 bench/bench_small_packets.py``.
Everything lives in namespaces made here and removed at the end. Figures only,
no assertions; in one run, best of ``--rounds`` interleaved rounds, for the
kernel over a veth pair, simtcp's echo over a TAP with offloads, and with
``--no-offload`` (1,514-byte frames, software GRO/GSO):

- one echo stream of ``--mbytes`` (MSS 1,448: the kernel client's segments), MB/s;
- 64-byte request/response transactions per second, a kernel client
  (``bench/rr_peer.py``: one request outstanding per connection, TCP_NODELAY)
  over one connection, then 32; the kernel row answers with a single-threaded
  epoll echo server on kernel sockets;
- ping p50/p99 (``ping -i 0.005``);
- for simtcp: CPU microseconds per frame (the server's user + system CPU over the
  workload divided by the frames it read and wrote) and the in-process latency
  (``serve --latency``: a TAP loop turn from epoll's return to the answer
  written, p50/p99).

``--profile [FILE]`` then runs the no-offload stream and the 64-byte
request/response workload (1 and 32 connections) once more each, the server
under cProfile, and prints the top 25 functions by own time of each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, print_top, profile_path  # noqa: E402
from tap_echo import (  # noqa: E402
    MB,
    Server,
    cpu_seconds,
    echo_stream,
    namespace,
    nsrun,
    percentile,
    ping_rtts,
    unique,
)

RR_PEER = REPO / "bench" / "rr_peer.py"
CONNECTIONS = (1, 32)
CONFIGS = {"offload": (), "no_offload": ("--no-offload",)}


def request_response(ns: str, host: str, port: int, connections: int, seconds: float) -> dict:
    out = nsrun(
        ns,
        sys.executable,
        str(RR_PEER),
        "client",
        "--host",
        host,
        "--port",
        str(port),
        "--connections",
        str(connections),
        "--seconds",
        str(seconds),
        timeout=seconds + 60,
    )
    result: dict = json.loads(out.strip().splitlines()[-1])
    if not result["ok"]:
        raise RuntimeError(f"request/response failed: {result}")
    return result


@contextlib.contextmanager
def veth_pair() -> Iterator[tuple[str, str]]:
    """(server namespace, client namespace) joined by a veth pair, 10.9.0.1 and 10.9.0.2."""
    from pyroute2 import IPRoute, NetNS

    with namespace() as server_ns, namespace() as client_ns:
        a, b = unique("sbva"), unique("sbvb")
        with IPRoute() as ipr:
            ipr.link("add", ifname=a, kind="veth", peer=b)
            ipr.link("set", index=ipr.link_lookup(ifname=a)[0], net_ns_fd=server_ns)
            ipr.link("set", index=ipr.link_lookup(ifname=b)[0], net_ns_fd=client_ns)
        for ns, name, address in ((server_ns, a, "10.9.0.1"), (client_ns, b, "10.9.0.2")):
            with NetNS(ns) as ipr:
                index = ipr.link_lookup(ifname=name)[0]
                ipr.addr("add", index=index, address=address, prefixlen=24)
                ipr.link("set", index=index, state="up")
        yield server_ns, client_ns


def kernel_round(size: int, pings: int, seconds: float) -> dict[str, float]:
    result: dict[str, float] = {}
    with veth_pair() as (server_ns, client_ns):
        servers = [
            subprocess.Popen(
                ["ip", "netns", "exec", server_ns, sys.executable, str(program), "serve",
                 "--host", "10.9.0.1", "--port", str(port)],
                stdout=subprocess.PIPE,
                text=True,
            )
            for program, port in ((REPO / "tests" / "integration" / "tcp_tool.py", 7),
                                  (RR_PEER, 8))
        ]  # fmt: skip
        try:
            for server in servers:
                assert server.stdout is not None
                server.stdout.readline()
            rtts = ping_rtts(client_ns, "10.9.0.1", pings)
            result["ping_p50_ms"] = percentile(rtts, 0.5)
            result["ping_p99_ms"] = percentile(rtts, 0.99)
            result["stream_mb_s"] = size / MB / echo_stream(client_ns, "10.9.0.1", 7, size)
            for count in CONNECTIONS:
                rr = request_response(client_ns, "10.9.0.1", 8, count, seconds)
                result[f"rr{count}_tps"] = rr["tps"]
                result[f"rr{count}_p50_us"] = rr["rtt_p50_us"]
        finally:
            for server in servers:
                server.terminate()
                server.wait(10)
    return result


def stop_figures(text: str) -> dict[str, float]:
    """Frames and in-process latency from the server's last lines."""
    figures: dict[str, float] = {}
    frames = re.search(r"(\d+) frames in \(\d+ GSO\), (\d+) frames out", text)
    if frames:
        figures["frames"] = int(frames.group(1)) + int(frames.group(2))
    latency = re.search(r"latency: (\d+) turns.*p50 ([\d.]+) us, p99 ([\d.]+) us", text)
    if latency:
        figures["turns"] = int(latency.group(1))
        figures["loop_p50_us"] = float(latency.group(2))
        figures["loop_p99_us"] = float(latency.group(3))
    return figures


def simtcp_workload(
    kind: str, extra: tuple[str, ...], size: int, pings: int, seconds: float,
    profile: str | None = None,
) -> dict[str, float]:  # fmt: skip
    """One server for one workload (``stream``, ``rr1``, ``rr32`` or ``ping``), so its frame
    counts and latency histogram are that workload's alone."""
    with namespace() as ns:
        server = Server(ns, "--latency", *extra, profile=profile)
        result: dict[str, float] = {}
        try:
            nsrun(ns, "ping", "-c", "3", "-i", "0.05", "10.0.0.1")
            cpu_before = cpu_seconds(server.worker_pid)
            if kind == "stream":
                result["stream_mb_s"] = size / MB / echo_stream(ns, "10.0.0.1", 80, size)
            elif kind == "ping":
                rtts = ping_rtts(ns, "10.0.0.1", pings)
                result["ping_p50_ms"] = percentile(rtts, 0.5)
                result["ping_p99_ms"] = percentile(rtts, 0.99)
            else:
                rr = request_response(ns, "10.0.0.1", 80, int(kind[2:]), seconds)
                result[f"{kind}_tps"] = rr["tps"]
                result[f"{kind}_p50_us"] = rr["rtt_p50_us"]
            cpu = cpu_seconds(server.worker_pid) - cpu_before
        finally:
            server.stop()
        assert server.process.stdout is not None
        stopped = stop_figures(server.process.stdout.read())
    if "frames" in stopped:
        result[f"{kind}_us_per_frame"] = 1e6 * cpu / stopped["frames"]
    if "loop_p50_us" in stopped:
        result[f"{kind}_loop_p50_us"] = stopped["loop_p50_us"]
        result[f"{kind}_loop_p99_us"] = stopped["loop_p99_us"]
    return result


WORKLOADS = ("stream", "rr1", "rr32", "ping")


def simtcp_round(extra: tuple[str, ...], size: int, pings: int, seconds: float) -> dict:
    result: dict[str, float] = {}
    for kind in WORKLOADS:
        result |= simtcp_workload(kind, extra, size, pings, seconds)
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's best over the rounds: a busy machine only makes things worse."""
    merged: dict[str, float] = {}
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        higher = key.endswith(("_tps", "_mb_s"))
        merged[key] = max(values) if higher else min(values)
    return merged


def report(figures: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"small packets and latency, best of {args.rounds} rounds: echo stream of "
        f"{args.mbytes:g} MB, 64-byte request/response for {args.seconds:g} s, ping x{args.pings}"
    )
    header = (
        f"  {'':26} {'stream MB/s':>11} {'RR/s 1 conn':>12} {'RR/s 32':>9} "
        f"{'RR p50 us':>9} {'ping p50/p99 ms':>16}"
    )
    print(header)
    labels = {
        "kernel": "kernel over veth",
        "offload": "simtcp TAP, offloads",
        "no_offload": "simtcp TAP, --no-offload",
    }
    for name, label in labels.items():
        f = figures[name]
        print(
            f"  {label:26} {f['stream_mb_s']:11.1f} {f['rr1_tps']:12.0f} {f['rr32_tps']:9.0f} "
            f"{f['rr1_p50_us']:9.1f} {f['ping_p50_ms']:7.3f}/{f['ping_p99_ms']:.3f}"
        )
    print("  simtcp CPU us per frame (in + out) and loop latency (readable -> answer written):")
    for name in CONFIGS:
        f = figures[name]
        print(
            f"  {labels[name]:26}"
            + "".join(
                f" {kind} {f.get(f'{kind}_us_per_frame', 0):5.1f} us/frame"
                f" (loop p50 {f.get(f'{kind}_loop_p50_us', 0):.1f} p99 "
                f"{f.get(f'{kind}_loop_p99_us', 0):.1f} us);"
                for kind in WORKLOADS
            )
        )
    print(json.dumps(figures))


def profile_runs(option: str, size: int, seconds: float) -> None:
    """The no-offload stream and the request/response workloads, each server under cProfile."""
    for kind, extra in (
        ("stream", ("--no-offload",)),
        ("rr1", ()),
        ("rr32", ()),
    ):
        label = f"simtcp {kind} {' '.join(extra) or 'offloads'}"
        path = profile_path(option, label)
        assert path is not None
        figures = simtcp_workload(kind, extra, size, 0, seconds, profile=path)
        time.sleep(0.2)  # the profiler writes its file as the server exits
        print_top(path, f"{label} ({figures})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mbytes", type=float, default=32, help="MB (10^6) echoed per stream")
    parser.add_argument("--seconds", type=float, default=3.0, help="each request/response run")
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--only", choices=["kernel", *CONFIGS], action="append", help="rows to run (repeatable)"
    )
    add_profile_option(parser)
    args = parser.parse_args()
    import os

    if os.geteuid() != 0:
        print("bench_small_packets.py: needs root", file=sys.stderr)
        return 2
    size = int(args.mbytes * MB)
    rows = args.only or ["kernel", *CONFIGS]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
    for _ in range(max(0, args.rounds)):
        for name in rows:
            if name == "kernel":
                runs[name].append(kernel_round(size, args.pings, args.seconds))
            else:
                runs[name].append(simtcp_round(CONFIGS[name], size, args.pings, args.seconds))
    if args.rounds > 0 and len(rows) == 3:
        report({name: best(values) for name, values in runs.items()}, args)
    elif args.rounds > 0:
        print(json.dumps({name: best(values) for name, values in runs.items()}))
    if args.profile is not None:
        profile_runs(args.profile, size, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
