"""The TAP link's flow control without a TAP: a full kernel queue parks frames in order and
stops reading until the fd is writable again (the rule of simtcp.backends.tap.TapLoop)."""

from __future__ import annotations

from collections import deque
from typing import Any

from simtcp.backends.aio_tap import TapLink
from simtcp.backends.tap import TapError


class FakeDevice:
    def __init__(self, interface: str, fd: int) -> None:
        self.interface = interface
        self.fd = fd
        self.name = f"tap-{interface}"
        self.write_queue: deque[bytes] = deque()
        self.accepting = True
        self.written: list[bytes] = []
        self.incoming: list[bytes] = []
        self.broken = False

    def write(self, frame: bytes) -> bool:
        if not self.accepting:
            return False  # EAGAIN
        self.written.append(frame)
        return True

    def read_frames(self, limit: int) -> list[bytes]:
        if self.broken:
            raise TapError(f"device {self.name} failed: Input/output error")
        frames, self.incoming = self.incoming[:limit], self.incoming[limit:]
        return frames


class FakeLoop:
    def __init__(self) -> None:
        self.readers: dict[int, Any] = {}
        self.writers: dict[int, Any] = {}
        self.errors: list[dict[str, Any]] = []

    def add_reader(self, fd: int, callback: Any, *args: Any) -> None:
        self.readers[fd] = (callback, args)

    def remove_reader(self, fd: int) -> bool:
        return self.readers.pop(fd, None) is not None

    def add_writer(self, fd: int, callback: Any, *args: Any) -> None:
        self.writers[fd] = (callback, args)

    def remove_writer(self, fd: int) -> bool:
        return self.writers.pop(fd, None) is not None

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        self.errors.append(context)

    def fire_reader(self, fd: int) -> None:
        callback, args = self.readers[fd]
        callback(*args)

    def fire_writer(self, fd: int) -> None:
        callback, args = self.writers[fd]
        callback(*args)


class FakeDriver:
    def __init__(self, loop: FakeLoop) -> None:
        self.loop = loop
        self.batches: list[tuple[str, list[bytes]]] = []

    def frames_received(self, interface: str, frames: list[bytes]) -> None:
        self.batches.append((interface, frames))


def setup() -> tuple[TapLink, FakeLoop, FakeDriver, FakeDevice, FakeDevice]:
    loop = FakeLoop()
    driver = FakeDriver(loop)
    eth0, eth1 = FakeDevice("eth0", 10), FakeDevice("eth1", 11)
    link = TapLink([eth0, eth1], read_batch=2)  # type: ignore[list-item]
    link.start(driver)  # type: ignore[arg-type]
    return link, loop, driver, eth0, eth1


def test_frames_are_read_in_batches_and_handed_over_per_device() -> None:
    link, loop, driver, eth0, eth1 = setup()
    assert set(loop.readers) == {10, 11}
    eth0.incoming = [b"a", b"b", b"c"]
    loop.fire_reader(10)
    loop.fire_reader(10)
    loop.fire_reader(10)  # nothing left: no empty batch
    assert driver.batches == [("eth0", [b"a", b"b"]), ("eth0", [b"c"])]


def test_a_full_queue_keeps_order_stops_reading_and_resumes_when_writable() -> None:
    link, loop, driver, eth0, eth1 = setup()
    link.send([("eth0", b"1")])
    eth0.accepting = False
    link.send([("eth0", b"2"), ("eth1", b"x"), ("eth0", b"3")])
    assert eth0.written == [b"1"] and list(eth0.write_queue) == [b"2", b"3"]
    assert eth1.written == [b"x"]
    assert loop.readers == {} and set(loop.writers) == {10}  # no input while blocked
    eth0.accepting = True
    link.send([("eth0", b"4")])  # queued behind the others, never ahead of them
    assert eth0.written == [b"1"]
    loop.fire_writer(10)
    assert eth0.written == [b"1", b"2", b"3", b"4"] and not eth0.write_queue
    assert loop.writers == {} and set(loop.readers) == {10, 11}
    assert link.counters["write_blocked"] == 1


def test_unknown_interface_and_device_failure_are_counted_not_raised() -> None:
    link, loop, driver, eth0, eth1 = setup()
    link.send([("eth9", b"lost")])
    assert link.counters["write_errors"] == 1
    eth1.broken = True
    loop.fire_reader(11)
    assert 11 not in loop.readers and 10 in loop.readers
    assert link.counters["device_errors"] == 1 and len(loop.errors) == 1
    eth0.accepting = False
    link.send([("eth0", b"blocked")])
    eth0.accepting = True
    loop.fire_writer(10)
    assert set(loop.readers) == {10}  # reading resumes, but not on the failed device
    link.close()
    assert loop.readers == {} and loop.writers == {}
