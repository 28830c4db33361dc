"""The throughput grid: goodput of one transfer over loss x delay x rate, in virtual time.

Every cell is one :func:`~simtcp.programs.transfer.run_transfer` with a fixed seed, so
the grid is exact: the same code gives the same numbers on any machine, and any change
in TCP behaviour (recovery, congestion control, timers) shows as a diff of the snapshot
``tests/data/throughput_grid.json``, checked by ``tests/unit/test_throughput_grid.py``.
A change that moves it on purpose regenerates it (and the diff is reviewed)::

    PYTHONPATH=. python3 -m simtcp.programs.throughput_grid > tests/data/throughput_grid.json

The grid is kept small (36 cells of 256 KiB, ~5 s of CPU) so the test stays cheap.
"""

from __future__ import annotations

import json
import sys

from simtcp.backends.impair import LinkProfile
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.time import MILLISECOND

LOSSES = (0.0, 0.005, 0.02, 0.05)
DELAYS_MS = (1, 10, 50)
RATES_MBIT = (10, 100, 1000)
BYTES = 256 * 1024
SEED = 1


def cell(loss: float, delay_ms: int, rate_mbit: int) -> dict[str, object]:
    """One cell of the grid: the link, and what one transfer over it achieved."""
    link = LinkProfile(loss=loss, delay=delay_ms * MILLISECOND, rate=rate_mbit * 10**6)
    result = run_transfer(TransferSpec(bytes=BYTES, seed=SEED, forward=link, backward=link))
    seconds = result.virtual_seconds
    return {
        "loss": loss,
        "delay_ms": delay_ms,
        "rate_mbit": rate_mbit,
        "ok": result.ok,
        "virtual_seconds": seconds,
        "goodput_mbit": round(result.bytes_delivered * 8 / seconds / 1e6, 3) if seconds else None,
        "retransmits": result.retransmits,
    }


def grid() -> dict[str, object]:
    return {
        "what": "goodput of one transfer over loss x delay x rate (each direction), "
        "virtual time; regenerate: python3 -m simtcp.programs.throughput_grid",
        "bytes": BYTES,
        "seed": SEED,
        "cells": [
            cell(loss, delay, rate) for loss in LOSSES for delay in DELAYS_MS for rate in RATES_MBIT
        ],
    }


def main() -> int:
    json.dump(grid(), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
