"""Every code block of README.md is run or checked, so the front door cannot rot (issue 23).

How a block is treated, by its language and the HTML comment just before it:

- ``python``: executed as a program of its own (a fresh interpreter, this checkout first on the
  path); the blocks that need a network use the simulator, in virtual time;
- ``python`` after ``<!-- readme-test: excerpt FILE -->``: a fragment of FILE; its lines
  (comments and indentation aside) must appear in FILE in order, as one run;
- ``bash``: every line is a ``simtcp`` command run here (a ``simtcp`` on PATH that is this
  checkout's ``python3 -m simtcp``) and must exit 0;
- after ``<!-- readme-sample: COMMAND -->``: a sample output, which must match what COMMAND
  prints now, wall-clock and CPU times aside (``python3 tools/readme_samples.py`` rewrites it);
- ``text``: a diagram or a listing, nothing to run;
- after ``<!-- readme-test: root ... -->``: needs root and TAP devices: not run by the unit suite
  (the integration suite runs ``simtcp serve`` and the examples over real TAPs);
- after ``<!-- readme-test: install ... -->``: installing commands, which are what .ci/run does
  on a fresh clone;
- after ``<!-- readme-test: skip: REASON -->``: not run, for the REASON given.

A block that fits none of these fails the test, naming its line.
"""

from __future__ import annotations

import importlib.util
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "readme_samples", ROOT / "tools/readme_samples.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_samples"] = module
    spec.loader.exec_module(module)
    return module


TOOL = _tool()
BLOCKS = TOOL.blocks((ROOT / "README.md").read_text(encoding="utf-8").splitlines())


def _ids(kind: str) -> list[object]:
    return [pytest.param(b, id=f"line{b.line}") for b in BLOCKS if _kind(b) == kind]


def _kind(block: Any) -> str:
    marker, argument, language = block.marker, block.argument, block.language
    if marker == "sample":
        return "sample"
    if marker == "test":
        word = re.split(r"[\s:(]", argument, maxsplit=1)[0]
        if word in ("root", "install", "skip", "excerpt"):
            return word
        return f"unknown marker {argument!r}"
    if language in ("python", "bash", "text"):
        return language
    return f"a block with language {language!r} and no readme-test marker"


def _environment(tmp_path: Path) -> dict[str, str]:
    """PATH with a ``simtcp`` that is this checkout, PYTHONPATH with this checkout first."""
    wrapper = tmp_path / "bin" / "simtcp"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m simtcp "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    environment = dict(os.environ)
    environment["PATH"] = f"{wrapper.parent}{os.pathsep}{environment.get('PATH', '')}"
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT), environment.get("PYTHONPATH", "")) if part
    )
    return environment


def test_every_block_is_run_or_marked() -> None:
    known = {"sample", "root", "install", "skip", "excerpt", "python", "bash", "text"}
    unknown = [f"README.md:{b.line}: {_kind(b)}" for b in BLOCKS if _kind(b) not in known]
    assert not unknown, "\n".join(unknown) + "\n(see the docstring of tests/unit/test_readme.py)"
    assert len(_ids("python")) >= 2 and len(_ids("sample")) >= 2


@pytest.mark.parametrize("block", _ids("python"))
def test_python_block_runs(block: Any, tmp_path: Path) -> None:
    program = tmp_path / "block.py"
    program.write_text(block.text)
    result = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"README.md:{block.line}:\n{result.stderr[-3000:]}"


def _code_lines(text: str) -> list[str]:
    lines = (re.sub(r"\s+#.*$", "", line).strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("block", _ids("excerpt"))
def test_python_excerpt_is_in_its_program(block: Any) -> None:
    source = ROOT / block.argument.split(maxsplit=1)[1]
    wanted, have = _code_lines(block.text), _code_lines(source.read_text())
    runs = [have[i : i + len(wanted)] for i in range(len(have) - len(wanted) + 1)]
    assert wanted in runs, f"README.md:{block.line}: not one run of lines in {source.name}"


@pytest.mark.parametrize("block", _ids("bash"))
def test_bash_block_runs(block: Any, tmp_path: Path) -> None:
    commands = [line for line in block.text.splitlines() if line.strip()]
    others = [line for line in commands if not line.startswith("simtcp ")]
    assert not others, f"README.md:{block.line}: not a simtcp command (mark the block): {others}"
    for command in commands:
        result = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=_environment(tmp_path),
            capture_output=True,
            text=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        assert result.returncode == 0, f"README.md:{block.line}: {command}\n{result.stderr[-2000:]}"


@pytest.mark.parametrize("block", _ids("sample"))
def test_sample_matches_what_the_command_prints(block: Any) -> None:
    command = block.argument
    assert block.text.startswith(f"$ {command}\n"), (
        f"README.md:{block.line}: starts with $ {command}"
    )
    now = TOOL.sample_text(command)
    assert TOOL.masked(now) == TOOL.masked(block.text), (
        f"README.md:{block.line}: the sample differs from what `{command}` prints now; "
        "run python3 tools/readme_samples.py to rewrite it"
    )


def test_masking_hides_only_the_volatile_fields() -> None:
    line = "  virtual 1.828s (goodput 4.59 Mbit/s), wall 0.401s, cpu 0.065s"
    assert TOOL.masked(line) == "  virtual 1.828s (goodput 4.59 Mbit/s), wall <s>, cpu <s>"
