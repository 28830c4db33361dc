"""1,000 concurrent kernel clients against the default listener over TAP (issue 15).

The asyncio echo server (``simtcp.aio`` over a TAP, default backlog 128)
reads each connection only when bytes come; 1,000 kernel clients in the
TAP's namespace connect at once, send 4 KiB and read the echo until the
server's FIN. Every one must get its bytes back: a connection handed to the
application (its ``ConnectionAccepted`` taken) no longer counts against the
backlog, so the listener never stops answering.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import TCP_TOOL, link_exists, unique_name

pytestmark = pytest.mark.timeout(240)

STACK = "10.0.0.1"
KERNEL = "10.0.0.2"
CLIENTS = 1000


async def echo(reader: Any, writer: Any) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


def test_a_thousand_kernel_clients_all_get_in(make_netns: Callable[[], str]) -> None:
    from simtcp import Stack, StackConfig
    from simtcp.backends.aio_tap import over_tap
    from simtcp.backends.tap import TapDevice, stack_mac

    netns = make_netns()
    name = unique_name("acq")
    device = TapDevice.create(
        name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24"
    )
    stack = Stack(StackConfig(seed=7))
    stack.add_interface("eth0", mac=stack_mac(7, "eth0"))

    async def main() -> dict[str, Any]:
        net = over_tap(stack, [device])
        stack.add_address("eth0", f"{STACK}/24", now=net.now())
        net.schedule_flush()
        try:
            async with await net.start_server(echo, STACK, 7):
                process = await asyncio.create_subprocess_exec(
                    "ip",
                    "netns",
                    "exec",
                    netns,
                    sys.executable,
                    str(TCP_TOOL),
                    "clients",
                    "--host",
                    STACK,
                    "--port",
                    "7",
                    "--count",
                    str(CLIENTS),
                    "--bytes",
                    "4096",
                    "--timeout",
                    "60",
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                out, err = await asyncio.wait_for(process.communicate(), 200)
                lines = out.decode().strip().splitlines()
                assert lines, f"no summary (exit {process.returncode}): {err.decode()}"
                summary: dict[str, Any] = json.loads(lines[-1])
                return summary
        finally:
            net.close()

    try:
        summary = asyncio.run(main())
    finally:
        device.close()
    assert not link_exists(name, netns)
    stats = stack.stats()
    print(summary["seconds"], {k: v for k, v in stats.items() if "backlog" in k or "cookie" in k})
    assert summary["ok"] == CLIENTS, summary
