"""Queues and impairments added for fault scenarios: packet limits, CoDel, jitter, bursts."""

from __future__ import annotations

import random

import pytest

from simtcp.backends.codel import CoDel
from simtcp.backends.impair import Impairment, LinkProfile
from simtcp.errors import ConfigError
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND, SECOND


def test_drop_tail_by_packets() -> None:
    impairment = Impairment(LinkProfile(rate=8_000_000, queue_packets=3), random.Random(1))
    arrivals = [impairment.arrival_at(1000, 0) for _ in range(5)]
    assert arrivals == [1000, 2000, 3000, -1, -1]  # 1000 bytes at 8 Mbit/s: 1 ms each
    assert impairment.counters["queue_drops"] == 2
    assert impairment.room_at(1000, 0) == 1000  # the first leaves at 1 ms


def test_room_at_by_bytes() -> None:
    impairment = Impairment(LinkProfile(rate=8_000_000, queue_limit=2500), random.Random(1))
    assert impairment.arrival_at(1000, 0) == 1000
    assert impairment.arrival_at(1000, 0) == 2000
    assert impairment.room_at(1000, 0) == 1000
    assert impairment.room_at(400, 0) == 0


def test_codel_drops_only_a_standing_queue() -> None:
    codel = CoDel(target=5 * MILLISECOND, interval=100 * MILLISECOND)
    # Short sojourn: never.
    assert not any(codel.should_drop(MILLISECOND, t * MILLISECOND, 10**6) for t in range(500))
    # A standing 20 ms queue: the first drop one interval after it formed, then faster.
    drops = [
        t for t in range(500, 1500) if codel.should_drop(20 * MILLISECOND, t * MILLISECOND, 10**6)
    ]
    assert drops[0] == 600
    gaps = [b - a for a, b in zip(drops, drops[1:], strict=False)]
    assert gaps[0] == 100 - 30 + 1 or gaps[0] <= 100  # interval / sqrt(2) ~ 71 ms
    assert gaps[-1] < gaps[0]  # RFC 8289 §5.5: the drop rate grows


def _last_delays(qdisc: str) -> list[int]:
    """Unresponsive traffic at 1.2x a 10 Mbit/s link for 8 s: the queue delay at the end."""
    profile = LinkProfile(rate=10_000_000, queue_limit=10**8, qdisc=qdisc)
    impairment = Impairment(profile, random.Random(1))
    delays = []
    for index in range(8000):
        sent_at = index * 1000
        at = impairment.arrival_at(1500, sent_at)
        if at >= 0:
            delays.append(at - sent_at)
    return delays[-200:]


def test_codel_link_keeps_delay_below_drop_tail() -> None:
    codel, drop_tail = _last_delays("codel"), _last_delays("droptail")
    assert min(drop_tail) > SECOND  # 20% too much for 8 s: 1.6 s of queue
    assert max(codel) < min(drop_tail) / 4  # RFC 8289 §5.5's rising drop rate catches up


@pytest.mark.parametrize("distribution", ["uniform", "normal", "pareto"])
def test_jitter_never_reorders(distribution: str) -> None:
    profile = LinkProfile(
        delay=10 * MILLISECOND, jitter=5 * MILLISECOND, jitter_distribution=distribution
    )
    impairment = Impairment(profile, random.Random(3))
    arrivals = [impairment.apply(b"x" * 60, t * 4000)[0][0] for t in range(2000)]
    assert arrivals == sorted(arrivals)
    assert len(set(arrivals)) > 100  # it did jitter


def test_uniform_jitter_draws_as_before() -> None:
    old = Impairment(LinkProfile(delay=10, jitter=5), random.Random(9))
    rng = random.Random(9)
    expected = [max(0, 10 + rng.randint(-5, 5)) for _ in range(50)]
    got = [old.apply(b"x", 0)[0][0] for _ in range(50)]
    running = 0
    clamped = []
    for value in expected:
        running = max(running, value)
        clamped.append(running)
    assert got == clamped


def test_gilbert_elliott_losses_come_in_bursts() -> None:
    profile = LinkProfile(burst_enter=0.01, burst_leave=0.2, burst_loss=1.0)
    impairment = Impairment(profile, random.Random(5))
    lost = [impairment.arrival_at(100, t) < 0 for t in range(100_000)]
    rate = sum(lost) / len(lost)
    assert 0.02 < rate < 0.08  # stationary bad-state share 0.01 / 0.21 ~ 4.8%
    runs = sum(1 for a, b in zip(lost, lost[1:], strict=False) if b and not a)
    assert sum(lost) / runs > 3  # mean burst 1 / 0.2 = 5 frames, not 1


def test_bad_profiles_are_refused() -> None:
    with pytest.raises(ConfigError):
        LinkProfile(qdisc="red")
    with pytest.raises(ConfigError):
        LinkProfile(jitter_distribution="cauchy")
    with pytest.raises(ConfigError):
        LinkProfile(burst_enter=2.0)
    assert SECOND  # keep the import honest


def test_a_burst_waits_in_the_host_queue_instead_of_being_dropped() -> None:
    link = LinkProfile(rate=10_000_000_000)
    results = {
        queue: run_transfer(
            TransferSpec(
                bytes=4096, connections=300, seed=2, forward=link, backward=link, host_queue=queue
            )
        )
        for queue in (None, 50)
    }
    drops = {q: sum(s["queue_drops"] for s in r.link_stats.values()) for q, r in results.items()}
    assert all(result.ok for result in results.values())
    assert drops[None] > 0 and drops[50] == 0
    assert results[50].virtual_seconds < results[None].virtual_seconds / 10
