"""simtcp ss / stats over a simulated network (from its trace), and the progress bar's rules."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from simtcp.programs import sim, status
from simtcp.programs.transfer_observe import PROGRESS_MIN_BYTES, TransferObserver
from simtcp.programs.transfer_spec import TransferSpec
from simtcp.time import MILLISECOND, SECOND
from tests.unit.tcp.test_tcp_info import transfer

TRANSFER = ["transfer", "--bytes", "200K", "--loss", "0.01", "--delay", "5ms", "--seed", "2"]


@pytest.fixture
def trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "t.jsonl"
    assert sim.main([*TRANSFER, "--trace", str(path)]) == 0
    capsys.readouterr()
    return path


def test_ss_of_a_trace_lists_both_ends_at_a_time_and_at_the_end(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Both ends shut down writing once their data is queued (the server has none): at
    # 50 ms the client's FIN crossed the server's, and the client's data still flows.
    assert status.main_ss(["--trace", str(trace), "--at", "0.05", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    (client,), (server,) = listing["client"], listing["server"]
    assert (client["state"], server["state"]) == ("CLOSING", "FIN-WAIT-2")
    assert client["snd_nxt"] != client["snd_una"]  # data in flight at that moment
    assert client["local"] == server["remote"] and client["remote"] == server["local"]
    assert client["remote"] == "10.0.0.2:5001" and client["cwnd"] > 0
    assert status.main_ss(["--trace", str(trace), "--json"]) == 0
    final = json.loads(capsys.readouterr().out)
    assert {final["client"][0]["state"], final["server"][0]["state"]} <= {"CLOSED", "TIME-WAIT"}
    assert status.main_ss(["--trace", str(trace)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0].split()[:3] == ["State", "Recv-Q", "Send-Q"]
    assert any("host:client" in line and "cwnd:" in line for line in text)


def test_stats_of_a_trace_are_the_stacks_counters(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert status.main_stats(["--trace", str(trace), "--json"]) == 0
    counters = json.loads(capsys.readouterr().out)
    assert counters["client"]["tcp.active_opens"] == 1
    assert counters["server"]["tcp.connections_established"] == 1
    assert counters["client"]["tcp.connections"] == 0  # all closed at the end
    assert status.main_stats(["--trace", str(trace)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.split() == ["client.tcp.active_opens", "1"] for line in lines)


def test_ss_and_stats_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["--trace", str(tmp_path / "none.jsonl")],
        ["--socket", str(tmp_path / "none.sock")],
        [],
    ):
        assert status.main_ss(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _args(**options: object) -> argparse.Namespace:
    return argparse.Namespace(**{"trace": None, "plot": None, "json": False, "seed": 0, **options})


def test_the_progress_bar_only_on_a_terminal_for_large_runs_without_json() -> None:
    large, small = TransferSpec(bytes=PROGRESS_MIN_BYTES), TransferSpec(bytes=1 << 20)
    terminal = _Terminal()
    assert TransferObserver(_args(), large, stderr=terminal).progress is not None
    assert TransferObserver(_args(), small, stderr=terminal).progress is None
    assert TransferObserver(_args(json=True), large, stderr=terminal).progress is None
    assert TransferObserver(_args(), large, stderr=io.StringIO()).progress is None
    with TransferObserver(_args(), large, stderr=terminal) as observer:
        bar = observer.progress
        assert bar is not None
        for done in (0, 1, 2, PROGRESS_MIN_BYTES // 2, PROGRESS_MIN_BYTES):
            bar(done, PROGRESS_MIN_BYTES)
    drawn = terminal.getvalue()
    assert drawn.count("\r") == 3 and drawn.endswith("8.4/8.4 MB\n")
    assert "[###############...............] 4.2/8.4 MB" in drawn


# --- ss -ti of a live simulated stack --------------------------------------------------


def test_ss_of_a_simulated_transfer_prints_what_ss_ti_prints() -> None:
    """A rate-limited bulk transfer mid-way: the listing carries ss -ti's words, with the
    delivery rate within the link's rate."""
    run = transfer(4 << 20, rate=20_000_000)
    run.sim.run_for(600 * MILLISECOND)
    lines = status.format_ss(status.snapshot(run.client, now=run.sim.now))
    assert lines[0].split()[:3] == ["State", "Recv-Q", "Send-Q"]
    assert lines[1].split()[0] == "ESTABLISHED"
    words = lines[2].split()
    for prefix in (
        "rto:", "rtt:", "mss:1448", "pmtu:1500", "advmss:1460", "cwnd:", "bytes_sent:",
        "bytes_acked:", "segs_out:", "segs_in:", "data_segs_out:", "lastsnd:", "lastack:",
        "busy:", "unacked:", "minrtt:",
    ):  # fmt: skip
        assert any(word.startswith(prefix) for word in words), (prefix, lines[2])
    assert {"ts", "sack", "wscale:9,9"} <= set(words)  # a 16 MiB receive ceiling: shift 9
    rate = words[words.index("delivery_rate") + 1]
    assert rate.endswith("Mbps") and 15 <= float(rate[:-4]) <= 20, rate
    assert "app_limited" not in words


def test_ss_lists_listeners_with_their_accept_queue() -> None:
    """ss -lt: Recv-Q is the completed connections the application was not handed yet,
    Send-Q the backlog."""
    run = transfer(0)
    sim = run.sim
    sim.remove_process(run.pump)  # the server application sleeps: nothing is accepted
    listener = run.server.tcp_listen(7, backlog=5)
    for _ in range(3):
        run.client.tcp_connect("10.0.0.2", 7, now=sim.now)
    sim.run_for(SECOND)
    snap = status.snapshot(run.server, now=sim.now)
    lines = status.format_ss(snap, connections=False, listeners=True)
    rows = {line.split()[3]: line.split() for line in lines[1:]}
    assert rows["0.0.0.0:7"][:3] == ["LISTEN", "3", "5"]
    assert rows["0.0.0.0:5001"][:3] == ["LISTEN", "1", "128"]
    assert all(line.split()[0] == "LISTEN" for line in lines[1:])
    assert run.server.tcp_info(listener).queued == 3
