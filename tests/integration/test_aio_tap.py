"""asyncio streams over a real TAP device, with the Linux kernel as the peer.

The stack runs inside the test process, driven by an ordinary asyncio loop
(``simtcp.backends.aio_tap.over_tap``: ``loop.add_reader`` on the TAP fd). The kernel side
of the TAP lives in a fresh network namespace (10.0.0.2/24; the stack is
10.0.0.1/24); kernel clients and servers run there as subprocesses, started
with ``asyncio.create_subprocess_exec`` so the loop keeps serving while they
run. The device is removed, and checked gone, even when a test fails.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .conftest import TCP_TOOL, link_exists, unique_name

pytestmark = pytest.mark.timeout(120)

STACK = "10.0.0.1"
KERNEL = "10.0.0.2"


class Tap:
    def __init__(self, device: Any, netns: str) -> None:
        self.device = device
        self.netns = netns


@pytest.fixture
def tap(make_netns: Callable[[], str]) -> Iterator[Tap]:
    """One TAP device, its kernel side 10.0.0.2/24 in a fresh namespace; removed at the end."""
    from simtcp.backends.tap import TapDevice

    netns = make_netns()
    name = unique_name("aio")
    device = TapDevice.create(
        name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24"
    )
    try:
        yield Tap(device, netns)
    finally:
        device.close()
        assert not link_exists(name, netns), f"device {name} left behind"


def make_net(tap: Tap) -> Any:
    from simtcp import Stack, StackConfig
    from simtcp.backends.aio_tap import over_tap
    from simtcp.backends.tap import stack_mac

    stack = Stack(StackConfig(seed=7))
    stack.add_interface("eth0", mac=stack_mac(7, "eth0"))
    net = over_tap(stack, [tap.device])
    stack.add_address("eth0", f"{STACK}/24", now=net.now())
    net.schedule_flush()
    return net


async def in_netns(netns: str, *argv: str, timeout: float = 60) -> tuple[int, str, str]:
    """Run a command in the namespace without blocking the loop; (returncode, out, err)."""
    process = await asyncio.create_subprocess_exec(
        "ip",
        "netns",
        "exec",
        netns,
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
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def check_timer(net: Any) -> None:
    assert net.timer_deadline == net.stack.poll_at()
    handle = net.timer_handle
    assert (handle is None) == (net.timer_deadline is None)


async def echo(reader: Any, writer: Any) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_asyncio_server_echoes_concurrent_kernel_clients(tap: Tap) -> None:
    async def main() -> dict[str, Any]:
        net = make_net(tap)
        try:
            async with await net.start_server(echo, STACK, 7):
                code, out, err = await in_netns(
                    tap.netns,
                    sys.executable,
                    str(TCP_TOOL),
                    "clients",
                    "--host",
                    STACK,
                    "--port",
                    "7",
                    "--count",
                    "8",
                    "--bytes",
                    str(256 * 1024),
                    "--timeout",
                    "40",
                    timeout=90,
                )
                assert out.strip(), f"no summary (exit {code}): {err}"
                summary: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
            check_timer(net)
            return summary
        finally:
            net.close()

    summary = asyncio.run(main())
    assert summary["ok"] == 8, summary


def test_asyncio_client_talks_to_a_kernel_server(tap: Tap) -> None:
    async def main() -> None:
        server = await asyncio.create_subprocess_exec(
            "ip",
            "netns",
            "exec",
            tap.netns,
            sys.executable,
            str(TCP_TOOL),
            "serve",
            "--port",
            "7007",
            stdout=asyncio.subprocess.PIPE,
        )
        net = make_net(tap)
        try:
            assert server.stdout is not None
            assert b"listening" in await asyncio.wait_for(server.stdout.readline(), 15)
            reader, writer = await net.open_connection(KERNEL, 7007)
            assert writer.get_extra_info("peername") == (KERNEL, 7007)
            payload = bytes(range(251)) * 4000  # about 1 MB

            async def send() -> None:
                for offset in range(0, len(payload), 32768):
                    writer.write(payload[offset : offset + 32768])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            echoed = await asyncio.wait_for(reader.read(), 30)
            await sender
            assert echoed == payload
            writer.close()
            await writer.wait_closed()
            with pytest.raises(ConnectionRefusedError):  # the kernel answers RST
                await asyncio.wait_for(net.open_connection(KERNEL, 7008), 10)
            check_timer(net)
        finally:
            net.close()
            server.kill()  # our own child, by its PID
            await server.wait()

    asyncio.run(main())


UDP_CLIENT = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(5)
for word in ("one", "two", "three"):
    sock.sendto(word.encode(), ("10.0.0.1", 5353))
    data, addr = sock.recvfrom(2048)
    print(data.decode(), addr[0], addr[1])
"""


def test_datagram_endpoint_answers_a_kernel_udp_client(tap: Tap) -> None:
    class Upper(asyncio.DatagramProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            self.transport.sendto(data.upper(), addr)

    async def main() -> str:
        net = make_net(tap)
        try:
            transport, _ = await net.create_datagram_endpoint(Upper, local_addr=(STACK, 5353))
            code, out, err = await in_netns(tap.netns, sys.executable, "-c", UDP_CLIENT)
            assert code == 0, err
            transport.close()
            return out
        finally:
            net.close()

    out = asyncio.run(main())
    assert out.splitlines() == ["ONE 10.0.0.1 5353", "TWO 10.0.0.1 5353", "THREE 10.0.0.1 5353"]
