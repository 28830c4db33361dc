"""A TAP device without root: a datagram socketpair whose far end plays the kernel.

Shared by the TAP-loop tests with and without the virtio-net header.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

from simtcp.backends.tap import TapDevice
from simtcp.events import Event
from simtcp.time import Instant


class ReceivedFrame(NamedTuple):
    interface: str
    frame: bytes
    checksum_verified: bool
    gso_size: int


class FakeStack:
    """Records frames in (with the per-frame offload words); sends what the test queues;
    always has a due timer, so ``TapLoop.run_once`` never blocks."""

    def __init__(self) -> None:
        self.received: list[ReceivedFrame] = []
        self.outbox: list[tuple[str, bytes]] = []
        self.timer_calls = 0

    def receive_frame(
        self,
        interface: str,
        frame: bytes | memoryview,
        *,
        now: Instant,
        checksum_verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        self.received.append(ReceivedFrame(interface, bytes(frame), checksum_verified, gso_size))

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        out, self.outbox = self.outbox, []
        return out

    def poll_at(self) -> Instant | None:
        return 0

    def handle_timer(self, *, now: Instant) -> None:
        self.timer_calls += 1

    def next_event(self) -> Event | None:
        return None


@contextmanager
def socketpair_device(
    *,
    vnet_header: bool = False,
    send_buffer: int | None = None,
    kernel_receive_buffer: int | None = None,
) -> Iterator[tuple[TapDevice, socket.socket]]:
    """(our TapDevice on one end, the "kernel" socket on the other); both closed after."""
    ours, kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    kernel.setblocking(False)
    if send_buffer is not None:
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    if kernel_receive_buffer is not None:
        kernel.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, kernel_receive_buffer)
    extra = {"vnet_header": True, "mtu": 1500} if vnet_header else {}
    device = TapDevice("fake0", os.dup(ours.fileno()), interface="veth0", namespace=None, **extra)  # type: ignore[arg-type]
    ours.close()
    try:
        yield device, kernel
    finally:
        os.close(device.fd)
        kernel.close()


def drain(kernel: socket.socket) -> list[bytes]:
    """Every datagram waiting at the kernel end."""
    frames = []
    while True:
        try:
            frames.append(kernel.recv(100_000))
        except BlockingIOError:
            return frames
