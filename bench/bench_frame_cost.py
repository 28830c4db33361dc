#!/usr/bin/env python3
"""Per-frame CPU cost of a server stack, in-process: 64-byte request/response and a stream.

No root, no devices: two :class:`simtcp.Stack` objects exchange frames
directly (a client stack and a server stack running ``EchoServer`` on port 80,
each frame handed over at once), and only the server's work is timed: its
``receive_frame`` calls, timers, events (the echo application's reaction
included) and ``frames_to_send``. That is what the TAP loop does per turn,
without the syscalls, so the figure is the Python cost the small-packet path
pays per frame, free of the kernel's noise. Printed, best of ``--rounds``:

- 64-byte request/response over one connection: server µs per transaction and
  per frame (in + out);
- a one-way-in, echoed-back stream of 1,448-byte segments (a link without
  offloads: every frame checksummed, no GRO): server µs per frame;
- both with ``StackConfig(fast_paths=False)`` and ``TcpConfig(fast_path=False)``
  as the baseline in the same run (the layered oracle paths).

``--profile [FILE]`` profiles one run of each workload (fast paths on) and
prints the top 25 functions by own time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from _profile import add_profile_option, profiling  # noqa: E402

from simtcp.apps import EchoServer  # noqa: E402
from simtcp.config import StackConfig  # noqa: E402
from simtcp.events import ConnectionEstablished, DataReceived  # noqa: E402
from simtcp.stack import Stack  # noqa: E402
from simtcp.tcp import TcpConfig  # noqa: E402

STEP_US = 20
"""Virtual microseconds per frame hand-over: time moves, as it does on a real link."""


class Pair:
    """A client stack and an echo-server stack joined frame by frame; the server is timed."""

    def __init__(self, fast: bool) -> None:
        tcp = TcpConfig(fast_path=fast)
        self.client = Stack(StackConfig(seed=1, fast_paths=fast, tcp=tcp))
        self.server = Stack(StackConfig(seed=2, fast_paths=fast, tcp=tcp))
        self.client.add_interface("eth0", mac="02:00:00:00:00:02")
        self.server.add_interface("eth0", mac="02:00:00:00:00:01")
        self.client.add_address("eth0", "10.0.0.2/24")
        self.server.add_address("eth0", "10.0.0.1/24")
        self.echo = EchoServer(self.server, 80)
        self.now = 1_000_000
        self.server_ns = 0
        self.server_frames = 0
        self.received = 0
        self.connection = self.client.tcp_connect("10.0.0.1", 80, now=self.now)
        self.established = False
        while not self.established:
            self.pump()

    def _client_turn(self, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        client, now = self.client, self.now
        for name, frame in frames:
            client.receive_frame(name, frame, now=now)
        deadline = client.poll_at()
        if deadline is not None and deadline <= now:
            client.handle_timer(now=now)
        event = client.next_event()
        while event is not None:
            if type(event) is ConnectionEstablished:
                self.established = True
            elif type(event) is DataReceived:
                self.received += len(client.receive(self.connection, now=now))
            event = client.next_event()
        return client.frames_to_send(now=now)

    def _server_turn(self, frames: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        server, now, handle = self.server, self.now, self.echo.handle_event
        deadline = server.poll_at()
        if not frames and (deadline is None or deadline > now):
            return []  # an idle turn: the TAP loop would be asleep in epoll
        started = time.thread_time_ns()
        for name, frame in frames:
            server.receive_frame(name, frame, now=now)
        deadline = server.poll_at()
        if deadline is not None and deadline <= now:
            server.handle_timer(now=now)
        event = server.next_event()
        while event is not None:
            handle(event, now)
            event = server.next_event()
        out = server.frames_to_send(now=now)
        self.server_ns += time.thread_time_ns() - started
        self.server_frames += len(frames) + len(out)
        return out

    def pump(self) -> None:
        """One exchange: the client's output to the server, the server's answer back."""
        self.now += STEP_US
        to_server = self._client_turn([])
        self.now += STEP_US
        to_client = self._server_turn(to_server)
        self.now += STEP_US
        self._client_turn(to_client)

    def reset_counts(self) -> None:
        self.server_ns = self.server_frames = 0


def request_response(fast: bool, transactions: int) -> tuple[float, float]:
    """(server µs per transaction, per frame) for 64-byte requests, one outstanding."""
    pair = Pair(fast)
    request = bytes(64)
    pair.reset_counts()
    for _ in range(transactions):
        goal = pair.received + len(request)
        pair.client.send(pair.connection, request, now=pair.now)
        while pair.received < goal:
            pair.pump()
    return pair.server_ns / 1000 / transactions, pair.server_ns / 1000 / pair.server_frames


def stream(fast: bool, total: int) -> float:
    """Server µs per frame for ``total`` bytes echoed in 1,448-byte segments."""
    pair = Pair(fast)
    chunk = bytes(1448) * 8
    pair.reset_counts()
    sent = 0
    while pair.received < total:
        if sent < total:
            sent += pair.client.send(pair.connection, chunk, now=pair.now)
        pair.pump()
    return pair.server_ns / 1000 / pair.server_frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=20_000)
    parser.add_argument("--mbytes", type=float, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    add_profile_option(parser)
    args = parser.parse_args()
    total = int(args.mbytes * 1_000_000)
    figures: dict[bool, dict[str, float]] = {}
    for _ in range(max(1, args.rounds)):
        for fast in (False, True):
            rr_txn, rr_frame = request_response(fast, args.transactions)
            per_frame = stream(fast, total)
            old = figures.get(fast)
            figures[fast] = {
                "rr_us_per_txn": min(rr_txn, old["rr_us_per_txn"]) if old else rr_txn,
                "rr_us_per_frame": min(rr_frame, old["rr_us_per_frame"]) if old else rr_frame,
                "stream_us_per_frame": (
                    min(per_frame, old["stream_us_per_frame"]) if old else per_frame
                ),
            }
    print(
        f"server stack CPU, in-process, best of {args.rounds}: 64-byte request/response x"
        f"{args.transactions}, stream of {args.mbytes:g} MB in 1,448-byte segments"
    )
    for fast, label in ((False, "fast paths off (oracle)"), (True, "fast paths on")):
        f = figures[fast]
        print(
            f"  {label:24} RR {f['rr_us_per_txn']:6.2f} us/transaction "
            f"{f['rr_us_per_frame']:6.2f} us/frame   "
            f"stream {f['stream_us_per_frame']:6.2f} us/frame"
        )
    if args.profile is not None:
        with profiling(args.profile, "request/response, fast paths on"):
            request_response(True, args.transactions)
        with profiling(args.profile, "stream, fast paths on"):
            stream(True, total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
