"""``simtcp sim failures``: list the failure store, replay its failures, extract pcaps.

A replay parses the stored ``simtcp sim transfer`` command, checks that it still builds
the stored configuration (same hash: the options did not change meaning), runs it on
this checkout and says whether the failure still happens here: "still fails", "fails
differently" or "now passes", with the commit it was recorded on and this one. The
verdict is written back to the store (``last_replay_*``). Exit status: 0 when every
replayed failure now passes, 1 when any still fails, 2 for a bad store or option.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shlex
import sys
from typing import Any

from simtcp.programs import sim
from simtcp.programs.failure_store import (
    FailureStore,
    StoredFailure,
    StoreError,
    config_hash,
    first_check,
    git_commit,
    spec_json,
)
from simtcp.programs.transfer import run_transfer

DEFAULT_STORE = "simtcp-failures.db"


def add_parser(commands: Any) -> None:
    """``simtcp sim failures`` (``commands`` is ``simtcp sim``'s subparsers action)."""
    parser = commands.add_parser(
        "failures",
        help="list and replay the failures a campaign stored",
        description="List the failures in a store (simtcp sim campaign --store), replay "
        "them on this checkout, write out their pcaps.",
    )
    parser.add_argument(
        "--store", default=DEFAULT_STORE, metavar="FILE", help=f"(default {DEFAULT_STORE})"
    )
    parser.add_argument(
        "--replay",
        nargs="+",
        metavar="ID",
        help="replay these failures ('all' for every one) and say whether each still fails",
    )
    parser.add_argument(
        "--pcap", nargs=2, metavar=("ID", "FILE"), help="write failure ID's stored pcap to FILE"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "an unknown commit"


def _ids(words: list[str]) -> list[int] | None:
    if words == ["all"]:
        return None
    try:
        return [int(word) for word in words]
    except ValueError:
        raise sim.UsageError(
            f"simtcp sim failures: --replay takes failure ids or 'all', not {' '.join(words)!r}"
        ) from None


def replay(failure: StoredFailure) -> tuple[str, bool, str]:
    """Run a stored failure again: (verdict, ok now, reason now)."""
    words = shlex.split(failure.replay)
    if words[:3] != ["simtcp", "sim", "transfer"]:
        return "cannot replay: not a 'simtcp sim transfer' command", False, ""
    try:
        args = sim.build_parser().parse_args(words[2:])
        spec = sim.spec_from_args(args, args.seed)
    except sim.UsageError as error:
        return f"cannot replay: the command no longer parses ({error})", False, ""
    digest = config_hash(spec_json(spec))
    result = run_transfer(spec)
    here = _short(git_commit())
    if result.ok:
        verdict = f"now passes on {here}"
    elif first_check(result.reason) == failure.first_check:
        verdict = f"still fails on {here}: {failure.first_check}"
    else:
        verdict = f"fails differently on {here}: {first_check(result.reason)}"
    if digest != failure.config_hash:
        verdict += f" (config hash {digest} differs from the stored {failure.config_hash})"
    return verdict, result.ok, result.reason


def _describe(failure: StoredFailure) -> str:
    seen = f", seen {failure.times_seen} times" if failure.times_seen > 1 else ""
    replayed = ""
    if failure.last_replay_ok is not None:
        state = "passed" if failure.last_replay_ok else "failed"
        replayed = f"; last replay {state} on {_short(failure.last_replay_commit)}"
    return (
        f"#{failure.id} seed {failure.seed} config {failure.config_hash}: {failure.first_check}\n"
        f"    recorded {failure.first_seen} on {_short(failure.git_commit)} "
        f"(simtcp {failure.version}){seen}{' with pcap' if failure.has_pcap else ''}{replayed}\n"
        f"    {failure.replay}"
    )


def _record(failure: StoredFailure) -> dict[str, object]:
    return {
        "id": failure.id,
        "seed": failure.seed,
        "config_hash": failure.config_hash,
        "config": json.loads(failure.config),
        "version": failure.version,
        "git_commit": failure.git_commit,
        "first_seen": failure.first_seen,
        "times_seen": failure.times_seen,
        "first_check": failure.first_check,
        "reason": failure.reason,
        "replay": failure.replay,
        "pcap": failure.has_pcap,
    }


def run(args: argparse.Namespace) -> int:
    if not pathlib.Path(args.store).is_file():
        raise sim.UsageError(f"simtcp sim failures: no failure store at {args.store}")
    try:
        with FailureStore(args.store) as store:
            if args.pcap:
                return _write_pcap(store, args.pcap[0], args.pcap[1])
            if args.replay:
                return _replay_all(store, _ids(args.replay), args.json)
            return _list(store, args.json)
    except StoreError as error:
        raise sim.UsageError(f"simtcp sim failures: {error}") from None


def _list(store: FailureStore, as_json: bool) -> int:
    failures = store.failures()
    for failure in failures:
        print(json.dumps(_record(failure)) if as_json else _describe(failure))
    if not as_json:
        print(f"{len(failures)} failure(s) in {store.path}")
    return sim.EXIT_OK


def _replay_all(store: FailureStore, ids: list[int] | None, as_json: bool) -> int:
    failures = store.failures(ids)
    missing = sorted(set(ids or ()) - {failure.id for failure in failures})
    if missing:
        raise sim.UsageError(f"simtcp sim failures: no failure #{missing[0]} in {store.path}")
    still = 0
    for failure in failures:
        verdict, ok, reason = replay(failure)
        store.note_replay(failure.id, ok=ok, reason=reason)
        still += not ok
        if as_json:
            print(json.dumps({"id": failure.id, "ok": ok, "reason": reason, "verdict": verdict}))
        else:
            recorded = _short(failure.git_commit)
            print(f"#{failure.id} seed {failure.seed} (recorded on {recorded}): {verdict}")
    if not as_json:
        print(f"{still} of {len(failures)} still fail")
    return sim.EXIT_FAILED if still else sim.EXIT_OK


def _write_pcap(store: FailureStore, failure_id: str, path: str) -> int:
    try:
        data = store.pcap(int(failure_id))
    except ValueError:
        raise sim.UsageError(f"simtcp sim failures: not a failure id: {failure_id!r}") from None
    if data is None:
        raise sim.UsageError(
            f"simtcp sim failures: failure #{failure_id} has no pcap "
            "(run the campaign with --pcap-failures, or replay with --pcap)"
        )
    try:
        pathlib.Path(path).write_bytes(data)
    except OSError as error:
        raise sim.UsageError(
            f"simtcp sim failures: cannot write {path}: {error.strerror}"
        ) from None
    print(f"wrote {len(data)} bytes to {path}", file=sys.stderr)
    return sim.EXIT_OK
