#!/usr/bin/env python3
"""Regenerate docs/transfer.png, the plot README.md shows, with the command README.md gives.

Run from the repository: ``python3 tools/make_readme_plot.py`` (needs ``simtcp[plot]``).
The transfer is seeded, so the picture only changes when the engine does.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from simtcp.programs import sim  # noqa: E402

COMMAND = [
    "transfer", "--bytes", "256K", "--loss", "0.01", "--delay", "10ms", "--rate", "20Mbit",
    "--seed", "3", "--plot", str(REPO / "docs" / "transfer.png"),
]  # fmt: skip
"""README.md: ``simtcp sim transfer --bytes 256K --loss 0.01 --delay 10ms --rate 20Mbit
--seed 3 --plot docs/transfer.png``."""

if __name__ == "__main__":
    sys.exit(sim.main(COMMAND))
