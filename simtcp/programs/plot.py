"""``simtcp plot TRACE|PCAP -o FILE``: tcptrace-style pictures of one TCP flow.

Four panels share the time axis: the time-sequence graph (data segments, with
retransmissions in red, the ACK line, the receive-window line, SACK blocks),
cwnd and ssthresh (from a trace; a pcap shows bytes in flight instead), RTT
samples with srtt and RTO, and goodput. The series come from
:mod:`simtcp.programs.tcpseries` (pure, tested); this module only draws them.
matplotlib is the optional ``plot`` extra, imported only here and only when drawing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .cliargs import OneLineParser
from .tcpseries import FlowSeries, SeriesError, from_pcap, from_trace

__all__ = ["PlotError", "draw", "load_series", "main"]

MISSING_MATPLOTLIB = "plotting needs matplotlib: pip install 'simtcp[plot]'"
_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")


class PlotError(Exception):
    """Drawing is impossible (no matplotlib, an unknown image format): one line."""


def load_series(path: str) -> FlowSeries:
    """A trace (JSON lines) or a pcap, told apart by the first bytes."""
    try:
        with open(path, "rb") as stream:
            if stream.read(4) in _PCAP_MAGICS:
                stream.seek(0)
                return from_pcap(stream)
        with open(path, encoding="utf-8", errors="replace") as text:
            return from_trace(text)
    except OSError as error:
        raise SeriesError(f"cannot read {path}: {error.strerror}") from None


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise PlotError(MISSING_MATPLOTLIB) from None
    return pyplot


def draw(series: FlowSeries, output: str, *, title: str = "") -> None:
    """Write the four panels to ``output`` (.png or .svg)."""
    suffix = Path(output).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise PlotError(f"cannot draw {output}: the image must end in .png or .svg")
    pyplot = _pyplot()
    figure, axes = pyplot.subplots(4, 1, figsize=(9, 10), sharex=True)
    _time_sequence(axes[0], series)
    _congestion(axes[1], series)
    _rtt(axes[2], series)
    _goodput(axes[3], series)
    axes[3].set_xlabel("time (s)")
    figure.suptitle(title or f"{series.flow} ({series.origin})", fontsize=10)
    figure.tight_layout()
    try:
        figure.savefig(output, dpi=80)
    except OSError as error:
        raise PlotError(f"cannot write {output}: {error.strerror}") from None
    finally:
        pyplot.close(figure)


def _segments(axis: Any, points: list[tuple[float, int, int]], color: str, label: str) -> None:
    if points:
        times = [at for at, _, _ in points]
        axis.vlines(times, [a for _, a, _ in points], [b for _, _, b in points], colors=color,
                    linewidth=1.2, label=label)  # fmt: skip


def _time_sequence(axis: Any, series: FlowSeries) -> None:
    _segments(axis, series.data, "tab:blue", "data")
    _segments(axis, series.sacks, "tab:purple", "SACK blocks")
    _segments(axis, series.retransmits, "tab:red", "retransmissions")
    if series.retransmits:
        axis.plot([a for a, _, _ in series.retransmits], [b for _, b, _ in series.retransmits],
                  "rx", markersize=4)  # fmt: skip
    if series.acks:
        axis.step(*zip(*series.acks, strict=True), where="post", color="tab:green", label="ACK")
    if series.window:
        axis.step(*zip(*series.window, strict=True), where="post", color="tab:olive",
                  linewidth=0.8, label="receive window")  # fmt: skip
    for at in series.losses:
        axis.axvline(at, color="tab:red", linewidth=0.5, linestyle=":")
    axis.set_ylabel("relative sequence")
    axis.legend(fontsize=7, loc="upper left")


def _congestion(axis: Any, series: FlowSeries) -> None:
    if series.cwnd:
        axis.step(*zip(*series.cwnd, strict=True), where="post", label="cwnd")
        ssthresh = [(at, value) for at, value in series.ssthresh if value < 1 << 30]
        if ssthresh:
            axis.step(*zip(*ssthresh, strict=True), where="post", label="ssthresh")
    if series.in_flight:
        axis.plot(*zip(*series.in_flight, strict=True), linewidth=0.6, color="grey",
                  label="bytes in flight")  # fmt: skip
    for at, entered in series.recovery:
        axis.axvline(at, color="tab:red" if entered else "tab:green", linewidth=0.5)
    axis.set_ylabel("bytes")
    axis.legend(fontsize=7, loc="upper left")


def _rtt(axis: Any, series: FlowSeries) -> None:
    if series.rtt_samples:
        axis.plot(*zip(*series.rtt_samples, strict=True), ".", markersize=3, label="RTT sample")
    if series.srtt:
        axis.step(*zip(*series.srtt, strict=True), where="post", label="srtt")
    if series.rto:
        axis.step(*zip(*series.rto, strict=True), where="post", label="RTO")
    if series.rtt_samples or series.srtt or series.rto:
        axis.set_yscale("log")  # RTT samples of a LAN and the 1 s initial RTO on one axis
    axis.set_ylabel("ms (log)")
    axis.legend(fontsize=7, loc="upper left")


def _goodput(axis: Any, series: FlowSeries) -> None:
    if series.goodput:
        axis.step(*zip(*series.goodput, strict=True), where="post", label="goodput")
    axis.set_ylabel("Mbit/s")
    axis.legend(fontsize=7, loc="upper left")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="simtcp plot",
        description="Draw a time-sequence graph, cwnd, RTT and goodput of the busiest TCP flow "
        "of a simtcp trace (sim transfer --trace) or of any pcap (tcpdump's too).",
    )
    parser.add_argument("input", metavar="TRACE|PCAP")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help=".png or .svg")
    parser.add_argument("--json", action="store_true", help="print the series' summary as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        series = load_series(args.input)
        draw(series, args.output)
    except (SeriesError, PlotError) as error:
        print(f"simtcp plot: {error}", file=sys.stderr)
        return 2
    summary = series.summary()
    if args.json:
        print(json.dumps({**summary, "output": args.output}))
    else:
        print(
            f"{args.output}: {summary['flow']} ({summary['origin']}), "
            f"{summary['data_segments']} data segments, "
            f"{summary['retransmissions']} retransmissions, {summary['rtt_samples']} RTT samples"
        )
    return 0
