"""Argument types and the parser the programs share: user errors are one line and exit 2.

Every command reports a bad invocation the same way: ``simtcp CMD: error: MESSAGE`` on one
line of stderr, exit status 2, no usage dump and no traceback (tests/unit/test_cli_errors.py
holds every subcommand to it).
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

from ..time import Duration, parse_duration

EXIT_USAGE = 2

# argparse takes any word starting with "-" for an option unless it looks like a negative
# number, so "--delay -5ms" would fail as "expected one argument". Numbers with a unit
# ("-5ms", "-1.5s", "-3K") count as numbers too; the types then say what is wrong with them.
_NEGATIVE_NUMBER = re.compile(r"^-(\d+(\.\d*)?|\.\d+)[a-zA-Z/]*$")


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ...``) and exit 2."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def error_line(prog: str, message: str) -> str:
    """The one line a command prints for a user error that argparse did not catch."""
    return f"{prog}: error: {message}"


def probability(text: str) -> float:
    """A fraction in [0, 1] (0.05 = 5%)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1] (0.05 = 5%), got {text}")
    return value


def duration(text: str) -> Duration:
    """``20ms``, ``1.5s``, ``250us``: microseconds, never negative."""
    if text.strip().startswith("-"):
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def bounded_integer(text: str, low: int, high: int | None = None) -> int:
    """A base-10 integer in ``low..high`` (no upper bound when ``high`` is None)."""
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    if high is not None and value > high:
        raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
    return value


def output_file(text: str) -> str:
    """The name of a file to write: not empty (``--pcap ""`` would silently write nothing)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a file name, got an empty one")
    return text
