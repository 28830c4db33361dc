"""An unmodified websockets echo server and client over a lossy link, in virtual time.

python3 examples/websockets_echo_sim.py [--messages 100] [--loss 0.05] [--seed 1]
"""

from __future__ import annotations

import argparse
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.sim import LinkProfile


async def echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        await websocket.send(message)


async def main(net: SimNetwork, messages: int) -> int:
    with net.host("server"):
        server = await serve(echo, "0.0.0.0", 8765)
    with net.host("client"):
        async with connect("ws://server:8765") as websocket:
            ok = 0
            for index in range(messages):
                await websocket.send(f"message {index}")
                ok += await websocket.recv() == f"message {index}"
    server.close()
    await server.wait_closed()
    return ok


def run() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    net = SimNetwork(seed=args.seed)
    net.add_host("server", profile=LinkProfile(delay=2_000, loss=args.loss))
    net.add_host("client", profile=LinkProfile(delay=2_000, loss=args.loss))
    ok = net.run(main(net, args.messages))
    print(f"{ok}/{args.messages} messages echoed; {net.simulator.now / 1e6:.3f} s virtual")
    return 0 if ok == args.messages else 1


if __name__ == "__main__":
    sys.exit(run())
