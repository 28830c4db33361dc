"""``simtcp sim``: one transfer, or a campaign of seeds, through the simulator.

``simtcp sim transfer`` moves bytes between two stacks over an impaired link
(:func:`simtcp.programs.transfer.run_transfer`) and prints a summary, with ``--json``
a last line holding one JSON object. ``simtcp sim campaign`` runs the same
transfer for many seeds, in parallel with ``--workers``, draws a progress bar
on stderr and prints, for every failure, the one command that replays it.

Units follow DESIGN.md "The programs' contract": probabilities are fractions
(0.05 is 5%), ``--delay 20ms`` is one-way in each direction, ``--rate
100Mbit`` is bits per second in each direction, sizes take binary suffixes
(64K, 16M, 1G). A user error ends with one line on stderr and exit status 2;
a failed transfer exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NoReturn, TextIO

from simtcp.backends.impair import LinkProfile
from simtcp.config import TcpConfig
from simtcp.errors import ConfigError
from simtcp.programs.cliargs import (
    OneLineParser,
    bounded_integer,
    duration,
    error_line,
    output_file,
)
from simtcp.programs.transfer import PCAP_POINTS, TransferResult, TransferSpec, run_transfer
from simtcp.programs.transfer_observe import ObserveError, TransferObserver, add_observe_options
from simtcp.time import SECOND, Duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(bit|bits|bps|bit/s|b/s)?\s*$")
_RATE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


class UsageError(Exception):
    """A bad command line: reported in one line, exit status 2."""


# --- value parsers (each raises argparse.ArgumentTypeError with a one-line message) ---


def parse_size(text: str) -> int:
    """Bytes from ``"1000"``, ``"64K"``, ``"16M"``, ``"1G"`` (binary multiples; ``KiB``,
    ``MB`` ... accepted as the same)."""
    match = _SIZE_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (use e.g. 1000, 64K, 16M, 1G)")
    number, unit = match.groups()
    value = float(number) * _SIZE_UNITS[unit.lower()]
    if value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole number of bytes: {text!r}")
    return int(value)


def parse_rate(text: str) -> int:
    """Bits per second from ``"100Mbit"``, ``"1Gbit"``, ``"500kbit"``, ``"100Mbps"``,
    ``"2000000"`` (decimal multiples, as rates are counted)."""
    match = _RATE_RE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"not a rate: {text!r} (bits per second, e.g. 100Mbit, 1Gbit, 500kbit)"
        )
    number, prefix, _ = match.groups()
    value = round(float(number) * _RATE_UNITS[prefix.lower()])
    if value <= 0:
        raise argparse.ArgumentTypeError(
            f"rate must be positive, not {text!r} (leave --rate out for an unlimited link)"
        )
    return value


def parse_probability(text: str) -> float:
    """A fraction within 0..1 (``0.05`` is 5%)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # also rejects nan
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a probability within 0..1 (a fraction: 0.05 means 5%)"
        )
    return value


def parse_time(text: str) -> Duration:
    return duration(text)  # never negative; "-5ms" reaches it (OneLineParser)


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        return bounded_integer(text, low, high)

    return parse


# --- formatting -------------------------------------------------------------------------


def format_size(size: int) -> str:
    """The shortest exact form parse_size reads back: 16M, 64K, 1000."""
    for suffix, unit in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if size and size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def format_rate(rate: int) -> str:
    for suffix, unit in (("Gbit", 10**9), ("Mbit", 10**6), ("kbit", 10**3)):
        if rate % unit == 0:
            return f"{rate // unit}{suffix}"
    return f"{rate}bit"


def format_time(duration: Duration) -> str:
    if duration % SECOND == 0:
        return f"{duration // SECOND}s"
    if duration % 1000 == 0:
        return f"{duration // 1000}ms"
    return f"{duration}us"


# --- the command line ---------------------------------------------------------------------


class _Parser(OneLineParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: error: {message} (see --help)")


def _add_link_options(parser: argparse.ArgumentParser, default_bytes: str) -> None:
    link = parser.add_argument_group("link (each option applies to both directions)")
    for name, what in (
        ("loss", "lost"),
        ("reorder", "held back so later ones overtake"),
        ("duplicate", "delivered twice"),
        ("corrupt", "given one flipped bit"),
    ):
        link.add_argument(
            f"--{name}",
            type=parse_probability,
            default=0.0,
            metavar="P",
            help=f"fraction of frames {what} (0.05 = 5%%)",
        )
    link.add_argument(
        "--delay",
        type=parse_time,
        default=0,
        metavar="D",
        help="one-way propagation delay, e.g. 20ms",
    )
    link.add_argument(
        "--jitter",
        type=parse_time,
        default=0,
        metavar="D",
        help="each frame's delay varies by up to this much",
    )
    link.add_argument(
        "--rate",
        type=parse_rate,
        default=0,
        metavar="R",
        help="bottleneck rate in bits per second, e.g. 100Mbit, 1Gbit",
    )
    link.add_argument(
        "--mtu",
        type=_integer(68, 65535),
        default=None,
        metavar="N",
        help="IP MTU of the link and both interfaces (default 1500)",
    )
    work = parser.add_argument_group("transfer")
    work.add_argument(
        "--bytes",
        type=parse_size,
        default=parse_size(default_bytes),
        metavar="N",
        help=f"bytes to send, e.g. 64K, 16M (default {default_bytes})",
    )
    work.add_argument(
        "--both-directions",
        action="store_true",
        help="the server sends N bytes back at the same time",
    )
    work.add_argument(
        "--connections",
        type=_integer(1, 10_000),
        default=1,
        metavar="N",
        help="concurrent connections, each carrying N bytes (default 1)",
    )
    work.add_argument(
        "--backlog",
        type=_integer(1, 65535),
        default=None,
        metavar="N",
        help="the server's listen backlog (default: room for every "
        "connection); beyond it SYN cookies answer",
    )
    work.add_argument(
        "--stall-timeout",
        type=parse_time,
        default=900 * SECOND,
        metavar="D",
        help="virtual time without progress that fails a run (default 900s)",
    )
    work.add_argument(
        "--ip-version",
        type=int,
        choices=(4, 6),
        default=4,
        help="carry TCP over IPv4 (10.0.0.1 -> 10.0.0.2, the default) or IPv6 between "
        "dual-stack hosts (2001:db8::1 -> 2001:db8::2)",
    )
    work.add_argument("--json", action="store_true", help="end the output with one line of JSON")
    work.add_argument(
        "--test-truncate-delivery",
        type=_integer(0),
        default=None,
        metavar="N",
        help="TEST ONLY: the server keeps at most N bytes of each connection (a "
        "deliberately broken run, for tests of failure stores and replays)",
    )
    buffers = parser.add_argument_group("buffers (both stacks; TcpConfig's defaults otherwise)")
    for name, what in BUFFER_OPTIONS.items():
        buffers.add_argument(
            f"--{name.replace('_', '-')}", type=parse_size, default=None, metavar="N", help=what
        )


BUFFER_OPTIONS = {
    "send_buffer": "initial send buffer per connection, e.g. 256K (default 512K)",
    "send_buffer_max": "send-buffer auto-tuning ceiling; at or below --send-buffer: "
    "off (default 4M)",
    "receive_buffer": "initial receive buffer per connection (default 256K)",
    "receive_buffer_max": "receive-buffer auto-tuning ceiling; at or below "
    "--receive-buffer: off (default 6M)",
}
"""TcpConfig fields ``simtcp sim`` exposes as --send-buffer and friends."""


def _tcp_config(args: argparse.Namespace) -> TcpConfig:
    """TcpConfig's defaults with the buffer options given on the command line."""
    chosen = {name: getattr(args, name) for name in BUFFER_OPTIONS}
    given = {name: value for name, value in chosen.items() if value is not None}
    try:
        return dataclasses.replace(TcpConfig(), **given)
    except ConfigError as error:
        raise UsageError(f"simtcp sim: {error}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="simtcp sim", description="Transfers and seed campaigns through the simulator."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    transfer = commands.add_parser(
        "transfer",
        help="move N bytes between two stacks",
        description="Move N bytes between two simulated stacks.",
    )
    _add_link_options(transfer, "1M")
    transfer.add_argument(
        "--seed",
        type=_integer(0),
        default=0,
        metavar="S",
        help="seed of the impairments, the stacks and the data (default 0)",
    )
    transfer.add_argument(
        "--pcap", metavar="FILE", type=output_file, help="record the frames to a pcap file"
    )
    transfer.add_argument(
        "--pcap-point",
        choices=PCAP_POINTS,
        default="client",
        help="where the pcap records: a host's interface (what it sent "
        "and what reached it) or the link before impairments "
        "(default client)",
    )
    add_observe_options(transfer)
    campaign = commands.add_parser(
        "campaign",
        help="run many seeds, report the failures",
        description="Run the same transfer for many seeds.",
    )
    _add_link_options(campaign, "256K")
    campaign.add_argument(
        "--seeds", type=_integer(1), required=True, metavar="N", help="how many seeds to run"
    )
    campaign.add_argument(
        "--first-seed",
        type=_integer(0),
        default=1,
        metavar="S",
        help="the first seed (default 1); seeds S..S+N-1 run",
    )
    campaign.add_argument(
        "--workers",
        type=_integer(1, 256),
        default=1,
        metavar="K",
        help="processes running seeds in parallel (default 1)",
    )
    from simtcp.programs import campaign as campaign_module  # they import this module
    from simtcp.programs import failures, scenario

    scenario.add_parser(commands)
    campaign_module.add_options(campaign)
    failures.add_parser(commands)
    return parser


def spec_from_args(args: argparse.Namespace, seed: int) -> TransferSpec:
    """The TransferSpec an argument namespace describes, for ``seed``."""
    try:
        profile = LinkProfile(
            loss=args.loss,
            reorder=args.reorder,
            duplicate=args.duplicate,
            corrupt=args.corrupt,
            delay=args.delay,
            jitter=args.jitter,
            rate=args.rate,
            mtu=args.mtu,
        )
    except ConfigError as error:
        raise UsageError(error_line("simtcp sim", str(error))) from None
    return TransferSpec(
        bytes=args.bytes,
        reverse_bytes=args.bytes if args.both_directions else 0,
        seed=seed,
        forward=profile,
        backward=profile,
        mtu=args.mtu or 1500,
        ip_version=args.ip_version,
        connections=args.connections,
        backlog=args.backlog,
        stall_timeout=args.stall_timeout,
        test_truncate_delivery=getattr(args, "test_truncate_delivery", None),
        tcp=_tcp_config(args),
    )


def replay_command(args: argparse.Namespace, seed: int) -> str:
    """The one ``simtcp sim transfer`` command that reruns ``seed`` of these options."""
    words = ["simtcp", "sim", "transfer", "--bytes", format_size(args.bytes)]
    for name in ("loss", "reorder", "duplicate", "corrupt"):
        value = getattr(args, name)
        if value:
            words += [f"--{name}", repr(value)]
    for name in ("delay", "jitter"):
        value = getattr(args, name)
        if value:
            words += [f"--{name}", format_time(value)]
    if args.rate:
        words += ["--rate", format_rate(args.rate)]
    if args.mtu is not None:
        words += ["--mtu", str(args.mtu)]
    words += _work_words(args)
    words += _buffer_words(args)
    return " ".join([*words, "--seed", str(seed)])


def _work_words(args: argparse.Namespace) -> list[str]:
    """The transfer options given (not their defaults), as command-line words."""
    words: list[str] = []
    if args.both_directions:
        words.append("--both-directions")
    if args.ip_version != 4:
        words += ["--ip-version", str(args.ip_version)]
    if args.connections != 1:
        words += ["--connections", str(args.connections)]
    if args.backlog is not None:
        words += ["--backlog", str(args.backlog)]
    if args.stall_timeout != 900 * SECOND:
        words += ["--stall-timeout", format_time(args.stall_timeout)]
    if getattr(args, "test_truncate_delivery", None) is not None:
        words += ["--test-truncate-delivery", str(args.test_truncate_delivery)]
    return words


def _buffer_words(args: argparse.Namespace) -> list[str]:
    """The buffer options given, as command-line words."""
    words: list[str] = []
    for name in BUFFER_OPTIONS:
        value = getattr(args, name)
        if value is not None:
            words += [f"--{name.replace('_', '-')}", format_size(value)]
    return words


def describe_link(args: argparse.Namespace) -> str:
    parts = [
        f"{name} {getattr(args, name):.4g}"
        for name in ("loss", "reorder", "duplicate", "corrupt")
        if getattr(args, name)
    ]
    parts += [
        f"{name} {format_time(getattr(args, name))}"
        for name in ("delay", "jitter")
        if getattr(args, name)
    ]
    if args.rate:
        parts.append(f"rate {format_rate(args.rate)}/s")
    if args.mtu is not None:
        parts.append(f"mtu {args.mtu}")
    return ", ".join(parts) + " (each direction)" if parts else "perfect, instant"


# --- transfer ------------------------------------------------------------------------------


def _summary(args: argparse.Namespace, result: TransferResult, out: TextIO) -> None:
    direction = "each way" if args.both_directions else "client -> server"
    connections = f" on each of {args.connections} connections" if args.connections > 1 else ""
    family = ", IPv6 2001:db8::1 -> 2001:db8::2" if args.ip_version == 6 else ""
    print(
        f"transfer: {args.bytes} bytes ({format_size(args.bytes)}) {direction}{connections}"
        f"{family}, seed {args.seed}",
        file=out,
    )
    print(f"  link: {describe_link(args)}", file=out)
    if result.ok:
        print(
            f"  ok: {result.bytes_delivered} of {result.bytes} bytes delivered intact, "
            "in order, once; both ends closed",
            file=out,
        )
    else:
        print(f"  FAILED: {result.reason}", file=out)
        print(f"  {result.bytes_delivered} of {result.bytes} bytes delivered", file=out)
    goodput = (
        f"goodput {result.bytes_delivered * 8 / result.virtual_seconds / 1e6:.2f} Mbit/s"
        if result.virtual_seconds
        else "an instant link"
    )
    print(
        f"  virtual {result.virtual_seconds:.3f}s ({goodput}), "
        f"wall {result.wall_seconds:.3f}s, cpu {result.cpu_seconds:.3f}s",
        file=out,
    )
    frames = "; ".join(
        f"{name}: {counts['sent']} sent, {counts['lost']} lost, {counts['queue_drops']} queue drops"
        for name, counts in result.link_stats.items()
    )
    print(f"  retransmits {result.retransmits}; {frames}", file=out)
    print(
        f"  connections left: client {result.connections_left[0]}, "
        f"server {result.connections_left[1]}",
        file=out,
    )
    if not result.ok:
        print(f"  replay: {replay_command(args, args.seed)}", file=out)


def _transfer(args: argparse.Namespace) -> int:
    spec = spec_from_args(args, args.seed)
    try:  # opening, writing or closing the pcap (/proc/version takes the open, fails the write)
        with contextlib.ExitStack() as resources:
            stream = None
            if args.pcap:
                stream = resources.enter_context(open(args.pcap, "wb"))
            try:
                with TransferObserver(args, spec) as observer:
                    result = run_transfer(
                        spec,
                        pcap=stream,
                        pcap_point=args.pcap_point,
                        trace=observer.trace,
                        progress=observer.progress,
                    )
            except ObserveError as error:
                raise UsageError(error_line("simtcp sim transfer", str(error))) from None
    except OSError as error:
        if not args.pcap:
            raise  # the observer's own files say what failed themselves
        message = f"cannot write {args.pcap}: {error.strerror or error}"
        raise UsageError(error_line("simtcp sim transfer", message)) from None
    with _reader_may_leave():
        _summary(args, result, sys.stdout)
        if args.json:
            record = {**result.as_json(), "seed": args.seed}
            if not result.ok:
                record["replay"] = replay_command(args, args.seed)
            print(json.dumps(record, sort_keys=False), file=sys.stdout)
        sys.stdout.flush()
    return EXIT_OK if result.ok else EXIT_FAILED


@contextlib.contextmanager
def _reader_may_leave() -> Iterator[None]:
    """Output piped into ``head`` may lose its reader: stop printing, without a traceback."""
    try:
        yield
    except BrokenPipeError:
        # Point stdout at /dev/null so that the interpreter's last flush cannot fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# --- campaign ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedOutcome:
    """What a campaign keeps of one seed's run."""

    seed: int
    ok: bool
    reason: str
    virtual_seconds: float
    cpu_seconds: float
    retransmits: int


def run_seed(spec: TransferSpec) -> SeedOutcome:
    """One campaign seed (a top-level function, so worker processes can run it)."""
    result = run_transfer(spec)
    return SeedOutcome(
        seed=spec.seed,
        ok=result.ok,
        reason=result.reason,
        virtual_seconds=result.virtual_seconds,
        cpu_seconds=result.cpu_seconds,
        retransmits=result.retransmits,
    )


class ProgressBar:
    """``[#####.....] 50/100 seeds, 0 failed`` on a stream: redrawn in place on a terminal,
    a new line every tenth of the way otherwise."""

    def __init__(self, total: int, stream: TextIO, width: int = 30) -> None:
        self.total = total
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()
        self._last_tenth = -1

    def line(self, done: int, failed: int) -> str:
        filled = self.width * done // self.total
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} seeds, "
            f"{failed} failed"
        )

    def update(self, done: int, failed: int) -> None:
        with contextlib.suppress(BrokenPipeError):
            self._draw(done, failed)

    def _draw(self, done: int, failed: int) -> None:
        if self.interactive:
            self.stream.write("\r" + self.line(done, failed))
            if done == self.total:
                self.stream.write("\n")
        else:
            tenth = 10 * done // self.total
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(self.line(done, failed) + "\n")
        self.stream.flush()


def _run_specs(specs: list[TransferSpec], workers: int, bar: ProgressBar) -> list[SeedOutcome]:
    outcomes: list[SeedOutcome] = []
    failed = 0
    bar.update(0, 0)
    if workers <= 1:
        results = map(run_seed, specs)
        for outcome in results:
            outcomes.append(outcome)
            failed += not outcome.ok
            bar.update(len(outcomes), failed)
        return outcomes
    # forkserver: workers start from a clean process, never from a fork of a threaded one.
    with multiprocessing.get_context("forkserver").Pool(min(workers, len(specs))) as pool:
        for outcome in pool.imap_unordered(run_seed, specs):
            outcomes.append(outcome)
            failed += not outcome.ok
            bar.update(len(outcomes), failed)
    return sorted(outcomes, key=lambda outcome: outcome.seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``simtcp sim``; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
        if args.command == "transfer":
            return _transfer(args)
        if args.command == "scenario":
            from simtcp.programs import scenario

            return scenario.main(args)
        if args.command == "failures":
            from simtcp.programs import failures

            return failures.run(args)
        from simtcp.programs import campaign

        campaign.validate(args)
        return campaign.run(args)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
