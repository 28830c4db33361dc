#!/usr/bin/env python3
"""Echo goodput and ping RTT: simtcp over TAP next to the kernel over a veth pair.

Run as root from the repository: ``sudo python3 bench/tap_echo.py [--mbytes 32]``.
Everything lives in namespaces made here and removed at the end. Figures only,
no assertions:

- echo goodput (MB/s of payload echoed) of one TCP stream, a kernel client
  (Python sockets) against simtcp's echo on port 80 over a TAP, and against a
  kernel echo server (Python sockets) over a veth pair: the machine's limit;
- CPU seconds per MB for the simtcp process (user + system);
- ping RTT p50/p99 of both;
- the simtcp stream again with the impairment shim at 1% loss.

``--streams N`` echoes N concurrent connections (``--mbytes`` split between
them) in every row and in the profiled run; ``--simtcp-only`` skips the kernel
and lossy rows; ``--rounds 0 --profile FILE`` only profiles.

``--profile [FILE]`` runs the simtcp server under cProfile and prints where its
time went (the top 25 functions by own time, ``bench/_profile.py``, and the
shares per layer). The server runs with TAP offloads
(its default); ``--no-offload`` passes that option on. ``--tcp KEY=VALUE``
(repeatable) changes a ``TcpConfig`` default in the server, e.g.
``--tcp max_stretch_ack=65535`` (the server then starts through this script).
``bench/bench_offload.py`` sets offloads on and off side by side, with 16
streams and the router too.

CPU seconds come from /proc in clock ticks (10 ms): use tens of MB or more.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import re
import secrets
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from _profile import add_profile_option, print_top, profile_path  # noqa: E402

SERVER = REPO / "echo_reply_server.py"
TCP_TOOL = REPO / "tests" / "integration" / "tcp_tool.py"
MB = 1_000_000


def unique(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    from pyroute2 import NetNS, netns

    name = unique("stbench")
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        netns.remove(name)


def nsrun(ns: str, *argv: str, timeout: float = 600) -> str:
    result = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[:3]} failed: {result.stdout}{result.stderr}")
    return result.stdout


def echo_stream(ns: str, host: str, port: int, size: int, streams: int = 1) -> float:
    """Seconds ``streams`` concurrent connections take to echo ``size`` bytes in all (each
    ``size // streams``, verified intact)."""
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
        str(streams),
        "--bytes",
        str(size // streams),
        "--timeout",
        "300",
    )
    summary = json.loads(out.strip().splitlines()[-1])
    if summary["ok"] != streams:
        raise RuntimeError(f"echo failed: {summary}")
    return float(summary["seconds"])


def ping_rtts(ns: str, host: str, count: int) -> list[float]:
    out = nsrun(ns, "ping", "-c", str(count), "-i", "0.005", "-W", "1", host)
    return [float(ms) for ms in re.findall(r"time=([\d.]+) ms", out)]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ready_pid(line: str, default: int) -> int:
    """The pid that parses frames, from the server's ready line (a child when started as root)."""
    match = re.search(r"ready \(pid (\d+)", line)
    return int(match.group(1)) if match else default


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TCP_DEFAULTS_FLAG = "--tap-echo-tcp-defaults="
"""Runs this script as echo_reply_server.py with TcpConfig defaults changed (``--tcp``)."""
TCP_DEFAULTS: dict[str, int] = {}
"""``--tcp KEY=VALUE`` settings: the servers started here get them as TcpConfig defaults."""


class Server:
    """echo_reply_server.py in a namespace, stopped with SIGTERM by PID."""

    def __init__(self, ns: str, *extra: str, profile: str | None = None) -> None:
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        if profile:  # the profile is of the process that parses frames: do not fork
            extra = (*extra, "--keep-root")
        program = [str(SERVER)]
        if TCP_DEFAULTS and SERVER == REPO / "echo_reply_server.py":
            program = [str(Path(__file__).resolve()), TCP_DEFAULTS_FLAG + json.dumps(TCP_DEFAULTS)]
        self.process = subprocess.Popen(
            [
                sys.executable,
                *prefix,
                *program,
                "--netns",
                ns,
                "--tap0",
                unique("sbt0"),
                "--tap1",
                unique("sbt1"),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if "ready" in line:
                self.worker_pid = ready_pid(line, self.process.pid)
                return
        errors = self.process.stderr.read() if self.process.stderr else ""
        raise RuntimeError(f"server failed: {errors}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def bench_simtcp(
    size: int, pings: int, extra: tuple[str, ...] = (), profile: str | None = None, streams: int = 1
) -> dict[str, float]:
    with namespace() as ns:
        server = Server(ns, *extra, profile=profile)
        try:
            nsrun(ns, "ping", "-c", "3", "-i", "0.05", "10.0.0.1")
            rtts = ping_rtts(ns, "10.0.0.1", pings) if pings else []
            cpu_before = cpu_seconds(server.worker_pid)
            seconds = echo_stream(ns, "10.0.0.1", 80, size, streams)
            cpu = cpu_seconds(server.worker_pid) - cpu_before
        finally:
            server.stop()
    result = {"mb_s": size / MB / seconds, "seconds": seconds, "cpu_s_per_mb": cpu / (size / MB)}
    if rtts:
        result |= {
            "ping_p50_ms": percentile(rtts, 0.5),
            "ping_p99_ms": percentile(rtts, 0.99),
            "ping_mean_ms": statistics.fmean(rtts),
        }
    return result


def bench_kernel(size: int, pings: int, streams: int = 1) -> dict[str, float]:
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
        echo = subprocess.Popen(
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
            assert echo.stdout is not None
            echo.stdout.readline()
            rtts = ping_rtts(client_ns, "10.9.0.1", pings)
            seconds = echo_stream(client_ns, "10.9.0.1", 7, size, streams)
        finally:
            echo.terminate()
            echo.wait(10)
    return {
        "mb_s": size / MB / seconds,
        "seconds": seconds,
        "ping_p50_ms": percentile(rtts, 0.5),
        "ping_p99_ms": percentile(rtts, 0.99),
        "ping_mean_ms": statistics.fmean(rtts),
    }


_LAYERS = (
    ("/simtcp/tcp/", "TCP engine (simtcp/tcp)"),
    ("/simtcp/wire/checksum.py", "checksums (wire/checksum.py)"),
    ("/simtcp/wire/", "wire formats (simtcp/wire)"),
    ("/simtcp/stack.py", "stack, ARP, IP, GSO, stats"),
    ("/simtcp/tcpio.py", "stack, ARP, IP, GSO, stats"),
    ("/simtcp/icmp.py", "stack, ARP, IP, GSO, stats"),
    ("/simtcp/udp.py", "stack, ARP, IP, GSO, stats"),
    ("/simtcp/link/", "stack, ARP, IP, GSO, stats"),
    ("/simtcp/ip/", "stack, ARP, IP, GSO, stats"),
    ("/backends/nic.py", "NIC model (backends/nic.py)"),
    ("/simtcp/stats.py", "stack, ARP, IP, GSO, stats"),
    ("/backends/", "TAP loop (backends)"),
    ("/simtcp/apps.py", "echo application"),
    ("/simtcp/", "simtcp, other modules"),
)


def _layer(filename: str, function: str) -> str | None:
    if filename == "~":
        if "posix.write" in function or "writev" in function:
            return "write syscalls"
        if "posix.read" in function:
            return "read syscalls"
        if "poll" in function or "select" in function:
            return None  # waiting, not working
        return "builtins (len, int.from_bytes, join, ...)"
    for fragment, layer in _LAYERS:
        if fragment in filename:
            return layer
    return None  # start-up, imports, pyroute2


def _ours(filename: str) -> bool:
    return "/simtcp/" in filename or "/backends/" in filename


def print_shares(path: str) -> None:
    """Own time per layer, as shares of the busy time: epoll waits, start-up and set-up are
    left out (a builtin counts only for the time simtcp's own functions spent calling it)."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_calls, _primitive, own, _cumulative, callers) in raw.items():
        layer = _layer(filename, function)
        if layer is None:
            continue
        if filename == "~":
            own = sum(timing[2] for caller, timing in callers.items() if _ours(caller[0]))
        totals[layer] = totals.get(layer, 0.0) + own
    busy = sum(totals.values()) or 1.0
    print(f"where the busy time went ({busy:.2f} s under cProfile, by own time):")
    for layer, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {layer:44s} {seconds:6.3f} s  {100 * seconds / busy:5.1f}%")


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    """Best of several rounds, each figure on its own: a busy machine only makes things slower."""
    merged = dict(max(runs, key=lambda run: run["mb_s"]))
    for key in ("cpu_s_per_mb", "ping_p50_ms", "ping_p99_ms", "ping_mean_ms"):
        values = [run[key] for run in runs if key in run]
        if values:
            merged[key] = min(values)
    return merged


def serve_with_tcp_defaults(argv: list[str]) -> int:
    """echo_reply_server.py, with the TcpConfig defaults that ``argv``'s flag names."""
    flag = next(arg for arg in argv if arg.startswith(TCP_DEFAULTS_FLAG))
    argv.remove(flag)
    sys.path.insert(0, str(REPO))
    from simtcp.programs.serve import main as serve_main
    from simtcp.tcp import TcpConfig

    defaults = TcpConfig.__init__.__kwdefaults__
    assert defaults is not None  # keyword-only fields with defaults
    for key, value in json.loads(flag[len(TCP_DEFAULTS_FLAG) :]).items():
        if key not in defaults:
            raise SystemExit(f"TcpConfig has no field {key!r}")
        defaults[key] = value
    sys.argv = [sys.argv[0], *argv]
    return serve_main(prog="echo_reply_server.py")


def tcp_setting(text: str) -> tuple[str, int]:
    key, _, value = text.partition("=")
    return key, int(value)


def main() -> int:
    if any(arg.startswith(TCP_DEFAULTS_FLAG) for arg in sys.argv):
        return serve_with_tcp_defaults(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mbytes", type=float, default=32, help="MB (10^6) echoed per test, split over the streams"
    )
    parser.add_argument(
        "--streams", type=int, default=1, help="concurrent echo connections (the profiled run too)"
    )
    parser.add_argument(
        "--lossy-mbytes", type=float, default=8, help="MB echoed at 1%% loss (0: skip that row)"
    )
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds; the best figure of each kind is printed",
    )
    parser.add_argument(
        "--simtcp-only",
        action="store_true",
        help="skip the kernel rows (and the lossy row): simtcp's clean echo only",
    )
    add_profile_option(parser)  # here: the simtcp server, one extra round, not in the figures
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--no-offload", action="store_true", help="run the simtcp server with --no-offload"
    )
    parser.add_argument(
        "--no-gro",
        action="store_true",
        help="run the simtcp server with --no-gro (with --no-offload: the "
        "plain per-frame path, no software GRO/GSO)",
    )
    parser.add_argument(
        "--tcp",
        metavar="KEY=VALUE",
        type=tcp_setting,
        action="append",
        default=[],
        help="a TcpConfig default for the simtcp server (an "
        "integer field, e.g. max_stretch_ack=65535); repeatable",
    )
    args = parser.parse_args()
    TCP_DEFAULTS.update(args.tcp)
    server_args: tuple[str, ...] = (("--no-offload",) if args.no_offload else ()) + (
        ("--no-gro",) if args.no_gro else ()
    )
    if os.geteuid() != 0:
        print("tap_echo.py: needs root", file=sys.stderr)
        return 2
    size, streams = int(args.mbytes * MB), max(1, args.streams)
    lossy_size = 0 if args.simtcp_only else int(args.lossy_mbytes * MB)
    kernels, simtcps, lossies = [], [], []
    for _ in range(max(0, args.rounds)):
        if not args.simtcp_only:
            kernels.append(bench_kernel(size, args.pings, streams))
        simtcps.append(bench_simtcp(size, args.pings, server_args, streams=streams))
        if lossy_size:
            lossies.append(
                bench_simtcp(lossy_size, 0, ("--loss", "0.01", "--seed", "1", *server_args))
            )
    if simtcps:
        report(args, streams, kernels, simtcps, lossies)
    if args.profile is not None:
        path = profile_path(args.profile, "simtcp server")
        assert path is not None
        bench_simtcp(size, 0, server_args, profile=path, streams=streams)
        time.sleep(0.2)
        print_top(path, f"the simtcp server ({path})", args.top)
        print_shares(path)
    return 0


def report(
    args: argparse.Namespace,
    streams: int,
    kernels: list[dict[str, float]],
    simtcps: list[dict[str, float]],
    lossies: list[dict[str, float]],
) -> None:
    simtcp = best(simtcps)
    print(
        f"{streams} concurrent TCP echo stream(s), {args.mbytes:g} MB in all (Python "
        f"kernel-socket client), ping x{args.pings}, best of {len(simtcps)} rounds"
    )
    if kernels:
        kernel = best(kernels)
        print(
            f"  kernel over veth : {kernel['mb_s']:8.1f} MB/s   ping p50 "
            f"{kernel['ping_p50_ms']:.3f} ms  p99 {kernel['ping_p99_ms']:.3f} ms"
        )
    ping = (
        f"   ping p50 {simtcp['ping_p50_ms']:.3f} ms  p99 {simtcp['ping_p99_ms']:.3f} ms"
        if "ping_p50_ms" in simtcp
        else ""
    )
    print(
        f"  simtcp over TAP  : {simtcp['mb_s']:8.1f} MB/s{ping}   "
        f"{simtcp['cpu_s_per_mb']:.4f} CPU s/MB"
    )
    if lossies:
        lossy = best(lossies)
        print(
            f"  simtcp, 1% loss  : {lossy['mb_s']:8.1f} MB/s   ({args.lossy_mbytes:g} MB, "
            f"{lossy['cpu_s_per_mb']:.4f} CPU s/MB)"
        )
    print(
        "  all rounds: simtcp MB/s "
        + " ".join(f"{r['mb_s']:.1f}" for r in simtcps)
        + " | CPU s/MB "
        + " ".join(f"{r['cpu_s_per_mb']:.4f}" for r in simtcps)
        + (" | kernel MB/s " + " ".join(f"{r['mb_s']:.1f}" for r in kernels) if kernels else "")
        + (" | 1% loss MB/s " + " ".join(f"{r['mb_s']:.1f}" for r in lossies) if lossies else "")
    )
    print(
        json.dumps(
            {
                "kernel": best(kernels) if kernels else None,
                "simtcp": simtcp,
                "simtcp_loss_1pct": best(lossies) if lossies else None,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
