"""Bad invocations of every subcommand: one line ``simtcp CMD: error: ...``, exit 2 (issue 23).

Each row is run as a user would, through ``python3 -m simtcp``; nothing here needs root or
creates a device (serve's rows all fail before set-up, as root or not).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# (arguments, the command named at the start of the line, a part of the message)
BAD = [
    ([], "simtcp", ""),
    (["frobnicate"], "simtcp", "unknown command"),
    (["--bogus"], "simtcp", "unrecognized arguments"),
    (["demo", "--loss", "2"], "simtcp demo", "fraction"),
    (["demo", "--delay", "-5ms"], "simtcp demo", "must not be negative"),
    (["demo", "--delay", "soon"], "simtcp demo", "not a duration"),
    (["demo", "--pcap", ""], "simtcp demo", "needs a file name"),
    (["demo", "--pcap", "/proc/version"], "simtcp demo", "cannot write /proc/version"),
    (["demo", "--pcap", "/nonexistent-dir/x.pcap"], "simtcp demo", "cannot write"),
    (["demo", "--seed", "x"], "simtcp demo", "--seed"),
    (["demo", "extra"], "simtcp demo", "unrecognized arguments"),
    (["sim"], "simtcp sim", "required"),
    (["sim", "bogus"], "simtcp sim", "invalid choice"),
    (["sim", "transfer", "--bytes", "x"], "simtcp sim transfer", "not a size"),
    (["sim", "transfer", "--delay", "-5ms"], "simtcp sim transfer", "must not be negative"),
    (["sim", "transfer", "--delay=-5ms"], "simtcp sim transfer", "must not be negative"),
    (["sim", "transfer", "--loss", "1.5"], "simtcp sim transfer", "probability"),
    (["sim", "transfer", "--rate", "fast"], "simtcp sim transfer", "not a rate"),
    (["sim", "transfer", "--mtu", "10"], "simtcp sim transfer", "must be at least 68, got 10"),
    (["sim", "transfer", "--pcap", ""], "simtcp sim transfer", "needs a file name"),
    (
        ["sim", "transfer", "--bytes", "1K", "--pcap", "/proc/version"],
        "simtcp sim transfer",
        "cannot write /proc/version",
    ),
    (["sim", "campaign", "--seeds", "0"], "simtcp sim campaign", "must be at least 1, got 0"),
    (["sim", "campaign", "--workers", "0"], "simtcp sim campaign", "must be at least 1"),
    (["sim", "scenario"], "simtcp sim scenario", "required"),
    (["sim", "scenario", "/nonexistent.toml"], "simtcp sim scenario", "cannot read"),
    (["sim", "scenario", "x.toml", "--seed", "-1"], "simtcp sim scenario", "at least 0"),
    (["drill"], "simtcp drill", "required"),
    (["drill", "--tolerance-usecs", "x", "a.pkt"], "simtcp drill", "--tolerance-usecs"),
    (["drill", "--bogus", "a.pkt"], "simtcp drill", "unrecognized arguments"),
    (["serve", "--loss", "2"], "simtcp serve", "fraction"),
    (["serve", "--pcap", ""], "simtcp serve", "needs a file name"),
    (["serve", "--pcap-wire"], "simtcp serve", "--pcap-wire needs --pcap"),
    (["serve", "--seed", "x"], "simtcp serve", "--seed"),
    (["serve", "--bogus"], "simtcp serve", "unrecognized arguments"),
]


@pytest.mark.parametrize(("arguments", "command", "part"), BAD, ids=[" ".join(b[0]) for b in BAD])
def test_bad_invocation_is_one_line_and_exit_2(
    arguments: list[str], command: str, part: str, tmp_path: Path
) -> None:
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "simtcp", *arguments],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    if arguments:  # bare `simtcp` prints its help on stderr, as git does
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"{command}: error: "), lines[0]
        assert part in lines[0], lines[0]
