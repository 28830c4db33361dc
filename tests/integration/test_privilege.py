"""Least privilege (issue 24): the process that parses frames holds no privilege.

Started as root, the server sets up as root and then parses frames in a child
running as ``nobody`` with no capabilities and no_new_privs, while its root
parent only waits to clean up. ``--attach`` runs it without any privilege on
TAPs made beforehand and owned by the user, the way the README tells a user to.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import (
    REPO,
    SERVER,
    ServerProcess,
    configure_link,
    launch_server,
    link_exists,
    nsexec,
    unique_name,
)
from .test_invocation import assert_one_line_exit_2, run_server

pytestmark = pytest.mark.timeout(90)

NOBODY = pwd.getpwnam("nobody")
AS_NOBODY = (
    "setpriv",
    "--reuid=nobody",
    f"--regid={NOBODY.pw_gid}",
    "--clear-groups",
    "--inh-caps=-all",
    "--bounding-set=-all",
)
SIMTCP_SERVE = ("-m", "simtcp", "serve")


@pytest.fixture(scope="session")
def readable_package() -> Iterator[Path]:
    """A copy of the package that ``nobody`` can import: a folder to put on PYTHONPATH.

    The checkout itself may be out of nobody's reach (CI clones it under a 0700
    ``mktemp -d`` directory), and an unprivileged interpreter does not see root's
    site-packages either, so the runs as nobody import this copy, made world-readable
    under a fresh directory of /tmp (pytest's own tmp_path is 0700 too).
    """
    folder = Path(tempfile.mkdtemp(prefix="simtcp-nobody-"))
    try:
        # simtcp/backends is a link to ../backends: copy what it points at.
        shutil.copytree(
            REPO / "simtcp", folder / "simtcp", ignore=shutil.ignore_patterns("__pycache__")
        )
        for path in (folder, *folder.rglob("*")):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def as_nobody(
    tmp_path: Path, readable_package: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, ...]:
    """A command prefix: run as nobody, no groups, no capabilities, and able to open the tun,
    importing simtcp from :func:`readable_package`.

    Distributions make /dev/net/tun mode 0666; a container may make it 0600. The
    host's node is left alone: the command runs in a private mount namespace
    where /dev/net/tun is a bind mount of a 0666 node of the same device.
    """
    # Through the environment, not an ``env`` or ``sh`` wrapper: the interpreter may live
    # under a 0700 /root (pyenv), and only setpriv, still holding root's capabilities at
    # its execve, can start it; a wrapper already running as nobody gets EACCES (exit 126)
    # and the server is never ready. Started so, the interpreter finds none of its own
    # library under /root and falls back to the system's /usr/lib/python3.x.
    monkeypatch.setenv("PYTHONPATH", str(readable_package))
    node = os.stat("/dev/net/tun")
    if stat.S_IMODE(node.st_mode) & 0o006 == 0o006:
        return AS_NOBODY
    private = tmp_path / "tun"
    os.mknod(private, 0o666 | stat.S_IFCHR, node.st_rdev)
    os.chmod(private, 0o666)
    bind = 'mount --bind "$0" /dev/net/tun && exec "$@"'
    mount = ("unshare", "--mount", "--propagation", "private", "sh", "-c", bind, str(private))
    return (*mount, *AS_NOBODY)


def assert_unprivileged(status: dict[str, str], uid: int, gid: int) -> None:
    assert status["Uid"].split() == [str(uid)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(gid)] * 4, status["Gid"]
    assert status["Groups"] == "", status["Groups"]
    for capabilities in ("CapEff", "CapPrm", "CapAmb", "CapBnd"):
        assert int(status[capabilities], 16) == 0, (capabilities, status[capabilities])


def seed_session(server: ServerProcess) -> None:
    """arping, ping both addresses (with the route), and a line echoed over TCP."""
    result = nsexec(server.netns, "arping", "-c", "2", "-w", "3", "-i", server.tap0, "10.0.0.1")
    replies = re.findall(r"bytes from ([0-9a-f:]{17}) \(10\.0\.0\.1\)", result.stdout)
    assert len(replies) >= 2 and set(replies) == {server.mac("veth0")}, result.stdout
    result = nsexec(server.netns, "ping", "-c", "3", "-i", "0.05", "-W", "2", "10.0.0.1")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    configure_link(server.netns, server.tap0, routes=(("10.1.1.0/24", "10.0.0.1"),))
    result = nsexec(server.netns, "ping", "-c", "2", "-i", "0.05", "-W", "2", "10.1.1.1")
    assert " 0% packet loss" in result.stdout, result.stdout + result.stderr
    line = "through a server without privileges\n"
    result = nsexec(server.netns, "nc", "-N", "-w", "5", "10.0.0.1", "80", input=line)
    assert result.stdout == line, result.stderr


def make_owned_taps(
    namespace: str, *, user: str = "nobody", mode: str = "tap", count: int = 2
) -> list[str]:
    """The README's one-time set-up, inside ``namespace``: persistent TAPs owned by ``user``."""
    names = [unique_name("sto") for _ in range(count)]
    for name in names:
        nsexec(namespace, "ip", "tuntap", "add", "mode", mode, "user", user, "name", name)
        nsexec(namespace, "ip", "link", "set", name, "up", check=True)
    nsexec(namespace, "ip", "addr", "add", "10.0.0.2/24", "dev", names[0], check=True)
    return names


# --- started as root ----------------------------------------------------------------------


def test_root_server_parses_frames_as_nobody(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    assert server.worker_pid != server.pid
    worker = server.status()
    assert worker["PPid"] == str(server.pid)
    assert_unprivileged(worker, NOBODY.pw_uid, NOBODY.pw_gid)
    assert worker["NoNewPrivs"] == "1"
    assert server.status(server.pid)["Uid"].split()[1] == "0"  # the parent kept root
    seed_session(server)
    assert_unprivileged(server.status(), NOBODY.pw_uid, NOBODY.pw_gid)
    assert "frames parsed by pid" in server.output()


def test_dropped_server_still_removes_the_namespace_it_made() -> None:
    from pyroute2 import netns

    namespace = unique_name("stns")
    try:
        server = launch_server(netns=namespace)
    except BaseException:  # never ready: the namespace it made must not outlive the test
        if namespace in netns.listnetns():
            netns.remove(namespace)
        raise
    try:
        assert_unprivileged(server.status(), NOBODY.pw_uid, NOBODY.pw_gid)
        nsexec(namespace, "ping", "-c", "1", "-W", "2", "10.0.0.1", check=True)
    finally:
        code = server.stop()
        if namespace in netns.listnetns():
            netns.remove(namespace)
            raise AssertionError("the server left the namespace it created")
    assert code == 0, server.output()
    assert "stopped:" in server.output()


def test_user_option_picks_the_account(start_server: Callable[..., ServerProcess]) -> None:
    try:
        daemon = pwd.getpwnam("daemon")
    except KeyError:
        pytest.skip("no 'daemon' user here")
    server = start_server(extra=("--user", "daemon"))
    assert_unprivileged(server.status(), daemon.pw_uid, daemon.pw_gid)
    nsexec(server.netns, "ping", "-c", "1", "-W", "2", "10.0.0.1", check=True)


def test_keep_root_warns_and_keeps_root(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(extra=("--keep-root",))
    assert server.worker_pid == server.pid
    assert server.status()["Uid"].split()[1] == "0"
    assert any("warning: --keep-root" in line for line in server.stderr), server.stderr


def test_owner_gives_the_created_taps_to_the_user(
    start_server: Callable[..., ServerProcess],
) -> None:
    server = start_server(extra=("--owner", "nobody"))
    for name in (server.tap0, server.tap1):
        owner = nsexec(server.netns, "cat", f"/sys/class/net/{name}/owner", check=True)
        group = nsexec(server.netns, "cat", f"/sys/class/net/{name}/group", check=True)
        assert (owner.stdout.strip(), group.stdout.strip()) == (
            str(NOBODY.pw_uid),
            str(NOBODY.pw_gid),
        )


# --- --attach: no privilege at all ----------------------------------------------------------


def test_attach_as_nobody_without_capabilities(
    start_server: Callable[..., ServerProcess],
    make_netns: Callable[[], str],
    as_nobody: tuple[str, ...],
) -> None:
    namespace = make_netns()
    tap0, tap1 = make_owned_taps(namespace)
    server = start_server(
        netns=namespace, attach=(tap0, tap1), prefix=as_nobody, command=SIMTCP_SERVE
    )
    assert_unprivileged(server.status(), NOBODY.pw_uid, NOBODY.pw_gid)
    seed_session(server)
    assert server.stop() == 0, server.output()
    assert link_exists(tap0, namespace) and link_exists(tap1, namespace)  # still the user's


def test_attach_as_root_drops_in_the_same_process(
    start_server: Callable[..., ServerProcess], make_netns: Callable[[], str]
) -> None:
    namespace = make_netns()
    tap0, tap1 = make_owned_taps(namespace)
    server = start_server(netns=namespace, attach=(tap0, tap1), command=SIMTCP_SERVE)
    assert server.worker_pid == server.pid  # nothing made, nothing to clean up as root
    status = server.status()
    assert_unprivileged(status, NOBODY.pw_uid, NOBODY.pw_gid)
    assert status["NoNewPrivs"] == "1"
    nsexec(namespace, "ping", "-c", "2", "-i", "0.05", "-W", "2", "10.0.0.1", check=True)


def run_attach(
    namespace: str, *names: str, prefix: tuple[str, ...]
) -> subprocess.CompletedProcess[str]:
    return nsexec(
        namespace, *prefix, sys.executable, *SIMTCP_SERVE, "--attach", ",".join(names), timeout=30
    )


def test_attach_a_missing_device(make_netns: Callable[[], str], as_nobody: tuple[str, ...]) -> None:
    namespace = make_netns()
    (tap0,) = make_owned_taps(namespace, count=1)
    missing = unique_name("stm")
    for prefix in (as_nobody, ()):  # as root too: TUNSETIFF must not create it
        result = run_attach(namespace, tap0, missing, prefix=prefix)
        assert_one_line_exit_2(result, missing, "does not exist", "ip tuntap add")
        assert not link_exists(missing, namespace)
        assert link_exists(tap0, namespace)


def test_attach_a_device_owned_by_someone_else(
    make_netns: Callable[[], str], as_nobody: tuple[str, ...]
) -> None:
    namespace = make_netns()
    tap0, theirs = make_owned_taps(namespace)
    nsexec(namespace, "ip", "tuntap", "del", "mode", "tap", "name", theirs, check=True)
    nsexec(namespace, "ip", "tuntap", "add", "mode", "tap", "user", "root", "name", theirs)
    result = run_attach(namespace, tap0, theirs, prefix=as_nobody)
    assert_one_line_exit_2(result, theirs, "belongs to uid 0")
    assert link_exists(theirs, namespace) and link_exists(tap0, namespace)


def test_attach_a_tun_device(make_netns: Callable[[], str], as_nobody: tuple[str, ...]) -> None:
    namespace = make_netns()
    (tap0,) = make_owned_taps(namespace, count=1)
    (tun,) = make_owned_taps(namespace, mode="tun", count=1)
    result = run_attach(namespace, tap0, tun, prefix=as_nobody)
    assert_one_line_exit_2(result, tun, "TUN", "not a TAP")
    assert link_exists(tun, namespace)


def test_attach_not_a_tap_at_all(make_netns: Callable[[], str], as_nobody: tuple[str, ...]) -> None:
    namespace = make_netns()
    (tap0,) = make_owned_taps(namespace, count=1)
    assert_one_line_exit_2(
        run_attach(namespace, tap0, "lo", prefix=as_nobody), "lo", "not a TUN/TAP"
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        (("--user", "no-such-user-h8"), ("no such user", "no-such-user-h8")),
        (("--owner", "no-such-user-h8"), ("no such user",)),
        (("--user", "root"), ("--keep-root",)),
        (("--user", "nobody", "--keep-root"), ("contradict",)),
        (("--attach", "tapa,tapb"), ("--attach", "for creating them")),
        (("--attach", "tapa"), ("TAP0,TAP1",)),
        (("--pcap-wire",), ("--pcap",)),
    ],
)
def test_bad_privilege_options_leave_nothing(argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    from pyroute2 import netns

    namespace = unique_name("stns")  # missing: a server that went ahead would create it
    tap0, tap1 = unique_name("sta"), unique_name("stb")
    result = run_server("--netns", namespace, "--tap0", tap0, "--tap1", tap1, *argv)
    assert_one_line_exit_2(result, *words)
    assert namespace not in netns.listnetns()
    assert not link_exists(tap0, None) and not link_exists(tap1, None)


def test_help_says_which_step_needs_which_capability() -> None:
    result = subprocess.run(
        [sys.executable, str(SERVER), "--help"], capture_output=True, text=True, cwd=REPO
    )
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for words in ("CAP_NET_ADMIN", "CAP_SYS_ADMIN", "nobody", "--attach", "ip tuntap add"):
        assert words in text, words


def test_ctrl_c_at_a_terminal_reaches_both_processes(
    start_server: Callable[..., ServerProcess],
) -> None:
    """A terminal's Ctrl-C signals the whole process group: the worker gets SIGINT from it
    and again from its parent; it still prints its stop line, and the parent cleans up."""
    server = start_server()
    nsexec(server.netns, "ping", "-c", "1", "-W", "2", "10.0.0.1", check=True)
    os.kill(server.worker_pid, signal.SIGINT)
    assert server.stop(signal.SIGINT) == 0, server.output()
    assert "stopped:" in server.output()
    assert "Traceback" not in server.output()


def test_worker_stops_when_its_root_parent_dies(
    start_server: Callable[..., ServerProcess],
) -> None:
    """PR_SET_PDEATHSIG: killed, the parent cannot clean up; the worker must not serve on
    alone, and its exit takes the (non-persistent) devices with it."""
    server = start_server()
    worker = server.worker_pid
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    server.stopped, server.expected_exit = True, -signal.SIGKILL
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{worker}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{worker}"), "the worker outlived its parent"
