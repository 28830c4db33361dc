#!/usr/bin/env python3
"""Routing speed: iperf3 through simtcp's router next to the kernel routing between veths.

Run as root from the repository: ``sudo python3 bench/bench_router.py``.
Everything lives in namespaces made here and removed at the end. Figures only,
no assertions. Host A (one namespace) sends to host B (another) with iperf3:

- through simtcp: ``echo_reply_server.py --netns A --netns1 B`` routes between
  its two TAPs (the seed topology, offloads on unless ``--no-offload``);
- through the kernel: a third namespace R with ``ip_forward=1`` routes the
  same traffic between two veth pairs (A-R, R-B): the machine's limit;
- ``--baseline DIR`` adds simtcp from another checkout (``/work/main``, say)
  to every round, so before and after come from the same run;
- ``--slow`` adds this checkout with ``StackConfig.fast_paths`` off.

Per router, one round gives: TCP goodput (MB/s, one stream, ``--seconds``);
UDP loss at ``--udp-rates`` (1,400-byte datagrams, the receiver's count);
the datagrams/s B received when A offers ``--ceiling-rate`` (the ceiling);
and for simtcp the router's CPU µs per forwarded UDP datagram (its user +
system time over the datagrams that reached B, at the ceiling rate) and its
CPU seconds per GB of TCP forwarded. Figures are the best of
``--rounds`` interleaved rounds (loss and CPU: the lowest).

``--profile`` runs one more simtcp router (this checkout) under cProfile
through a TCP and a ceiling UDP test and prints the top ``--top`` functions
by own time, with the cost per forwarded frame it implies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pstats
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from tap_echo import MB, cpu_seconds, namespace, nsrun, ready_pid, unique  # noqa: E402

SLOW_FLAG = "--bench-router-slow-paths"
"""Runs this script as echo_reply_server.py with ``StackConfig.fast_paths`` off."""
A_ADDRESS = "10.0.0.2"
B_ADDRESS = "10.1.1.2"
DATAGRAM = 1400


# --- iperf3 --------------------------------------------------------------------------


@contextlib.contextmanager
def iperf_server(ns: str, address: str) -> Iterator[None]:
    process = subprocess.Popen(
        ["ip", "netns", "exec", ns, "iperf3", "-s", "-B", address, "-p", "5201"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # until it listens
            probe = subprocess.run(
                ["ip", "netns", "exec", ns, "ss", "-ltn", "sport", "= :5201"],
                capture_output=True,
                text=True,
            )
            if ":5201" in probe.stdout:
                break
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)


def iperf(ns: str, address: str, seconds: float, *udp: str) -> dict[str, Any]:
    out = nsrun(
        ns,
        "iperf3",
        "-c",
        address,
        "-p",
        "5201",
        "-t",
        str(seconds),
        "-J",
        *udp,
        timeout=seconds + 60,
    )
    return dict(json.loads(out))


def tcp_goodput(ns: str, address: str, seconds: float) -> float:
    """MB/s B received from A, one TCP stream."""
    end = iperf(ns, address, seconds)["end"]
    return float(end["sum_received"]["bits_per_second"]) / 8 / MB


def udp_run(ns: str, address: str, seconds: float, rate: str) -> dict[str, float]:
    """Loss %, datagrams/s received and datagrams received for 1,400-byte datagrams at ``rate``."""
    result = iperf(ns, address, seconds, "-u", "-b", rate, "-l", str(DATAGRAM))
    summary = result["end"]["sum"]
    sent = int(summary["packets"])
    lost = int(summary["lost_packets"])
    received = sent - lost
    duration = float(summary["seconds"]) or seconds
    return {
        "loss_pct": 100.0 * lost / sent if sent else 0.0,
        "received_per_s": received / duration,
        "received": float(received),
        "sent_per_s": sent / duration,
    }


def measure(ns_a: str, ns_b: str, args: argparse.Namespace, worker: int | None) -> dict[str, float]:
    """Every figure of one router, A -> B."""
    figures: dict[str, float] = {}
    with iperf_server(ns_b, B_ADDRESS):
        nsrun(ns_a, "ping", "-c", "3", "-i", "0.05", "-W", "2", B_ADDRESS)
        cpu_before = cpu_seconds(worker) if worker else 0.0
        figures["tcp_mb_s"] = tcp_goodput(ns_a, B_ADDRESS, args.seconds)
        if worker:
            cpu = cpu_seconds(worker) - cpu_before
            figures["tcp_cpu_s_per_gb"] = cpu / (figures["tcp_mb_s"] * args.seconds / 1000)
        for rate in args.udp_rates:
            run = udp_run(ns_a, B_ADDRESS, args.seconds, rate)
            figures[f"udp_loss_pct_{rate}"] = run["loss_pct"]
        cpu_before = cpu_seconds(worker) if worker else 0.0
        run = udp_run(ns_a, B_ADDRESS, args.seconds, args.ceiling_rate)
        figures["ceiling_dgrams_s"] = run["received_per_s"]
        figures["offered_dgrams_s"] = run["sent_per_s"]
        if worker and run["received"]:
            cpu = cpu_seconds(worker) - cpu_before
            figures["us_per_dgram"] = 1e6 * cpu / run["received"]
    return figures


# --- the routers -----------------------------------------------------------------------


def kernel_router(args: argparse.Namespace) -> dict[str, float]:
    """A -veth- R -veth- B, R forwarding (ip_forward=1): the same addresses as simtcp's."""
    from pyroute2 import IPRoute, NetNS

    with namespace() as ns_a, namespace() as ns_r, namespace() as ns_b:
        pairs = ((unique("sbka"), unique("sbkr"), ns_a), (unique("sbkb"), unique("sbks"), ns_b))
        with IPRoute() as ipr:
            for host_side, router_side, ns in pairs:
                ipr.link("add", ifname=host_side, kind="veth", peer=router_side)
                ipr.link("set", index=ipr.link_lookup(ifname=host_side)[0], net_ns_fd=ns)
                ipr.link("set", index=ipr.link_lookup(ifname=router_side)[0], net_ns_fd=ns_r)
        links = (
            (ns_a, pairs[0][0], A_ADDRESS, "10.0.0.1"),
            (ns_r, pairs[0][1], "10.0.0.1", None),
            (ns_r, pairs[1][1], "10.1.1.1", None),
            (ns_b, pairs[1][0], B_ADDRESS, "10.1.1.1"),
        )
        for ns, name, address, gateway in links:
            with NetNS(ns) as ipr:
                index = ipr.link_lookup(ifname=name)[0]
                ipr.addr("add", index=index, address=address, prefixlen=24)
                ipr.link("set", index=index, state="up")
                if gateway is not None:
                    ipr.route("add", dst="0.0.0.0/0", gateway=gateway)
        nsrun(ns_r, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        return measure(ns_a, ns_b, args, None)


@contextlib.contextmanager
def simtcp_router(
    checkout: Path, *extra: str, slow: bool = False, profile: str | None = None
) -> Iterator[tuple[str, str, int]]:
    """The seed server from ``checkout`` between A (first TAP) and B (second TAP)."""
    from pyroute2 import NetNS

    with namespace() as ns_a, namespace() as ns_b:
        tap0, tap1 = unique("sbr0"), unique("sbr1")
        program = [str(checkout / "echo_reply_server.py")]
        if slow:
            program = [str(Path(__file__).resolve()), SLOW_FLAG]
        prefix = ["-m", "cProfile", "-o", profile] if profile else []
        if profile:  # profile the process that parses frames: do not fork
            extra = (*extra, "--keep-root")
        environment = dict(os.environ, PYTHONPATH=str(checkout))
        server = subprocess.Popen(
            [sys.executable, *prefix, *program, "--netns", ns_a, "--netns1", ns_b]
            + ["--tap0", tap0, "--tap1", tap1, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=checkout,
            env=environment,
        )
        try:
            assert server.stdout is not None
            worker = 0
            for line in server.stdout:
                if "ready" in line:
                    worker = ready_pid(line, server.pid)
                    break
            if not worker:
                raise RuntimeError(
                    f"server failed: {server.stderr.read() if server.stderr else ''}"
                )
            with NetNS(ns_b) as ipr:
                index = ipr.link_lookup(ifname=tap1)[0]
                ipr.addr("add", index=index, address=B_ADDRESS, prefixlen=24)
                ipr.link("set", index=index, state="up")
                ipr.route("add", dst="0.0.0.0/0", gateway="10.1.1.1")
            with NetNS(ns_a) as ipr:
                ipr.route("add", dst="10.1.1.0/24", gateway="10.0.0.1")
            yield ns_a, ns_b, worker
        finally:
            if server.poll() is None:
                os.kill(server.pid, signal.SIGTERM)
            server.wait(60)


def bench_simtcp(
    checkout: Path, args: argparse.Namespace, *, slow: bool = False
) -> dict[str, float]:
    with simtcp_router(checkout, *args.server_args, slow=slow) as (ns_a, ns_b, worker):
        return measure(ns_a, ns_b, args, worker)


def serve_slow(argv: list[str]) -> int:
    """echo_reply_server.py with ``StackConfig.fast_paths`` off by default."""
    argv.remove(SLOW_FLAG)
    from simtcp.config import StackConfig
    from simtcp.programs.serve import main as serve_main

    defaults = StackConfig.__init__.__kwdefaults__
    assert defaults is not None and "fast_paths" in defaults  # a keyword-only field
    defaults["fast_paths"] = False
    sys.argv = [sys.argv[0], *argv]
    return serve_main(prog="echo_reply_server.py")


# --- profile -----------------------------------------------------------------------------


def profile_router(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = str(Path(directory) / "router.prof")
        router = simtcp_router(REPO, *args.server_args, profile=path)
        with router as (ns_a, ns_b, _), iperf_server(ns_b, B_ADDRESS):
            nsrun(ns_a, "ping", "-c", "3", "-i", "0.05", "-W", "2", B_ADDRESS)
            tcp = tcp_goodput(ns_a, B_ADDRESS, args.seconds)
            udp = udp_run(ns_a, B_ADDRESS, args.seconds, args.ceiling_rate)
        for _ in range(100):
            if os.path.exists(path) and os.path.getsize(path):
                break
            time.sleep(0.1)
        print(
            f"\nprofile (this checkout under cProfile, slower than above): TCP {tcp:.1f} MB/s, "
            f"UDP {udp['received_per_s']:,.0f} datagrams/s received"
        )
        stats = pstats.Stats(path)
        busy = _busy_seconds(stats)
        frames = _frames_in(stats)
        if frames:
            print(
                f"busy {busy:.2f} s (epoll waits left out) over {frames:,} frame reads: "
                f"{1e6 * busy / frames:.2f} µs per frame read, under the profiler"
            )
        stats.sort_stats("tottime").print_stats(args.top)


def _busy_seconds(stats: pstats.Stats) -> float:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = 0.0
    for (filename, _line, function), (
        _calls,
        _primitive,
        own,
        _cumulative,
        _callers,
    ) in raw.items():
        if filename == "~" and ("poll" in function or "select" in function):
            continue
        if filename == "~" or "/simtcp/" in filename or "/backends/" in filename:
            total += own
    return total


def _frames_in(stats: pstats.Stats) -> int:
    """Frames the TAPs gave the stack: calls of ``Stack.receive_frame``."""
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (calls, *_rest) in raw.items():
        if function == "receive_frame" and filename.endswith("stack.py"):
            return int(calls)
    return 0


# --- in-process ----------------------------------------------------------------------------


def in_process(count: int) -> None:
    """µs per forwarded frame inside the stack alone (``receive_frame`` + ``frames_to_send``,
    no syscalls), the one-step path next to the layered one, same frames, same run."""
    import timeit

    from simtcp import Stack
    from simtcp.config import ArpConfig, IpConfig, StackConfig
    from simtcp.link.interface import InterfaceOffload
    from simtcp.wire.arp import OPERATION_REQUEST, ArpPacket
    from simtcp.wire.ethernet import (
        BROADCAST_MAC,
        ETHERTYPE_ARP,
        ETHERTYPE_IPV4,
        ZERO_MAC,
        EthernetFrame,
        build_ethernet_header,
    )
    from simtcp.wire.ipv4 import Ipv4Packet, ip_from_str
    from simtcp.wire.offload import partial_checksum

    macs = [bytes.fromhex(text) for text in ("020000000001", "020000000002", "02000000000a")]
    host_a, host_b = ip_from_str(A_ADDRESS), ip_from_str(B_ADDRESS)
    offload = InterfaceOffload(tx_checksum=True, max_segment=65415)

    def router(fast_paths: bool) -> Stack:
        stack = Stack(
            StackConfig(
                fast_paths=fast_paths,
                arp=ArpConfig(gratuitous_on_add=False),
                ip=IpConfig(forwarding=True),
            )
        )
        for index, name in enumerate(("veth0", "veth1")):
            stack.add_interface(name, mac=macs[index], offload=offload)
            stack.add_address(name, f"10.{index}.{index}.1/24")
        request = ArpPacket(OPERATION_REQUEST, macs[2], host_b, ZERO_MAC, ip_from_str("10.1.1.1"))
        arp = EthernetFrame(BROADCAST_MAC, macs[2], ETHERTYPE_ARP, request.build()).build()
        stack.receive_frame("veth1", arp, now=0)
        stack.frames_to_send(now=0)
        return stack

    def frame(protocol: int, l4_header: bytes, size: int) -> bytes:
        l4 = bytearray(l4_header + bytes(size))
        at = 16 if protocol == 6 else 6
        l4[at : at + 2] = partial_checksum(host_a, host_b, protocol, len(l4)).to_bytes(2, "big")
        datagram = Ipv4Packet(host_a, host_b, protocol, bytes(l4), dont_fragment=True).build()
        # As the TAP loop hands it over: a view of a read, after the virtio-net header.
        raw = bytes(12) + build_ethernet_header(macs[0], macs[2], ETHERTYPE_IPV4) + datagram
        return memoryview(raw)[12:]  # type: ignore[return-value]

    tcp = struct.pack("!HHIIBBHHH", 5201, 40000, 1, 1, 0x80, 0x10, 512, 0, 0) + b"\x01" * 12
    udp = struct.pack("!HHHH", 40000, 5201, 8 + DATAGRAM, 0)
    cases = [
        ("TCP ACK (66-byte frame)", frame(6, tcp, 0), 0),
        (f"UDP, {DATAGRAM}-byte datagram", frame(17, udp, DATAGRAM), 0),
        ("TCP 64 KiB GSO segment", frame(6, tcp[:12] + b"\x50" + tcp[13:20], 65000), 1460),
    ]
    print(f"\nin-process, µs per forwarded frame (receive_frame + frames_to_send), {count:,} each:")
    print(f"{'':34s}{'one-step':>10s}{'layered':>10s}")
    for label, data, gso_size in cases:
        cells = []
        for fast_paths in (True, False):
            stack = router(fast_paths)

            def forward(stack: Stack = stack, data: Any = data, gso_size: int = gso_size) -> None:
                stack.receive_frame("veth0", data, now=1, checksum_verified=True, gso_size=gso_size)
                stack.frames_to_send(now=1)

            forward()
            assert stack.stats()["ip.forwarded"] == 1, label
            cells.append(min(timeit.repeat(forward, number=count, repeat=3)) / count * 1e6)
        print(f"{label:34s}{cells[0]:10.2f}{cells[1]:10.2f}")


# --- report --------------------------------------------------------------------------------


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for key in runs[0]:
        values = [run[key] for run in runs if key in run]
        low = key.startswith(("udp_loss", "us_per", "tcp_cpu"))
        merged[key] = min(values) if low else max(values)
    return merged


def report(args: argparse.Namespace, results: dict[str, dict[str, float]]) -> None:
    kernel = results["kernel router"]
    columns = list(results)
    width = max(len(name) for name in columns) + 2
    keys = [
        ("tcp_mb_s", "TCP goodput, 1 stream (MB/s)", "{:,.1f}"),
        ("tcp_cpu_s_per_gb", "  router CPU s per GB forwarded", "{:.2f}"),
        *[
            (f"udp_loss_pct_{rate}", f"UDP loss at {rate}bit/s (%)", "{:.3f}")
            for rate in args.udp_rates
        ],
        ("ceiling_dgrams_s", f"UDP datagrams/s received at {args.ceiling_rate}bit/s", "{:,.0f}"),
        ("offered_dgrams_s", "  (datagrams/s A offered)", "{:,.0f}"),
        ("us_per_dgram", "router CPU µs per forwarded datagram", "{:.2f}"),
    ]
    print(f"\nbest of {args.rounds} round(s), {args.seconds} s per test, A -> router -> B")
    print(f"{'':44s}" + "".join(f"{name:>{width}s}" for name in columns))
    for key, label, fmt in keys:
        cells = []
        for name in columns:
            value = results[name].get(key)
            cells.append(f"{fmt.format(value) if value is not None else '-':>{width}s}")
        print(f"{label:44s}" + "".join(cells))
    for name in columns:
        if name != "kernel router" and kernel.get("tcp_mb_s"):
            share = 100 * results[name]["tcp_mb_s"] / kernel["tcp_mb_s"]
            print(f"{name}: TCP at {share:.0f}% of the kernel router")
    print(json.dumps(results))


def main() -> int:
    if SLOW_FLAG in sys.argv:
        return serve_slow(sys.argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per iperf3 test")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--udp-rates", nargs="+", default=["200M", "800M"])
    parser.add_argument("--ceiling-rate", default="1500M")
    parser.add_argument("--baseline", metavar="DIR", type=Path, help="another checkout to compare")
    parser.add_argument("--slow", action="store_true", help="also this checkout, fast paths off")
    parser.add_argument(
        "--no-offload", action="store_true", help="the simtcp TAPs without offloads"
    )
    parser.add_argument("--no-kernel", action="store_true", help="skip the kernel router")
    parser.add_argument("--profile", action="store_true", help="cProfile one more simtcp run")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--in-process",
        type=int,
        metavar="N",
        default=0,
        help="only time N forwarded frames of each kind inside the stack (no root, no TAPs)",
    )
    args = parser.parse_args()
    args.server_args = ("--no-offload",) if args.no_offload else ()
    if args.in_process:
        in_process(args.in_process)
        return 0
    if os.geteuid() != 0:
        print("bench_router.py: needs root", file=sys.stderr)
        return 2
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(max(0, args.rounds)):
        if not args.no_kernel:
            runs.setdefault("kernel router", []).append(kernel_router(args))
        if args.baseline is not None:
            runs.setdefault("baseline", []).append(bench_simtcp(args.baseline.resolve(), args))
        runs.setdefault("simtcp", []).append(bench_simtcp(REPO, args))
        if args.slow:
            runs.setdefault("simtcp slow", []).append(bench_simtcp(REPO, args, slow=True))
    if runs:
        results = {name: best(values) for name, values in runs.items()}
        if "kernel router" not in results:
            results = {"kernel router": {}, **results}
        report(args, results)
    if args.profile:
        profile_router(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
