"""The simtcp pytest plugin, run in a child pytest: fixture, async tests, seed, replay line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SAMPLE = """
import asyncio
import pytest
from hypothesis import given, settings
from simtcp.backends.sim import LinkProfile
from simtcp.programs.pytest_plugin import simtcp_seeds


async def echo(reader, writer):
    writer.write(await reader.read())
    writer.close()


@pytest.mark.simtcp(hosts={"server": LinkProfile(delay=1000, loss=0.05), "client": None})
async def test_async_echo(simnet):
    with simnet.host("server"):
        await asyncio.start_server(echo, port=7)
    with simnet.host("client"):
        reader, writer = await asyncio.open_connection("server", 7)
        writer.write(b"x" * 10000)
        writer.write_eof()
        assert len(await reader.read()) == 10000
    await asyncio.sleep(60)  # virtual


def test_sync_fails(simnet):
    simnet.add_host("a")
    assert simnet.seed < 0


@settings(max_examples=3, deadline=None)
@given(seed=simtcp_seeds())
def test_hypothesis(simnet_factory, seed):
    net = simnet_factory(seed)
    net.add_host("only")

    async def main():
        await asyncio.sleep(1)
        return asyncio.get_running_loop().time()

    assert net.run(main()) == 1.0
"""


def run_child(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[2]), environment.get("PYTHONPATH", "")]
    )
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:simtcp",
            "-p",
            "simtcp.programs.pytest_plugin",
            str(tmp_path / "test_sample.py"),
            *arguments,
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )


def test_plugin_runs_async_and_hypothesis_tests_and_prints_the_replay_command(
    tmp_path: Path,
) -> None:
    child = run_child(tmp_path, "--simtcp-seed", "42")
    assert "1 failed, 2 passed" in child.stdout, child.stdout + child.stderr
    assert "simtcp seed 42; replay with: python3 -m pytest" in child.stdout
    assert "test_sync_fails' --simtcp-seed 42" in child.stdout
