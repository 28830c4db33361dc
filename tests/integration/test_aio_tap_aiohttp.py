"""An unmodified aiohttp server on simtcp over a real TAP; curl and kernel Python as clients.

The stack (10.0.0.1/24) is a :class:`simtcp.backends.aio_tap.TapNetwork` host
driven by a real-time asyncio loop in this process; the kernel side of the TAP
(10.0.0.2/24) is in a fresh namespace where curl and ``python3 -c urllib...``
run as subprocesses.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import sys
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp.web as aiohttp_web
import pytest

from .conftest import link_exists, unique_name

pytestmark = pytest.mark.timeout(120)


STACK, KERNEL = "10.0.0.1", "10.0.0.2"
BODY = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def device(make_netns: Callable[[], str]) -> Iterator[tuple[Any, str]]:
    from simtcp.backends.tap import TapDevice

    netns = make_netns()
    name = unique_name("aioh")
    tap = TapDevice.create(name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24")
    try:
        yield tap, netns
    finally:
        tap.close()
        assert not link_exists(name, netns), f"device {name} left behind"


async def in_netns(netns: str, *argv: str) -> tuple[int, bytes]:
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
        out, _ = await asyncio.wait_for(process.communicate(), 60)
    except BaseException:
        process.kill()  # our own child, by its PID
        await process.wait()
        raise
    return process.returncode or 0, out


def test_curl_and_kernel_python_against_unmodified_aiohttp_on_simtcp(
    device: tuple[Any, str],
) -> None:
    from simtcp import Stack, StackConfig
    from simtcp.backends.aio_tap import TapNetwork
    from simtcp.backends.tap import stack_mac

    tap, netns = device
    stack = Stack(StackConfig(seed=3))
    stack.add_interface("eth0", mac=stack_mac(3, "eth0"))
    stack.add_address("eth0", f"{STACK}/24")
    net = TapNetwork()
    net.add_host("web", stack, [tap], [STACK])

    async def hello(request: Any) -> Any:
        return aiohttp_web.Response(text="hello from simtcp\n")

    async def blob(request: Any) -> Any:
        return aiohttp_web.Response(body=BODY)

    async def main() -> list[Any]:
        app = aiohttp_web.Application()
        app.router.add_get("/", hello)
        app.router.add_get("/blob", blob)
        runner = aiohttp_web.AppRunner(app)
        await runner.setup()
        await aiohttp_web.TCPSite(runner, "0.0.0.0", 8080).start()
        results: list[Any] = []
        try:
            if shutil.which("curl"):
                results.append(await in_netns(netns, "curl", "-sS", f"http://{STACK}:8080/"))
                code, out = await in_netns(netns, "curl", "-sS", f"http://{STACK}:8080/blob")
                results.append((code, hashlib.sha256(out).hexdigest()))
            script = (
                "import urllib.request,hashlib,sys;"
                f"b=urllib.request.urlopen('http://{STACK}:8080/blob').read();"
                "sys.stdout.write(hashlib.sha256(b).hexdigest())"
            )
            code, out = await in_netns(netns, sys.executable, "-c", script)
            results.append((code, out.decode()))
        finally:
            await runner.cleanup()
        return results

    results = net.run(main())
    digest = hashlib.sha256(BODY).hexdigest()
    assert results[-1] == (0, digest)
    if len(results) == 3:
        assert results[0] == (0, b"hello from simtcp\n")
        assert results[1] == (0, digest)
