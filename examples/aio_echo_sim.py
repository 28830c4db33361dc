"""The same asyncio echo server, over the simulator in virtual time (no root, no waiting).

    python3 examples/aio_echo_sim.py [--clients 4] [--bytes 200000] [--loss 0.05] [--seed 1]

Two stacks on one simulated link (2 ms each way, with the loss, reordering
and duplication asked for); the server runs ``echo`` exactly as
aio_echo_server.py does, and asyncio clients send seeded random bytes and
check the echo. The asyncio loop is a :class:`simtcp.backends.aio_sim.VirtualTimeLoop`:
``loop.time()`` is the simulator's clock, and where asyncio would sleep the
clock jumps to the next frame or timer. The same seed replays the same run,
which is what makes an asyncio program property-testable.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

from simtcp import Stack, StackConfig
from simtcp.aio import AioStack, StreamReader, StreamWriter
from simtcp.backends.aio_sim import VirtualTimeLoop
from simtcp.backends.sim import LinkProfile, Simulator

SERVER, CLIENT = "10.0.0.1", "10.0.0.2"


async def echo(reader: StreamReader, writer: StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(net: AioStack, index: int, size: int, seed: int) -> bool:
    payload = random.Random(seed * 1000 + index).randbytes(size)
    reader, writer = await net.open_connection(SERVER, 7)

    async def send() -> None:
        for offset in range(0, size, 8192):
            writer.write(payload[offset : offset + 8192])
            await writer.drain()
        writer.write_eof()

    sender = asyncio.ensure_future(send())
    echoed = await reader.read()
    await sender
    writer.close()
    await writer.wait_closed()
    return echoed == payload


async def run(server_net: AioStack, client_net: AioStack, args: argparse.Namespace) -> int:
    server = await server_net.start_server(echo, SERVER, 7)
    async with server:
        results = await asyncio.gather(
            *(client(client_net, index, args.bytes, args.seed) for index in range(args.clients))
        )
    return sum(results)


def make_stack(seed: int, address: str, mac: str) -> Stack:
    stack = Stack(StackConfig(seed=seed))
    stack.add_interface("eth0", mac=mac)
    stack.add_address("eth0", f"{address}/24")
    return stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--bytes", type=int, default=200_000)
    parser.add_argument("--loss", type=float, default=0.05)
    parser.add_argument("--reorder", type=float, default=0.0)
    parser.add_argument("--duplicate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    sim = Simulator(args.seed)
    loop = VirtualTimeLoop(sim)
    server_net = loop.attach("server", make_stack(args.seed, SERVER, "02:00:00:00:00:01"))
    client_net = loop.attach("client", make_stack(args.seed + 1, CLIENT, "02:00:00:00:00:02"))
    profile = LinkProfile(
        delay=2_000, loss=args.loss, reorder=args.reorder, duplicate=args.duplicate
    )
    sim.connect(("server", "eth0"), ("client", "eth0"), profile)

    started = time.monotonic()
    intact = loop.run(run(server_net, client_net, args))
    wall = time.monotonic() - started
    lost = sum(direction["lost"] for direction in sim.link_stats().values())
    print(
        f"{intact}/{args.clients} clients got their {args.bytes} bytes back intact; "
        f"{sim.now / 1e6:.3f} s of virtual time in {wall:.3f} s of wall time; "
        f"{lost} frames lost on the link (seed {args.seed})"
    )
    return 0 if intact == args.clients else 1


if __name__ == "__main__":
    sys.exit(main())
