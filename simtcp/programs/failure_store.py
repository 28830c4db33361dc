"""The failure store: every failing campaign seed, kept with what it takes to replay it.

One SQLite file (stdlib :mod:`sqlite3`) accumulates across campaigns. A row holds the
seed, the run's whole configuration (the :class:`~simtcp.programs.transfer.TransferSpec`
as JSON) and its hash, the simtcp version and git commit that failed, the exact
``simtcp sim transfer`` command that replays it, the first failing check, and the pcap
when the campaign was asked for one (``--pcap-failures``). The same (config, seed,
commit) is kept once: a second campaign that fails it again only bumps ``times_seen``.

Every write is its own transaction, so a campaign interrupted by Ctrl-C (or killed)
leaves a consistent file with every failure recorded before the interruption.
``simtcp sim failures`` (:mod:`simtcp.programs.failures`) lists and replays the rows.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
import json
import pathlib
import sqlite3
import subprocess
from dataclasses import dataclass

from simtcp import __version__
from simtcp.programs.transfer import TransferSpec

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS failures (
    id INTEGER PRIMARY KEY,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    times_seen INTEGER NOT NULL DEFAULT 1,
    campaign TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    version TEXT NOT NULL,
    git_commit TEXT,
    replay TEXT NOT NULL,
    first_check TEXT NOT NULL,
    reason TEXT NOT NULL,
    pcap BLOB,
    last_replay_commit TEXT,
    last_replay_ok INTEGER,
    last_replay_reason TEXT,
    UNIQUE (config_hash, seed, git_commit)
);
"""


class StoreError(Exception):
    """The store file cannot be used (not a database, wrong schema, unwritable)."""


def spec_json(spec: TransferSpec) -> str:
    """The whole configuration of a run as canonical JSON (sorted keys, no seed: the seed
    is its own column, so that one configuration's failures share one hash)."""
    fields = dataclasses.asdict(spec)
    fields.pop("seed")
    return json.dumps(fields, sort_keys=True, default=repr, separators=(",", ":"))


def config_hash(config: str) -> str:
    return hashlib.sha256(config.encode()).hexdigest()[:16]


def first_check(reason: str) -> str:
    """The first failing check of a verdict: ``TransferResult.reason`` lists the first
    failure and counts the others ("... (+2 more)")."""
    head, sep, tail = reason.rpartition(" (+")
    return head if sep and tail.endswith(" more)") else reason


@functools.cache
def git_commit() -> str | None:
    """The commit of the checkout simtcp runs from, or None (an installed wheel, no git)."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredFailure:
    """One row of the store."""

    id: int
    first_seen: str
    last_seen: str
    times_seen: int
    campaign: str
    seed: int
    config: str
    config_hash: str
    version: str
    git_commit: str | None
    replay: str
    first_check: str
    reason: str
    has_pcap: bool
    last_replay_commit: str | None
    last_replay_ok: bool | None


class FailureStore:
    """The store file at ``path`` (created if missing)."""

    def __init__(self, path: str | pathlib.Path) -> None:
        self.path = pathlib.Path(path)
        try:
            # isolation_level=None: autocommit, each statement is one transaction.
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as error:
            raise StoreError(f"cannot use {self.path} as a failure store: {error}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FailureStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def record(
        self,
        *,
        campaign: str,
        spec: TransferSpec,
        replay: str,
        reason: str,
        pcap: bytes | None = None,
    ) -> int:
        """Keep one failure (or count it again); returns its id."""
        config = spec_json(spec)
        digest = config_hash(config)
        now, commit = _now(), git_commit()
        try:
            self._db.execute(
                "INSERT INTO failures (first_seen, last_seen, campaign, seed, config, "
                "config_hash, version, git_commit, replay, first_check, reason, pcap) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (config_hash, seed, git_commit) DO UPDATE SET "
                "last_seen = excluded.last_seen, times_seen = times_seen + 1, "
                "campaign = excluded.campaign, pcap = COALESCE(excluded.pcap, pcap)",
                (
                    now,
                    now,
                    campaign,
                    spec.seed,
                    config,
                    digest,
                    __version__,
                    commit,
                    replay,
                    first_check(reason),
                    reason,
                    pcap,
                ),
            )
            row = self._db.execute(
                "SELECT id FROM failures WHERE config_hash = ? AND seed = ? AND git_commit IS ?",
                (digest, spec.seed, commit),
            ).fetchone()
        except sqlite3.Error as error:
            raise StoreError(f"cannot write to {self.path}: {error}") from None
        return int(row[0])

    def failures(self, ids: list[int] | None = None) -> list[StoredFailure]:
        query = (
            "SELECT id, first_seen, last_seen, times_seen, campaign, seed, config, config_hash, "
            "version, git_commit, replay, first_check, reason, pcap IS NOT NULL, "
            "last_replay_commit, last_replay_ok FROM failures"
        )
        parameters: list[int] = []
        if ids:
            query += f" WHERE id IN ({', '.join('?' * len(ids))})"
            parameters = ids
        try:
            rows = self._db.execute(query + " ORDER BY id", parameters).fetchall()
        except sqlite3.Error as error:
            raise StoreError(f"cannot read {self.path}: {error}") from None
        return [
            StoredFailure(
                id=row[0],
                first_seen=row[1],
                last_seen=row[2],
                times_seen=row[3],
                campaign=row[4],
                seed=row[5],
                config=row[6],
                config_hash=row[7],
                version=row[8],
                git_commit=row[9],
                replay=row[10],
                first_check=row[11],
                reason=row[12],
                has_pcap=bool(row[13]),
                last_replay_commit=row[14],
                last_replay_ok=None if row[15] is None else bool(row[15]),
            )
            for row in rows
        ]

    def pcap(self, failure_id: int) -> bytes | None:
        row = self._db.execute("SELECT pcap FROM failures WHERE id = ?", (failure_id,)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    def note_replay(self, failure_id: int, *, ok: bool, reason: str) -> None:
        """Remember the verdict of a replay on this commit."""
        try:
            self._db.execute(
                "UPDATE failures SET last_replay_commit = ?, last_replay_ok = ?, "
                "last_replay_reason = ? WHERE id = ?",
                (git_commit(), int(ok), reason, failure_id),
            )
        except sqlite3.Error as error:
            raise StoreError(f"cannot write to {self.path}: {error}") from None
