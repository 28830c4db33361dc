"""Keep-alive HTTP/1.1 and bulk goodput: asyncio on simtcp over TAP vs asyncio on the kernel.

    sudo python3 bench/bench_aio_http.py [--clients 50] [--seconds 5] [--megabytes 50]

One run, side by side, same machine:

- requests/s: a plain ``asyncio.Protocol`` HTTP/1.1 server (keep-alive, 2-write
  responses) served by (a) simtcp over a TAP device, with 50 concurrent
  keep-alive asyncio clients run by the kernel in a fresh namespace, and (b)
  asyncio on the kernel over loopback with the same client program;
- goodput: one ``asyncio.Protocol`` stream receiving ``--megabytes`` on each;
- CPU s per simulated MB of the virtual-time aiohttp exchange (20 MB up and down,
  2,000 requests, over 5% loss + reorder).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from typing import Any

from _profile import add_profile_option, start_profiling

CLIENT = r"""
import asyncio, sys, time
host, port, clients, seconds, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    float(sys.argv[4]), sys.argv[5]
async def one(deadline):
    reader, writer = await asyncio.open_connection(host, port)
    count = 0
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    while time.monotonic() < deadline:
        writer.write(request)
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(12)
        count += 1
    writer.close()
    return count
async def bulk():
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"BULK")
    total = 0
    start = time.monotonic()
    while data := await reader.read(1 << 20):
        total += len(data)
    return total / (time.monotonic() - start)
async def main():
    if mode == "bulk":
        print(await bulk())
        return
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(one(deadline) for _ in range(clients)))
    print(sum(counts) / seconds)
asyncio.run(main())
"""

RESPONSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n"


class HttpServer(asyncio.Protocol):
    """Keep-alive responder: headers and body as two writes, as frameworks do."""

    megabytes = 50

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.buffer.startswith(b"BULK"):
            self.buffer = b""
            asyncio.ensure_future(self.bulk())
            return
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            self.buffer = self.buffer[end + 4 :]
            self.transport.write(RESPONSE_HEAD)
            self.transport.write(b"hello world\n")

    async def bulk(self) -> None:
        block = b"x" * 65536
        self.paused = asyncio.get_running_loop().create_future()
        self.paused.set_result(None)
        for _ in range(self.megabytes * 16):
            await self.paused
            self.transport.write(block)
        self.transport.close()

    def pause_writing(self) -> None:
        self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self.paused.set_result(None)


async def client_run(prefix: list[str], host: str, args: argparse.Namespace, mode: str) -> float:
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-c",
        CLIENT,
        host,
        "8080",
        str(args.clients),
        str(args.seconds),
        mode,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    return float(out)


async def serve_and_measure(
    prefix: list[str], host: str, args: argparse.Namespace
) -> tuple[float, float]:
    server = await asyncio.get_running_loop().create_server(HttpServer, "0.0.0.0", 8080)
    try:
        rps = await client_run(prefix, host, args, "rps")
        goodput = await client_run(prefix, host, args, "bulk")
    finally:
        server.close()
    return rps, goodput


def simtcp_over_tap(args: argparse.Namespace) -> tuple[float, float]:
    from simtcp import Stack, StackConfig
    from simtcp.backends.aio_tap import TapNetwork
    from simtcp.backends.tap import TapDevice, stack_mac

    netns = f"simtcp-bench-{time.monotonic_ns() % 100000}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    device = TapDevice.create(
        "sbench0", interface="eth0", namespace=netns, kernel_address="10.9.0.2/24"
    )
    try:
        stack = Stack(StackConfig(seed=1))
        stack.add_interface("eth0", mac=stack_mac(1, "eth0"))
        stack.add_address("eth0", "10.9.0.1/24")
        net = TapNetwork()
        net.add_host("server", stack, [device], ["10.9.0.1"])
        return net.run(serve_and_measure(["ip", "netns", "exec", netns], "10.9.0.1", args))
    finally:
        device.close()
        subprocess.run(["ip", "netns", "del", netns], check=False)


def virtual_time_cost() -> float:
    sys.path.insert(0, "tests/unit")
    import test_aio_libraries as lib  # the test's own exchange

    started = time.process_time()
    lib.run_http(7, 2_000, 20 * lib.MB)
    return (time.process_time() - started) / 40  # 20 MB up + 20 MB down


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--megabytes", type=int, default=50)
    add_profile_option(parser)
    args = parser.parse_args()
    start_profiling(args.profile, "bench_aio_http")
    HttpServer.megabytes = args.megabytes
    kernel = asyncio.run(serve_and_measure([], "127.0.0.1", args))
    simtcp = simtcp_over_tap(args)
    print(
        f"keep-alive HTTP/1.1, {args.clients} clients: kernel asyncio {kernel[0]:,.0f} req/s, "
        f"simtcp over TAP {simtcp[0]:,.0f} req/s ({100 * simtcp[0] / kernel[0]:.0f}%)"
    )
    print(
        f"one Protocol stream: kernel {kernel[1] / 1e6:,.1f} MB/s, "
        f"simtcp over TAP {simtcp[1] / 1e6:,.1f} MB/s"
    )
    print(f"virtual-time aiohttp test: {virtual_time_cost():.3f} CPU s per simulated MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
