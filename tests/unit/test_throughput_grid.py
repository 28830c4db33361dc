"""The throughput grid snapshot: goodput over loss x delay x rate, exact in virtual time.

A failure here means TCP behaves differently from when the snapshot was taken. If the
change is intended, regenerate the snapshot and review its diff::

    PYTHONPATH=. python3 -m simtcp.programs.throughput_grid > tests/data/throughput_grid.json
"""

from __future__ import annotations

import json
import pathlib

from simtcp.programs import throughput_grid

SNAPSHOT = pathlib.Path(__file__).resolve().parents[1] / "data" / "throughput_grid.json"


def test_the_grid_matches_the_snapshot() -> None:
    stored = json.loads(SNAPSHOT.read_text())
    computed = json.loads(json.dumps(throughput_grid.grid()))  # the same float round trip
    assert {k: v for k, v in computed.items() if k != "cells"} == {
        k: v for k, v in stored.items() if k != "cells"
    }
    changed = [
        f"loss {new['loss']} delay {new['delay_ms']}ms rate {new['rate_mbit']}Mbit: "
        f"{old['goodput_mbit']} -> {new['goodput_mbit']} Mbit/s, "
        f"{old['retransmits']} -> {new['retransmits']} retransmits"
        for old, new in zip(stored["cells"], computed["cells"], strict=True)
        if old != new
    ]
    assert not changed, "throughput grid changed (regenerate if intended):\n" + "\n".join(changed)


def test_every_cell_delivers_and_goodput_stays_under_the_rate() -> None:
    # The invariant behind the snapshot: each transfer completes and no cell beats its link.
    for cell in json.loads(SNAPSHOT.read_text())["cells"]:
        assert cell["ok"]
        assert 0 < cell["goodput_mbit"] <= cell["rate_mbit"]
