"""Drive simtcp's sans-IO core from a plain ``selectors`` loop: the whole contract, one screen.

    sudo python3 examples/selectors_loop.py      # then, from the kernel: nc 10.0.0.1 7

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

import selectors
import time

from simtcp import Stack
from simtcp.apps import EchoServer
from simtcp.backends.tap import TapDevice, stack_mac


def now_us() -> int:
    return time.monotonic_ns() // 1000  # the core's time: integer microseconds


def main() -> None:
    device = TapDevice.create("tap-sel0", interface="eth0", kernel_address="10.0.0.2/24")
    stack = Stack()
    stack.add_interface("eth0", mac=stack_mac(0, "eth0"))
    stack.add_address("eth0", "10.0.0.1/24", now=now_us())
    echo = EchoServer(stack, 7)
    selector = selectors.DefaultSelector()
    selector.register(device.fd, selectors.EVENT_READ)
    print("TCP echo on 10.0.0.1:7 behind tap-sel0; Ctrl-C to stop")
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
        device.close()  # removes tap-sel0


if __name__ == "__main__":
    main()
