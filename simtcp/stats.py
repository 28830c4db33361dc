"""Counters per layer, readable as a plain dict: frames in/out, drops by reason, ..."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from .errors import DropReason


class Stats:
    """Named counters plus gauges read when asked; drops count as ``drop.<reason>``.

    Calling the object returns everything as a plain, sorted dict, so
    ``stack.stats()`` reads like a method while layers call ``stack.stats.count``.
    """

    __slots__ = ("_counters", "_gauges")

    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()
        self._gauges: dict[str, Callable[[], int]] = {}

    def count(self, name: str, amount: int = 1) -> None:
        self._counters[name] += amount

    def counters(self) -> Counter[str]:
        """The live counters themselves, for per-frame paths: ``counters[name] += 1``
        there is the same as :meth:`count` without the call."""
        return self._counters

    def drop(self, reason: DropReason) -> None:
        counters = self._counters
        counters["drop." + reason.value] += 1
        counters["drop.total"] += 1

    def gauge(self, name: str, read: Callable[[], int]) -> None:
        """Report ``read()`` under ``name`` (a current size, not a running count)."""
        self._gauges[name] = read

    def __getitem__(self, name: str) -> int:
        gauge = self._gauges.get(name)
        return gauge() if gauge is not None else self._counters[name]

    def as_dict(self) -> dict[str, int]:
        values = dict(self._counters)
        for name, read in self._gauges.items():
            values[name] = read()
        return dict(sorted(values.items()))

    __call__ = as_dict
