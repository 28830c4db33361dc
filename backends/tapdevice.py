"""One TAP device: /dev/net/tun, its ioctls and offload negotiation, reads and writes.

Theory of operation
-------------------

A :class:`TapDevice` is one TAP interface: the file descriptor we read and
write Ethernet frames on (``/dev/net/tun`` with ``IFF_TAP | IFF_NO_PI``, so
there is no packet-information header), and the kernel's side of it, a
network interface that pyroute2 addresses, brings up and, optionally, moves
into a network namespace (:mod:`simtcp.backends.tapsetup` holds the pyroute2 side).

Offloads (DESIGN.md "Offload-ready"): with ``offload=True`` the device is
opened with ``IFF_VNET_HDR``, the 12-byte virtio-net header
(:mod:`simtcp.backends.vnet`) in front of every frame, and ``TUNSETOFFLOAD`` with
``TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6``. The kernel then hands us TCP segments of up to
64 KiB (GSO) with partial checksums, and takes the same from us: one read or
write carries what would be 40 wire frames, and per-frame cost is what limits
a Python stack. :func:`stack_offload` says what the stack interface wired to
the device may then assume; IPv4 and IPv6 alike (IPv6 super-segments go out
with GSO TCPV6, :func:`simtcp.backends.vnet.tx_header`).
A kernel that refuses any of it leaves the device without offloads, and
:attr:`TapDevice.offload_note` says why.

The kernel creates the interface in the namespace the process runs in; we then
move it with ``IFLA_NET_NS_FD``. Moving does not touch the file descriptor: the
fd is bound to the device, not to a namespace, and keeps carrying its frames.
The device is not persistent (we never call ``TUNSETPERSIST``), so it lives
exactly as long as our fd: closing the fd removes it from whichever namespace
it is in, and a crashed process leaves nothing behind. :meth:`TapDevice.close`
still checks, and deletes the link with pyroute2 if it survived.

:mod:`simtcp.backends.tap` drives devices with a stack (:class:`simtcp.backends.tap.TapLoop`)
and re-exports everything public here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import sys
from collections import deque
from typing import BinaryIO

from simtcp.backends.nic import nic_transmit
from simtcp.link import InterfaceOffload
from simtcp.wire.checksum import Buffer
from simtcp.wire.offload import (
    is_whole_tcp,
    is_whole_tcp6,
    segment_tcp,
    segment_tcp6,
    tcp6_mss_for,
    tcp_mss_for,
)
from simtcp.wire.pcap import PcapWriter

from .tapsetup import (
    TUN_PATH,
    TapError,
    check_attachable,
    check_name_free,
    link_index,
    netlink,
)
from .vnet import VNET_HEADER_LENGTH, rx_info, tx_header

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUNGETIFF = 0x800454D2
TUNSETOWNER = 0x400454CC
TUNSETGROUP = 0x400454CE
IFF_PERSIST = 0x0800
IFF_MULTI_QUEUE = 0x0100
MAX_QUEUES = 256
"""The tun driver's ``MAX_TAP_QUEUES``: queues (fds) one device takes at most."""
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
TUNSETVNETLE = 0x400454DC
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
MAX_FRAME = 65536 + 14
MAX_READ = MAX_FRAME + VNET_HEADER_LENGTH + 64

_IFREQ = struct.Struct("16sH")

TXQUEUELEN = 4000
"""Frames the kernel queues for us on a device (the tun driver's ring is this long) before it
drops them. 16 concurrent echo streams over a device without offloads overflowed 1000 (700
to 2,300 drops per 32 MB, bench/tap_echo.py) and never 4000; the price is up to 4000 frames
of queueing delay (about 6 MB) when we fall behind."""


class TapDevice:
    """A TAP interface: our non-blocking fd, and the kernel's interface (maybe in a netns)."""

    def __init__(
        self,
        name: str,
        fd: int,
        *,
        interface: str,
        namespace: str | None,
        vnet_header: bool = False,
        mtu: int = 1500,
    ) -> None:
        self.name = name
        """The kernel's interface name (e.g. ``tap-veth0``)."""
        self.fd = fd
        self.interface = interface
        """The stack interface this device is wired to (e.g. ``veth0``)."""
        self.namespace = namespace
        """Where the kernel side lives; None means the namespace we run in."""
        self.vnet_header = vnet_header
        """Every read and write starts with a virtio-net header: offloads are on."""
        self.mtu = mtu
        """The MTU given to the kernel side; the MSS of GSO frames we write follows from it."""
        self.offload_note: str | None = None
        """Why offloads were asked for and are off (the kernel refused), or None."""
        self.write_queue: deque[bytes] = deque()
        """Frames that met EAGAIN, in order; flushed when the fd is writable."""
        self.attached = False
        """An existing (persistent) device we opened, not created: :meth:`close` leaves it."""
        self.queue = 0
        """Which queue of a multi-queue device this fd is (0 for a single-queue one)."""
        self.queues = 1
        """How many queues the device was opened with (:meth:`create_queues`)."""

    @classmethod
    def create(
        cls,
        name: str,
        *,
        interface: str,
        namespace: str | None = None,
        kernel_address: str | None = None,
        mtu: int = 1500,
        txqueuelen: int = TXQUEUELEN,
        offload: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> TapDevice:
        """Create ``name``, move it into ``namespace``, address it, bring it up.

        ``kernel_address`` is the kernel side's address with prefix (``"10.0.0.2/24"``).
        ``offload`` asks for checksum offload and TSO (see the module doc); the
        stack interface wired to the device must then be given
        :func:`stack_offload` (``device.vnet_header`` says whether it took).
        ``owner`` (uid, gid) gives the device to that user and group
        (``TUNSETOWNER``/``TUNSETGROUP``, what ``ip tuntap add user`` does).
        """
        check_name_free(name, namespace)
        fd, note = _open_with_offload(name, offload)
        device = cls(
            name,
            fd,
            interface=interface,
            namespace=namespace,
            vnet_header=offload and note is None,
            mtu=mtu,
        )
        device.offload_note = note
        try:
            if owner is not None:
                _set_owner(fd, name, owner)
            device._configure(kernel_address, mtu, txqueuelen)
        except BaseException:
            device.close()
            raise
        return device

    @classmethod
    def create_queues(
        cls,
        name: str,
        queues: int,
        *,
        interface: str,
        namespace: str | None = None,
        kernel_address: str | None = None,
        mtu: int = 1500,
        txqueuelen: int = TXQUEUELEN,
        offload: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> list[TapDevice]:
        """Create ``name`` with ``queues`` queues (``IFF_MULTI_QUEUE``): one fd, and one
        :class:`TapDevice`, per queue, all wired to stack interface ``interface``.

        One queue is :meth:`create` itself (no ``IFF_MULTI_QUEUE``: today's device).
        Otherwise the first TUNSETIFF creates the device, the next ones attach
        queues to it by name, with the same flags (the driver keeps one set per
        device and refuses a queue whose ``IFF_MULTI_QUEUE`` differs); all are
        opened before the device moves into ``namespace``, since TUNSETIFF finds
        the name in the namespace we run in. The kernel then spreads what it
        sends over the queues by flow (:mod:`simtcp.backends.multiqueue`).
        Offloads are per device: the first queue negotiates them, the others
        follow its answer.
        """
        if not 1 <= queues <= MAX_QUEUES:
            raise TapError(f"a TAP takes 1..{MAX_QUEUES} queues, not {queues}")
        if queues == 1:
            single = cls.create(
                name,
                interface=interface,
                namespace=namespace,
                kernel_address=kernel_address,
                mtu=mtu,
                txqueuelen=txqueuelen,
                offload=offload,
                owner=owner,
            )
            return [single]
        check_name_free(name, namespace)
        fd, note = _open_with_offload(name, offload, multi_queue=True)
        vnet = offload and note is None
        devices = [
            cls(name, fd, interface=interface, namespace=namespace, vnet_header=vnet, mtu=mtu)
        ]
        devices[0].offload_note = note
        try:
            for _ in range(1, queues):
                fd = _open_queue(name, vnet_header=vnet)
                devices.append(
                    cls(
                        name,
                        fd,
                        interface=interface,
                        namespace=namespace,
                        vnet_header=vnet,
                        mtu=mtu,
                    )
                )
            for index, device in enumerate(devices):
                device.queue, device.queues = index, queues
            if owner is not None:
                _set_owner(devices[0].fd, name, owner)
            devices[0]._configure(kernel_address, mtu, txqueuelen)
        except BaseException:
            for device in reversed(devices):
                device.close()
            raise
        return devices

    @classmethod
    def attach(cls, name: str, *, interface: str, offload: bool = False) -> TapDevice:
        """Open the existing TAP ``name`` in the namespace we run in; no privilege needed.

        The device must be persistent and ours (``sudo ip tuntap add mode tap user
        $USER name NAME``), addressed and brought up by whoever made it; we only
        attach our fd (TUNSETIFF on an existing name) and ask for offloads, which
        need no capability either. :func:`check_attachable` turns a missing
        device, a TUN, or one owned by someone else into one line first; a device
        that vanished in between is caught by its missing IFF_PERSIST.
        """
        mtu = check_attachable(name)
        fd, note = _open_with_offload(name, offload, attaching=True)
        device = cls(
            name, fd, interface=interface, namespace=None, vnet_header=offload and note is None
        )
        device.attached = True
        device.mtu = mtu
        device.offload_note = note
        flags = _IFREQ.unpack(fcntl.ioctl(fd, TUNGETIFF, bytes(_IFREQ.size)))[1]
        if not flags & IFF_PERSIST:  # we just created it: it was gone; closing removes it
            device.close()
            raise TapError(f"device {name} does not exist (it vanished while we opened it)")
        return device

    def _configure(self, kernel_address: str | None, mtu: int, txqueuelen: int) -> None:
        try:
            if self.namespace is not None:
                with netlink(None) as ipr:
                    index = ipr.link_lookup(ifname=self.name)[0]
                    # The fd stays bound to the device across the move.
                    ipr.link("set", index=index, net_ns_fd=self.namespace)
            with netlink(self.namespace) as ipr:
                index = ipr.link_lookup(ifname=self.name)[0]
                ipr.link("set", index=index, mtu=mtu, txqlen=txqueuelen)
                if kernel_address is not None:
                    address, _, prefix = kernel_address.partition("/")
                    ipr.addr("add", index=index, address=address, prefixlen=int(prefix or 32))
                ipr.link("set", index=index, state="up")
        except (OSError, IndexError) as error:
            detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
            raise TapError(f"cannot configure device {self.name}: {detail}") from None

    def read_raw(self, limit: int) -> list[bytes]:
        """Up to ``limit`` reads, fewer when the queue ran dry (EAGAIN); each read starts
        with the virtio-net header when :attr:`vnet_header` is set."""
        frames: list[bytes] = []
        read = os.read
        fd = self.fd
        for _ in range(limit):
            try:
                frames.append(read(fd, MAX_READ))
            except BlockingIOError:
                break
            except InterruptedError:
                continue
            except OSError as error:
                if error.errno == errno.EBADFD:
                    raise TapError(f"device {self.name} was removed from under us") from None
                raise TapError(f"device {self.name} failed: {error.strerror}") from None
        return frames

    def read_frames(self, limit: int) -> list[bytes]:
        """Up to ``limit`` Ethernet frames, fewer when the queue ran dry (EAGAIN).

        With offloads on, what the virtio-net header said is applied here, for
        callers that cannot pass it on (:class:`TapLoop` reads with
        :meth:`read_raw` instead): GSO super-segments come cut into MTU-sized
        frames and partial checksums finished, so a stack that checks every
        checksum takes them. (Writes still expect a stack interface with
        :func:`stack_offload`.)
        """
        reads = self.read_raw(limit)
        if not self.vnet_header:
            return reads
        frames: list[bytes] = []
        for read in reads:
            frame = read[VNET_HEADER_LENGTH:]
            if len(read) > VNET_HEADER_LENGTH and rx_info(read)[0]:
                frames += nic_transmit(frame, self.mtu)
            elif frame:
                frames.append(frame)
        return frames

    def write(self, frame: bytes) -> bool:
        """Write one frame; False when the kernel queue was full (EAGAIN) and it must wait.

        With offloads on, the frame goes out behind the virtio-net header
        :func:`simtcp.backends.vnet.tx_header` derives from it. Frames the device can
        never take (it is down, or the frame is malformed) are dropped and
        reported as written; ``TapLoop`` counts them.
        """
        try:
            if self.vnet_header:
                os.writev(self.fd, (tx_header(frame, self.mtu), frame))
            else:
                os.write(self.fd, frame)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as error:
            if error.errno in (errno.ENOBUFS, errno.ENOMEM):
                return False
            raise DeviceWriteError(error.errno or 0) from None
        return True

    def close(self) -> None:
        """Close the fd (which removes the device) and make sure the device is gone.

        An :attr:`attached` device is someone else's: only our fd is closed.
        """
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.attached:
            return
        with contextlib.suppress(TapError, OSError), netlink(self.namespace) as ipr:
            found = ipr.link_lookup(ifname=self.name)
            if found:
                ipr.link("del", index=found[0])

    def exists(self) -> bool:
        return link_index(self.name, self.namespace) is not None


def stack_offload(device: TapDevice, *, software_segmentation: bool = False) -> InterfaceOffload:
    """What the stack interface wired to ``device`` may assume (DESIGN.md "Offload-ready").

    With the virtio-net header: the kernel finishes our TCP/UDP checksums and
    cuts TCP segments of up to 64 KiB (an IPv4 datagram's limit, less 40 bytes
    of IP options and 40 of TCP options). Received checksums are trusted per
    frame, as the header says, so ``rx_checksum_verified`` stays False.

    Without it, ``software_segmentation`` lets TCP build segments that large all
    the same and has the stack cut them into wire frames before they leave
    (:attr:`InterfaceOffload.software_segmentation`): the device sees the same
    frames, TCP's per-segment work is done once per 64 KiB.
    """
    if not device.vnet_header:
        if software_segmentation:
            return InterfaceOffload(max_segment=_MAX_SEGMENT, software_segmentation=True)
        return InterfaceOffload()
    return InterfaceOffload(tx_checksum=True, max_segment=_MAX_SEGMENT)


_MAX_SEGMENT = 65535 - 60 - 60


def cut_for_wire(frame: bytes, mtu: int) -> list[bytes] | tuple[bytes]:
    """A TCP frame the kernel would cut (TSO), cut here instead; partial checksums stay
    partial, as :func:`simtcp.backends.vnet.tx_header` expects of a checksum-offloading device.
    IPv6 pieces get full checksums: ``tx_header`` marks only oversized IPv6 frames partial."""
    datagram = frame[14:]
    if frame[12:14] == b"\x86\xdd":
        if not is_whole_tcp6(datagram) or tcp6_mss_for(datagram, mtu) <= 0:
            return (frame,)
        return [frame[:14] + piece for piece in segment_tcp6(datagram, tcp6_mss_for(datagram, mtu))]
    if not is_whole_tcp(datagram):
        return (frame,)
    mss = tcp_mss_for(datagram, mtu)
    if mss <= 0:
        return (frame,)
    return [frame[:14] + piece for piece in segment_tcp(datagram, mss, partial=True)]


class WirePcapWriter(PcapWriter):
    """A pcap writer that records what the wire would carry, not what crossed the TAP.

    With offloads on, the stack and the kernel trade TCP segments of up to
    64 KiB with partial checksums (the NIC, here the kernel, finishes both);
    a capture of those makes ``tcpdump -vv`` flag every checksum. This writer
    passes each frame through :func:`simtcp.backends.nic.nic_transmit` first: segments
    cut to ``mtu``, TCP/UDP checksums computed from scratch. The price: a frame
    that arrived with a wrong checksum is recorded with a right one, which is
    why the plain capture of what the stack handled stays the default.
    """

    def __init__(self, stream: BinaryIO, *, mtu: int = 1500) -> None:
        super().__init__(stream)
        self.mtu = mtu

    def write(self, timestamp_us: int, frame: Buffer) -> None:
        for piece in nic_transmit(bytes(frame), self.mtu):
            super().write(timestamp_us, piece)


class DeviceWriteError(Exception):
    """A write the device can never take (EIO, EINVAL, ...); ``code`` is the errno."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _OffloadRefused(Exception):
    """The kernel created the device but refused the virtio-net header or the offloads."""


def _open_with_offload(
    name: str, offload: bool, *, attaching: bool = False, multi_queue: bool = False
) -> tuple[int, str | None]:
    """The fd, and why offloads are off although asked for (None if they took)."""
    if not offload:
        return _open_tap(name, attaching=attaching, multi_queue=multi_queue), None
    try:
        fd = _open_tap(name, vnet_header=True, attaching=attaching, multi_queue=multi_queue)
    except _OffloadRefused as refused:
        return _open_tap(name, attaching=attaching, multi_queue=multi_queue), str(refused)
    return fd, None


def _open_queue(name: str, *, vnet_header: bool) -> int:
    """One more queue of the multi-queue device ``name``, with the first queue's flags."""
    try:
        return _open_tap(name, vnet_header=vnet_header, multi_queue=True)
    except _OffloadRefused as refused:  # the first queue took the same request
        raise TapError(f"cannot add a queue to {name}: {refused}") from None


def _set_owner(fd: int, name: str, owner: tuple[int, int]) -> None:
    uid, gid = owner
    try:
        fcntl.ioctl(fd, TUNSETOWNER, uid)
        fcntl.ioctl(fd, TUNSETGROUP, gid)
    except OSError as error:
        raise TapError(f"cannot give device {name} to uid {uid}: {error.strerror}") from None


def _open_tap(
    name: str, *, vnet_header: bool = False, attaching: bool = False, multi_queue: bool = False
) -> int:
    try:
        fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        hint = ""
        if error.errno == errno.EACCES:
            hint = " (a user needs read-write access: most distributions make it mode 0666)"
        raise TapError(f"cannot open {TUN_PATH}: {error.strerror}{hint}") from None
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_header else 0)
    if multi_queue:
        flags |= IFF_MULTI_QUEUE
    try:
        fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
    except OSError as error:
        os.close(fd)
        raise _tunsetiff_failed(name, error, vnet_header=vnet_header, attaching=attaching) from None
    if vnet_header:
        _negotiate_offloads(fd)
    return fd


def _tunsetiff_failed(
    name: str, error: OSError, *, vnet_header: bool, attaching: bool
) -> Exception:
    """The one-line error for a refused TUNSETIFF (or _OffloadRefused: retry without)."""
    if error.errno == errno.EBUSY:
        return TapError(f"device {name} already exists and is in use")
    if error.errno == errno.EPERM and attaching:
        return TapError(f"device {name} belongs to someone else (TUNSETIFF: EPERM)")
    if error.errno == errno.EINVAL and vnet_header:
        return _OffloadRefused(f"IFF_VNET_HDR refused ({error.strerror})")
    if error.errno == errno.EINVAL and attaching:
        return TapError(f"device {name} is not a single-queue TAP")
    if error.errno == errno.EINVAL:
        return TapError(f"device {name} already exists and is not a free TAP")
    return TapError(f"cannot create TAP device {name}: {error.strerror}")


def _negotiate_offloads(fd: int) -> None:
    step = "TUNSETVNETHDRSZ"
    try:
        fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", VNET_HEADER_LENGTH))
        # The header's fields are little-endian (virtio 1.x), whatever the host is.
        step = "TUNSETVNETLE"
        try:
            fcntl.ioctl(fd, TUNSETVNETLE, struct.pack("i", 1))
        except OSError:
            if sys.byteorder != "little":
                raise
        step = "TUNSETOFFLOAD"
        fcntl.ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)
    except OSError as error:
        os.close(fd)  # a device we created is not persistent: closing removes it
        raise _OffloadRefused(f"{step} refused ({error.strerror})") from None


__all__ = [
    "IFF_NO_PI",
    "IFF_TAP",
    "IFF_VNET_HDR",
    "MAX_FRAME",
    "MAX_READ",
    "IFF_MULTI_QUEUE",
    "IFF_PERSIST",
    "MAX_QUEUES",
    "TUNGETIFF",
    "TUNSETGROUP",
    "TUNSETIFF",
    "TUNSETOWNER",
    "TUNSETOFFLOAD",
    "TUNSETVNETHDRSZ",
    "TUNSETVNETLE",
    "TUN_F_CSUM",
    "TUN_F_TSO4",
    "TUN_F_TSO6",
    "DeviceWriteError",
    "TapDevice",
    "WirePcapWriter",
    "cut_for_wire",
    "stack_offload",
]
