"""Flat memory over many short connections with kernel clients over TAP (issue 15).

A connection that is gone must be unreachable at once: no ``Connection``
outlives its close plus TIME-WAIT (counted with ``gc`` without collecting, so
a reference cycle counts as a leak), and the process RSS after the run and
after TIME-WAIT does not grow from one round to the next (the allocator keeps
what the peak of TIME-WAITs took, and reuses it). Sized to run in well under a minute;
``bench/bench_tap_soak.py`` runs the 100,000-connection version.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .soak import run_soak

pytestmark = pytest.mark.timeout(240)

COUNT = 3000


@pytest.mark.parametrize("client_closes", [False, True], ids=["server-closes", "client-closes"])
def test_short_connections_leave_nothing_behind(
    make_netns: Callable[[], str], client_closes: bool
) -> None:
    result = run_soak(make_netns(), count=COUNT, client_closes=client_closes)
    print(result)
    for round in result.rounds:
        assert round.client["failed"] == 0, round.client
        assert round.client["count"] == COUNT
        # Nothing outlives the stack's own table (TIME-WAIT only), and then nothing at all.
        assert round.objects_after <= round.live_after + 1, round
        assert round.live_after_time_wait == 0, round
        assert round.objects_after_time_wait <= 1, round
    first, second = result.rounds
    # Flat: serving the second round costs no memory the first did not already take.
    assert second.rss_after_time_wait_kib <= first.rss_after_time_wait_kib * 1.1, result
    growth_per_connection = (first.rss_after_kib - result.rss_start_kib) * 1024 / COUNT
    assert growth_per_connection < 8 * 1024, result  # a TIME-WAIT costs a few KiB at most
