"""Real Linux TAP devices driving a Stack: one epoll loop, impairment shim, pcap.

Theory of operation
-------------------

The devices themselves (``/dev/net/tun``, ioctls, the virtio-net header and
offload negotiation, reads and writes) are :mod:`simtcp.backends.tapdevice`; the
host side (privileges, namespaces, pyroute2) is :mod:`simtcp.backends.tapsetup`.
This module re-exports both, so ``from simtcp.backends import tap`` gives the whole
backend.

With offloads on, the loop passes the virtio-net header's verdict to the stack
(``receive_frame(..., checksum_verified=, gso_size=)``) and derives the header
of each frame it writes from the frame (:func:`simtcp.backends.vnet.tx_header`). It
also merges runs of the stack's own full-sized TCP segments into one
super-segment per write (:func:`simtcp.backends.nic.coalesce_for_tso`): the kernel cuts
it back at the same MSS, so the wire carries the very same segments, and one
syscall replaces up to 45. With the impairment shim, which models the wire,
frames cross it as wire frames: GSO cut, checksums finished.

:class:`TapLoop` drives one :class:`simtcp.Stack` over any number of devices
with the cycle the sans-IO contract asks for (DESIGN.md "The core's
contract"):

1. wait in epoll until a device is readable, a blocked write
   can proceed, a signal arrives, or the stack's ``poll_at()`` deadline (or an
   impairment hold) comes due;
2. read every ready frame from every readable device (until ``EAGAIN``, at
   most ``read_batch`` per device per turn so output is never starved) and
   hand each one to ``receive_frame(interface, frame, now=)``;
3. fire ``handle_timer(now=)`` when its deadline passed;
4. hand every event to the application callback;
5. write everything ``frames_to_send(now=)`` returns. A write that meets a
   full queue (``EAGAIN``) keeps the frame, and every later one for that
   device, in a FIFO that is flushed when epoll says the fd is writable;
   while any FIFO is non-empty no new input is read, so the stack is
   throttled instead of frames being lost.

Time is ``time.monotonic_ns() // 1000``: integer microseconds, as the core wants.

An optional impairment shim (the simulator's :class:`simtcp.backends.impair.Impairment`:
loss, reordering, duplication, ...; seeded) sits between each device and the
stack, in both directions, and an optional pcap
writer records every frame at the stack's boundary (what the stack received
and what it sent), with monotonic timestamps anchored to the wall clock once
at start so capture tools show real dates.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import heapq
import itertools
import math
import os
import random
import select
import signal
import threading
import time
from collections.abc import Callable, Iterable
from ipaddress import IPv6Address
from types import FrameType
from typing import Any, Protocol

from simtcp.backends.nic import coalesce_for_tso, gro_receive, nic_transmit
from simtcp.events import Event
from simtcp.stack import InterfaceOffload
from simtcp.time import Instant
from simtcp.wire.pcap import PcapWriter

from .impair import Impairment, LinkProfile
from .tapdevice import (
    IFF_NO_PI,
    IFF_TAP,
    IFF_VNET_HDR,
    MAX_FRAME,
    MAX_READ,
    TUN_F_CSUM,
    TUN_F_TSO4,
    TUNSETIFF,
    TUNSETOFFLOAD,
    TUNSETVNETHDRSZ,
    TUNSETVNETLE,
    DeviceWriteError,
    TapDevice,
    WirePcapWriter,
    cut_for_wire,
    stack_offload,
)
from .tapsetup import (
    TUN_PATH,
    TapError,
    check_name_free,
    ensure_namespace,
    forward_signal_in_child,
    link_index,
    list_namespaces,
    missing_requirement,
    netlink,
    remove_namespace,
    stack_mac,
)
from .vnet import FLAG_NEEDS_CSUM, VNET_HEADER_LENGTH, rx_info, tx_header


class StackLike(Protocol):
    """The part of :class:`simtcp.Stack` the loop drives."""

    def receive_frame(
        self,
        interface: str,
        frame: bytes | memoryview,
        *,
        now: Instant,
        checksum_verified: bool = False,
        gso_size: int = 0,
    ) -> None: ...
    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]: ...
    def poll_at(self) -> Instant | None: ...
    def handle_timer(self, *, now: Instant) -> None: ...
    def next_event(self) -> Event | None: ...


EventCallback = Callable[[Event, Instant], None]

WOKE_AT_ONCE_US = 5
"""An epoll wait shorter than this did not sleep: input was already queued (a backlog)."""


def monotonic_us() -> Instant:
    """The loop's clock: monotonic integer microseconds."""
    return time.monotonic_ns() // 1000


# --- impairment ---------------------------------------------------------------


class ImpairedPath:
    """One direction of one device through :class:`simtcp.backends.impair.Impairment`.

    The impairment model (shared with the simulator) says when each copy of a
    frame arrives; copies wait here in a heap until then. With no delay
    configured a frame is due at once, and only a frame chosen for reordering
    waits (``reorder_delay``) while later frames overtake it.
    """

    def __init__(self, profile: LinkProfile, *, seed: int, stream: str) -> None:
        digest = hashlib.blake2b(f"simtcp-tap:{seed}:{stream}".encode(), digest_size=8).digest()
        self.impairment = Impairment(profile, random.Random(int.from_bytes(digest, "big")))
        self._heap: list[tuple[Instant, int, bytes]] = []
        self._order = itertools.count()

    def push(self, frame: bytes, now: Instant) -> list[bytes]:
        """Offer ``frame`` to the path; the frames (maybe older ones) due now."""
        for arrival_at, copy in self.impairment.apply(frame, now):
            heapq.heappush(self._heap, (arrival_at, next(self._order), copy))
        return self.release(now)

    def release(self, now: Instant) -> list[bytes]:
        heap = self._heap
        out: list[bytes] = []
        while heap and heap[0][0] <= now:
            out.append(heapq.heappop(heap)[2])
        return out

    def next_release_at(self) -> Instant | None:
        return self._heap[0][0] if self._heap else None


# --- latency ----------------------------------------------------------------


class LatencyHistogram:
    """Durations in 100 ns buckets (a count per bucket): bounded memory, exact enough for
    p50/p99 of turns that last tens of microseconds."""

    BUCKET_NS = 100

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0

    def record(self, duration_ns: int) -> None:
        bucket = duration_ns // self.BUCKET_NS
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        self.total += 1

    def percentile_us(self, fraction: float) -> float:
        """The duration (µs, a bucket's upper edge) that ``fraction`` of the records reach."""
        if not self.total:
            return 0.0
        rank = max(1, math.ceil(fraction * self.total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return (bucket + 1) * self.BUCKET_NS / 1000
        return 0.0  # not reached: the counts add up to total

    def summary(self) -> str:
        """One line: how many turns, p50 and p99 in µs."""
        return (
            f"latency: {self.total} turns from readable to answer written, "
            f"p50 {self.percentile_us(0.5):.1f} us, p99 {self.percentile_us(0.99):.1f} us"
        )


# --- the loop -----------------------------------------------------------------


class TapLoop:
    """Drives one stack over TAP devices until :meth:`stop` (or a signal) ends it."""

    def __init__(
        self,
        stack: StackLike,
        devices: Iterable[TapDevice],
        *,
        on_event: EventCallback | None = None,
        impairment: LinkProfile | None = None,
        impairment_seed: int = 0,
        pcap: PcapWriter | None = None,
        read_batch: int = 256,
        clock: Callable[[], Instant] = monotonic_us,
        coalesce: bool = True,
        gro: bool = False,
        latency: bool = False,
    ) -> None:
        self.stack = stack
        self.devices = {device.interface: device for device in devices}
        self.on_event = on_event
        self.pcap = pcap
        self.read_batch = read_batch
        self.clock = clock
        self.counters: dict[str, int] = {
            "frames_in": 0,
            "frames_out": 0,
            "write_blocked": 0,
            "write_errors": 0,
            "gso_in": 0,
            "gso_out": 0,
            "gso_refused": 0,
            "runts": 0,
            "coalesced": 0,
            "gro_merged": 0,
        }
        self.gro = gro
        """Software GRO on devices without the virtio-net header (see :meth:`_deliver_gro`)."""
        self._pcap_offset = time.time_ns() // 1000 - clock()
        self._inbound: dict[str, ImpairedPath] = {}
        self._outbound: dict[str, ImpairedPath] = {}
        if impairment is not None and not impairment.is_perfect:
            for name in self.devices:
                self._inbound[name] = ImpairedPath(
                    impairment, seed=impairment_seed, stream=f"in:{name}"
                )
                self._outbound[name] = ImpairedPath(
                    impairment, seed=impairment_seed, stream=f"out:{name}"
                )
        # Merging the stack's full-sized segments into TSO writes needs a device with the
        # virtio-net header and no shim (which wants wire frames) on its way out.
        self._coalescing = coalesce and any(
            device.vnet_header and name not in self._outbound
            for name, device in self.devices.items()
        )
        self._shims = (*self._inbound.values(), *self._outbound.values())
        # epoll itself, not selectors: its wrapper costs microseconds on every wake-up.
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._by_fd: dict[int, TapDevice] = {}
        self._interest: dict[int, int] = {}
        self._blocked_changed = False
        for device in self.devices.values():
            self._watch(device, select.EPOLLIN)
        self._readers: dict[int, Callable[[Instant], None]] = {}
        self._sparse: set[int] = set()
        """Devices read one frame per wake-up (see :meth:`_receive`)."""
        self._stopping = False
        self._owner_pid = os.getpid()
        self.latency: LatencyHistogram | None = None
        """With ``latency=True``: how long each turn that read a frame and wrote an answer took,
        from epoll's return to the last write (:meth:`_run_once_timed`); None when off."""
        if latency:
            self.latency = LatencyHistogram()
            # An instance attribute, so the loop pays nothing when the histogram is off.
            self.run_once = self._run_once_timed  # type: ignore[method-assign]

    def watch_readable(self, fd: int, callback: Callable[[Instant], None]) -> None:
        """Call ``callback(now)`` in the loop's turn whenever ``fd`` is readable (a control
        socket, say): it runs between two turns, so it sees the stack at rest."""
        self._readers[fd] = callback
        self._epoll.register(fd, select.EPOLLIN)

    # --- control --------------------------------------------------------------
    def stop(self) -> None:
        """Ask the loop to return; safe from signal handlers and other threads."""
        self._stopping = True
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def close(self) -> None:
        """Release the loop's own descriptors (devices are the caller's to close)."""
        self._epoll.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self, *, handle_signals: bool = True) -> None:
        """Serve until :meth:`stop`; with ``handle_signals``, SIGINT/SIGTERM stop it too."""
        previous: dict[signal.Signals, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM):
                previous[number] = signal.signal(number, self._on_signal)
        try:
            self._flush_output(self.clock())
            while not self._stopping:
                self.run_once()
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        forward_signal_in_child(self._owner_pid, number)
        self.stop()

    # --- one turn -------------------------------------------------------------
    def run_once(self) -> None:
        """Wait for input or the next deadline, then do one receive/timer/event/send cycle."""
        before = self.clock()
        ready = self._epoll.poll(self._timeout(before), len(self._by_fd) + 1)
        now = self.clock()
        self._turn(ready, now, now - before < WOKE_AT_ONCE_US)

    def _run_once_timed(self) -> None:
        """:meth:`run_once`, recording into :attr:`latency` the time from epoll's return to
        the end of the writes of each turn that read at least one frame and wrote one."""
        before = self.clock()
        ready = self._epoll.poll(self._timeout(before), len(self._by_fd) + 1)
        started_ns = time.monotonic_ns()
        counters = self.counters
        frames_in, frames_out = counters["frames_in"], counters["frames_out"]
        now = self.clock()
        self._turn(ready, now, now - before < WOKE_AT_ONCE_US)
        if counters["frames_in"] != frames_in and counters["frames_out"] != frames_out:
            assert self.latency is not None  # set together with this method
            self.latency.record(time.monotonic_ns() - started_ns)

    def _turn(self, ready: list[tuple[int, int]], now: Instant, at_once: bool = True) -> None:
        """One receive/timer/event/send cycle over what epoll reported ready; ``at_once``:
        epoll returned without sleeping (a backlog, see :meth:`_receive`)."""
        by_fd = self._by_fd
        stack = self.stack
        for fd, event in ready:
            device = by_fd.get(fd)
            if device is None:
                if fd == self._wake_read:
                    self._drain_wake()
                elif fd in self._readers:
                    self._readers[fd](now)
                continue
            interest = self._interest[fd]
            # As selectors reports it: an error or a hang-up wakes both watched directions.
            if event & ~select.EPOLLIN and interest & select.EPOLLOUT:
                self._flush_queue(device)
            if event & ~select.EPOLLOUT and interest & select.EPOLLIN:
                self._receive(device, now, at_once)
        if self._shims:
            self._release_held(now)
        deadline = stack.poll_at()
        if deadline is not None and deadline <= now:
            stack.handle_timer(now=now)
        self._deliver_events(now)
        self._flush_output(now)
        if self._blocked_changed:
            self._update_interest()

    def _timeout(self, now: Instant) -> float:
        """Seconds until the stack's deadline or a held frame's release, rounded up to
        epoll's millisecond, so that nothing wakes early; -1: nothing is due, ever."""
        deadline = self.stack.poll_at()
        for shim in self._shims:
            release_at = shim.next_release_at()
            if release_at is not None and (deadline is None or release_at < deadline):
                deadline = release_at
        if deadline is None:
            return -1
        wait_us = deadline - now
        return -(-wait_us // 1000) / 1000 if wait_us > 0 else 0

    def _receive(self, device: TapDevice, now: Instant, at_once: bool = True) -> None:
        """Read what the device holds and hand it on.

        A device whose last batch was one frame is *sparse* (request/response, ping):
        it is read one frame per wake-up, which saves the read that would only say
        EAGAIN, a syscall on the latency path of every exchange. epoll is
        level-triggered, so a frame left behind wakes the loop again at once; a wake-up
        that did not sleep (``at_once``) means a backlog, and the device is read in
        batches of ``read_batch`` again until a batch comes back with one frame.
        """
        fd = device.fd
        sparse = self._sparse
        if fd in sparse and not at_once:
            reads = device.read_raw(1)
        else:
            reads = device.read_raw(self.read_batch)
            if len(reads) <= 1:
                sparse.add(fd)
            else:
                sparse.discard(fd)
        self.counters["frames_in"] += len(reads)
        shim = self._inbound.get(device.interface)
        if shim is None:
            self._deliver(device, reads, now)
            return
        for read in reads:
            for frame in self._as_wire_frames(device, read):
                self._deliver_plain(device.interface, shim.push(frame, now), now)

    def _as_wire_frames(self, device: TapDevice, read: bytes) -> list[bytes]:
        """What a wire would have carried of one read, for the impairment shim.

        The shim models the wire, so it loses, delays and corrupts wire frames:
        a GSO super-segment is cut into MTU-sized frames first, and checksums
        the kernel left partial are finished, so that the stack checks every
        frame the shim may have touched.
        """
        if not device.vnet_header:
            return [read]
        if len(read) <= VNET_HEADER_LENGTH:
            self.counters["runts"] += 1
            return []
        trusted, gso_size = rx_info(read)
        frame = read[VNET_HEADER_LENGTH:]
        if gso_size:
            self.counters["gso_in"] += 1
        return nic_transmit(frame, device.mtu) if trusted else [frame]

    def _deliver(self, device: TapDevice, reads: list[bytes], now: Instant) -> None:
        """Hand what the device read to the stack, with the virtio-net header's verdict."""
        if not device.vnet_header:
            if self.gro and len(reads) > 1:
                self._deliver_gro(device.interface, reads, now)
            else:
                self._deliver_plain(device.interface, reads, now)
            return
        receive = self.stack.receive_frame
        pcap = self.pcap
        name = device.interface
        counters = self.counters
        for read in reads:
            if len(read) <= VNET_HEADER_LENGTH:
                counters["runts"] += 1
                continue
            trusted, gso_size = rx_info(read)
            view = memoryview(read)[VNET_HEADER_LENGTH:]
            if gso_size:
                counters["gso_in"] += 1
            if (
                len(view) >= 54
                and view[12] == 0x86
                and view[13] == 0xDD
                and (gso_size or read[0] & FLAG_NEEDS_CSUM)
                and not self._ours6(view)
            ):
                self._deliver_cut6(name, device.mtu, view, now)
                continue
            if pcap is not None:
                pcap.write(now + self._pcap_offset, view)
            receive(name, view, now=now, checksum_verified=trusted, gso_size=gso_size)

    def _ours6(self, frame: memoryview) -> bool:
        """Whether an IPv6 super-segment from the kernel is addressed to one of our addresses
        (the stack takes it as one segment); a stack that cannot say: no."""
        is_local = getattr(self.stack, "is_local_address6", None)
        if is_local is None:
            return False
        return bool(is_local(IPv6Address(bytes(frame[38:54]))))

    def _deliver_cut6(self, name: str, mtu: int, frame: memoryview, now: Instant) -> None:
        """An IPv6 frame the stack would forward whose checksum the kernel left partial
        (NEEDS_CSUM), or a super-segment (GSO TCPV6): finished and cut into wire frames
        first (:func:`nic_transmit`). IPv6 forwarding keeps the checksum it got, which
        leaves partial on a frame no virtio-net header marks (``tx_header`` marks only
        our own super-segments), and takes no ``gso_size``: an over-MTU datagram draws a
        packet too big (RFC 8200 §5) the kernel's TCP, whose MSS already fits, ignores."""
        for piece in nic_transmit(bytes(frame), mtu):
            if self.pcap is not None:
                self.pcap.write(now + self._pcap_offset, piece)
            self.stack.receive_frame(name, piece, now=now, checksum_verified=True)

    def _deliver_gro(self, name: str, reads: list[bytes], now: Instant) -> None:
        """Merge runs of in-order TCP data of each flow before the stack sees them, as Linux's
        GRO does (:func:`simtcp.backends.nic.gro_receive`): one call, and one ACK, per run
        instead of per frame. Runs are per flow across the batch (up to ``GRO_FLOWS`` flows
        open), so concurrent streams whose frames interleave still merge; each flow's frames
        keep their order, different flows' merged segments may reach the stack in another
        order. The
        checksums of every frame merged are verified on the way. The pcap records the frames
        as read; the shim, which models the wire, never gets here."""
        pcap = self.pcap
        if pcap is not None:
            stamp = now + self._pcap_offset
            for frame in reads:
                pcap.write(stamp, frame)
        receive = self.stack.receive_frame
        merged = 0
        for frame, verified, gso_size in gro_receive(reads):
            if gso_size:
                merged += 1
            receive(name, frame, now=now, checksum_verified=verified, gso_size=gso_size)
        self.counters["gro_merged"] += merged

    def _deliver_plain(self, name: str, frames: list[bytes], now: Instant) -> None:
        receive = self.stack.receive_frame
        pcap = self.pcap
        for frame in frames:
            if pcap is not None:
                pcap.write(now + self._pcap_offset, frame)
            receive(name, frame, now=now)

    def _release_held(self, now: Instant) -> None:
        for name, shim in self._inbound.items():
            released = shim.release(now)
            if released:
                self._deliver_plain(name, released, now)
        for name, shim in self._outbound.items():
            for frame in shim.release(now):
                self._write(self.devices[name], frame)

    def _deliver_events(self, now: Instant) -> None:
        next_event = self.stack.next_event
        callback = self.on_event
        event = next_event()
        while event is not None:
            if callback is not None:
                callback(event, now)
            event = next_event()

    def _flush_output(self, now: Instant) -> None:
        frames = self.stack.frames_to_send(now=now)
        if not frames:
            return
        if self._coalescing and len(frames) > 1:
            self._flush_coalesced(frames, now)
            return
        if self.pcap is None and not self._outbound:
            self._write_plain(frames)
            return
        pcap = self.pcap
        devices = self.devices
        outbound = self._outbound
        for name, frame in frames:
            device = devices.get(name)
            if device is None:
                self.counters["write_errors"] += 1
                continue
            if pcap is not None:
                pcap.write(now + self._pcap_offset, frame)
            shim = outbound.get(name)
            if shim is None:
                self._write(device, frame)
                continue
            # The shim models the wire: cut what the kernel would cut (TSO) before it.
            pieces = (
                cut_for_wire(frame, device.mtu)
                if device.vnet_header and len(frame) > device.mtu + 14
                else (frame,)
            )
            for piece in pieces:
                for delivered in shim.push(piece, now):
                    self._write(device, delivered)

    def _write_plain(self, frames: list[tuple[str, bytes]]) -> None:
        """Write a batch with no pcap and no shim: one ``os.write`` per frame, inline.

        Per frame this is :meth:`_write`; a device with the virtio-net header, a
        blocked queue or a write that fails (EAGAIN or worse) takes :meth:`_write`
        itself, which tries again and queues or counts as it always does.
        """
        devices = self.devices
        counters = self.counters
        write = os.write
        written = 0
        for name, frame in frames:
            device = devices.get(name)
            if device is None:
                counters["write_errors"] += 1
                continue
            if not device.vnet_header and not device.write_queue:
                try:
                    write(device.fd, frame)
                except OSError:
                    pass
                else:
                    written += 1
                    if len(frame) > device.mtu + 14:
                        counters["gso_out"] += 1
                    continue
            self._write(device, frame)
        counters["frames_out"] += written

    def _flush_coalesced(self, frames: list[tuple[str, bytes]], now: Instant) -> None:
        """Write a batch device by device, full-sized TCP segments merged for TSO.

        Frames of one device keep their order; frames of different devices
        are independent wires, so their interleaving does not matter. The pcap
        records what the stack sent, before merging.
        """
        per_device: dict[str, list[bytes]] = {}
        pcap = self.pcap
        stamp = now + self._pcap_offset
        for name, frame in frames:
            per_device.setdefault(name, []).append(frame)
            if pcap is not None and name in self.devices:
                pcap.write(stamp, frame)
        for name, batch in per_device.items():
            device = self.devices.get(name)
            if device is None:
                self.counters["write_errors"] += len(batch)
                continue
            shim = self._outbound.get(name)
            if shim is not None or not device.vnet_header:
                for frame in batch:
                    for delivered in shim.push(frame, now) if shim else (frame,):
                        self._write(device, delivered)
                continue
            merged = coalesce_for_tso(batch, device.mtu)
            self.counters["coalesced"] += len(batch) - len(merged)
            self._write_vnet_batch(device, merged)

    def _write_vnet_batch(self, device: TapDevice, frames: list[bytes]) -> None:
        """Write a batch to a device with the virtio-net header, the header derived inline.

        A TAP takes exactly one frame per write (there is no batched write for it, and
        ``os.writev`` joins its pieces into that one frame), so the floor is one syscall
        per frame: here, one ``os.writev`` of the header and the frame, with no copy and
        no call in between. A blocked queue or a write that fails (EAGAIN or worse)
        takes :meth:`_write`, which tries again and queues or counts as it always does.
        """
        writev = os.writev
        fd = device.fd
        mtu = device.mtu
        largest = mtu + 14
        written = gso = 0
        for frame in frames:
            if not device.write_queue:
                try:
                    writev(fd, (tx_header(frame, mtu), frame))
                except OSError:
                    pass
                else:
                    written += 1
                    if len(frame) > largest:
                        gso += 1
                    continue
            self._write(device, frame)
        counters = self.counters
        counters["frames_out"] += written
        counters["gso_out"] += gso

    def _write(self, device: TapDevice, frame: bytes) -> None:
        if device.write_queue:
            device.write_queue.append(frame)
            return
        try:
            written = device.write(frame)
        except DeviceWriteError as error:
            pieces = self._gso_refused(device, frame, error)
            if pieces is None:
                self.counters["write_errors"] += 1
            for piece in pieces or ():
                self._write(device, piece)
            return
        if written:
            self.counters["frames_out"] += 1
            if len(frame) > device.mtu + 14:
                self.counters["gso_out"] += 1
            return
        self.counters["write_blocked"] += 1
        device.write_queue.append(frame)
        self._blocked_changed = True

    def _gso_refused(
        self, device: TapDevice, frame: bytes, error: DeviceWriteError
    ) -> list[bytes] | None:
        """The pieces to write instead of a super-segment the kernel refused (EINVAL), so
        TCP is not left retransmitting a frame that can never go; None for other errors."""
        if error.code != errno.EINVAL or not device.vnet_header or len(frame) <= device.mtu + 14:
            return None
        pieces = list(cut_for_wire(frame, device.mtu))
        if len(pieces) < 2:
            return None
        self.counters["gso_refused"] += 1
        return pieces

    def _flush_queue(self, device: TapDevice) -> None:
        queue = device.write_queue
        while queue:
            try:
                written = device.write(queue[0])
            except DeviceWriteError as error:
                pieces = self._gso_refused(device, queue.popleft(), error)
                if pieces is None:
                    self.counters["write_errors"] += 1
                else:  # the pieces go first, in order, ahead of later frames
                    queue.extendleft(reversed(pieces))
                continue
            if not written:
                return
            self.counters["frames_out"] += 1
            queue.popleft()
        self._blocked_changed = True

    def _update_interest(self) -> None:
        """Watch blocked fds for writability; read nothing while any write is blocked."""
        self._blocked_changed = False
        blocked = any(device.write_queue for device in self.devices.values())
        for device in self.devices.values():
            events = 0 if blocked else select.EPOLLIN
            if device.write_queue:
                events |= select.EPOLLOUT
            self._watch(device, events)

    def _watch(self, device: TapDevice, events: int) -> None:
        current = self._interest.get(device.fd, 0)
        if events == current:
            return
        if not events:
            self._epoll.unregister(device.fd)
            del self._by_fd[device.fd]
        elif not current:
            self._epoll.register(device.fd, events)
            self._by_fd[device.fd] = device
        else:
            self._epoll.modify(device.fd, events)
        self._interest[device.fd] = events

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while os.read(self._wake_read, 4096):
                pass

    def impairment_counts(self) -> dict[str, int]:
        """The impairment counters summed over every device and direction."""
        counts: dict[str, int] = {}
        for shim in (*self._inbound.values(), *self._outbound.values()):
            for name, value in shim.impairment.counters.items():
                counts[name] = counts.get(name, 0) + value
        return counts


_DeviceWriteError = DeviceWriteError
"""The name :mod:`simtcp.backends.aio_tap` and older tests import."""

__all__ = [
    "IFF_NO_PI",
    "IFF_TAP",
    "IFF_VNET_HDR",
    "MAX_FRAME",
    "MAX_READ",
    "TUNSETIFF",
    "TUNSETOFFLOAD",
    "TUNSETVNETHDRSZ",
    "TUNSETVNETLE",
    "TUN_F_CSUM",
    "TUN_F_TSO4",
    "DeviceWriteError",
    "ImpairedPath",
    "InterfaceOffload",
    "LatencyHistogram",
    "LinkProfile",
    "StackLike",
    "TapDevice",
    "TapError",
    "TapLoop",
    "WirePcapWriter",
    "cut_for_wire",
    "stack_offload",
    "check_name_free",
    "ensure_namespace",
    "forward_signal_in_child",
    "link_index",
    "list_namespaces",
    "missing_requirement",
    "monotonic_us",
    "netlink",
    "remove_namespace",
    "stack_mac",
    "TUN_PATH",
]
