"""The programs over IPv6: ``simtcp sim transfer --ip-version 6`` and ``simtcp demo --ipv6``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap

from simtcp.programs.demo import main as demo_main
from simtcp.programs.sim import main as sim_main


def test_sim_transfer_over_ipv6(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pcap = tmp_path / "six.pcap"
    argv = ["transfer", "--bytes", "256K", "--loss", "0.02", "--ip-version", "6"]
    assert sim_main([*argv, "--seed", "3", "--pcap", str(pcap), "--json"]) == 0
    out = capsys.readouterr().out
    assert "IPv6 2001:db8::1 -> 2001:db8::2" in out
    record = json.loads(out.strip().splitlines()[-1])
    assert record["ok"] and record["bytes"] == 256 * 1024
    packets = rdpcap(str(pcap))
    six = [p for p in packets if p.haslayer(IPv6) and p.haslayer(TCP)]
    assert len(six) > 100 and {six[0][IPv6].src, six[0][IPv6].dst} == {
        "2001:db8::1",
        "2001:db8::2",
    }


def test_sim_transfer_rejects_another_ip_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["transfer", "--ip-version", "5"]) == 2
    assert "--ip-version: invalid choice: 5" in capsys.readouterr().err


def test_demo_plays_the_session_over_ipv6_too(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo_main(["--ipv6"]) == 0
    out = capsys.readouterr().out
    assert "$ ping -6 -c 4 2001:db8:1::1" in out
    assert "64 bytes from 2001:db8:1::1: icmp_seq=4" in out
    assert "nc -6 -q 1 2001:db8::1 80\nhello from the simulated host" in out
    assert out.strip().endswith("every step answered: True")
