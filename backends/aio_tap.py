"""Real TAP devices under an asyncio loop: ``loop.add_reader`` in, non-blocking writes out.

The devices are :class:`simtcp.backends.tap.TapDevice` objects, created and closed by
the caller (``TapDevice.create`` sets up the kernel side with pyroute2). This
link only moves frames, as :class:`simtcp.backends.tap.TapLoop` does: every readable
device is read in batches of at most ``read_batch`` frames (one step of the
driver per batch), and a write that meets a full kernel queue (``EAGAIN``)
keeps that frame and every later one for the device in its FIFO, flushed when
``loop.add_writer`` says the fd is writable; while any FIFO is non-empty no
device is read, so the stack is throttled instead of frames being lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from simtcp.aio.loop import NetworkLoopMixin, run_with
from simtcp.aio.network import Host, Network, add_loopback

from .tap import TapDevice, TapError
from .tapdevice import DeviceWriteError  # hard write errors (EIO, ...)

if TYPE_CHECKING:
    from simtcp.aio.driver import AioStack, EventHook
    from simtcp.stack import Stack

_T = TypeVar("_T")


class TapLink:
    """Frames between TAP devices and one driver, through the loop's reader/writer callbacks."""

    def __init__(self, devices: Iterable[TapDevice], *, read_batch: int = 256) -> None:
        self.devices = {device.interface: device for device in devices}
        self.read_batch = read_batch
        self.counters = {"write_blocked": 0, "write_errors": 0, "device_errors": 0}
        self._driver: AioStack | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._writing: set[int] = set()
        self._failed: set[int] = set()

    def start(self, driver: AioStack) -> None:
        self._driver = driver
        self._loop = driver.loop
        self._set_reading(True)

    def close(self) -> None:
        self._set_reading(False)
        loop = self._loop
        if loop is not None:
            for fd in self._writing:
                loop.remove_writer(fd)
        self._writing.clear()
        self._driver = None

    def send(self, frames: list[tuple[str, bytes]]) -> None:
        devices = self.devices
        for name, frame in frames:
            device = devices.get(name)
            if device is None or device.fd < 0:
                self.counters["write_errors"] += 1
                continue
            if device.write_queue:
                device.write_queue.append(frame)
                continue
            try:
                written = device.write(frame)
            except DeviceWriteError:
                self.counters["write_errors"] += 1
                continue
            if not written:
                self.counters["write_blocked"] += 1
                device.write_queue.append(frame)
                self._watch_writable(device)

    def _set_reading(self, reading: bool) -> None:
        loop = self._loop
        if loop is None or reading == self._reading:
            return
        self._reading = reading
        for device in self.devices.values():
            if device.fd < 0 or device.fd in self._failed:
                continue
            if reading:
                loop.add_reader(device.fd, self._readable, device)
            else:
                loop.remove_reader(device.fd)

    def _readable(self, device: TapDevice) -> None:
        driver = self._driver
        if driver is None:
            return
        try:
            frames = device.read_frames(self.read_batch)
        except TapError as error:
            self.counters["device_errors"] += 1
            self._failed.add(device.fd)
            assert self._loop is not None
            self._loop.remove_reader(device.fd)
            self._loop.call_exception_handler({"message": str(error), "exception": error})
            return
        if frames:
            driver.frames_received(device.interface, frames)

    def _watch_writable(self, device: TapDevice) -> None:
        loop = self._loop
        if loop is None or device.fd in self._writing:
            return
        self._set_reading(False)
        self._writing.add(device.fd)
        loop.add_writer(device.fd, self._writable, device)

    def _writable(self, device: TapDevice) -> None:
        queue = device.write_queue
        while queue:
            try:
                written = device.write(queue[0])
            except DeviceWriteError:
                self.counters["write_errors"] += 1
                queue.popleft()
                continue
            if not written:
                return
            queue.popleft()
        assert self._loop is not None
        self._loop.remove_writer(device.fd)
        self._writing.discard(device.fd)
        if not self._writing:
            self._set_reading(True)


def over_tap(
    stack: Stack,
    devices: Iterable[TapDevice],
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    read_batch: int = 256,
    on_event: EventHook | None = None,
) -> AioStack:
    """Drive ``stack`` over ``devices`` (wired by their ``interface``) from ``loop``."""
    from simtcp.aio.driver import AioStack

    return AioStack(stack, TapLink(devices, read_batch=read_batch), loop=loop, on_event=on_event)


class TapEventLoop(NetworkLoopMixin, asyncio.SelectorEventLoop):  # type: ignore[misc]
    """A real-time selector loop whose networking is a :class:`TapNetwork`'s hosts."""

    def __init__(self, network: TapNetwork) -> None:
        asyncio.SelectorEventLoop.__init__(self)
        self._simtcp_setup(network)


class TapNetwork(Network):
    """simtcp hosts over real TAP devices, in real time: unmodified asyncio programs on them.

    ``add_host(name, stack, devices, addresses)`` takes a configured stack and its
    devices (created by the caller; :class:`~simtcp.backends.tap.TapDevice`); the
    host also gets ``lo`` at 127.0.0.1/8, and ::1 when an address is IPv6.
    :meth:`loop_factory` is for ``asyncio.Runner(loop_factory=...)``; :meth:`run` is
    that in one call.
    """

    def __init__(self, *, read_batch: int = 256) -> None:
        super().__init__()
        self.read_batch = read_batch
        self._devices: dict[str, list[TapDevice]] = {}
        self.loop: TapEventLoop | None = None

    def add_host(
        self, name: str, stack: Stack, devices: Iterable[TapDevice], addresses: list[str]
    ) -> Host:
        if self.loop is not None:
            raise RuntimeError("add hosts before the loop starts")
        ipv6 = any(":" in address for address in addresses)
        add_loopback(stack, ipv6=ipv6)
        self._devices[name] = list(devices)
        loopbacks = ["127.0.0.1", "::1"] if ipv6 else ["127.0.0.1"]
        return self.register(Host(name, stack, [*addresses, *loopbacks]))

    def loop_factory(self) -> TapEventLoop:
        if self.loop is not None:
            raise RuntimeError("this TapNetwork already ran a loop")
        loop = TapEventLoop(self)
        self.loop = loop
        for name, host in self.hosts.items():
            host.driver = over_tap(
                host.stack, self._devices[name], loop=loop, read_batch=self.read_batch
            )
        return loop

    def run(self, main: Coroutine[Any, Any, _T], *, host: str | None = None) -> _T:
        """Run ``main`` to completion (on ``host`` when given), then stop the drivers."""
        try:
            if host is None:
                result: _T = run_with(self.loop_factory, main)
                return result
            with self.host(host):
                result = run_with(self.loop_factory, main)
                return result
        finally:
            for each in self.hosts.values():
                if each.driver is not None:
                    each.driver.close()


__all__ = ["TapEventLoop", "TapLink", "TapNetwork", "over_tap"]
