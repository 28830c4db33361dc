"""``simtcp drill SCRIPT.pkt [...] [--lenient] [--junit FILE]``: run, report, exit 0 if all ran."""

from __future__ import annotations

import argparse
import sys
import time as wall_clock
from pathlib import Path

from ..drill import run_script
from ..drill.report import format_result, junit_xml, summary_line
from ..drill.runner import DEFAULT_REMOTE_ISN


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The drill's arguments, on a new parser or on a subcommand's parser."""
    if parser is None:
        parser = argparse.ArgumentParser(
            prog="simtcp drill",
            description="Run packetdrill-format TCP scripts against simtcp in virtual time.",
        )
    parser.add_argument("scripts", nargs="+", metavar="SCRIPT.pkt", help="scripts to run")
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="check flags, seq/ack, lengths, timing and call results only "
        "(for scripts written for other stacks)",
    )
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument(
        "--tolerance-usecs",
        "--tolerance_usecs",
        type=int,
        default=None,
        metavar="N",
        help="timing tolerance (default: the script's, or 4000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the stack's seed (default 0)")
    parser.add_argument(
        "--remote-isn",
        type=int,
        default=DEFAULT_REMOTE_ISN,
        metavar="N",
        help=f"the remote side's ISN (default {DEFAULT_REMOTE_ISN})",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="also list skipped lines and ignored options of passing scripts",
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="print only failures and the closing line"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the scripts named in ``argv``; 0 when none failed, 1 otherwise, 2 on usage errors."""
    args = build_parser().parse_args(argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """The command's body, for a caller that parsed the arguments itself."""
    started = wall_clock.perf_counter()
    results = []
    for name in args.scripts:
        result = run_script(
            Path(name),
            lenient=args.lenient,
            seed=args.seed,
            remote_isn=args.remote_isn,
            tolerance_us=args.tolerance_usecs,
        )
        results.append(result)
        if not args.quiet or result.status == "failed":
            print(format_result(result, verbose=args.verbose), flush=True)
    elapsed = wall_clock.perf_counter() - started
    rate = f", {len(results) / elapsed:.0f} scripts/s" if elapsed > 0 else ""
    print(f"{summary_line(results)} ({elapsed:.2f} s{rate})")
    if args.junit:
        try:
            Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
        except OSError as error:
            print(f"cannot write {args.junit}: {error}", file=sys.stderr)
            return 2
    return 1 if any(result.status == "failed" for result in results) else 0


if __name__ == "__main__":
    sys.exit(main())
