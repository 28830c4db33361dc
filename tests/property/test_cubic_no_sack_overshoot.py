"""CUBIC without SACK after a slow-start overshoot: no RTO cycle once recovered.

Found by bench/bench_loss_recovery.py (100 Mbit/s, 40 ms RTT, BDP queue): CUBIC
without SACK got 30 Mbit/s and an RTO every second at 0% loss, NewReno 93.
The overshoot's many losses end NewReno-style recovery with an RTO (RFC 6582
§3.2 step 5, Impatient). Cubic.on_rto then took ssthresh as 0.7 of a
FlightSize that RFC 5681 §3.2 step 4 inflation had pumped up to the whole send
buffer (about twice the path), so every slow start overshot again. An RTO
during fast recovery now keeps the recovery's ssthresh and W_max (RFC 9438
§4.6, §4.8; RFC 5681 §3.1 "no more than"). Figures are virtual time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_loss_recovery  # noqa: E402


@pytest.mark.parametrize("loss", [0.0, 0.001])
def test_cubic_without_sack_has_no_rto_after_the_overshoot(loss: float) -> None:
    cubic_mbit, cubic_rtos = bench_loss_recovery.run(loss, "cubic", False, seconds=3, seed=1)
    newreno_mbit, _ = bench_loss_recovery.run(loss, "newreno", False, seconds=3, seed=1)
    assert cubic_rtos == 0  # the bug: 3 RTOs in these 3 virtual seconds
    assert cubic_mbit >= 0.95 * newreno_mbit  # the bug: 30 against 93 Mbit/s at 0% loss
