"""Drive simtcp's sans-IO core from a plain ``selectors`` loop: the whole contract, one screen.

    sudo python3 examples/selectors_loop.py [--tap tap-sel0] [--netns NS]
    # then, from the kernel: nc 10.0.0.1 7 (or: ip netns exec NS nc 10.0.0.1 7)

It creates the TAP (the kernel's side 10.0.0.2/24, in the existing namespace NS
if given) and removes it at exit; ``--attach TAP`` opens a TAP you made and own
instead, without root (see ``examples/aio_echo_server.py``).

The core never reads a clock, sleeps or touches a socket. A loop of any kind
gives it frames and the time, and takes back frames, events and one deadline:

1. wait until the device is readable or ``poll_at()`` comes due;
2. ``receive_frame(interface, frame, now=)`` for every frame read;
3. ``handle_timer(now=)`` if the deadline has passed;
4. ``next_event()`` until None, to the application (here, TCP echo);
5. ``frames_to_send(now=)``, written to the device.

asyncio (``simtcp.aio``), the TAP backend's epoll loop and the simulator all
do exactly this.
"""

import argparse
import selectors
import sys
import time

from simtcp import Stack
from simtcp.apps import EchoServer
from simtcp.backends.tap import TapDevice, TapError, missing_requirement, stack_mac


def now_us() -> int:
    return time.monotonic_ns() // 1000  # the core's time: integer microseconds


def open_device(args: argparse.Namespace) -> TapDevice:
    if args.attach:
        return TapDevice.attach(args.attach, interface="eth0")
    return TapDevice.create(
        args.tap, interface="eth0", namespace=args.netns, kernel_address="10.0.0.2/24"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tap", default="tap-sel0", help="TAP device to create (%(default)s)")
    parser.add_argument("--netns", help="put the kernel's side in this existing namespace")
    parser.add_argument("--attach", metavar="TAP", help="open this existing TAP you own instead")
    args = parser.parse_args()
    problem = missing_requirement(attach=args.attach is not None)
    try:
        if problem is not None:
            raise TapError(problem)
        device = open_device(args)
    except TapError as error:
        print(f"selectors_loop: {error}", file=sys.stderr)
        return 2
    return serve(device)


def serve(device: TapDevice) -> int:
    stack = Stack()
    stack.add_interface("eth0", mac=stack_mac(0, "eth0"))
    stack.add_address("eth0", "10.0.0.1/24", now=now_us())
    echo = EchoServer(stack, 7)
    selector = selectors.DefaultSelector()
    selector.register(device.fd, selectors.EVENT_READ)
    print(f"TCP echo on 10.0.0.1:7 behind {device.name}; ready (Ctrl-C to stop)", flush=True)
    try:
        while True:
            deadline = stack.poll_at()
            timeout = None if deadline is None else max(0, deadline - now_us()) / 1e6
            readable = selector.select(timeout)
            now = now_us()
            if readable:
                for frame in device.read_frames(64):
                    stack.receive_frame("eth0", frame, now=now)
            deadline = stack.poll_at()
            if deadline is not None and deadline <= now:
                stack.handle_timer(now=now)
            while (event := stack.next_event()) is not None:
                echo.handle_event(event, now)
            for _interface, frame in stack.frames_to_send(now=now):
                device.write(frame)  # False if the kernel queue is full: TCP retransmits
    except KeyboardInterrupt:
        pass
    finally:
        selector.close()
        device.close()  # removes a device we created; an attached one stays yours
    return 0


if __name__ == "__main__":
    sys.exit(main())
