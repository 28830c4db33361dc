"""The ``simtcp`` command's dispatcher: version, help, unknown commands, the console script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simtcp import __version__
from simtcp.programs.cli import SUBCOMMANDS, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"simtcp {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in SUBCOMMANDS:
        assert f"{command}:" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Bare ``simtcp`` prints the help on stderr and exits 2, the usage-error convention."""
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "usage: simtcp" in captured.err


def test_unknown_command_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["frobnicate"])
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "simtcp: error: unknown command 'frobnicate' (choose from serve, demo, sim, drill, "
        "plot, ss, stats) (see --help)"
    ]


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main([command, "--help"])
    except SystemExit as exited:
        code = exited.code  # type: ignore[assignment]
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "simtcp", "--version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"simtcp {__version__}")


# The script installed beside this interpreter, not whichever ``simtcp`` is first on PATH
# (a stale one from another install would test the wrong program).
CONSOLE_SCRIPT = Path(sys.executable).with_name("simtcp")


@pytest.mark.skipif(
    not CONSOLE_SCRIPT.exists(), reason=f"the package is not installed beside {sys.executable}"
)
def test_console_script_is_installed() -> None:
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "--version"], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, f"simtcp {__version__}")
