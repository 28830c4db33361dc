"""The simtcp pytest plugin: a simulated network fixture, a seed option, replay commands.

Registered through the ``pytest11`` entry point, so installing simtcp is enough:

- the ``simnet`` fixture is a :class:`simtcp.backends.aio_sim.SimNetwork` seeded
  from ``--simtcp-seed`` (default: a number derived from the test's id, so
  every run of a test is the same run). Add hosts, then ``simnet.run(main())``;
- ``async def`` tests that take ``simnet`` run on its virtual-time loop, with
  the hosts ``@pytest.mark.simtcp(hosts={"server": LinkProfile(...), ...})``
  asks for (default: ``server`` and ``client`` on perfect links);
- a failing test that used the fixture prints its seed and the one command that
  replays it;
- with hypothesis, draw the seed (``seed=simtcp_seeds()``) and build the
  network inside the example with ``simnet_factory(seed)``, so shrinking works.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from simtcp.backends.aio_sim import SimNetwork
from simtcp.backends.impair import LinkProfile

_SEED_KEY = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("simtcp")
    group.addoption(
        "--simtcp-seed",
        type=int,
        default=None,
        help="seed of every simtcp simulated network (default: derived from the test id)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "simtcp(hosts=...): hosts (name -> LinkProfile) of the simnet fixture"
    )


def simtcp_seeds() -> Any:
    """A hypothesis strategy of network seeds (shrinks towards 0)."""
    from hypothesis import strategies as st

    return st.integers(min_value=0, max_value=2**32 - 1)


def _seed_for(item: pytest.Item) -> int:
    chosen = item.config.getoption("--simtcp-seed")
    if chosen is not None:
        return int(chosen)
    return int.from_bytes(hashlib.sha256(item.nodeid.encode()).digest()[:4], "big")


@pytest.fixture(scope="session")
def simnet_factory() -> Callable[[int], SimNetwork]:
    """Build a fresh :class:`SimNetwork` for a seed (for hypothesis examples)."""
    return SimNetwork


@pytest.fixture
def simnet(request: pytest.FixtureRequest) -> Iterator[SimNetwork]:
    """A simulated network seeded for this test (see the module docstring)."""
    seed = _seed_for(request.node)
    request.node.stash[_SEED_KEY] = seed
    net = SimNetwork(seed)
    marker = request.node.get_closest_marker("simtcp")
    if inspect.iscoroutinefunction(getattr(request.node, "obj", None)) or marker is not None:
        hosts: dict[str, LinkProfile | None] = (
            marker.kwargs.get("hosts") if marker is not None else None
        ) or {"server": None, "client": None}
        for name, profile in hosts.items():
            net.add_host(name, profile=profile)
    yield net


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests that use ``simnet`` on the network's virtual-time loop."""
    if "simnet" not in pyfuncitem.fixturenames:
        return None
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    arguments = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    net = pyfuncitem.funcargs["simnet"]
    assert isinstance(net, SimNetwork)
    net.run(pyfuncitem.obj(**arguments))
    return True


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    seed = item.stash.get(_SEED_KEY, None)
    if seed is not None and report.failed:
        report.sections.append(
            (
                "simtcp",
                f"simtcp seed {seed}; replay with: "
                f"python3 -m pytest {item.nodeid!r} --simtcp-seed {seed}",
            )
        )
    return report


__all__ = ["simtcp_seeds"]
