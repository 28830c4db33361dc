"""Harness of the asyncio adapter's tests (two stacks in a VirtualTimeLoop, a timer audit), and
tests that the harness itself catches what it should.

:class:`AuditedLoop` records every ``call_at`` a driver makes for its timer and,
after every simulator step, checks the contract of DESIGN.md "The core's
contract" as the adapter promises it: at most one live timer per driver, and,
when no flush is pending, exactly one at ``poll_at()`` (to the float) or none
when ``poll_at()`` is None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simtcp.aio import AioStack
from simtcp.backends.aio_sim import VirtualTimeLoop
from simtcp.backends.sim import Link, LinkProfile, Simulator
from simtcp.config import StackConfig
from simtcp.stack import Stack
from simtcp.tcp.config import TcpConfig

SERVER_ADDRESS = "10.0.0.1"
CLIENT_ADDRESS = "10.0.0.2"


@dataclass
class TimerRecord:
    driver: AioStack
    when: float
    handle: asyncio.TimerHandle | None = None
    fired: bool = False

    @property
    def live(self) -> bool:
        return not self.fired and self.handle is not None and not self.handle.cancelled()


class AuditedLoop(VirtualTimeLoop):
    """A VirtualTimeLoop that audits the drivers' one-timer contract before every idle wait
    and after every simulator step."""

    def __init__(self, simulator: Simulator) -> None:
        super().__init__(simulator)
        self.records: list[TimerRecord] = []
        self.drivers: list[AioStack] = []
        self.violations: list[str] = []
        self.audits = 0
        simulator.add_process(lambda now: self.audit())

    def attach(self, name: str, stack: Stack, **kwargs: Any) -> AioStack:
        driver = super().attach(name, stack, **kwargs)
        self.drivers.append(driver)
        return driver

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        owner = getattr(callback, "__self__", None)
        if not (isinstance(owner, AioStack) and callback.__name__ == "_on_timer"):
            return super().call_at(when, callback, *args, context=context)
        record = TimerRecord(owner, when)

        def fire() -> None:
            record.fired = True
            callback()

        record.handle = super().call_at(when, fire, context=context)
        self.records.append(record)
        return record.handle

    def advance(self, timeout: float | None) -> None:
        self.audit()  # the start of every idle wait: each callback of the turn has run
        super().advance(timeout)

    def live(self, driver: AioStack) -> list[TimerRecord]:
        return [record for record in self.records if record.driver is driver and record.live]

    def audit(self) -> None:
        self.audits += 1
        self.records = [record for record in self.records if record.live]
        for driver in self.drivers:
            live = self.live(driver)
            if len(live) > 1:
                self.violations.append(f"t={self.simulator.now}: {len(live)} live timers")
            if driver.flush_pending or driver.closed:
                continue
            expected = driver.stack.poll_at()
            whens = [record.when for record in live]
            wanted = [] if expected is None else [expected / 1_000_000]
            if whens != wanted:
                self.violations.append(
                    f"t={self.simulator.now}: timers at {whens}, poll_at() is {expected}"
                )


def make_stack(seed: int, address: str, mac: str, tcp: TcpConfig | None = None) -> Stack:
    stack = Stack(StackConfig(seed=seed, tcp=tcp or TcpConfig()))
    stack.add_interface("eth0", mac=mac)
    stack.add_address("eth0", f"{address}/24")
    return stack


@dataclass
class Net:
    sim: Simulator
    loop: AuditedLoop
    server: AioStack
    client: AioStack
    link: Link
    notes: list[str] = field(default_factory=list)

    def run(self, main: Any) -> Any:
        """Run ``main`` to the end, then close the loop (the stacks stay inspectable)."""
        try:
            return self.loop.run(main)
        finally:
            self.loop.close()


def network(
    seed: int = 1,
    profile: LinkProfile | None = None,
    *,
    tcp: TcpConfig | None = None,
    back: LinkProfile | None = None,
) -> Net:
    """Server 10.0.0.1 and client 10.0.0.2 on one link (1 ms each way unless told)."""
    sim = Simulator(seed)
    loop = AuditedLoop(sim)
    server = loop.attach("server", make_stack(1, SERVER_ADDRESS, "02:00:00:00:00:01", tcp))
    client = loop.attach("client", make_stack(2, CLIENT_ADDRESS, "02:00:00:00:00:02", tcp))
    profile = profile if profile is not None else LinkProfile(delay=1_000)
    link = sim.connect(("server", "eth0"), ("client", "eth0"), profile, back)
    return Net(sim, loop, server, client, link)


async def echo_handler(reader: Any, writer: Any) -> None:
    """RFC 862 echo with back-pressure: read, write, drain; close after the client's FIN."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


# --- the harness's own tests ---------------------------------------------------------


def test_audit_catches_a_second_live_timer() -> None:
    net = network()

    async def main() -> None:
        await asyncio.sleep(0.01)
        driver = net.client
        driver.stack.ping(
            SERVER_ADDRESS, identifier=1, sequence=1, now=driver.now()
        )  # an ARP exchange arms ARP timers
        driver.schedule_flush()
        await asyncio.sleep(0)
        net.loop.call_at(net.loop.time() + 5, driver._on_timer)  # a rogue second timer
        await asyncio.sleep(0.01)

    net.run(main())
    assert any("2 live timers" in violation for violation in net.loop.violations)


def test_audit_catches_a_timer_off_the_deadline() -> None:
    net = network()

    async def main() -> None:
        await asyncio.sleep(0.01)
        driver = net.client
        driver.stack.ping("10.0.0.77", identifier=1, sequence=1, now=driver.now())
        driver.schedule_flush()
        await asyncio.sleep(0.001)
        record = net.loop.live(driver)[0]
        assert record.handle is not None
        record.handle.cancel()  # what a driver that forgot to re-arm would leave
        await asyncio.sleep(0.01)

    net.run(main())
    assert any("poll_at() is" in violation for violation in net.loop.violations)


def test_same_seed_same_virtual_transcript() -> None:
    def transcript(seed: int) -> list[tuple[int, str, int]]:
        net = network(seed, LinkProfile(delay=500, loss=0.1))
        lines: list[tuple[int, str, int]] = []

        async def handler(reader: Any, writer: Any) -> None:
            while data := await reader.read(1000):
                lines.append((net.sim.now, "server", len(data)))
                writer.write(data)
                await writer.drain()
            writer.close()

        async def main() -> None:
            server = await net.server.start_server(handler, SERVER_ADDRESS, 7)
            reader, writer = await net.client.open_connection(SERVER_ADDRESS, 7)
            writer.write(bytes(50_000))
            writer.write_eof()
            while data := await reader.read(3000):
                lines.append((net.sim.now, "client", len(data)))
            server.close()
            await server.wait_closed()

        net.run(main())
        assert net.loop.violations == []
        return lines

    first = transcript(7)
    assert sum(size for _, who, size in first if who == "client") == 50_000
    assert transcript(7) == first
    assert transcript(8) != first
