"""How the program behaves when used wrongly, and how it ends: one line and exit 2, or exit 0."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable

import pytest

from .conftest import REPO, SERVER, ServerProcess, link_exists, nsexec, unique_name

pytestmark = pytest.mark.timeout(60)


def run_server(*argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, str(SERVER), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


def assert_one_line_exit_2(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_not_root_says_so(make_netns: Callable[[], str]) -> None:
    namespace = make_netns()
    result = run_server(
        "--netns", namespace, prefix=("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    )
    assert_one_line_exit_2(result, "root")


def test_root_without_net_admin_says_so(make_netns: Callable[[], str]) -> None:
    result = run_server(
        "--netns",
        make_netns(),
        prefix=("setpriv", "--bounding-set=-net_admin", "--inh-caps=-net_admin"),
    )
    assert_one_line_exit_2(result, "CAP_NET_ADMIN")


def test_taken_device_name_in_the_namespace(make_netns: Callable[[], str]) -> None:
    from pyroute2 import NetNS

    namespace = make_netns()
    taken = unique_name("stk")
    with NetNS(namespace) as ns:
        ns.link("add", ifname=taken, kind="veth", peer=taken + "p")
    tap1 = unique_name("stb")
    result = run_server("--netns", namespace, "--tap0", taken, "--tap1", tap1)
    assert_one_line_exit_2(result, taken, "exists")
    assert link_exists(taken, namespace)  # not ours: left alone
    assert not link_exists(tap1, namespace) and not link_exists(tap1, None)


def test_taken_device_name_in_our_namespace(make_netns: Callable[[], str]) -> None:
    from pyroute2 import IPRoute

    taken = unique_name("stk")
    with IPRoute() as ipr:
        ipr.link("add", ifname=taken, kind="veth", peer=taken + "p")
    try:
        result = run_server("--netns", make_netns(), "--tap0", unique_name("sta"), "--tap1", taken)
        assert_one_line_exit_2(result, taken, "exists")
    finally:
        with IPRoute() as ipr:
            ipr.link("del", index=ipr.link_lookup(ifname=taken)[0])


def test_same_name_twice(make_netns: Callable[[], str]) -> None:
    name = unique_name("sta")
    result = run_server("--netns", make_netns(), "--tap0", name, "--tap1", name)
    assert_one_line_exit_2(result, name)


@pytest.mark.parametrize(
    "argv, word",
    [
        (("--loss", "2"), "--loss"),
        (("--loss", "lots"), "--loss"),
        (("--reorder", "-0.1"), "--reorder"),
        (("--duplicate", "1.5"), "--duplicate"),
        (("--seed", "abc"), "--seed"),
        (("--tap0", "a-name-far-too-long-for-linux"), "--tap0"),
        (("--netns", "a/b"), "--netns"),
        (("--no-such-option",), "unrecognized"),
    ],
)
def test_bad_option_value(argv: tuple[str, ...], word: str) -> None:
    assert_one_line_exit_2(run_server(*argv), word)


def test_unwritable_pcap_is_one_line(make_netns: Callable[[], str]) -> None:
    result = run_server(
        "--netns",
        make_netns(),
        "--tap0",
        unique_name("sta"),
        "--tap1",
        unique_name("stb"),
        "--pcap",
        "/nonexistent-dir/x.pcap",
    )
    assert_one_line_exit_2(result, "/nonexistent-dir/x.pcap")


def test_namespace_created_when_missing_and_removed_at_exit() -> None:
    from pyroute2 import netns

    from .conftest import launch_server

    namespace = unique_name("stns")
    try:
        server = launch_server(netns=namespace)
    except BaseException:  # never ready: the namespace it made must not outlive the test
        if namespace in netns.listnetns():
            netns.remove(namespace)
        raise
    try:
        assert namespace in netns.listnetns()
        assert link_exists(server.tap0, namespace)
    finally:
        code = server.stop()
        if namespace in netns.listnetns():
            netns.remove(namespace)
            raise AssertionError("the server left the namespace it created")
    assert code == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_removes_devices_and_exits_0(
    start_server: Callable[..., ServerProcess], sig: signal.Signals
) -> None:
    server = start_server()
    assert link_exists(server.tap0, server.netns) and link_exists(server.tap1, server.netns)
    assert server.stop(sig) == 0, server.output()
    assert not link_exists(server.tap0, server.netns)
    assert not link_exists(server.tap1, server.netns)
    assert "Traceback" not in server.output()


def test_simtcp_serve_is_the_same_program(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(command=("-m", "simtcp", "serve"))
    assert server.stdout[0].startswith("simtcp serve: ")
    nsexec(server.netns, "ping", "-c", "2", "-i", "0.05", "-W", "2", "10.0.0.1", check=True)
    result = nsexec(server.netns, "nc", "-N", "-w", "5", "10.0.0.1", "80", input="same\n")
    assert result.stdout == "same\n"


def test_simtcp_serve_bad_option_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simtcp", "serve", "--loss", "3"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )
    assert_one_line_exit_2(result, "simtcp serve", "--loss")


def test_device_removed_under_the_server_is_one_line_exit_1(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server()
    nsexec(server.netns, "ip", "link", "del", server.tap0, check=True)
    code = server.process.wait(timeout=15)
    server.stopped = True
    server.expected_exit = 1
    assert code == 1, server.output()
    errors = "".join(server.stderr).strip().splitlines()
    assert errors == [f"echo_reply_server.py: device {server.tap0} was removed from under us"]
    assert not link_exists(server.tap1, server.netns)
