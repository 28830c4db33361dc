#!/usr/bin/env python3
"""The seed's program: the teeceepee2 topology served by simtcp over real TAP devices.

Run ``sudo python3 echo_reply_server.py --help``; ``simtcp serve`` is the same program.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from simtcp.programs.serve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(prog="echo_reply_server.py"))
