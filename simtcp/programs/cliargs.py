"""Argument types and the parser the programs share: user errors are one line and exit 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..time import Duration, parse_duration

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``prog: error: ...``) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


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
    """``20ms``, ``1.5s``, ``250us``: microseconds."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
