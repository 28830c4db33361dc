"""Fixtures for tests against the real Linux kernel: namespaces, TAP names, the server process.

Every test makes its own network namespaces (unique names) and removes them
even when it fails; the server runs as a subprocess with unique TAP names,
is stopped by its PID with SIGTERM, and must exit 0 and leave no device behind.
Without root, /dev/net/tun, pyroute2 or iproute2 the tests skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import layered

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "echo_reply_server.py"
LAYERED_SERVER = REPO / "tests" / "layered.py"
"""The server with ``StackConfig.fast_paths`` off (the layered paths alone)."""
TOOLS = Path(__file__).resolve().parent
TCP_TOOL = TOOLS / "tcp_tool.py"
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 15.0


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "integration tests need root (TAP devices and network namespaces)"
    if not os.path.exists("/dev/net/tun"):
        return "integration tests need /dev/net/tun"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "integration tests need pyroute2"
    if shutil.which("ip") is None:
        return "integration tests need iproute2 (ip netns exec)"
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "unprivileged: an integration-directory test that needs no root (runs everywhere)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    for item in items:
        if TOOLS in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
            if reason is not None and item.get_closest_marker("unprivileged") is None:
                item.add_marker(pytest.mark.skip(reason=reason))


def unique_name(prefix: str) -> str:
    """A short unique name (interface names stop at 15 characters)."""
    return f"{prefix}{secrets.token_hex(3)}"


# --- namespaces ---------------------------------------------------------------


@pytest.fixture
def make_netns() -> Iterator[Callable[[], str]]:
    """A factory of fresh network namespaces (loopback up), all removed at the end."""
    from pyroute2 import NetNS, netns

    created: list[str] = []

    def make() -> str:
        name = unique_name("stns")
        netns.create(name)
        created.append(name)
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        return name

    yield make
    for name in created:
        with contextlib.suppress(OSError):
            netns.remove(name)
    leftover = set(created) & set(netns.listnetns())
    assert not leftover, f"namespaces left behind: {leftover}"


def nsexec(
    namespace: str, *argv: str, timeout: float = 30, input: str | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a command inside ``namespace``; output captured as text."""
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    if check:
        assert result.returncode == 0, (
            f"{argv} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def ns_python(
    namespace: str, *argv: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run this interpreter inside ``namespace`` (a script path and its arguments)."""
    return nsexec(namespace, sys.executable, *argv, timeout=timeout, check=check)


def link_exists(name: str, namespace: str | None) -> bool:
    from pyroute2 import IPRoute, NetNS
    from pyroute2 import netns as netns_module

    if namespace is not None and namespace not in netns_module.listnetns():
        return False
    with NetNS(namespace) if namespace else IPRoute() as ipr:
        return bool(ipr.link_lookup(ifname=name))


def configure_link(
    namespace: str,
    name: str,
    *,
    address: str | None = None,
    gateway: str | None = None,
    routes: tuple[tuple[str, str], ...] = (),
) -> None:
    """Give a kernel interface an address, bring it up, add a default route and routes."""
    from pyroute2 import NetNS

    with NetNS(namespace) as ns:
        index = ns.link_lookup(ifname=name)[0]
        if address is not None:
            host, _, prefix = address.partition("/")
            ns.addr("add", index=index, address=host, prefixlen=int(prefix))
        ns.link("set", index=index, state="up")
        if gateway is not None:
            ns.route("add", dst="0.0.0.0/0", gateway=gateway)
        for destination, via in routes:
            ns.route("add", dst=destination, gateway=via)


# --- the server process ---------------------------------------------------------


@dataclass
class ServerProcess:
    """A running echo_reply_server.py and what it told us."""

    process: subprocess.Popen[str]
    netns: str
    netns1: str
    tap0: str
    tap1: str
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)
    stopped: bool = False
    """True once :meth:`stop` was called (the test ended the server on purpose)."""
    expected_exit: int = 0
    """The exit code the fixture expects at teardown."""
    attached: bool = False
    """Started with --attach: the devices are the test's, and must survive the server."""

    @property
    def pid(self) -> int:
        """The process we started (as root: the privileged parent that cleans up)."""
        return self.process.pid

    @property
    def worker_pid(self) -> int:
        """The process that parses frames (the ``ready (pid N`` line says which)."""
        for line in self.stdout:
            match = re.search(r"ready \(pid (\d+)", line)
            if match:
                return int(match.group(1))
        raise AssertionError(f"no ready line in {self.stdout}")

    def status(self, pid: int | None = None) -> dict[str, str]:
        """``/proc/PID/status`` of ``pid`` (default: the worker) as a dict."""
        with open(f"/proc/{pid or self.worker_pid}/status", encoding="ascii") as status:
            return {
                key: value.strip() for key, _, value in (line.partition(":") for line in status)
            }

    def mac(self, interface: str) -> str:
        for line in self.stdout:
            match = re.search(rf"\b{interface} \S+ mac ([0-9a-f:]{{17}})", line)
            if match:
                return match.group(1)
        raise AssertionError(f"no MAC for {interface} in {self.stdout}")

    def rss_kib(self) -> int:
        with open(f"/proc/{self.worker_pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.worker_pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal the server by PID and wait for it; returns the exit code."""
        self.stopped = True
        if self.process.poll() is None:
            os.kill(self.pid, sig)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError("server ignored the signal; killed") from None

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def _pump(stream: object, lines: list[str], ready: threading.Event | None) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if ready is not None and "ready" in line:
            ready.set()


def launch_server(
    *,
    netns: str,
    netns1: str | None = None,
    extra: tuple[str, ...] = (),
    tap0: str | None = None,
    tap1: str | None = None,
    command: tuple[str, ...] = (str(SERVER),),
    attach: bool = False,
    prefix: tuple[str, ...] = (),
) -> ServerProcess:
    """Start the server with unique TAP names and wait for its ``ready`` line.

    ``command`` follows the interpreter: the script by default, or ``("-m", "simtcp", "serve")``.
    With ``attach``, ``tap0`` and ``tap1`` are existing devices in ``netns``: the server runs
    inside it (``ip netns exec``, then ``prefix``, e.g. setpriv) with ``--attach TAP0,TAP1``.
    """
    tap0 = tap0 or unique_name("sta")
    tap1 = tap1 or unique_name("stb")
    if command == (str(SERVER),) and layered.requested():
        command = (str(LAYERED_SERVER),)  # SIMTCP_FAST_PATHS=0: the server without them
    if attach:
        argv = ["ip", "netns", "exec", netns, *prefix, sys.executable, *command]
        argv += ["--attach", f"{tap0},{tap1}"]
    else:
        argv = [*prefix, sys.executable, *command, "--netns", netns, "--tap0", tap0]
        argv += ["--tap1", tap1]
    if netns1 is not None:
        argv += ["--netns1", netns1]
    argv += list(extra)
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    server = ServerProcess(process, netns, netns1 or netns, tap0, tap1, attached=attach)
    threading.Thread(
        target=_pump, args=(process.stdout, server.stdout, server.ready), daemon=True
    ).start()
    threading.Thread(target=_pump, args=(process.stderr, server.stderr, None), daemon=True).start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not server.ready.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            time.sleep(0.1)
            raise AssertionError(f"server never became ready:\n{server.output()}")
    return server


@pytest.fixture
def start_server(make_netns: Callable[[], str]) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: start a server (in a fresh namespace unless given one); checked stop at the end."""
    servers: list[ServerProcess] = []

    def start(
        *,
        netns: str | None = None,
        netns1: str | None = None,
        extra: tuple[str, ...] = (),
        command: tuple[str, ...] = (str(SERVER),),
        attach: tuple[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> ServerProcess:
        tap0, tap1 = attach or (None, None)
        server = launch_server(
            netns=netns or make_netns(),
            netns1=netns1,
            extra=extra,
            command=command,
            tap0=tap0,
            tap1=tap1,
            attach=attach is not None,
            prefix=prefix,
        )
        servers.append(server)
        return server

    yield start
    problems = []
    for server in servers:
        died = not server.stopped and not server.alive()
        code = server.stop()
        if died:
            problems.append(f"server died during the test (exit {code}):\n{server.output()}")
        elif code != server.expected_exit:
            problems.append(f"server exited {code}:\n{server.output()}")
        for name, namespace in ((server.tap0, server.netns), (server.tap1, server.netns1)):
            if server.attached and not link_exists(name, namespace):
                problems.append(f"the server removed {name}, which it only attached to")
            elif not server.attached and link_exists(name, namespace):
                problems.append(f"device {name} still exists in {namespace}")
    assert not problems, "\n".join(problems)


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """One server in a fresh namespace, default options."""
    return start_server()
