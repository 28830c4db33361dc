"""One timer heap for the whole stack: cheap re-arming, exact ``poll_at``.

Each owner (an ARP entry, a reassembly buffer, a TCP connection, ...) holds one
:class:`TimerHandle` with at most one deadline. The heap holds at most one live
entry per handle, queued at or before the handle's deadline:

- arming *earlier* than the queued entry pushes a new entry (the old one goes
  stale and is skipped when it surfaces);
- arming *later* (a retransmission timer restarted by every ACK) only updates
  the handle: when the early entry surfaces it is pushed again at the real
  deadline. So the common re-arm costs O(1) and the heap never grows with the
  number of re-arms, only with the number of owners.

``poll_at`` returns the exact earliest deadline: it settles such early entries
before answering.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from .time import Instant

TimerCallback = Callable[[Instant], None]


class TimerHandle:
    """One owner's deadline and the callback to run when it is due."""

    __slots__ = ("callback", "deadline", "_queued_at", "_queued_token")

    def __init__(self, callback: TimerCallback) -> None:
        self.callback = callback
        self.deadline: Instant | None = None
        self._queued_at: Instant = 0
        self._queued_token = 0  # 0: no live heap entry


class TimerHeap:
    """Deadlines of many owners in one binary heap."""

    def __init__(self) -> None:
        self._heap: list[tuple[Instant, int, TimerHandle]] = []
        self.entries = self._heap
        """The heap itself, read-only, for owners that inline :meth:`poll_at`'s exact-top
        test (``Stack.poll_at``, asked once per loop turn or simulator step)."""
        self._tokens = itertools.count(1)
        self._discarded = 0
        """Timers discarded while they still had a heap entry (see :meth:`discard`)."""

    def new_timer(self, callback: TimerCallback) -> TimerHandle:
        """A fresh, unarmed timer that calls ``callback(now)`` when due."""
        return TimerHandle(callback)

    def arm(self, timer: TimerHandle, deadline: Instant | None) -> None:
        """Set the timer's deadline, or cancel it with None."""
        timer.deadline = deadline
        if deadline is None:
            return
        if timer._queued_token and timer._queued_at <= deadline:
            return  # the live entry surfaces no later; it is re-queued then
        self._push(timer, deadline)

    def cancel(self, timer: TimerHandle) -> None:
        timer.deadline = None

    def discard(self, timer: TimerHandle) -> None:
        """Cancel ``timer`` for good: its owner is gone and must not stay reachable.

        The callback (a closure over the owner) is dropped at once, so a stale heap
        entry keeps only the small handle alive, never the owner; and once stale
        entries are the majority the heap is rebuilt without them, so it never holds
        more entries than about twice the live timers.
        """
        timer.deadline = None
        timer.callback = _discarded
        if not timer._queued_token:
            return
        self._discarded += 1
        heap = self._heap
        if self._discarded > 64 and 2 * self._discarded > len(heap):
            self._compact()

    def _compact(self) -> None:
        """Drop every stale and cancelled entry (O(n), amortised over the discards)."""
        kept: list[tuple[Instant, int, TimerHandle]] = []
        for entry in self._heap:
            timer = entry[2]
            if entry[1] != timer._queued_token:
                continue
            if timer.deadline is None:
                timer._queued_token = 0
                continue
            kept.append(entry)
        heapq.heapify(kept)
        self._heap[:] = kept  # in place: ``entries`` is the same list
        self._discarded = 0

    def _push(self, timer: TimerHandle, at: Instant) -> None:
        token = next(self._tokens)
        timer._queued_token = token
        timer._queued_at = at
        heapq.heappush(self._heap, (at, token, timer))

    def _settle_top(self) -> None:
        """Pop stale entries and re-queue early ones until the top is exact."""
        heap = self._heap
        while heap:
            at, token, timer = heap[0]
            if token != timer._queued_token:
                heapq.heappop(heap)
                continue
            deadline = timer.deadline
            if deadline == at:
                return
            heapq.heappop(heap)
            if deadline is None:
                timer._queued_token = 0
            else:
                self._push(timer, deadline)

    def poll_at(self) -> Instant | None:
        """The earliest deadline of any armed timer, or None."""
        heap = self._heap
        if not heap:
            return None
        at, token, timer = heap[0]
        if token == timer._queued_token and timer.deadline == at:
            return at  # the top is exact already: the common case
        self._settle_top()
        return heap[0][0] if heap else None

    def run_due(self, now: Instant) -> int:
        """Fire every timer due at or before ``now``; return how many fired.

        A callback may re-arm its own or other timers, even for ``now``; those
        fire in the same call.
        """
        heap = self._heap
        fired = 0
        while True:
            self._settle_top()
            if not heap or heap[0][0] > now:
                return fired
            _, _, timer = heapq.heappop(heap)
            timer._queued_token = 0
            timer.deadline = None
            timer.callback(now)
            fired += 1

    def __len__(self) -> int:
        """Heap entries, stale ones included: bounded by owners plus re-arms-earlier."""
        return len(self._heap)


def _discarded(now: Instant) -> None:
    """The callback of a discarded timer: its owner is gone; nothing to do."""
