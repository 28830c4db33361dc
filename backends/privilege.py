"""Least privilege for the TAP backend: who we become after set-up, and the switch itself.

Theory of operation
-------------------

Only set-up needs privilege. Creating a TAP device (``TUNSETIFF`` on a new
name), moving it into a network namespace, addressing it and bringing it up
need ``CAP_NET_ADMIN``; creating and removing a named network namespace
(``unshare``, the bind mount under ``/run/netns``, ``setns``) needs
``CAP_SYS_ADMIN``. Reading and writing frames on a TAP fd that is already
attached needs nothing at all, and neither does attaching to a persistent TAP
that belongs to us (the kernel's ``tun_not_capable()``: owner and group match,
or none is set). So a server opens and configures its devices as root, then
:func:`drop_privileges` switches the process that parses frames from the
network to an ordinary account, as ``tcpdump -Z`` does:

1. the capability bounding set is emptied (``PR_CAPBSET_DROP``, needs
   ``CAP_SETPCAP``, which root has), so no later ``execve`` can regain any;
2. supplementary groups are cleared (``setgroups(0)``), then the real,
   effective and saved group and user IDs set (``setresgid``,
   ``setresuid``); leaving uid 0 clears the permitted, effective and ambient
   capability sets (capabilities(7), "Effect of user ID changes on
   capabilities");
3. ``PR_SET_NO_NEW_PRIVS`` is set (prctl(2)): set-user-ID binaries and file
   capabilities grant nothing from then on;
4. ``/proc/self/status`` is read back, and anything but ``CapEff``/``CapPrm``
   0 and ``NoNewPrivs`` 1 is an error, not a warning.

What must still happen as root at exit (removing namespaces and any device
left behind) is done by the parent the server forks before it drops
(:mod:`simtcp.programs.serve`); devices are never persistent, so they vanish
with the last fd in any case.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
DEFAULT_USER = "nobody"


class PrivilegeError(Exception):
    """A user that does not exist, or a switch that did not take; ``str()`` is one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """Who the frame-parsing process becomes."""

    name: str
    """The user's name (``nobody``)."""
    uid: int
    gid: int
    """The user's primary group from the password database (``nogroup`` for ``nobody``)."""


def find_account(name: str) -> Account:
    """The account named ``name`` (or a numeric uid); :class:`PrivilegeError` if none."""
    try:
        entry = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except (KeyError, OverflowError):
        raise PrivilegeError(f"no such user: {name!r}") from None
    return Account(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def drop_privileges(account: Account) -> None:
    """Become ``account`` for good: no groups, no capabilities, no new privileges.

    Must run as root. Raises :class:`PrivilegeError` if any step fails or the
    kernel's account of the process afterwards is not what it must be.
    """
    if account.uid == 0:
        raise PrivilegeError("refusing to 'drop' to uid 0; use --keep-root to stay root")
    libc = ctypes.CDLL(None, use_errno=True)
    try:
        for capability in range(_last_capability() + 1):
            # EINVAL for numbers this kernel does not know: nothing to drop.
            _prctl(libc, PR_CAPBSET_DROP, capability)
        os.setgroups([])
        os.setresgid(account.gid, account.gid, account.gid)
        os.setresuid(account.uid, account.uid, account.uid)
    except OSError as error:
        raise PrivilegeError(f"cannot switch to user {account.name}: {error.strerror}") from None
    if _prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
        reason = os.strerror(ctypes.get_errno())
        raise PrivilegeError(f"cannot set no_new_privs: {reason}")
    status = process_status("self")
    wanted = {"CapEff": "0", "CapPrm": "0", "CapAmb": "0", "NoNewPrivs": "1"}
    wrong = {key: status.get(key) for key, value in wanted.items() if _value(status, key) != value}
    if wrong or os.getgroups():
        raise PrivilegeError(f"privileges not dropped as asked: {wrong or 'groups left'}")


def die_with_parent(parent: int, signal_number: int) -> bool:
    """Have the kernel send us ``signal_number`` when ``parent`` dies (PR_SET_PDEATHSIG).

    Call it after :func:`drop_privileges` (a change of credentials clears the
    setting). Returns False when ``parent`` is already gone: nobody would clean up.
    """
    _prctl(ctypes.CDLL(None, use_errno=True), PR_SET_PDEATHSIG, signal_number)
    return os.getppid() == parent


def process_status(pid: int | str) -> dict[str, str]:
    """``/proc/PID/status`` as a dict of its fields (``Uid``, ``CapEff``, ``NoNewPrivs``...)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return dict(
            (key, value.strip()) for key, _, value in (line.partition(":") for line in status)
        )


def _prctl(libc: ctypes.CDLL, option: int, argument: int) -> int:
    zero = ctypes.c_ulong(0)
    result: int = libc.prctl(ctypes.c_int(option), ctypes.c_ulong(argument), zero, zero, zero)
    return result


def _value(status: dict[str, str], key: str) -> str:
    text = status.get(key, "")
    return str(int(text, 16)) if key.startswith("Cap") and text else text


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as last:
            return int(last.read())
    except (OSError, ValueError):
        return 63


__all__ = [
    "DEFAULT_USER",
    "Account",
    "PrivilegeError",
    "die_with_parent",
    "drop_privileges",
    "find_account",
    "group_name",
    "process_status",
    "user_name",
]
