"""Regenerate (or check) README.md's sample output blocks from the commands that print them.

A sample block is a fenced block right after an HTML comment naming its command::

    <!-- readme-sample: simtcp sim transfer --bytes 1M --seed 7 -->
    ```
    $ simtcp sim transfer --bytes 1M --seed 7
    transfer: ...
    ```

``python3 tools/readme_samples.py`` runs each command (``simtcp`` is this checkout's
``python3 -m simtcp``) and rewrites the block to ``$ COMMAND`` and what it printed;
``--check`` rewrites nothing and exits 1 when a block differs from what its command prints now,
comparing only the deterministic parts: the fields in :data:`VOLATILE` (wall-clock and CPU
time) are masked on both sides. tests/unit/test_readme.py runs the check.

The same module parses README.md into blocks for that test: :func:`blocks`.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

# Fields that differ from run to run (wall clock, CPU): masked before comparing.
VOLATILE = [
    (re.compile(r"\bwall \d+(\.\d+)?s"), "wall <s>"),
    (re.compile(r"\bcpu \d+(\.\d+)?s"), "cpu <s>"),
    (re.compile(r'"(wall_seconds|cpu_seconds)": [0-9.e-]+'), r'"\1": <s>'),
]

_MARKER = re.compile(r"^<!--\s*readme-(sample|test):\s*(.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(\s*)```(\S*)\s*$")


@dataclass
class Block:
    """One fenced code block of README.md."""

    language: str  # after the opening fence: "python", "bash", "" ...
    text: str  # the lines between the fences
    line: int  # 1-based line number of the opening fence
    start: int  # 0-based index of the first content line
    end: int  # 0-based index of the closing fence
    marker: str | None = None  # "sample" or "test", from an HTML comment just before
    argument: str = ""  # the marker's text: the command, or "root", "skip: why", ...


def blocks(lines: list[str]) -> list[Block]:
    """The fenced blocks of ``lines`` (without line ends), each with the marker before it."""
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        close = index + 1
        while close < len(lines) and lines[close].strip() != "```":
            close += 1
        if close == len(lines):
            raise ValueError(f"README.md:{index + 1}: a code fence is never closed")
        block = Block(opening.group(2), "\n".join(lines[index + 1 : close]), index + 1,
                      index + 1, close)  # fmt: skip
        previous = index - 1
        while previous >= 0 and not lines[previous].strip():
            previous -= 1
        marker = _MARKER.match(lines[previous]) if previous >= 0 else None
        if marker:
            block.marker, block.argument = marker.group(1), marker.group(2)
        found.append(block)
        index = close + 1
    return found


def simtcp_argv(command: str) -> list[str]:
    """``simtcp ARGS`` as this checkout's ``python3 -m simtcp ARGS``."""
    words = shlex.split(command)
    if not words or words[0] != "simtcp":
        raise ValueError(f"a sample's command must start with 'simtcp': {command!r}")
    return [sys.executable, "-m", "simtcp", *words[1:]]


def run(command: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run a README command from the repository root with this checkout first on the path."""
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT), environment.get("PYTHONPATH", "")) if part
    )
    environment["COLUMNS"] = "80"
    return subprocess.run(
        simtcp_argv(command),
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def sample_text(command: str) -> str:
    """What a sample block for ``command`` holds now: ``$ command`` and its stdout."""
    result = run(command)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command!r} exited {result.returncode}: {result.stderr.strip()[-500:]}"
        )
    return f"$ {command}\n{result.stdout.rstrip()}"


def masked(text: str) -> str:
    """``text`` with the volatile fields masked."""
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args(argv)
    lines = args.readme.read_text(encoding="utf-8").splitlines()
    differ = 0
    for block in reversed(blocks(lines)):  # from the end, so earlier indices stay valid
        if block.marker != "sample":
            continue
        now = sample_text(block.argument)
        if masked(now) == masked(block.text):
            continue
        differ += 1
        if args.check:
            diff = difflib.unified_diff(
                block.text.splitlines(), now.splitlines(), "README.md", "now", lineterm=""
            )
            print(f"README.md:{block.line}: the sample differs from what the command prints:")
            print("\n".join(diff))
        else:
            lines[block.start : block.end] = now.splitlines()
    if not args.check and differ:
        args.readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"rewrote {differ} sample block(s) in {args.readme}")
    return 1 if args.check and differ else 0


if __name__ == "__main__":
    sys.exit(main())
