"""``simtcp demo`` plays the seed's session in the simulator and prints it like the real tools."""

from __future__ import annotations

import pytest

from simtcp.programs.cli import main as simtcp_main
from simtcp.programs.demo import main


def test_the_session_prints_every_step_with_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "42 bytes from 02:00:00:00:00:01 (10.0.0.1): index=0" in out
    assert "3 packets transmitted, 3 packets received,   0% unanswered" in out
    assert "64 bytes from 10.0.0.1: icmp_seq=4 ttl=64" in out
    # The seed answered this ping from 10.0.0.1; the reply must come from the address asked.
    assert "64 bytes from 10.1.1.1: icmp_seq=1 ttl=64" in out
    assert "64 bytes from 10.0.0.1: icmp_seq=1 ttl=64 time=0.120 ms" in out
    assert (
        "$ echo 'hello from the simulated host' | nc -q 1 10.0.0.1 80\n"
        "hello from the simulated host\n" in out
    )
    assert out.rstrip().endswith("every step answered: True")


def test_same_seed_same_pcap(tmp_path: pytest.TempPathFactory) -> None:
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"  # type: ignore[operator]
    assert main(["--seed", "5", "--loss", "0.05", "--pcap", str(first)]) in (0, 1)
    assert main(["--seed", "5", "--loss", "0.05", "--pcap", str(second)]) in (0, 1)
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes()) > 24


def test_the_echo_survives_a_lossy_cable(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--seed", "3", "--loss", "0.2"])
    out = capsys.readouterr().out
    assert "nc -q 1 10.0.0.1 80\nhello from the simulated host\n" in out


def test_bad_option_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        simtcp_main(["demo", "--loss", "2"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "simtcp demo: error: argument --loss: must be a fraction in [0, 1] "
        "(0.05 = 5%), got 2 (see --help)"
    ]
