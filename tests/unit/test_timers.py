"""The timer heap: exact deadlines, cheap re-arming, bounded growth."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simtcp import Stack
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


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.none() | st.integers(0, 50)), max_size=40))
def test_poll_at_shortcuts_match_a_brute_force_minimum(
    operations: list[tuple[int, int | None]],
) -> None:
    """TimerHeap.poll_at's exact-top shortcut, and Stack.poll_at's inlined copy of it, give
    the earliest armed deadline after any mix of arming earlier, later, cancelling, firing."""
    stack = Stack()
    heap = stack.timers
    timers = [heap.new_timer(lambda now: None) for _ in range(5)]
    for step, (index, deadline) in enumerate(operations):
        if step % 7 == 6:
            heap.run_due(deadline or 0)
        else:
            heap.arm(timers[index], deadline)
        armed = [t.deadline for t in timers if t.deadline is not None]
        expected = min(armed) if armed else None
        assert stack.poll_at() == expected
        assert heap.poll_at() == expected
