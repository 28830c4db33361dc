"""The in-process impairment shim: both TCPs recover from loss and reordering on a real TAP."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from .conftest import ServerProcess, nsexec
from .test_tcp_echo import echo_clients

pytestmark = pytest.mark.timeout(240)


def test_8_mib_stream_intact_at_5_percent_loss_and_reordering(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(extra=("--loss", "0.05", "--reorder", "0.05", "--seed", "7"))
    summary = echo_clients(server, count=1, size=8 * 1024 * 1024, timeout=180)
    assert summary["ok"] == 1, summary


def test_duplication_shows_as_duplicate_ping_replies(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(extra=("--duplicate", "1.0", "--seed", "3"))
    result = nsexec(server.netns, "ping", "-c", "3", "-i", "0.05", "-W", "2", "10.0.0.1")
    assert "DUP!" in result.stdout, result.stdout
    assert re.search(r"3 packets transmitted, 3 received, \+\d+ duplicates", result.stdout)


def test_total_loss_means_no_reply(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(extra=("--loss", "1.0"))
    result = nsexec(server.netns, "ping", "-c", "2", "-i", "0.1", "-W", "1", "10.0.0.1")
    assert result.returncode != 0
    assert "100% packet loss" in result.stdout
