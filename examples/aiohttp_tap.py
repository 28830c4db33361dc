"""An unmodified aiohttp server on simtcp over a TAP device, for curl (root).

    sudo python3 examples/aiohttp_tap.py [--seconds 60]
    # in another shell:  sudo ip netns exec simtcp-demo curl http://10.0.0.1:8080/

Creates the namespace simtcp-demo and the device tap-simtcp, its kernel side
10.0.0.2/24 in that namespace (the stack is 10.0.0.1/24), serves for
``--seconds``, then removes both.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys

from aiohttp import web

from simtcp import Stack, StackConfig
from simtcp.backends.aio_tap import TapNetwork
from simtcp.backends.tap import TapDevice, stack_mac

NETNS = "simtcp-demo"


async def hello(request: web.Request) -> web.Response:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return web.Response(text=f"hello {peer} from aiohttp on simtcp\n")


async def serve(seconds: float) -> None:
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", 8080).start()
    print(f"serving: sudo ip netns exec {NETNS} curl http://10.0.0.1:8080/", flush=True)
    await asyncio.sleep(seconds)
    await runner.cleanup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    try:
        subprocess.run(["ip", "netns", "add", NETNS], check=True, capture_output=True)
        device = TapDevice.create(
            "tap-simtcp", interface="eth0", namespace=NETNS, kernel_address="10.0.0.2/24"
        )
    except Exception as error:  # no root, no /dev/net/tun: one line, exit 2
        subprocess.run(["ip", "netns", "del", NETNS], check=False, capture_output=True)
        print(f"aiohttp_tap: cannot create the TAP device: {error}", file=sys.stderr)
        return 2
    try:
        stack = Stack(StackConfig(seed=1))
        stack.add_interface("eth0", mac=stack_mac(1, "eth0"))
        stack.add_address("eth0", "10.0.0.1/24")
        net = TapNetwork()
        net.add_host("web", stack, [device], ["10.0.0.1"])
        net.run(serve(args.seconds))
    finally:
        device.close()
        subprocess.run(["ip", "netns", "del", NETNS], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
