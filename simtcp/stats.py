"""Counters per layer, readable as a plain dict: frames in/out, drops by reason, ..."""

from __future__ import annotations

from collections import Counter

from .errors import DropReason


class Stats:
    """Named counters. Drops are counted as ``drop.<reason>`` and in ``drop.total``."""

    __slots__ = ("_counters",)

    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()

    def count(self, name: str, amount: int = 1) -> None:
        self._counters[name] += amount

    def drop(self, reason: DropReason) -> None:
        counters = self._counters
        counters["drop." + reason.value] += 1
        counters["drop.total"] += 1

    def __getitem__(self, name: str) -> int:
        return self._counters[name]

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self._counters.items()))
