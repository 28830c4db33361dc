"""An unmodified aiohttp server and client over a 5% loss link, in virtual time (no root).

python3 examples/aiohttp_sim.py [--requests 200] [--loss 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys
import time

from aiohttp import ClientSession, web

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.sim import LinkProfile


async def hello(request: web.Request) -> web.Response:
    return web.Response(text=f"hello {request.match_info['name']}")


async def main(net: SimNetwork, requests: int) -> int:
    with net.host("server"):  # this code, and the tasks it starts, run on host "server"
        runner = web.AppRunner(web.Application())
        runner.app.router.add_get("/hello/{name}", hello)
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", 8080).start()
    with net.host("client"):
        async with ClientSession() as session:
            ok = 0
            for index in range(requests):
                async with session.get(f"http://server:8080/hello/{index}") as response:
                    ok += await response.text() == f"hello {index}"
    await runner.cleanup()
    return ok


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    net = SimNetwork(seed=args.seed)
    net.add_host("server", profile=LinkProfile(delay=2_000, loss=args.loss))
    net.add_host("client", profile=LinkProfile(delay=2_000, loss=args.loss))
    started = time.monotonic()
    ok = net.run(main(net, args.requests))
    print(
        f"{ok}/{args.requests} answers intact; {net.simulator.now / 1e6:.3f} s of virtual time "
        f"in {time.monotonic() - started:.2f} s (seed {args.seed})"
    )
    return 0 if ok == args.requests else 1


if __name__ == "__main__":
    sys.exit(run())
