#!/usr/bin/env python3
"""Echo goodput of the asyncio adapter over a TAP, next to the plain backend loop, same run.

Run as root from the repository: ``sudo python3 bench/bench_aio_tap.py [--mbytes 16]``.

Both servers run in this process, one after the other, on a fresh TAP device
whose kernel side (10.0.0.2/24) sits in a namespace made here and removed at
the end; the stack is 10.0.0.1/24 with the same seed and configuration:

- ``plain``: ``simtcp.backends.tap.TapLoop`` (epoll) with ``simtcp.apps.EchoServer``;
- ``asyncio``: ``simtcp.backends.aio_tap.over_tap`` on asyncio's default loop, with an
  ``async def`` handler doing ``read`` / ``write`` / ``drain``.

The kernel client (``tests/integration/tcp_tool.py clients``: Python
sockets) sends N bytes and reads the echo back; goodput is N over the time it
took. The two are interleaved for ``--rounds`` rounds and the medians are
compared: the ratio asyncio/plain is the adapter's cost. CPU seconds of this
process per MB echoed are reported too. Figures only, no assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, start_profiling  # noqa: E402

from simtcp import Stack, StackConfig  # noqa: E402
from simtcp.apps import EchoServer  # noqa: E402
from simtcp.backends import tap  # noqa: E402
from simtcp.backends.aio_tap import over_tap  # noqa: E402

TCP_TOOL = REPO / "tests" / "integration" / "tcp_tool.py"
STACK, KERNEL, PORT = "10.0.0.1", "10.0.0.2", 7
MB = 1_000_000
SEED = 5


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    from pyroute2 import NetNS, netns

    name = f"staio{secrets.token_hex(3)}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        yield name
    finally:
        netns.remove(name)


@contextlib.contextmanager
def device(ns: str) -> Iterator[tap.TapDevice]:
    created = tap.TapDevice.create(
        f"staio{secrets.token_hex(3)}",
        interface="eth0",
        namespace=ns,
        kernel_address=f"{KERNEL}/24",
    )
    try:
        yield created
    finally:
        created.close()


def new_stack() -> Stack:
    stack = Stack(StackConfig(seed=SEED))
    stack.add_interface("eth0", mac=tap.stack_mac(SEED, "eth0"))
    stack.add_address("eth0", f"{STACK}/24", now=tap.monotonic_us())
    return stack


def client_argv(ns: str, size: int, count: int) -> list[str]:
    return [
        "ip",
        "netns",
        "exec",
        ns,
        sys.executable,
        str(TCP_TOOL),
        "clients",
        "--host",
        STACK,
        "--port",
        str(PORT),
        "--count",
        str(count),
        "--bytes",
        str(size),
        "--timeout",
        "300",
    ]


def summary_of(out: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    if summary["ok"] != summary["count"]:
        raise RuntimeError(f"echo failed: {summary}")
    return summary


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_plain(ns: str, size: int, count: int) -> tuple[float, float]:
    """(seconds the clients took, CPU seconds of this process) with TapLoop + EchoServer."""
    with device(ns) as dev:
        stack = new_stack()
        echo = EchoServer(stack, PORT)
        loop = tap.TapLoop(stack, [dev], on_event=echo.handle_event)
        result: dict[str, str] = {}

        def client() -> None:
            try:
                done = subprocess.run(
                    client_argv(ns, size, count), capture_output=True, text=True, timeout=600
                )
                result["out"] = done.stdout + done.stderr
            finally:
                loop.stop()

        watcher = threading.Thread(target=client)
        cpu = cpu_seconds()
        watcher.start()
        try:
            loop.run(handle_signals=False)
        finally:
            watcher.join()
            loop.close()
        cpu = cpu_seconds() - cpu
    return float(summary_of(result["out"])["seconds"]), cpu


async def _aio_echo(reader: Any, writer: Any) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def run_asyncio(ns: str, size: int, count: int) -> tuple[float, float]:
    """(seconds the clients took, CPU seconds of this process) with the asyncio adapter."""

    async def main() -> str:
        net = over_tap(new_stack(), [dev])
        try:
            async with await net.start_server(_aio_echo, STACK, PORT):
                process = await asyncio.create_subprocess_exec(
                    *client_argv(ns, size, count),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                out, _ = await process.communicate()
                return out.decode()
        finally:
            net.close()

    with device(ns) as dev:
        cpu = cpu_seconds()
        out = asyncio.run(main())
        cpu = cpu_seconds() - cpu
    return float(summary_of(out)["seconds"]), cpu


def measure(
    name: str,
    runner: Callable[[str, int, int], tuple[float, float]],
    ns: str,
    size: int,
    count: int,
    rounds: list[dict[str, list[float]]],
) -> None:
    seconds, cpu = runner(ns, size, count)
    total = size * count * 2 / MB  # payload both ways through the stack
    rounds[0].setdefault(name, []).append(size * count / MB / seconds)
    rounds[1].setdefault(name, []).append(cpu / total)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mbytes", type=float, default=16, help="MB per single stream")
    parser.add_argument("--clients", type=int, default=8, help="concurrent streams (case 2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_aio_tap")
    missing = tap.missing_requirement()
    if missing is not None:
        print(f"bench_aio_tap: {missing}", file=sys.stderr)
        return 2
    cases = [
        ("1 stream", int(args.mbytes * MB), 1),
        (f"{args.clients} streams", int(args.mbytes * MB / args.clients), args.clients),
    ]
    report: dict[str, Any] = {}
    with namespace() as ns:
        for label, size, count in cases:
            rounds: list[dict[str, list[float]]] = [{}, {}]
            for _ in range(args.rounds):
                measure("plain", run_plain, ns, size, count, rounds)
                measure("asyncio", run_asyncio, ns, size, count, rounds)
            goodput = {name: statistics.median(values) for name, values in rounds[0].items()}
            cpu = {name: statistics.median(values) for name, values in rounds[1].items()}
            ratio = goodput["asyncio"] / goodput["plain"]
            report[label] = {
                "goodput_mb_s": goodput,
                "cpu_s_per_mb": cpu,
                "ratio": ratio,
                "samples_mb_s": rounds[0],
            }
            print(
                f"{label:>11}: plain {goodput['plain']:6.2f} MB/s "
                f"({cpu['plain'] * 1000:.1f} ms CPU/MB), asyncio {goodput['asyncio']:6.2f} "
                f"MB/s ({cpu['asyncio'] * 1000:.1f} ms CPU/MB): asyncio/plain = {ratio:.2f} "
                f"(median of {args.rounds}, {size * count / MB:.0f} MB echoed each)",
                flush=True,
            )
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"bench_aio_tap: {time.monotonic() - started:.1f} s", file=sys.stderr)
    sys.exit(code)
