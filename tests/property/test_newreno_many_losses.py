"""NewReno without SACK after a slow-start overshoot: many losses in one window.

Found by bench/bench_loss_recovery.py: restarting the retransmission timer on
every partial ACK ("Slow-but-Steady") repaired one segment per RTT for
seconds, 0.58 Mbit/s on a 100 Mbit/s link. RFC 6582 §3.2 step 5 restarts it
on the first partial ACK only, so the RTO then resends the rest.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import bench_loss_recovery  # noqa: E402


def test_newreno_without_sack_recovers_a_burst_of_losses_at_link_speed() -> None:
    goodput_mbit, _ = bench_loss_recovery.run(0.0, "newreno", False, seconds=1, seed=1)
    assert goodput_mbit > 50  # measured in virtual time; the bug gave 0.58
