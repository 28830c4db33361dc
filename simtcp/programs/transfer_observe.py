"""What ``simtcp sim transfer`` shows besides its summary: --trace, --plot and a progress bar.

:class:`TransferObserver` is a context manager around one run: it opens the trace
file (JSON lines, :mod:`simtcp.trace`, whose header record carries the seed and
the whole :class:`TransferSpec`), keeps the records in memory when only a plot
is asked for, draws the plot when the run ends, and draws a progress bar on
stderr when stderr is a terminal, the transfer is large and ``--json`` is off.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from simtcp.programs.transfer_spec import TransferSpec
from simtcp.trace import ConnectionTrace

__all__ = ["PROGRESS_MIN_BYTES", "ObserveError", "TransferObserver", "add_observe_options"]

PROGRESS_MIN_BYTES = 8 << 20
"""Transfers from this size up draw a progress bar (on a terminal)."""


class ObserveError(Exception):
    """A --trace or --plot the run cannot honour: one line for the user."""


def add_observe_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("observing")
    group.add_argument(
        "--trace", metavar="FILE", help="write a connection trace (JSON lines, schema v1)"
    )
    group.add_argument(
        "--plot", metavar="FILE", help="draw the transfer (.png or .svg; needs simtcp[plot])"
    )


def _header(args: argparse.Namespace, spec: TransferSpec) -> dict[str, Any]:
    config = json.loads(json.dumps(dataclasses.asdict(spec), default=str))
    return {"seed": args.seed, "program": "simtcp sim transfer", "config": config}


class _Bar:
    """``[#####.....] 12.5/16.8 MB`` redrawn in place when the percentage moves."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.percent = -1

    def __call__(self, done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent == self.percent:
            return
        self.percent = percent
        filled = self.width * percent // 100
        with contextlib.suppress(OSError):
            self.stream.write(
                f"\r[{'#' * filled}{'.' * (self.width - filled)}] "
                f"{done / 1e6:.1f}/{total / 1e6:.1f} MB"
            )
            self.stream.flush()

    def finish(self) -> None:
        if self.percent >= 0:
            with contextlib.suppress(OSError):
                self.stream.write("\n")


class TransferObserver:
    """Opens what ``args`` ask for; ``trace`` and ``progress`` go to ``run_transfer``."""

    def __init__(
        self, args: argparse.Namespace, spec: TransferSpec, *, stderr: TextIO | None = None
    ) -> None:
        self.args = args
        self.trace: ConnectionTrace | None = None
        self._file: TextIO | None = None
        stream = sys.stderr if stderr is None else stderr
        total = spec.connections * (spec.bytes + spec.reverse_bytes)
        large = total >= PROGRESS_MIN_BYTES
        self._bar = _Bar(stream) if large and stream.isatty() and not args.json else None
        self.progress = self._bar
        if args.plot:
            self._check_plot(args.plot)
        if args.trace:
            try:
                self._file = open(args.trace, "w", encoding="utf-8")  # noqa: SIM115 -- __exit__
            except OSError as error:
                raise ObserveError(f"cannot write {args.trace}: {error.strerror}") from None
        if args.trace or args.plot:
            self.trace = ConnectionTrace(
                header=_header(args, spec),
                sink=None if self._file is None else self._file.write,
                keep=bool(args.plot),
            )

    @staticmethod
    def _check_plot(path: str) -> None:
        from simtcp.programs.plot import MISSING_MATPLOTLIB

        if Path(path).suffix.lower() not in (".png", ".svg"):
            raise ObserveError(f"cannot draw {path}: the image must end in .png or .svg")
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ObserveError(MISSING_MATPLOTLIB) from None

    def __enter__(self) -> TransferObserver:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.finish()
        if self.trace is not None:
            self.trace.close()
        if self._file is not None:
            self._file.close()
        if error is None and self.trace is not None and self.args.plot:
            self._draw()

    def _draw(self) -> None:
        from simtcp.programs.plot import PlotError, draw
        from simtcp.programs.tcpseries import SeriesError, from_records

        assert self.trace is not None
        try:
            series = from_records(self.trace.records[1:])
            draw(series, self.args.plot, title=f"simtcp sim transfer --seed {self.args.seed}")
        except (SeriesError, PlotError) as failure:
            raise ObserveError(str(failure)) from None
