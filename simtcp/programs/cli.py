"""The ``simtcp`` command: serve, demo, sim, drill.

Each subcommand lives in its own module and is imported only when chosen, so
``simtcp --help`` stays fast and a missing optional piece cannot break the
others. User errors end with one line on stderr and a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from .cliargs import OneLineParser

# subcommand -> (module[:function], one-line help). The function (default main) takes argv
# and returns the exit code.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("simtcp.programs.serve", "the seed topology over real TAP devices (needs root)"),
    "demo": ("simtcp.programs.demo", "play the seed's session inside the simulator (no root)"),
    "sim": ("simtcp.programs.sim", "transfers and seed campaigns through the simulator"),
    "drill": ("simtcp.programs.drill", "run packetdrill-format scripts in virtual time"),
    "plot": ("simtcp.programs.plot", "draw a TCP flow of a trace or a pcap (tcptrace-style)"),
    "ss": (
        "simtcp.programs.status:main_ss",
        "list connections (-l listeners) like ss -tin (server or trace)",
    ),
    "stats": ("simtcp.programs.status:main_stats", "print counters like nstat (server or trace)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="simtcp",
        description="A deterministic, simulation-first TCP/IP stack in pure Python.",
        epilog="Run 'simtcp COMMAND --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"simtcp {__version__}")
    parser.add_argument(
        "command",
        nargs="?",
        choices=sorted(SUBCOMMANDS),
        metavar="COMMAND",
        help="; ".join(f"{name}: {text}" for name, (_, text) in SUBCOMMANDS.items()),
    )
    return parser


def _load(command: str) -> Callable[[list[str]], int]:
    target, _ = SUBCOMMANDS[command]
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(f"simtcp {command}: not available in this build ({error})") from None
    main: Callable[[list[str]], int] = getattr(module, function or "main")
    return main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args or args[0].startswith("-"):
        parsed = parser.parse_args(args)
        if parsed.command is None:
            # No command is a usage error (exit 2, as argparse and git do); --help asks for
            # the same text on stdout and exits 0.
            parser.print_help(sys.stderr)
            return 2
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        parser.error(f"unknown command {command!r} (choose from {', '.join(SUBCOMMANDS)})")
    try:
        return _load(command)(rest)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
