"""The timer heap: exact deadlines, cheap re-arming, bounded growth."""

from __future__ import annotations

from simtcp.timers import TimerHeap


def test_poll_at_is_the_earliest_deadline_and_none_when_idle() -> None:
    heap = TimerHeap()
    fired: list[tuple[str, int]] = []
    a = heap.new_timer(lambda now: fired.append(("a", now)))
    b = heap.new_timer(lambda now: fired.append(("b", now)))
    assert heap.poll_at() is None
    heap.arm(a, 300)
    heap.arm(b, 200)
    assert heap.poll_at() == 200
    assert heap.run_due(199) == 0
    assert heap.run_due(250) == 1
    assert fired == [("b", 250)]
    assert heap.poll_at() == 300


def test_rearming_later_keeps_the_exact_deadline_without_growing_the_heap() -> None:
    heap = TimerHeap()
    timer = heap.new_timer(lambda now: None)
    heap.arm(timer, 1_000)
    for deadline in range(1_001, 11_000):
        heap.arm(timer, deadline)
    assert len(heap) == 1
    assert heap.poll_at() == 10_999


def test_rearming_earlier_and_cancelling() -> None:
    heap = TimerHeap()
    fired: list[int] = []
    timer = heap.new_timer(fired.append)
    heap.arm(timer, 500)
    heap.arm(timer, 100)
    assert heap.poll_at() == 100
    heap.cancel(timer)
    assert heap.poll_at() is None
    assert heap.run_due(1_000) == 0
    assert fired == []


def test_callbacks_may_rearm_for_now_and_fire_in_the_same_call() -> None:
    heap = TimerHeap()
    fired: list[int] = []

    def again(now: int) -> None:
        fired.append(now)
        if len(fired) < 3:
            heap.arm(timer, now)

    timer = heap.new_timer(again)
    heap.arm(timer, 10)
    assert heap.run_due(10) == 3
    assert fired == [10, 10, 10]


def test_many_owners_fire_in_deadline_order() -> None:
    heap = TimerHeap()
    fired: list[int] = []
    for index in range(1_000):
        deadline = (index * 7919) % 1_000
        heap.arm(heap.new_timer(lambda now, d=deadline: fired.append(d)), deadline)
    heap.run_due(10_000)
    assert fired == sorted(fired)
    assert len(fired) == 1_000
