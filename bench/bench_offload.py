#!/usr/bin/env python3
"""TAP offloads, measured: simtcp echo over TAP with offloads on and off, next to the kernel.

Run as root from the repository: ``sudo python3 bench/bench_offload.py [--mbytes 32]``.
Everything lives in namespaces made here and removed at the end. Figures only,
no assertions. In one run, best of ``--rounds`` interleaved rounds:

- echo goodput (MB/s of payload echoed, all streams together) for 1 stream of
  ``--mbytes`` and for 16 concurrent streams of ``--mbytes / 16`` each, with the
  same Python kernel-socket client (``tests/integration/tcp_tool.py``) against:
  simtcp's echo over a TAP with offloads (virtio-net header, checksum offload,
  TSO/GSO), simtcp with ``--no-offload``, and a kernel echo server over a veth
  pair (the machine's limit);
- CPU seconds per MB echoed for the simtcp process (user + system);
- ping RTT p50/p99 of each;
- how many of the frames simtcp read were GSO super-segments, and how many it wrote;
- simtcp as a router between two kernel hosts (A behind the first TAP echoing
  through simtcp with a kernel echo server on B behind the second): offloads on
  both TAPs (64 KiB segments forwarded whole), on the first only (simtcp cuts
  the kernel's GSO super-segments in software for B), and off;
- the simulator's CPU cost per simulated MB over a plain link, an offloading link
  (GSO at the sender's NIC, GRO at the receiver's), and an offloading link whose
  stacks also leave checksums to it.

``--profile [FILE]`` then runs simtcp once more with offloads and once without, each
server under cProfile, and prints the top 25 functions by own time of each.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, print_top, profile_path  # noqa: E402
from tap_echo import (  # noqa: E402
    MB,
    TCP_TOOL,
    Server,
    cpu_seconds,
    namespace,
    nsrun,
    percentile,
    ping_rtts,
    ready_pid,
    unique,
)

STREAMS = (1, 16)


def echo(ns: str, host: str, port: int, count: int, size: int) -> float:
    """Seconds ``count`` concurrent connections take to echo ``size`` bytes each, intact."""
    out = nsrun(
        ns,
        sys.executable,
        str(TCP_TOOL),
        "clients",
        "--host",
        host,
        "--port",
        str(port),
        "--count",
        str(count),
        "--bytes",
        str(size),
        "--timeout",
        "300",
    )
    summary = json.loads(out.strip().splitlines()[-1])
    if summary["ok"] != count:
        raise RuntimeError(f"echo failed: {summary}")
    return float(summary["seconds"])


def bench_simtcp(
    total: int, pings: int, *extra: str, profile: str | None = None
) -> dict[str, float]:
    result: dict[str, float] = {}
    with namespace() as ns:
        server = Server(ns, *extra, profile=profile)
        try:
            nsrun(ns, "ping", "-c", "3", "-i", "0.05", "10.0.0.1")
            if pings:
                rtts = ping_rtts(ns, "10.0.0.1", pings)
                result |= {
                    "ping_p50_ms": percentile(rtts, 0.5),
                    "ping_p99_ms": percentile(rtts, 0.99),
                }
            for count in STREAMS:
                cpu_before = cpu_seconds(server.worker_pid)
                seconds = echo(ns, "10.0.0.1", 80, count, total // count)
                cpu = cpu_seconds(server.worker_pid) - cpu_before
                result[f"mb_s_{count}"] = total / MB / seconds
                result[f"cpu_s_per_mb_{count}"] = cpu / (total / MB)
        finally:
            server.stop()
        assert server.process.stdout is not None
        stopped = server.process.stdout.read()
    match = re.search(r"(\d+) frames in \((\d+) GSO\), (\d+) frames out \((\d+) GSO\)", stopped)
    if match:
        frames_in, gso_in, frames_out, gso_out = map(int, match.groups())
        result |= {
            "frames_in": frames_in,
            "gso_in": gso_in,
            "frames_out": frames_out,
            "gso_out": gso_out,
        }
    return result


def bench_router(total: int, *extra: str) -> dict[str, float]:
    """A (first TAP's namespace) echoes ``total`` bytes off B (second TAP's) through simtcp."""
    from pyroute2 import NetNS

    with namespace() as ns0, namespace() as ns1:
        tap0, tap1 = unique("sbr0"), unique("sbr1")
        server = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "echo_reply_server.py"),
                "--netns",
                ns0,
                "--netns1",
                ns1,
                "--tap0",
                tap0,
                "--tap1",
                tap1,
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        echo_server = None
        try:
            assert server.stdout is not None
            worker = server.pid
            for line in server.stdout:
                if "ready" in line:
                    worker = ready_pid(line, server.pid)
                    break
            with NetNS(ns1) as ipr:
                index = ipr.link_lookup(ifname=tap1)[0]
                ipr.addr("add", index=index, address="10.1.1.2", prefixlen=24)
                ipr.link("set", index=index, state="up")
                ipr.route("add", dst="0.0.0.0/0", gateway="10.1.1.1")
            with NetNS(ns0) as ipr:
                ipr.route("add", dst="10.1.1.0/24", gateway="10.0.0.1")
            echo_server = subprocess.Popen(
                [
                    "ip",
                    "netns",
                    "exec",
                    ns1,
                    sys.executable,
                    str(TCP_TOOL),
                    "serve",
                    "--host",
                    "10.1.1.2",
                    "--port",
                    "7",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert echo_server.stdout is not None
            echo_server.stdout.readline()
            nsrun(ns0, "ping", "-c", "3", "-i", "0.05", "10.1.1.2")
            cpu_before = cpu_seconds(worker)
            seconds = echo(ns0, "10.1.1.2", 7, 1, total)
            cpu = cpu_seconds(worker) - cpu_before
        finally:
            if echo_server is not None:
                echo_server.terminate()
                echo_server.wait(10)
            if server.poll() is None:
                os.kill(server.pid, signal.SIGTERM)
            server.wait(30)
    return {"mb_s": total / MB / seconds, "cpu_s_per_mb": cpu / (total / MB)}


def bench_kernel(total: int, pings: int) -> dict[str, float]:
    from pyroute2 import IPRoute, NetNS

    result: dict[str, float] = {}
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
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                server_ns,
                sys.executable,
                str(TCP_TOOL),
                "serve",
                "--host",
                "10.9.0.1",
                "--port",
                "7",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            server.stdout.readline()
            rtts = ping_rtts(client_ns, "10.9.0.1", pings)
            result |= {"ping_p50_ms": percentile(rtts, 0.5), "ping_p99_ms": percentile(rtts, 0.99)}
            for count in STREAMS:
                seconds = echo(client_ns, "10.9.0.1", 7, count, total // count)
                result[f"mb_s_{count}"] = total / MB / seconds
        finally:
            server.terminate()
            server.wait(10)
    return result


def bench_sim(total: int) -> dict[str, float]:
    """CPU seconds per simulated MB: plain link, offloading link, and offloading stacks too."""
    import simtcp.programs.transfer
    from simtcp.backends.impair import LinkProfile
    from simtcp.link import InterfaceOffload
    from simtcp.stack import Stack
    from simtcp.time import MILLISECOND

    class OffloadStack(Stack):
        def add_interface(
            self,
            name: str,
            *,
            mac: str | bytes,
            mtu: int = 1500,
            offload: InterfaceOffload | None = None,
        ) -> None:
            super().add_interface(
                name,
                mac=mac,
                mtu=mtu,
                offload=offload or InterfaceOffload(tx_checksum=True, max_segment=65535 - 120),
            )

    plain = LinkProfile(delay=1 * MILLISECOND)
    offloading = LinkProfile(delay=1 * MILLISECOND, mtu=1500, gso=True, gro=True)
    result = {}
    for label, profile, stack_class in (
        ("plain", plain, Stack),
        ("gso_gro", offloading, Stack),
        ("gso_gro_csum", offloading, OffloadStack),
    ):
        simtcp.programs.transfer.Stack = stack_class  # type: ignore[misc]
        try:
            run = simtcp.programs.transfer.run_transfer(
                simtcp.programs.transfer.TransferSpec(
                    bytes=total, seed=1, forward=profile, backward=profile
                )
            )
        finally:
            simtcp.programs.transfer.Stack = Stack  # type: ignore[misc]
        if not run.ok:
            raise RuntimeError(f"simulated transfer failed: {run.reason}")
        result[f"sim_cpu_s_per_mb_{label}"] = run.cpu_seconds / (total / MB)
        result[f"sim_virtual_s_{label}"] = run.virtual_seconds
    return result


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's best over the rounds: a busy machine only makes things worse."""
    merged: dict[str, float] = {}
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        merged[key] = max(values) if key.startswith("mb_s") else min(values)
    return merged


def row(label: str, figures: dict[str, float]) -> str:
    text = f"  {label:<26}"
    for count in STREAMS:
        plural = "s" if count > 1 else " "
        text += f" {count:>2} stream{plural} {figures[f'mb_s_{count}']:7.1f} MB/s"
        if f"cpu_s_per_mb_{count}" in figures:
            text += f" ({figures[f'cpu_s_per_mb_{count}']:.4f} CPU s/MB)"
        else:
            text += " " * 20
    return text + (
        f"   ping p50 {figures['ping_p50_ms']:.3f} ms p99 {figures['ping_p99_ms']:.3f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mbytes", type=float, default=32, help="MB (10^6) echoed per test, split over the streams"
    )
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sim-mbytes", type=float, default=16)
    add_profile_option(parser)  # here: one more offloaded simtcp run, its server under cProfile
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_offload.py: needs root", file=sys.stderr)
        return 2
    total = int(args.mbytes * MB)
    runs: dict[str, list[dict[str, float]]] = {"kernel": [], "offload": [], "no_offload": []}
    for _ in range(max(1, args.rounds)):
        runs["kernel"].append(bench_kernel(total, args.pings))
        runs["offload"].append(bench_simtcp(total, args.pings))
        runs["no_offload"].append(bench_simtcp(total, args.pings, "--no-offload"))
    figures = {name: best(values) for name, values in runs.items()}
    routers: dict[str, list[dict[str, float]]] = {"both": [], "first_only": [], "off": []}
    for _ in range(max(1, args.rounds)):
        routers["both"].append(bench_router(total))
        routers["first_only"].append(bench_router(total, "--no-offload1"))
        routers["off"].append(bench_router(total, "--no-offload"))
    router = {name: best(values) for name, values in routers.items()}
    sim = bench_sim(int(args.sim_mbytes * MB))
    print(
        f"TCP echo of {args.mbytes:g} MB per test (Python kernel-socket client), "
        f"ping x{args.pings}, best of {args.rounds} rounds"
    )
    print(row("kernel over veth", figures["kernel"]))
    print(row("simtcp TAP, offloads", figures["offload"]))
    print(row("simtcp TAP, --no-offload", figures["no_offload"]))
    on = figures["offload"]
    if "frames_in" in on:
        print(
            f"  offloads: simtcp read {on['frames_in']:.0f} frames ({on['gso_in']:.0f} GSO "
            f"super-segments) and wrote {on['frames_out']:.0f} ({on['gso_out']:.0f} GSO) "
            "in its fewest-frames round"
        )
    print(
        "simtcp as a router, kernel A -> simtcp -> kernel echo on B, 1 stream: "
        + ", ".join(
            f"offloads {label} {router[name]['mb_s']:.1f} MB/s "
            f"({router[name]['cpu_s_per_mb']:.4f} CPU s/MB)"
            for name, label in (
                ("both", "on both TAPs"),
                ("first_only", "on the first only (software GSO)"),
                ("off", "off"),
            )
        )
    )
    print(
        f"simulator, {args.sim_mbytes:g} MB one way over a 1 ms link: CPU s per simulated MB "
        f"plain {sim['sim_cpu_s_per_mb_plain']:.4f}, GSO+GRO link "
        f"{sim['sim_cpu_s_per_mb_gso_gro']:.4f}, GSO+GRO link with checksum-offloading "
        f"stacks {sim['sim_cpu_s_per_mb_gso_gro_csum']:.4f}; virtual seconds "
        f"{sim['sim_virtual_s_plain']:.3f} / {sim['sim_virtual_s_gso_gro']:.3f} / "
        f"{sim['sim_virtual_s_gso_gro_csum']:.3f}"
    )
    print(
        json.dumps(
            {
                "figures": figures,
                "router": router,
                "sim": sim,
                "rounds": {
                    name: [run.get("mb_s_1", 0) for run in values] for name, values in runs.items()
                },
            }
        )
    )
    if args.profile is not None:
        for label, extra in (("offloads", ()), ("no offload", ("--no-offload",))):
            path = profile_path(args.profile, f"simtcp server {label}")
            assert path is not None
            bench_simtcp(total, 0, *extra, profile=path)
            time.sleep(0.2)  # the profiler writes its file as the server exits
            print_top(path, f"the simtcp server, {label}, 1 and 16 streams ({path})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
