"""The TAP loop's one-frame reads for sparse traffic and its latency histogram.

Over a datagram socketpair standing in for the TAP fd (no root needed). A device
whose last batch was one frame is read one frame per wake-up (no read that only
says EAGAIN); a backlog, which shows as a wake-up that did not sleep, brings the
batches back. Either way every frame reaches the stack once, in order.
"""

from __future__ import annotations

import itertools
import socket
from collections.abc import Callable, Iterator

import pytest

from simtcp.backends.tap import WOKE_AT_ONCE_US, LatencyHistogram, TapDevice, TapLoop
from tests.fake_tap import FakeStack, socketpair_device

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def pair() -> Iterator[tuple[TapDevice, socket.socket]]:
    with socketpair_device() as devices:
        yield devices


def stepping_clock(step_us: int) -> Callable[[], int]:
    """A clock that advances ``step_us`` per reading: each epoll wait looks that long."""
    ticks = itertools.count(0, step_us)
    return lambda: next(ticks)


class CountingDevice:
    """Counts the reads the loop asks of a device (each ``read_raw`` call's limit)."""

    def __init__(self, device: TapDevice) -> None:
        self.limits: list[int] = []
        self._read_raw = device.read_raw
        device.read_raw = self.read_raw  # type: ignore[method-assign]

    def read_raw(self, limit: int) -> list[bytes]:
        self.limits.append(limit)
        return self._read_raw(limit)


def test_a_sparse_device_is_read_one_frame_per_wake_up(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    stack = FakeStack()
    counting = CountingDevice(device)
    loop = TapLoop(stack, [device], clock=stepping_clock(10 * WOKE_AT_ONCE_US))
    try:
        kernel.send(b"first")
        loop.run_once()  # a batch read that found one frame: the device turns sparse
        for number in range(3):
            kernel.send(b"frame %d" % number)
            loop.run_once()
        assert counting.limits == [loop.read_batch, 1, 1, 1]
        assert [frame.frame for frame in stack.received] == [
            b"first",
            b"frame 0",
            b"frame 1",
            b"frame 2",
        ]
    finally:
        loop.close()


def test_a_backlog_on_a_sparse_device_is_read_in_order(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=stepping_clock(10 * WOKE_AT_ONCE_US))
    try:
        kernel.send(b"first")
        loop.run_once()
        backlog = [b"queued %d" % number for number in range(5)]
        for frame in backlog:
            kernel.send(frame)
        for _ in range(len(backlog)):  # one frame per wake-up, nothing lost or reordered
            loop.run_once()
        assert [frame.frame for frame in stack.received] == [b"first", *backlog]
    finally:
        loop.close()


def test_a_wake_up_that_did_not_sleep_reads_a_batch(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    stack = FakeStack()
    counting = CountingDevice(device)
    loop = TapLoop(stack, [device], clock=stepping_clock(1))  # every wait "did not sleep"
    try:
        kernel.send(b"first")
        loop.run_once()
        for number in range(4):
            kernel.send(b"burst %d" % number)
        loop.run_once()
        assert counting.limits == [loop.read_batch, loop.read_batch]
        assert len(stack.received) == 5
    finally:
        loop.close()


def test_the_latency_histogram_records_turns_that_answered(
    pair: tuple[TapDevice, socket.socket],
) -> None:
    device, kernel = pair
    stack = FakeStack()
    loop = TapLoop(stack, [device], clock=stepping_clock(1), latency=True)
    try:
        assert loop.latency is not None
        kernel.send(b"request")
        stack.outbox = [("veth0", b"answer")]
        loop.run_once()
        loop.run_once()  # nothing read, nothing written: not a sample
        assert loop.latency.total == 1
        assert kernel.recv(100) == b"answer"
        assert "1 turns" in loop.latency.summary()
    finally:
        loop.close()


def test_no_histogram_unless_asked(pair: tuple[TapDevice, socket.socket]) -> None:
    device, _ = pair
    loop = TapLoop(FakeStack(), [device], clock=stepping_clock(1))
    try:
        assert loop.latency is None
        assert "run_once" not in vars(loop)  # the class's own method: nothing timed
    finally:
        loop.close()


def test_percentiles_are_bucket_upper_edges() -> None:
    histogram = LatencyHistogram()
    for duration_ns in (1_000, 2_000, 3_000, 4_000, 100_000):
        histogram.record(duration_ns)
    assert histogram.percentile_us(0.5) == 3.1
    assert histogram.percentile_us(0.99) == 100.1
    assert LatencyHistogram().percentile_us(0.5) == 0.0
