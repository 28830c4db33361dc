"""``simtcp sim``: value parsing, user errors, the JSON line, pcaps, replay commands, campaigns.

``main()`` runs in-process; its output is captured with capsys.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import re
import shlex

import pytest

from simtcp.backends.impair import LinkProfile
from simtcp.config import TcpConfig
from simtcp.programs import sim as simcli
from simtcp.programs.sim import (
    ProgressBar,
    build_parser,
    main,
    parse_probability,
    parse_rate,
    parse_size,
    replay_command,
    spec_from_args,
)
from simtcp.programs.transfer import PatternStream, TransferSpec, expected_data, run_transfer
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.pcap import read_pcap

# --- values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1000", 1000),
        ("64K", 65536),
        ("64k", 65536),
        ("16M", 16 << 20),
        ("1G", 1 << 30),
        ("64KiB", 65536),
        ("16MB", 16 << 20),
        ("1.5K", 1536),
        (" 2M ", 2 << 20),
    ],
)
def test_sizes_take_binary_suffixes(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "K", "-1", "1Q", "1.3", "12 parsecs", "0x10"])
def test_bad_sizes_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100Mbit", 100_000_000),
        ("1Gbit", 1_000_000_000),
        ("500kbit", 500_000),
        ("500Kbit", 500_000),
        ("100Mbps", 100_000_000),
        ("10Mbit/s", 10_000_000),
        ("2000000", 2_000_000),
        ("1.5Mbit", 1_500_000),
        ("64kbits", 64_000),
    ],
)
def test_rates_are_bits_per_second(text: str, expected: int) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["0", "0Mbit", "fast", "100MB/s", "100MBps", "-5Mbit", "1Tbit"])
def test_bad_rates_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_rate(text)


@pytest.mark.parametrize(
    ("text", "expected"), [("0", 0.0), ("1", 1.0), ("0.05", 0.05), ("1e-3", 0.001), ("1.0", 1.0)]
)
def test_probabilities_are_fractions(text: str, expected: float) -> None:
    assert parse_probability(text) == expected


@pytest.mark.parametrize("text", ["5", "1.01", "-0.1", "nan", "inf", "5%", "lots"])
def test_probabilities_outside_zero_to_one_are_rejected(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_probability(text)


def test_options_reach_the_link_profile_in_both_directions() -> None:
    args = build_parser().parse_args(
        [
            "transfer",
            "--bytes",
            "64K",
            "--loss",
            "0.05",
            "--reorder",
            "0.1",
            "--duplicate",
            "0.02",
            "--corrupt",
            "0.01",
            "--delay",
            "20ms",
            "--jitter",
            "1ms",
            "--rate",
            "100Mbit",
            "--mtu",
            "1280",
            "--seed",
            "9",
            "--both-directions",
        ]
    )
    spec = spec_from_args(args, args.seed)
    assert spec.forward == spec.backward
    profile = spec.forward
    assert (profile.loss, profile.reorder, profile.duplicate, profile.corrupt) == (
        0.05,
        0.1,
        0.02,
        0.01,
    )
    assert (profile.delay, profile.jitter, profile.rate, profile.mtu) == (
        20_000,
        1_000,
        100_000_000,
        1280,
    )
    assert (spec.bytes, spec.reverse_bytes, spec.seed, spec.mtu) == (65536, 65536, 9, 1280)


# --- user errors: one line, exit 2 -------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["transfer", "--loss", "5"],
        ["transfer", "--reorder", "-0.5"],
        ["transfer", "--duplicate", "2"],
        ["transfer", "--corrupt", "x"],
        ["transfer", "--bytes", "lots"],
        ["transfer", "--rate", "100MB/s"],
        ["transfer", "--delay", "soon"],
        ["transfer", "--mtu", "20"],
        ["transfer", "--seed", "-1"],
        ["transfer", "--frobnicate"],
        ["transfer", "--pcap", "/nonexistent-directory/x.pcap"],
        ["campaign"],
        ["campaign", "--seeds", "0"],
        ["campaign", "--seeds", "3", "--workers", "0"],
        ["explode"],
        [],
    ],
)
def test_user_errors_print_one_line_and_exit_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("simtcp sim")
    assert "Traceback" not in captured.err


def test_a_probability_error_says_what_a_fraction_is(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "--loss", "5"]) == 2
    error = capsys.readouterr().err
    assert "--loss" in error and "0..1" in error and "0.05" in error


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "--help"]) == 0
    assert "--both-directions" in capsys.readouterr().out


# --- transfer ----------------------------------------------------------------------------------


def last_json(output: str) -> dict[str, object]:
    record = json.loads(output.strip().splitlines()[-1])
    assert isinstance(record, dict)
    return record


def test_json_is_the_last_line_and_reports_success(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        ["transfer", "--bytes", "64K", "--loss", "0.05", "--delay", "5ms", "--seed", "3", "--json"]
    )
    out = capsys.readouterr().out
    record = last_json(out)
    assert status == 0
    assert record["ok"] is True
    assert record["bytes"] == 65536 and record["bytes_delivered"] == 65536
    assert isinstance(record["virtual_seconds"], float) and record["virtual_seconds"] > 0.01
    assert isinstance(record["wall_seconds"], float)
    assert isinstance(record["retransmits"], int)
    assert record["connections_left"] == [0, 0]
    assert "ok: 65536 of 65536 bytes" in out  # the human summary comes first


def test_both_directions_moves_twice_the_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["transfer", "--bytes", "10000", "--both-directions", "--json"]) == 0
    record = last_json(capsys.readouterr().out)
    assert record["bytes"] == record["bytes_delivered"] == 20000


def test_a_dead_link_fails_with_exit_1_and_a_replay_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["transfer", "--bytes", "1K", "--loss", "1", "--seed", "4", "--json"])
    out = capsys.readouterr().out
    record = last_json(out)
    assert status == 1
    assert record["ok"] is False
    assert "timed out" in str(record["reason"])
    assert record["replay"] == "simtcp sim transfer --bytes 1K --loss 1.0 --seed 4"
    assert "FAILED" in out and "replay: simtcp sim transfer" in out


def test_same_seed_same_pcap_and_another_seed_another(tmp_path: pathlib.Path) -> None:
    files = [tmp_path / name for name in ("a.pcap", "b.pcap", "c.pcap")]
    common = [
        "transfer",
        "--bytes",
        "100K",
        "--loss",
        "0.1",
        "--reorder",
        "0.1",
        "--duplicate",
        "0.05",
        "--corrupt",
        "0.05",
        "--delay",
        "2ms",
        "--jitter",
        "1ms",
    ]
    for path, seed in zip(files, ("7", "7", "8"), strict=True):
        assert main([*common, "--seed", seed, "--pcap", str(path)]) == 0
    first, second, third = (path.read_bytes() for path in files)
    assert first == second
    assert first != third
    with files[0].open("rb") as stream:
        records = list(read_pcap(stream))
    assert len(records) > 70  # 100K in ~1460-byte segments, plus ACKs
    assert [at for at, _ in records] == sorted(at for at, _ in records)


@pytest.mark.parametrize("point", ["client", "server", "link"])
def test_every_pcap_point_records_frames(point: str, tmp_path: pathlib.Path) -> None:
    path = tmp_path / f"{point}.pcap"
    assert main(["transfer", "--bytes", "5000", "--pcap", str(path), "--pcap-point", point]) == 0
    with path.open("rb") as stream:
        assert len(list(read_pcap(stream))) >= 8  # ARP, handshake, data, ACKs, FINs


def test_replay_command_parses_back_to_the_same_spec() -> None:
    argv = [
        "campaign",
        "--seeds",
        "5",
        "--bytes",
        "96K",
        "--loss",
        "0.03",
        "--reorder",
        "0.2",
        "--duplicate",
        "0.01",
        "--corrupt",
        "0.125",
        "--delay",
        "1500us",
        "--jitter",
        "2ms",
        "--rate",
        "1500kbit",
        "--mtu",
        "576",
        "--both-directions",
        "--connections",
        "3",
        "--backlog",
        "2",
        "--stall-timeout",
        "100s",
        "--send-buffer",
        "64K",
        "--receive-buffer-max",
        "1M",
    ]
    args = build_parser().parse_args(argv)
    command = replay_command(args, 42)
    words = shlex.split(command)
    assert words[:3] == ["simtcp", "sim", "transfer"]
    replayed = build_parser().parse_args(words[2:])
    assert spec_from_args(replayed, replayed.seed) == spec_from_args(args, 42)


# --- campaign ------------------------------------------------------------------------------


def test_campaign_runs_every_seed_with_a_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "campaign",
            "--seeds",
            "4",
            "--first-seed",
            "10",
            "--bytes",
            "20K",
            "--loss",
            "0.05",
            "--workers",
            "2",
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0
    assert "[##############################] 4/4 seeds, 0 failed" in captured.err
    record = last_json(captured.out)
    assert record == {**record, "ok": True, "seeds": 4, "failed": [], "replay": []}
    assert "4 ok, 0 failed of 4 seeds" in captured.out
    slowest = next(line for line in captured.out.splitlines() if "slowest" in line)
    match = re.search(
        r"\(seed (\d+): simtcp sim transfer --bytes 20K --loss 0.05 --seed (\d+)\)", slowest
    )
    assert match is not None and match[1] == match[2] and 10 <= int(match[1]) <= 13


def test_campaign_prints_the_replay_command_of_each_failure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["campaign", "--seeds", "2", "--bytes", "1K", "--loss", "1"])
    out = capsys.readouterr().out
    assert status == 1
    for seed in (1, 2):
        assert f"simtcp sim transfer --bytes 1K --loss 1.0 --seed {seed}" in out
    assert "0 ok, 2 failed of 2 seeds" in out


def test_campaign_workers_give_the_same_verdicts_as_one_process() -> None:
    args = build_parser().parse_args(["campaign", "--seeds", "3", "--bytes", "8K", "--loss", "0.2"])
    specs = [spec_from_args(args, seed) for seed in range(1, 4)]

    bar = ProgressBar(3, io.StringIO())
    serial = simcli._run_specs(specs, 1, bar)
    parallel = simcli._run_specs(specs, 3, bar)
    strip = [(o.seed, o.ok, o.reason, o.virtual_seconds, o.retransmits) for o in serial]
    assert strip == [(o.seed, o.ok, o.reason, o.virtual_seconds, o.retransmits) for o in parallel]


def test_progress_bar_without_a_terminal_prints_a_line_per_tenth() -> None:
    stream = io.StringIO()
    bar = ProgressBar(100, stream, width=10)
    for done in range(101):
        bar.update(done, done // 50)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "[..........] 0/100 seeds, 0 failed"
    assert lines[5] == "[#####.....] 50/100 seeds, 1 failed"
    assert lines[-1] == "[##########] 100/100 seeds, 2 failed"
    assert len(lines) == 11


# --- the data stream ---------------------------------------------------------------------------


def test_pattern_stream_reads_the_same_bytes_at_any_offset() -> None:
    whole = expected_data(5, "x", 200_000)
    stream = PatternStream(5, "x")
    for offset, size in ((0, 1), (65535, 2), (65536, 70_000), (131_000, 69_000), (7, 0)):
        assert stream.read(offset, size) == whole[offset : offset + size]
    assert expected_data(5, "y", 1000) != whole[:1000]
    assert expected_data(6, "x", 1000) != whole[:1000]


# --- the transfer library's verdicts -------------------------------------------------------------


def test_a_stall_is_a_verdict_not_a_hang() -> None:
    dead = LinkProfile(loss=1.0)
    result = run_transfer(
        TransferSpec(bytes=1000, seed=1, forward=dead, backward=dead, stall_timeout=5 * SECOND)
    )
    assert not result.ok
    assert result.reason.startswith("stalled: no progress for 5s of virtual time")
    assert result.bytes_delivered == 0


def test_a_time_limit_ends_a_slow_transfer() -> None:
    slow = LinkProfile(rate=100_000, delay=10 * MILLISECOND)
    result = run_transfer(
        TransferSpec(bytes=1 << 20, seed=1, forward=slow, backward=slow, time_limit=2 * SECOND)
    )
    assert not result.ok
    assert result.reason.startswith("time limit reached")
    assert 0 < result.bytes_delivered < 1 << 20


def test_wire_counter_sees_retransmissions_only_when_frames_are_lost() -> None:
    clean = run_transfer(TransferSpec(bytes=300_000, seed=3))
    lossy_link = LinkProfile(loss=0.1)
    lossy = run_transfer(
        TransferSpec(bytes=300_000, seed=3, forward=lossy_link, backward=lossy_link)
    )
    assert clean.ok and lossy.ok
    assert clean.retransmits == 0
    lost = lossy.link_stats["client:eth0>server:eth0"]["lost"]
    assert lossy.retransmits >= lost > 0  # every lost data segment was sent again


def test_warm_up_keeps_corrupted_arp_out_of_the_transfer() -> None:
    # Found by a campaign: a flipped bit in an ARP sender MAC (ARP has no checksum)
    # poisoned the server's neighbour cache and the client's SYNs went unanswered.
    # The transfer now resolves ARP over a perfect link before impairing it.
    bad = LinkProfile(loss=0.1, reorder=0.1, duplicate=0.1, corrupt=0.1)
    result = run_transfer(TransferSpec(bytes=100 * 1024, seed=87, forward=bad, backward=bad))
    assert result.ok, result.reason


def test_transfer_exposes_the_buffer_options() -> None:
    """Issue 15: ``simtcp sim transfer`` sets TcpConfig's buffers (both stacks)."""
    argv = ["transfer", "--send-buffer", "64K", "--send-buffer-max", "0"]
    argv += ["--receive-buffer", "128K", "--receive-buffer-max", "2M"]
    spec = spec_from_args(build_parser().parse_args(argv), 0)
    assert (spec.tcp.send_buffer, spec.tcp.send_buffer_max) == (64 * 1024, 0)
    assert (spec.tcp.receive_buffer, spec.tcp.receive_buffer_max) == (128 * 1024, 2 << 20)
    assert spec_from_args(build_parser().parse_args(["transfer"]), 0).tcp == TcpConfig()


def test_a_runs_pcap_ends_with_the_run(tmp_path: pathlib.Path) -> None:
    """Issue 23: after the data phase the stacks wait out TIME-WAIT (60 s) and re-validate
    ARP at 60 s; the pcap held those ARP frames while the summary said 0.08 s. Now its last
    frame is the run's last TCP segment, within a few round trips of the data's end."""
    from simtcp.wire.pcap import read_pcap

    spec = TransferSpec(bytes=20_000, seed=3, forward=LinkProfile(delay=10 * MILLISECOND),
                        backward=LinkProfile(delay=10 * MILLISECOND))  # fmt: skip
    path = tmp_path / "run.pcap"
    with path.open("wb") as stream:
        result = run_transfer(spec, pcap=stream)
    assert result.ok and result.closed_at is not None
    with path.open("rb") as stream:
        frames = list(read_pcap(stream))
    last_time, last_frame = frames[-1]
    assert last_frame[12:14] == b"\x08\x00" and last_frame[23] == 6  # TCP
    assert last_time <= (result.virtual_seconds + 0.1) * SECOND < result.closed_at * SECOND
