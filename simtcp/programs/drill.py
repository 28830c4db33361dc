"""``simtcp drill SCRIPT.pkt|DIR [...]``: run packetdrill scripts, report, exit 0 if all ran.

A directory stands for every ``*.pkt`` under it (sorted). Each script gives
its own result, whatever it holds (a malformed or binary file is a failed
result naming the line, never a stopped run). Exit status: 0 when nothing
failed, 1 when a script failed (or, with ``--strict``, was skipped), 2 on a
usage error.
"""

from __future__ import annotations

import argparse
import sys
import time as wall_clock
from pathlib import Path

from ..drill import run_script
from ..drill.report import format_result, junit_xml, summary_line, write_report
from ..drill.runner import DEFAULT_REMOTE_ISN, ScriptResult
from ..drill.settings import IP_VERSIONS
from .cliargs import OneLineParser


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _define(text: str) -> tuple[str, str]:
    name, _, value = text.partition("=")
    if not name.isidentifier():
        raise argparse.ArgumentTypeError(f"not a symbol name: {name!r} (use NAME or NAME=VALUE)")
    return name, value


def _report_path(text: str) -> Path:
    path = Path(text)
    if path.suffix not in (".md", ".json"):
        raise argparse.ArgumentTypeError(f"{text}: the report is FILE.md or FILE.json")
    return path


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The drill's arguments, on a new parser or on a subcommand's parser."""
    if parser is None:
        parser = OneLineParser(
            prog="simtcp drill",
            description="Run packetdrill-format TCP scripts against simtcp in virtual time.",
        )
    parser.add_argument(
        "scripts", nargs="+", metavar="SCRIPT.pkt|DIR", help="scripts, or directories of *.pkt"
    )
    parser.add_argument(
        "--lenient",
        action="store_true",
        help="check flags, seq/ack, lengths, timing and call results only, accept TSO-sized "
        "lines as several segments and ignore PSH (for scripts written for other stacks)",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="a skipped script fails the exit status too (default: only failures do)",
    )
    parser.add_argument(
        "-D",
        "--define",
        type=_define,
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="define a symbol for #ifdef blocks (as packetdrill's --define)",
    )
    parser.add_argument(
        "--tolerance-usecs",
        "--tolerance_usecs",
        type=_non_negative,
        default=None,
        metavar="N",
        help="timing tolerance (default: the script's, or 4000)",
    )
    parser.add_argument("--seed", type=_integer, default=0, help="the stack's seed (default 0)")
    parser.add_argument(
        "--ip-version",
        "--ip_version",
        choices=IP_VERSIONS,
        default=None,
        help="run every script as this family (default: the script's, or ipv4); "
        "ipv4-mapped-ipv6 is IPv4 on the wire with IPv4-mapped socket addresses",
    )
    parser.add_argument(
        "--remote-isn",
        type=_integer,
        default=DEFAULT_REMOTE_ISN,
        metavar="N",
        help=f"the remote side's ISN (default {DEFAULT_REMOTE_ISN})",
    )
    _add_output_options(parser)
    return parser


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    parser.add_argument(
        "--report",
        type=_report_path,
        metavar="FILE.md|FILE.json",
        help="also write a report: each script's result, totals by reason",
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


def main(argv: list[str] | None = None) -> int:
    """Run the scripts named in ``argv``; 0 when none failed, 1 otherwise, 2 on usage errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_from_args(args, parser)


def expand(names: list[str]) -> list[Path]:
    """Files as given; directories as every ``*.pkt`` below them, sorted."""
    paths: list[Path] = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            paths.extend(sorted(item for item in path.rglob("*.pkt") if item.is_file()))
        else:
            paths.append(path)
    return paths


def run_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser | None = None) -> int:
    """The command's body, for a caller that parsed the arguments itself."""
    paths = expand(args.scripts)
    missing = [str(path) for path in paths if not path.exists()]
    if missing or not paths:
        message = f"no such file: {missing[0]}" if missing else "no *.pkt scripts found"
        if parser is not None:
            parser.error(message)
        print(f"simtcp drill: error: {message}", file=sys.stderr)
        return 2
    defines = dict(args.define)
    started = wall_clock.perf_counter()
    results: list[ScriptResult] = []
    for path in paths:
        result = run_script(
            path,
            lenient=args.lenient,
            seed=args.seed,
            remote_isn=args.remote_isn,
            tolerance_us=args.tolerance_usecs,
            defines=defines,
            ip_version=args.ip_version,
        )
        results.append(result)
        if not args.quiet or result.status == "failed":
            print(format_result(result, verbose=args.verbose), flush=True)
    elapsed = wall_clock.perf_counter() - started
    rate = f", {len(results) / elapsed:.0f} scripts/s" if elapsed > 0 else ""
    print(f"{summary_line(results)} ({elapsed:.2f} s{rate})")
    try:
        if args.junit:
            Path(args.junit).write_text(junit_xml(results), encoding="utf-8")
        if args.report:
            write_report(results, args.report, elapsed=elapsed)
    except OSError as error:
        print(f"simtcp drill: error: cannot write the report: {error}", file=sys.stderr)
        return 2
    failed = any(result.status == "failed" for result in results)
    skipped = any(result.status == "skipped" for result in results)
    return 1 if failed or (args.strict and skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
