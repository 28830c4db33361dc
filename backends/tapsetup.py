"""The host side of TAP devices: privileges, network namespaces and links, via pyroute2.

What :mod:`simtcp.backends.tapdevice` and :mod:`simtcp.backends.tap` need around the device
itself: whether we may create TAPs here, namespaces made and removed, netlink
sockets in them, name checks, the seeded MACs of the stack's interfaces, and
signal handling that survives pyroute2's forked helpers. :mod:`simtcp.backends.tap`
re-exports all of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
from collections.abc import Iterator
from typing import Any

TUN_PATH = "/dev/net/tun"
IFNAMSIZ = 16
CAP_NET_ADMIN = 12


class TapError(Exception):
    """Setting up or using a TAP device failed; ``str()`` is one line fit for a user."""


# --- preconditions ------------------------------------------------------------


def missing_requirement(*, attach: bool = False) -> str | None:
    """What stops us from creating TAP devices here, in one line, or None if nothing does.

    With ``attach`` (opening existing TAPs that belong to us) no privilege and no
    pyroute2 are needed, only the device file.
    """
    if attach:
        if not os.path.exists(TUN_PATH):
            return f"{TUN_PATH} is missing (load the tun module: modprobe tun)"
        return None
    if not has_net_admin():
        return (
            "needs root (CAP_NET_ADMIN) to create TAP devices; run it with sudo, "
            "or use --attach with TAPs made for you (see --help)"
        )
    if not os.path.exists(TUN_PATH):
        return f"{TUN_PATH} is missing (load the tun module: modprobe tun)"
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        return "the pyroute2 package is missing (pip install pyroute2)"
    return None


def has_net_admin() -> bool:
    """Whether this process holds CAP_NET_ADMIN (in its effective set)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_ADMIN & 1)
    except OSError:
        pass
    return os.geteuid() == 0


def forward_signal_in_child(owner_pid: int, number: int) -> bool:
    """In a process forked from ``owner_pid``, die of signal ``number`` as if unhandled.

    pyroute2 forks short-lived children to open netlink sockets inside a
    namespace and stops them with SIGTERM. A Python handler inherited through
    ``fork`` must not run our code there (it would tear down the parent's
    devices from the child), so every handler of ours calls this first.
    Returns False in the owner process.
    """
    if os.getpid() == owner_pid:
        return False
    signal.signal(number, signal.SIG_DFL)
    os.kill(os.getpid(), number)
    os._exit(128 + number)


def stack_mac(seed: int, interface: str) -> str:
    """A locally administered unicast MAC for one of the stack's interfaces, fixed by the seed."""
    digest = bytearray(
        hashlib.blake2b(f"simtcp-mac:{seed}:{interface}".encode(), digest_size=6).digest()
    )
    digest[0] = (digest[0] & 0xFC) | 0x02  # IEEE 802: locally administered, unicast
    return ":".join(f"{octet:02x}" for octet in digest)


# --- existing TAPs (sysfs; no privilege, no pyroute2) ---------------------------

IFF_TUN_FLAG = 0x0001
IFF_TAP_FLAG = 0x0002
SETUP_HINT = "sudo ip tuntap add mode tap user $USER name {name}"


def check_attachable(name: str) -> int:
    """Check that ``name`` is an existing TAP we may open; returns its MTU.

    Reads ``/sys/class/net/NAME`` (the namespace we run in): the device must
    exist, be a TAP (``tun_flags`` has IFF_TAP, not IFF_TUN), and, unless we
    hold CAP_NET_ADMIN, belong to us as the kernel's ``tun_not_capable()``
    judges it: an owner set must be our effective uid, a group set must be
    one of ours. Each failure is one :class:`TapError` line.
    """
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
        raise TapError(f"invalid device name {name!r} (1..15 characters, no '/' or spaces)")
    base = f"/sys/class/net/{name}"
    if not os.path.isdir(base):
        hint = SETUP_HINT.format(name=name)
        raise TapError(f"device {name} does not exist (make it once: {hint})")
    flags = _sysfs_int(f"{base}/tun_flags", base=16)
    if flags is None:
        raise TapError(f"device {name} is not a TUN/TAP device")
    if not flags & IFF_TAP_FLAG:
        raise TapError(f"device {name} is a TUN device, not a TAP (make it with 'mode tap')")
    owner = _sysfs_int(f"{base}/owner")
    group = _sysfs_int(f"{base}/group")
    if not has_net_admin() and not may_attach(owner, group):
        raise TapError(
            f"device {name} belongs to {_describe_owner(owner, group)}, not to uid "
            f"{os.geteuid()}; give it to you: sudo ip tuntap del mode tap name {name} && "
            + SETUP_HINT.format(name=name)
        )
    return _sysfs_int(f"{base}/mtu") or 1500


def may_attach(owner: int | None, group: int | None) -> bool:
    """The kernel's ``tun_not_capable()``, negated, for a process without CAP_NET_ADMIN."""
    if owner is not None and owner != -1 and owner != os.geteuid():
        return False
    groups = {os.getegid(), *os.getgroups()}
    return group is None or group == -1 or group in groups


def _describe_owner(owner: int | None, group: int | None) -> str:
    parts = []
    if owner is not None and owner != -1:
        parts.append(f"uid {owner}")
    if group is not None and group != -1:
        parts.append(f"gid {group}")
    return " and ".join(parts) or "nobody in particular"


def _sysfs_int(path: str, *, base: int = 10) -> int | None:
    try:
        with open(path, encoding="ascii") as text:
            return int(text.read().strip(), base)
    except (OSError, ValueError):
        return None


# --- namespaces and links (pyroute2) ------------------------------------------


def list_namespaces() -> list[str]:
    from pyroute2 import netns

    return [str(name) for name in netns.listnetns()]


def ensure_namespace(name: str) -> bool:
    """Create network namespace ``name`` unless it exists; True when we created it."""
    from pyroute2 import netns

    if name in list_namespaces():
        return False
    try:
        netns.create(name)
    except OSError as error:
        raise TapError(f"cannot create network namespace {name}: {error.strerror}") from None
    return True


def remove_namespace(name: str) -> None:
    from pyroute2 import netns

    with contextlib.suppress(OSError):
        netns.remove(name)


@contextlib.contextmanager
def netlink(namespace: str | None) -> Iterator[Any]:
    """A pyroute2 route socket in ``namespace`` (None: our own), which must exist.

    pyroute2's ``NetNS`` creates a missing namespace by default (``flags=O_CREAT``),
    which left namespaces behind that nobody asked for; ``flags=0`` refuses instead.
    """
    from pyroute2 import IPRoute, NetNS

    try:
        socket = NetNS(namespace, flags=0) if namespace else IPRoute()
    except FileNotFoundError:
        raise TapError(
            f"network namespace {namespace} does not exist (make it: sudo ip netns add {namespace})"
        ) from None
    except OSError as error:
        where = f"namespace {namespace}" if namespace else "this namespace"
        raise TapError(f"cannot open netlink in {where}: {error.strerror}") from None
    try:
        yield socket
    finally:
        socket.close()


def link_index(name: str, namespace: str | None = None) -> int | None:
    """Index of link ``name`` in ``namespace``, or None when there is none."""
    with netlink(namespace) as ipr:
        found = ipr.link_lookup(ifname=name)
    return int(found[0]) if found else None


def add_kernel_address6(name: str, namespace: str | None, address: str) -> None:
    """Give the kernel side of ``name`` an IPv6 address with prefix (``"2001:db8::2/64"``).

    Added with IFA_F_NODAD: the kernel uses it at once instead of after its own
    duplicate address detection (a second or more), and simtcp, which runs DAD
    for its own addresses, sees no probe for it. Raises :class:`TapError`.
    """
    text, _, prefix = address.partition("/")
    try:
        with netlink(namespace) as ipr:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.addr(
                "add", index=index, address=text, prefixlen=int(prefix or 128), flags=_IFA_F_NODAD
            )
    except (OSError, IndexError, ValueError) as error:
        detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise TapError(f"cannot give {name} the IPv6 address {address}: {detail}") from None


_IFA_F_NODAD = 0x02
"""linux/if_addr.h: no duplicate address detection for this address."""


def check_name_free(name: str, namespace: str | None) -> None:
    """Raise :class:`TapError` when ``name`` is not a usable, unused interface name."""
    if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
        raise TapError(f"invalid device name {name!r} (1..15 characters, no '/' or spaces)")
    places = [None] if namespace is None else [None, namespace]
    for place in places:
        if link_index(name, place) is not None:
            where = f" in network namespace {place}" if place else ""
            raise TapError(f"device {name} already exists{where}; pick another name")


__all__ = [
    "TapError",
    "add_kernel_address6",
    "check_attachable",
    "check_name_free",
    "ensure_namespace",
    "forward_signal_in_child",
    "has_net_admin",
    "link_index",
    "list_namespaces",
    "may_attach",
    "missing_requirement",
    "netlink",
    "remove_namespace",
    "stack_mac",
]
