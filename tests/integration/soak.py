"""A soak of many short connections over a real TAP device (issue 15, flat memory).

An asyncio server on ``simtcp.aio`` over a TAP answers each connection's
request with a short response and then closes first (the HTTP/1.0 way) or
waits for the client to close; kernel clients in the TAP's namespace
(``tcp_tool.py short``) make the connections. :func:`run_soak` returns what
the integration test asserts on and what ``bench/bench_tap_soak.py`` prints:
live ``Connection`` objects (every object the garbage collector tracks, so a
reference cycle counts as alive until collected), the stack's connection
count, and the process RSS at the start, after the run and after TIME-WAIT.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from .conftest import TCP_TOOL, unique_name

STACK = "10.0.0.1"
KERNEL = "10.0.0.2"
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200


def connection_objects() -> int:
    """``Connection`` objects the collector tracks: live ones and uncollected cycles."""
    from simtcp.tcp.connection import Connection

    return sum(1 for item in gc.get_objects() if type(item) is Connection)


def rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@dataclass
class SoakRound:
    """One round of connections and what was left after it."""

    client: dict[str, Any]
    rss_after_kib: int
    rss_after_time_wait_kib: int
    objects_after: int
    live_after: int
    objects_after_time_wait: int
    live_after_time_wait: int


@dataclass
class SoakResult:
    rss_start_kib: int
    rounds: list[SoakRound] = field(default_factory=list)


async def _run_tool(netns: str, *argv: str, timeout: float) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        netns,
        sys.executable,
        str(TCP_TOOL),
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except BaseException:
        process.kill()  # our own child, by its PID
        await process.wait()
        raise
    lines = out.decode().strip().splitlines()
    assert lines, f"no summary (exit {process.returncode}): {err.decode()}"
    result: dict[str, Any] = json.loads(lines[-1])
    return result


async def _set_sysctl(netns: str, name: str, value: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, "sysctl", "-qw", f"{name}={value}"
    )
    await process.wait()


async def _after_round(stack: Any, client: dict[str, Any], msl_s: float) -> SoakRound:
    """What a round left: right after it, and once its TIME-WAITs are over."""
    await asyncio.sleep(0.5)
    objects_after = connection_objects()
    live_after = stack.tcp.connection_count()
    rss_after = rss_kib()
    await asyncio.sleep(2 * msl_s + 1)
    return SoakRound(
        client=client,
        rss_after_kib=rss_after,
        rss_after_time_wait_kib=rss_kib(),
        objects_after=objects_after,
        live_after=live_after,
        objects_after_time_wait=connection_objects(),
        live_after_time_wait=stack.tcp.connection_count(),
    )


def _handler(*, client_closes: bool) -> Any:
    """The server's per-connection handler: request, response, then who closes."""

    async def handle(reader: Any, writer: Any) -> None:
        await reader.read(65536)
        writer.write(RESPONSE)
        if client_closes:
            while await reader.read(65536):
                pass
        writer.close()
        await writer.wait_closed()

    return handle


def run_soak(
    netns: str,
    *,
    count: int,
    client_closes: bool,
    rounds: int = 2,
    warmup: int = 500,
    workers: int = 4,
    block: int = 1000,
    msl_s: float = 1.0,
    timeout: float = 600,
) -> SoakResult:
    """Serve ``warmup``, then ``rounds`` times ``count`` short connections from kernel
    clients in ``netns``, waiting out TIME-WAIT after each."""
    from simtcp import Stack, StackConfig
    from simtcp.backends.aio_tap import over_tap
    from simtcp.backends.tap import TapDevice, stack_mac
    from simtcp.tcp import TcpConfig
    from simtcp.time import SECOND

    name = unique_name("soak")
    device = TapDevice.create(
        name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24"
    )
    tcp = TcpConfig(msl=int(msl_s * SECOND))
    stack = Stack(StackConfig(seed=7, tcp=tcp))
    stack.add_interface("eth0", mac=stack_mac(7, "eth0"))

    handle = _handler(client_closes=client_closes)

    async def main() -> SoakResult:
        net = over_tap(stack, [device])
        stack.add_address("eth0", f"{STACK}/24", now=net.now())
        net.schedule_flush()
        # The kernel client reuses its ports within TIME-WAIT (RFC 6191 on its side).
        await _set_sysctl(netns, "net.ipv4.tcp_tw_reuse", "1")
        await _set_sysctl(netns, "net.ipv4.ip_local_port_range", "1024 65000")
        tool = ["short", "--host", STACK, "--port", "80", "--bytes", str(len(RESPONSE))]
        tool += ["--workers", str(workers), "--block", str(block)]
        tool += ["--client-closes"] if client_closes else []
        try:
            async with await net.start_server(handle, STACK, 80):
                await _run_tool(netns, *tool, "--count", str(warmup), timeout=timeout)
                await asyncio.sleep(2 * msl_s + 1)
                gc.collect()
                result = SoakResult(rss_start_kib=rss_kib())
                for _ in range(rounds):
                    command = [*tool, "--count", str(count)]
                    client = await _run_tool(netns, *command, timeout=timeout)
                    result.rounds.append(await _after_round(stack, client, msl_s))
                return result
        finally:
            net.close()

    try:
        return asyncio.run(main())
    finally:
        device.close()
