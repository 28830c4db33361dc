"""Run the suite, or one server, with ``StackConfig.fast_paths`` off: the layered paths alone.

``SIMTCP_FAST_PATHS=0 python3 -m pytest ...`` makes every ``StackConfig`` built in the
test process default to ``fast_paths=False`` (``tests/conftest.py`` calls
:func:`apply`), and the integration tests start the server through this file
(``python3 tests/layered.py [serve options]``: ``echo_reply_server.py`` with the
same default), so property and integration tests alike run on the oracle paths.
Tests that compare the two paths set ``fast_paths`` explicitly and are unaffected.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENVIRONMENT = "SIMTCP_FAST_PATHS"


def requested() -> bool:
    """Whether the environment asks for the layered paths (``SIMTCP_FAST_PATHS=0``)."""
    return os.environ.get(ENVIRONMENT, "1") == "0"


def apply() -> None:
    """Make ``fast_paths=False`` the default of every ``StackConfig`` built from now on."""
    from simtcp.config import StackConfig

    defaults = StackConfig.__init__.__kwdefaults__
    if defaults is None or "fast_paths" not in defaults:
        raise RuntimeError("StackConfig.fast_paths is no longer a keyword-only field")
    defaults["fast_paths"] = False


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    apply()
    from simtcp.programs.serve import main as serve_main

    return serve_main(prog="echo_reply_server.py")


if __name__ == "__main__":
    sys.exit(main())
