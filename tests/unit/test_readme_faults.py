"""The README's fault example runs and prints what its comment says."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path


def test_readme_fault_example_runs() -> None:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    start = text.index("from simtcp.backends.faults import FaultNet")
    code = text[start : text.index("```", start)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue() == "closed 100000 True\n"
