"""The driver's timer contract with a scripted core: one ``call_at`` at a time, at the exact
deadline, cancelled when the deadline moves, and the loop's clock converted in one place.

The core here is a stand-in with a deadline the test sets by hand, so every
re-arm, cancellation and firing instant is known exactly (integer
microseconds in, loop seconds out).
"""

from __future__ import annotations

import asyncio

from simtcp.aio import AioStack, LoopClock
from simtcp.backends.aio_sim import VirtualTimeLoop
from simtcp.backends.sim import Simulator


class ScriptedCore:
    """The driver's view of a stack, with a deadline the test moves by hand."""

    def __init__(self) -> None:
        self.deadline: int | None = None
        self.fired_at: list[int] = []
        self.after_firing: list[int | None] = []
        self.received: list[tuple[str, bytes, int]] = []

    def poll_at(self) -> int | None:
        return self.deadline

    def handle_timer(self, *, now: int) -> None:
        assert self.deadline is not None and self.deadline <= now
        self.fired_at.append(now)
        self.deadline = self.after_firing.pop(0) if self.after_firing else None

    def receive_frame(self, interface: str, frame: bytes, *, now: int) -> None:
        self.received.append((interface, frame, now))

    def frames_to_send(self, *, now: int) -> list[tuple[str, bytes]]:
        return []

    def next_event(self) -> None:
        return None


class NullLink:
    def start(self, driver: AioStack) -> None:
        self.driver = driver

    def send(self, frames: list[tuple[str, bytes]]) -> None:
        raise AssertionError("the scripted core sends nothing")

    def close(self) -> None:
        pass


class CountingLoop(VirtualTimeLoop):
    """Counts the drivers' call_at handles and their cancellations."""

    def __init__(self) -> None:
        super().__init__(Simulator(0))
        self.timer_handles: list[asyncio.TimerHandle] = []

    def call_at(self, when, callback, *args, context=None):  # type: ignore[no-untyped-def]
        handle = super().call_at(when, callback, *args, context=context)
        if getattr(callback, "__name__", "") == "_on_timer":
            self.timer_handles.append(handle)
        return handle


def test_one_timer_rearmed_to_the_exact_deadline_and_cancelled_when_it_moves() -> None:
    loop = CountingLoop()
    core = ScriptedCore()
    driver = AioStack(core, NullLink(), loop=loop)  # type: ignore[arg-type]

    async def poke(deadline: int | None) -> None:
        core.deadline = deadline
        driver.schedule_flush()
        await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.sleep(0)
        assert loop.timer_handles == []  # no deadline, no timer
        await poke(2_000_000)
        assert [handle.when() for handle in loop.timer_handles] == [2.0]
        await poke(2_000_000)  # unchanged: the same handle stays
        assert len(loop.timer_handles) == 1
        await poke(1_250_001)  # earlier: the old one is cancelled, one new one
        first, second = loop.timer_handles
        assert first.cancelled() and not second.cancelled()
        assert second.when() == 1.250001
        await poke(3_000_000)  # later: the same
        assert second.cancelled() and loop.timer_handles[2].when() == 3.0
        core.after_firing = [3_500_000, None]
        await asyncio.sleep(4)
        assert core.fired_at == [3_000_000, 3_500_000]  # exactly at the deadlines
        assert [handle.when() for handle in loop.timer_handles[3:]] == [3.5]
        assert driver.timer_handle is None and driver.timer_deadline is None
        await poke(5_000_000)
        await poke(None)  # no deadline: cancelled, nothing new
        assert loop.timer_handles[-1].cancelled() and driver.timer_handle is None
        live = [handle for handle in loop.timer_handles if not handle.cancelled()]
        assert len(live) == 2  # the two that fired (a fired handle is not cancelled)

    loop.run(main())
    assert driver.counters["timer_fired"] == 2
    assert driver.counters["timer_armed"] == len(loop.timer_handles) == 5
    assert driver.counters["timer_cancelled"] == 3


def test_a_deadline_in_the_past_fires_at_once_with_now_at_least_the_deadline() -> None:
    loop = CountingLoop()
    core = ScriptedCore()
    driver = AioStack(core, NullLink(), loop=loop)  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.sleep(10)
        core.deadline = 4_000_000  # already 6 s late
        driver.schedule_flush()  # the step itself sees it due and fires it
        await asyncio.sleep(0)
        assert core.fired_at == [10_000_000]
        assert driver.timer_handle is None

    loop.run(main())


def test_close_cancels_the_timer_and_stops_stepping() -> None:
    loop = CountingLoop()
    core = ScriptedCore()
    core.deadline = 1_000_000
    driver = AioStack(core, NullLink(), loop=loop)  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.sleep(0)
        assert len(loop.timer_handles) == 1
        driver.close()
        assert loop.timer_handles[0].cancelled() and driver.closed
        driver.frames_received("eth0", [b"ignored"])
        await asyncio.sleep(2)

    loop.run(main())
    assert core.fired_at == [] and core.received == []


def test_frames_arrive_at_the_loops_time_in_integer_microseconds() -> None:
    loop = CountingLoop()
    core = ScriptedCore()
    driver = AioStack(core, NullLink(), loop=loop)  # type: ignore[arg-type]

    async def main() -> None:
        await asyncio.sleep(0.000_123)
        driver.frames_received("eth0", [b"a", b"b"])

    loop.run(main())
    assert core.received == [("eth0", b"a", 123), ("eth0", b"b", 123)]


class FakeClockLoop:
    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now


def test_loop_clock_rounds_to_microseconds_and_never_goes_back() -> None:
    fake = FakeClockLoop()
    clock = LoopClock(fake)  # type: ignore[arg-type]
    fake.now = 12.000_000_4
    assert clock.now() == 12_000_000
    fake.now = 12.000_000_6
    assert clock.now() == 12_000_001
    fake.now = 11.0  # a clock that stepped back
    assert clock.now() == 12_000_001
    assert clock.now(at_least=12_000_005) == 12_000_005
    assert LoopClock.loop_time(12_000_005) == 12.000005
    assert round(LoopClock.loop_time(987_654_321) * 1_000_000) == 987_654_321
