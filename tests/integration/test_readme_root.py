"""README.md's root blocks that can run here, run as written (issue 23).

A block marked ``<!-- readme-test: root (run by tests/integration/test_readme_root.py) -->``
is run with bash as root, with its namespace name made unique, ``sudo`` dropped where
there is none (we are root already) and ``simtcp`` being this checkout. Pasted as one
piece it must work: before the wait for ``ready`` was in the README, every command after
the first failed with "Cannot open network namespace".
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import link_exists, unique_name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MARK = "root (run by tests/integration/test_readme_root.py)"


def _blocks() -> list[str]:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import readme_samples
    finally:
        sys.path.pop(0)
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    return [
        b.text for b in readme_samples.blocks(lines) if b.marker == "test" and b.argument == MARK
    ]


def test_readme_has_a_root_block_to_run() -> None:
    assert _blocks()


@pytest.mark.parametrize("text", _blocks())
def test_root_block_runs_as_written(text: str, tmp_path: Path) -> None:
    namespace = unique_name("rdme")
    script = text.replace("simtcp-demo", namespace)
    if shutil.which("sudo") is None:
        script = script.replace("sudo ", "")
    wrapper = tmp_path / "bin" / "simtcp"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simtcp "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    environment["PATH"] = f"{wrapper.parent}{os.pathsep}{environment['PATH']}"
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "hello" in result.stdout.splitlines()
    assert "stopped" in (tmp_path / "serve.log").read_text()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert namespace not in namespaces  # what the server made, it removed
    assert not link_exists("tap-veth0", None)
