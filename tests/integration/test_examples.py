"""The TAP examples: options that say "existing" refuse what is missing; what they make they remove.

Regression (issue 23): ``aio_echo_server.py --netns NAME`` created a missing
namespace (pyroute2's ``NetNS`` creates by default) and left it behind, and
``selectors_loop.py`` had a hard-coded TAP name and addressed it in the root
namespace.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from .conftest import REPO, link_exists, nsexec, unique_name
from .test_invocation import assert_one_line_exit_2
from .test_privilege import make_owned_taps

pytestmark = pytest.mark.timeout(60)

EXAMPLES = ("aio_echo_server.py", "selectors_loop.py")
PORT = 7


def run_example(name: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / name), *argv],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
    )


@contextlib.contextmanager
def running(argv: list[str]) -> Iterator[subprocess.Popen[str]]:
    """Start an example, wait for its ready line, stop it with SIGINT by PID at the end."""
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO
    )
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if "ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert ready.wait(15), process.stderr.read() if process.poll() is not None else "slow"
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


@pytest.mark.parametrize("example", EXAMPLES)
def test_missing_namespace_is_refused_not_created(example: str) -> None:
    from pyroute2 import netns

    namespace = unique_name("stns")
    tap = unique_name("stx")
    try:
        result = run_example(example, "--netns", namespace, "--tap", tap)
        assert_one_line_exit_2(result, namespace, "does not exist")
    finally:
        leaked = namespace in netns.listnetns()
        if leaked:
            netns.remove(namespace)
    assert not leaked, f"{example} created namespace {namespace} and left it behind"
    assert not link_exists(tap, None)


@pytest.mark.parametrize("example", EXAMPLES)
def test_echo_in_a_namespace_and_the_tap_goes_with_it(
    example: str, make_netns: Callable[[], str]
) -> None:
    namespace = make_netns()
    tap = unique_name("stx")
    argv = [sys.executable, str(REPO / "examples" / example), "--netns", namespace, "--tap", tap]
    with running(argv):
        assert link_exists(tap, namespace) and not link_exists(tap, None)
        line = f"echoed by {example}\n"
        result = nsexec(namespace, "nc", "-N", "-w", "5", "10.0.0.1", str(PORT), input=line)
        assert result.stdout == line, result.stderr
    assert not link_exists(tap, namespace)


@pytest.mark.parametrize("example", EXAMPLES)
def test_attach_to_a_tap_made_beforehand(example: str, make_netns: Callable[[], str]) -> None:
    namespace = make_netns()
    (tap,) = make_owned_taps(namespace, count=1)
    script = str(REPO / "examples" / example)
    with running(["ip", "netns", "exec", namespace, sys.executable, script, "--attach", tap]):
        line = "attached\n"
        result = nsexec(namespace, "nc", "-N", "-w", "5", "10.0.0.1", str(PORT), input=line)
        assert result.stdout == line, result.stderr
    assert link_exists(tap, namespace)  # the user's device: left alone
