"""The failure store and ``simtcp sim failures``: failures kept, replayed, surviving Ctrl-C.

The failures are real: ``--test-truncate-delivery`` (``TransferSpec.test_truncate_delivery``,
a test-only switch) makes the server keep only the first N bytes of each connection.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import shlex
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from simtcp.programs import failure_store
from simtcp.programs.failure_store import FailureStore, config_hash, first_check, spec_json
from simtcp.programs.sim import build_parser, main, spec_from_args
from simtcp.programs.transfer import TransferSpec, run_transfer
from simtcp.wire.pcap import read_pcap

REPO = pathlib.Path(__file__).resolve().parents[2]
BROKEN = ["--explore", "--bytes", "48K", "--test-truncate-delivery", "20000"]


def run_campaign(store: pathlib.Path, *extra: str, seeds: int = 12) -> int:
    return main(["campaign", "--seeds", str(seeds), "--store", str(store), *BROKEN, *extra])


def replayed(command: str) -> tuple[TransferSpec, str]:
    words = shlex.split(command)
    assert words[:3] == ["simtcp", "sim", "transfer"]
    args = build_parser().parse_args(words[2:])
    spec = spec_from_args(args, args.seed)
    return spec, run_transfer(spec).reason


def test_truncated_delivery_fails_only_longer_transfers() -> None:
    assert run_transfer(TransferSpec(bytes=20000, test_truncate_delivery=20000)).ok
    result = run_transfer(TransferSpec(bytes=20001, test_truncate_delivery=20000))
    assert not result.ok and "FIN after 20000 of 20001 bytes" in result.reason


def test_stored_failures_replay_to_the_same_failure(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "failures.db"
    assert run_campaign(store_path) == 1
    out = capsys.readouterr().out
    failed = [line.split()[1] for line in out.splitlines() if " FAILED: " in line]
    with FailureStore(store_path) as store:
        rows = store.failures()
    assert sorted(str(row.seed) for row in rows) == sorted(failed) and len(rows) >= 3
    for row in rows:
        spec, reason = replayed(row.replay)
        assert reason and first_check(reason) == row.first_check  # it reproduces
        assert spec.seed == row.seed and config_hash(spec_json(spec)) == row.config_hash
        assert json.loads(row.config)["test_truncate_delivery"] == 20000
        assert row.version and row.git_commit == failure_store.git_commit()

    assert main(["failures", "--store", str(store_path), "--replay", "all"]) == 1
    out = capsys.readouterr().out
    assert out.count(": still fails on ") == len(rows)
    assert f"{len(rows)} of {len(rows)} still fail" in out
    assert main(["failures", "--store", str(store_path)]) == 0
    listing = capsys.readouterr().out
    assert f"{len(rows)} failure(s) in " in listing and "last replay failed on " in listing


def test_the_store_accumulates_across_campaigns(tmp_path: pathlib.Path) -> None:
    store_path = tmp_path / "failures.db"
    run_campaign(store_path, seeds=6)
    run_campaign(store_path, "--first-seed", "4", seeds=6)  # seeds 4..6 fail again
    with FailureStore(store_path) as store:
        rows = store.failures()
    seeds = [row.seed for row in rows]
    assert len(seeds) == len(set(seeds))  # one row per (config, seed, commit)
    assert {row.seed for row in rows if row.times_seen == 2} == {s for s in seeds if 4 <= s <= 6}
    assert len({row.campaign for row in rows}) == 2


def test_a_failure_fixed_since_reports_that_it_now_passes(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # As if an older commit had failed this run: replaying on this one passes.
    store_path = tmp_path / "failures.db"
    with FailureStore(store_path) as store:
        store.record(
            campaign="old",
            spec=TransferSpec(bytes=1024, seed=5),
            replay="simtcp sim transfer --bytes 1K --seed 5",
            reason="client connection 1: connection reset",
        )
    assert main(["failures", "--store", str(store_path), "--replay", "1", "--json"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert record["ok"] and record["verdict"].startswith("now passes on ")


def test_pcaps_of_failures_on_request(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "failures.db"
    run_campaign(store_path, "--pcap-failures", "--workers", "2", seeds=4)
    with FailureStore(store_path) as store:
        row = store.failures()[0]
    assert row.has_pcap
    stored, again = tmp_path / "stored.pcap", tmp_path / "again.pcap"
    assert main(["failures", "--store", str(store_path), "--pcap", str(row.id), str(stored)]) == 0
    assert main([*shlex.split(row.replay)[2:], "--pcap", str(again)]) == 1
    capsys.readouterr()
    assert stored.read_bytes() == again.read_bytes()  # the replay records the same frames
    assert len(list(read_pcap(io.BytesIO(stored.read_bytes())))) > 10


def test_the_store_survives_a_campaign_interrupted_by_sigint(tmp_path: pathlib.Path) -> None:
    store_path = tmp_path / "failures.db"
    command = [sys.executable, "-m", "simtcp", "sim", "campaign", "--seeds", "100000"]
    command += ["--store", str(store_path), "--workers", "2", *BROKEN]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while _rows(store_path) < 5 and process.poll() is None:
            time.sleep(0.05)  # waiting for the campaign to get going; nothing timed is checked
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    text = err.decode()
    assert process.returncode == 130, text
    assert "interrupted after " in text and "Traceback" not in text
    with FailureStore(store_path) as store:
        rows = store.failures()
    assert len(rows) >= 5
    assert first_check(replayed(rows[-1].replay)[1]) == rows[-1].first_check


def _rows(path: pathlib.Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT count(*) FROM failures").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_a_corrupt_store_is_one_line_and_exit_2(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"this is not an SQLite database\n" * 100)
    for argv in (
        ["failures", "--store", str(corrupt)],
        ["failures", "--store", str(corrupt), "--replay", "all"],
        ["campaign", "--seeds", "2", "--store", str(corrupt)],
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "file is not a database" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--store", "{missing}"], "no failure store at "),
        (["--replay", "x"], "--replay takes failure ids or 'all'"),
        (["--replay", "99"], "no failure #99 in "),
        (["--pcap", "1", "{dir}"], "has no pcap"),
    ],
)
def test_bad_failures_options_are_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store_path = tmp_path / "failures.db"
    with FailureStore(store_path) as store:
        store.record(
            campaign="c", spec=TransferSpec(bytes=1), replay="simtcp sim transfer", reason="r"
        )
    argv = [a.format(missing=tmp_path / "nope.db", dir=tmp_path) for a in argv]
    if "--store" not in argv:
        argv = ["--store", str(store_path), *argv]
    assert main(["failures", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
