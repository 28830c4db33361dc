"""An asyncio TCP echo server on simtcp over a real TAP device.

    sudo python3 examples/aio_echo_server.py [--tap tap-aio0] [--netns NS] [--port 7]

creates TAP device ``tap-aio0`` (the kernel's side gets 10.0.0.2/24, moved into
network namespace NS, which must exist, if given), puts the stack at
10.0.0.1/24 behind it, and serves RFC 862 echo with ``asyncio``-shaped streams
until SIGINT/SIGTERM; the device goes with the program. Try it from the
kernel's side::

    echo hello | nc -N 10.0.0.1 7          (or: ip netns exec NS nc -N ...)

Without root, on a TAP you made once and own (the kernel side configured by you)::

    sudo ip tuntap add mode tap user $USER name tap0
    sudo ip addr add 10.0.0.2/24 dev tap0 && sudo ip link set tap0 up
    python3 examples/aio_echo_server.py --attach tap0

The handler is ordinary asyncio code; only the ``start_server`` comes from
simtcp's adapter instead of ``asyncio`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from simtcp import Stack, StackConfig
from simtcp.aio import AioStack, StreamReader, StreamWriter
from simtcp.backends import tap
from simtcp.backends.aio_tap import over_tap

STACK_ADDRESS = "10.0.0.1"
KERNEL_ADDRESS = "10.0.0.2/24"


async def echo(reader: StreamReader, writer: StreamWriter) -> None:
    """Echo every byte back; drain() keeps a slow client from filling our memory."""
    peer = writer.get_extra_info("peername")
    total = 0
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            total += len(data)
    except (ConnectionResetError, TimeoutError) as error:
        print(f"{peer}: {error!r}", flush=True)
    writer.close()
    await writer.wait_closed()
    print(f"{peer[0]}:{peer[1]} echoed {total} bytes", flush=True)


async def serve(net: AioStack, port: int) -> None:
    server = await net.start_server(echo, STACK_ADDRESS, port)
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, server.close)
    print(f"asyncio echo on {STACK_ADDRESS}:{port}; ready (Ctrl-C to stop)", flush=True)
    try:
        await server.serve_forever()
    except asyncio.CancelledError:
        pass  # server.close() from a signal ends serve_forever this way
    finally:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)


async def main_async(args: argparse.Namespace, device: tap.TapDevice) -> None:
    stack = Stack(StackConfig(seed=args.seed))
    stack.add_interface("eth0", mac=tap.stack_mac(args.seed, "eth0"))
    net = over_tap(stack, [device])
    stack.add_address("eth0", f"{STACK_ADDRESS}/24", now=net.now())
    net.schedule_flush()  # the gratuitous ARP that add_address queued
    try:
        await serve(net, args.port)
    finally:
        net.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tap", default="tap-aio0", help="TAP device to create (%(default)s)")
    parser.add_argument("--netns", help="put the kernel's side in this existing namespace")
    parser.add_argument("--attach", metavar="TAP", help="open this existing TAP you own instead")
    parser.add_argument("--port", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    missing = tap.missing_requirement(attach=args.attach is not None)
    if missing is not None:
        print(f"aio_echo_server: {missing}", file=sys.stderr)
        return 2
    try:
        if args.attach:
            device = tap.TapDevice.attach(args.attach, interface="eth0")
        else:
            device = tap.TapDevice.create(
                args.tap, interface="eth0", namespace=args.netns, kernel_address=KERNEL_ADDRESS
            )
    except tap.TapError as error:
        print(f"aio_echo_server: {error}", file=sys.stderr)
        return 2
    try:
        asyncio.run(main_async(args, device))
    finally:
        device.close()  # removes a device we created; an attached one stays yours
    return 0


if __name__ == "__main__":
    sys.exit(main())
