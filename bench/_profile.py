"""``--profile`` for every bench/ script: cProfile a run, print the top functions by own time.

Two ways to use it, one option and one printout for both:

- in-process: ``add_profile_option(parser)``, then ``with profiling(args.profile, "what"):``
  around the measured work (nothing runs under the profiler when the option is absent),
  or ``start_profiling(args.profile, "what")`` right after ``parse_args`` for the whole run;
- a server in a subprocess (the TAP benches): start it with
  ``[sys.executable, *profile_command(path), program, ...]``, stop it, then
  ``print_top(path, "what")``.

``--profile`` alone profiles to a temporary file; ``--profile FILE`` keeps the data
in FILE (read it with ``python3 -m pstats FILE`` or snakeviz). The top
``TOP`` (25) functions by tottime are printed either way, so the next person
starts from data.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import cProfile
import os
import pstats
import tempfile
from collections.abc import Iterator

TOP = 25


def add_profile_option(parser: argparse.ArgumentParser) -> None:
    """``--profile [FILE]``: profile the run and print the top functions by tottime."""
    parser.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="FILE",
        help=f"run under cProfile and print the top {TOP} functions by own time "
        "(FILE keeps the data; without it a temporary file is used)",
    )


def profile_path(option: str | None, label: str) -> str | None:
    """Where the profile of ``label`` goes: FILE (suffixed with the label), a temporary file
    for a bare ``--profile``, or None when not profiling."""
    if option is None:
        return None
    slug = "".join(c if c.isalnum() else "-" for c in label).strip("-") or "run"
    if option:
        return f"{option}.{slug}" if label else option
    handle, path = tempfile.mkstemp(prefix=f"simtcp-{slug}-", suffix=".prof")
    os.close(handle)
    return path


def profile_command(path: str) -> list[str]:
    """The interpreter arguments that run a program under cProfile writing ``path``."""
    return ["-m", "cProfile", "-o", path]


def print_top(source: str | cProfile.Profile, label: str = "", top: int = TOP) -> None:
    """Print the ``top`` functions of a profile (a file or a Profile) by tottime."""
    stats = pstats.Stats(source)
    print(f"\nprofile{f' of {label}' if label else ''}: top {top} functions by tottime")
    stats.sort_stats("tottime").print_stats(top)


@contextlib.contextmanager
def profiling(option: str | None, label: str = "", top: int = TOP) -> Iterator[None]:
    """Profile the body when ``option`` (the ``--profile`` value) is not None, then print it."""
    path = profile_path(option, label)
    if path is None:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
        print_top(profiler, label, top)
        print(f"(profile data: {path})")


def start_profiling(option: str | None, label: str, top: int = TOP) -> None:
    """Profile from here to the interpreter's exit when ``option`` is not None, then print
    the top functions: one line after ``parse_args`` gives a script ``--profile``."""
    path = profile_path(option, label)
    if path is None:
        return
    profiler = cProfile.Profile()

    def report() -> None:
        profiler.disable()
        profiler.dump_stats(path)
        print_top(profiler, label, top)
        print(f"(profile data: {path})")

    atexit.register(report)
    profiler.enable()
