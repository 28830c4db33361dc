"""A kernel client's request/response loop with a simtcp server over TAP (issue 15).

The server (a plain ``Stack`` in a ``TapLoop``) writes each response in two
``send`` calls in one step, a header and a body, as HTTP servers do; the
kernel client (Nagle and delayed ACKs on, its defaults) sends the next
request once it has read the whole response. With autocorking each response
leaves in one segment, so the kernel never has a lone segment to delay its
ACK for; without it the body waits for that delayed ACK (about 40 ms in
Linux). The times are measured and printed, never asserted: the test asserts
on simtcp's own segment counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from .conftest import link_exists, unique_name

pytestmark = pytest.mark.timeout(120)

STACK = "10.0.0.1"
KERNEL = "10.0.0.2"
HEADER, BODY, REQUEST = 100, 200, 50

CLIENT = """
import json, socket, sys, time
count, total, request = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sock = socket.create_connection((sys.argv[4], 7), timeout=30)
times = []
for _ in range(count):
    started = time.monotonic()
    sock.sendall(b"q" * request)
    got = 0
    while got < total:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("server closed early")
        got += len(data)
    times.append(time.monotonic() - started)
sock.close()
times.sort()
print(json.dumps({"median_ms": 1000 * times[len(times) // 2], "max_ms": 1000 * times[-1],
                  "over_30ms": sum(1 for t in times if t > 0.030)}))
"""


def serve_exchanges(netns: str, autocorking: bool, count: int) -> tuple[dict[str, float], int]:
    """Run ``count`` kernel-client exchanges; the client's summary and our data segments."""
    from simtcp import Stack, StackConfig
    from simtcp.backends.tap import TapDevice, TapLoop, stack_mac
    from simtcp.config import TcpConfig
    from simtcp.events import DataReceived, Event
    from simtcp.wire.tcp import TcpSegment

    class CountingStack(Stack):
        """Counts the data segments it sends, each once (a tail loss probe, RFC 8985 §7,
        may resend the last one)."""

        def __init__(self, config: StackConfig) -> None:
            super().__init__(config)
            self.sent: set[int] = set()

        @property
        def data_segments(self) -> int:
            return len(self.sent)

        def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
            frames = super().frames_to_send(now=now)
            for _, frame in frames:
                if frame[12:14] == b"\x08\x00" and frame[23] == 6:
                    header = (frame[14] & 15) * 4
                    segment = TcpSegment.parse(frame[14 + header :])
                    if segment.payload:
                        self.sent.add(segment.seq)
            return frames

    name = unique_name("smw")
    device = TapDevice.create(
        name, interface="eth0", namespace=netns, kernel_address=f"{KERNEL}/24"
    )
    stack = CountingStack(StackConfig(seed=3, tcp=TcpConfig(autocorking=autocorking)))
    stack.add_interface("eth0", mac=stack_mac(3, "eth0"))
    stack.add_address("eth0", f"{STACK}/24")
    stack.tcp_listen(7)
    pending = {"bytes": 0}

    def on_event(event: Event, now: int) -> None:
        if isinstance(event, DataReceived):
            pending["bytes"] += len(stack.receive(event.connection, now=now))
            while pending["bytes"] >= REQUEST:
                pending["bytes"] -= REQUEST
                stack.send(event.connection, b"h" * HEADER, now=now)
                stack.send(event.connection, b"b" * BODY, now=now)

    loop = TapLoop(stack, [device], on_event=on_event)
    client = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", CLIENT]
        + [str(count), str(HEADER + BODY), str(REQUEST), STACK],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while client.poll() is None and time.monotonic() < deadline:
            loop.run_once()
        out, err = client.communicate(timeout=10)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        loop.close()
        device.close()
    assert not link_exists(name, netns)
    assert client.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1]), stack.data_segments


def test_kernel_request_response_takes_one_segment_per_response(
    make_netns: Callable[[], str],
) -> None:
    count = 200
    after, segments = serve_exchanges(make_netns(), True, count)
    before, before_segments = serve_exchanges(make_netns(), False, 50)
    print(f"\nautocorking off, 50 exchanges: {before} ({before_segments} data segments)")
    print(f"autocorking on, {count} exchanges: {after} ({segments} data segments)")
    assert segments == count  # header and body of each response in one segment
    assert before_segments == 2 * 50  # the oracle: without it, two each
