"""Shell commands in scripts: the allow-list, and the sysctl -> TcpConfig mapping table.

A drill never runs a shell. A backtick command is read against this
allow-list instead:

- ``sysctl [-q] [-w] name=value [name=value ...]`` (Linux ``net.ipv4.tcp_*``,
  FreeBSD ``net.inet.tcp.*``): each name in :data:`SYSCTLS` sets its
  :class:`~simtcp.tcp.config.TcpConfig` field before the stack starts; a name in
  :data:`NO_OP_SYSCTLS` has nothing to do in a simulator (a host cache to
  purge, a debug knob); a value the engine cannot honour (``tcp_ecn=1``: the
  engine has no ECN) or any other name skips the script, naming it.
- the defaults scripts of the public corpora (:data:`DEFAULTS_SCRIPTS`):
  recognised, they set the host's defaults, which are TcpConfig's own.
- anything else skips the script with the command shown.

The mapping table (documented in docs/drill.md as well):

=====================================  =========================================
sysctl                                 TcpConfig
=====================================  =========================================
net.ipv4.tcp_sack, net.inet.tcp.sack.enable              ``sack``
net.ipv4.tcp_timestamps                ``timestamps``
net.ipv4.tcp_window_scaling            ``window_scaling``
net.inet.tcp.rfc1323                   ``window_scaling`` and ``timestamps``
                                       (0 none, 1 both, 2 wscale, 3 TS)
net.ipv4.tcp_syncookies, net.inet.tcp.syncookies          ``syn_cookies``
net.ipv4.tcp_syn_retries               ``syn_retries``
net.ipv4.tcp_retries2                  ``data_retries``
net.ipv4.tcp_keepalive_time (s), net.inet.tcp.keepidle (ms)  ``keepalive_idle``
net.ipv4.tcp_keepalive_intvl (s), net.inet.tcp.keepintvl (ms)  ``keepalive_interval``
net.ipv4.tcp_keepalive_probes, net.inet.tcp.keepcnt       ``keepalive_probes``
net.ipv4.tcp_congestion_control, net.inet.tcp.cc.algorithm  ``congestion_control``
net.ipv4.tcp_rmem (middle value), net.inet.tcp.recvspace  ``receive_buffer``
net.ipv4.tcp_wmem (middle value), net.inet.tcp.sendspace  ``send_buffer``
net.ipv4.tcp_recovery (bit 0x1)        ``rack``
net.ipv4.tcp_autocorking               ``autocorking``
net.inet.tcp.delacktime (ms)           ``delayed_ack``
net.inet.tcp.delayed_ack (0)           ``delayed_ack`` = 0
net.inet.tcp.rexmit_min (ms)           ``min_rto``
net.inet.tcp.rexmit_initial (ms)       ``initial_rto``
net.inet.tcp.msl (ms)                  ``msl``
net.inet.tcp.initcwnd_segments         ``initial_window_segments``
net.inet.tcp.abc_l_var                 ``abc_limit_segments``
net.ipv4.tcp_ecn                       0 only (the engine has no ECN)
net.inet.tcp.ecn.enable                0 or 2 (2: answer ECN requests; none is)
kern.ipc.maxsockbuf, hostcache.*       no-op (no limit, no host cache)
=====================================  =========================================
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from ..time import MILLISECOND, SECOND

Converter = Callable[[str], "dict[str, int | bool | str]"]


def _flag(name: str) -> Converter:
    def convert(text: str) -> dict[str, int | bool | str]:
        value = int(text)
        if value not in (0, 1):
            raise ValueError(f"{text} (0 or 1)")
        return {name: bool(value)}

    return convert


def _integer(name: str, scale: int = 1) -> Converter:
    def convert(text: str) -> dict[str, int | bool | str]:
        value = int(text)
        if value < 0:
            raise ValueError(f"{text} (negative)")
        return {name: value * scale}

    return convert


def _middle(name: str) -> Converter:
    def convert(text: str) -> dict[str, int | bool | str]:
        parts = text.split()
        if len(parts) != 3:
            raise ValueError(f"{text!r} (three numbers: min default max)")
        return {name: int(parts[1])}

    return convert


def _string(name: str) -> Converter:
    def convert(text: str) -> dict[str, int | bool | str]:
        return {name: text.strip().strip('"')}

    return convert


def _zero_only(feature: str) -> Converter:
    def convert(text: str) -> dict[str, int | bool | str]:
        if int(text) != 0:
            raise ValueError(f"{text} ({feature} is not in the engine)")
        return {}

    return convert


def _freebsd_ecn(text: str) -> dict[str, int | bool | str]:
    # tcp(4): 0 off, 2 "only on request" (the default). The engine neither asks for
    # nor accepts ECN, so 2 changes nothing until a peer asks, and a script whose
    # peer asks shows the difference on its SYN,ACK line: a finding, not a set-up.
    if int(text) not in (0, 2):
        raise ValueError(f"{text} (ECN is not in the engine, 0 and 2 behave alike here)")
    return {}


def _rfc1323(text: str) -> dict[str, int | bool | str]:
    value = int(text)
    if value not in (0, 1, 2, 3):
        raise ValueError(f"{text} (0..3)")
    return {"window_scaling": value in (1, 2), "timestamps": value in (1, 3)}


def _rack_bit(text: str) -> dict[str, int | bool | str]:
    return {"rack": bool(int(text) & 1)}


def _delayed_ack_switch(text: str) -> dict[str, int | bool | str]:
    return {} if int(text) else {"delayed_ack": 0}


SYSCTLS: dict[str, Converter] = {
    # Linux (Documentation/networking/ip-sysctl.rst)
    "net.ipv4.tcp_sack": _flag("sack"),
    "net.ipv4.tcp_timestamps": _flag("timestamps"),
    "net.ipv4.tcp_window_scaling": _flag("window_scaling"),
    "net.ipv4.tcp_syncookies": _integer("syn_cookies"),
    "net.ipv4.tcp_autocorking": _flag("autocorking"),
    "net.ipv4.tcp_syn_retries": _integer("syn_retries"),
    "net.ipv4.tcp_retries2": _integer("data_retries"),
    "net.ipv4.tcp_keepalive_time": _integer("keepalive_idle", SECOND),
    "net.ipv4.tcp_keepalive_intvl": _integer("keepalive_interval", SECOND),
    "net.ipv4.tcp_keepalive_probes": _integer("keepalive_probes"),
    "net.ipv4.tcp_congestion_control": _string("congestion_control"),
    "net.ipv4.tcp_rmem": _middle("receive_buffer"),
    "net.ipv4.tcp_wmem": _middle("send_buffer"),
    "net.ipv4.tcp_recovery": _rack_bit,
    "net.ipv4.tcp_ecn": _zero_only("ECN"),
    # FreeBSD (tcp(4))
    "net.inet.tcp.sack.enable": _flag("sack"),
    "net.inet.tcp.rfc1323": _rfc1323,
    "net.inet.tcp.syncookies": _integer("syn_cookies"),
    "net.inet.tcp.keepidle": _integer("keepalive_idle", MILLISECOND),
    "net.inet.tcp.keepintvl": _integer("keepalive_interval", MILLISECOND),
    "net.inet.tcp.keepcnt": _integer("keepalive_probes"),
    "net.inet.tcp.cc.algorithm": _string("congestion_control"),
    "net.inet.tcp.recvspace": _integer("receive_buffer"),
    "net.inet.tcp.sendspace": _integer("send_buffer"),
    "net.inet.tcp.delacktime": _integer("delayed_ack", MILLISECOND),
    "net.inet.tcp.delayed_ack": _delayed_ack_switch,
    "net.inet.tcp.rexmit_min": _integer("min_rto", MILLISECOND),
    "net.inet.tcp.rexmit_initial": _integer("initial_rto", MILLISECOND),
    "net.inet.tcp.msl": _integer("msl", MILLISECOND),
    "net.inet.tcp.initcwnd_segments": _integer("initial_window_segments"),
    "net.inet.tcp.abc_l_var": _integer("abc_limit_segments"),
    "net.inet.tcp.ecn.enable": _freebsd_ecn,
}
"""sysctl name -> the TcpConfig fields its value sets (see the module's table)."""

NO_OP_SYSCTLS = frozenset(
    {
        "net.inet.tcp.hostcache.purgenow",
        "kern.ipc.maxsockbuf",
        "net.inet.tcp.hostcache.enable",
        "net.inet.tcp.log_debug",
        "net.inet.tcp.bb.log_auto_all",
        "net.ipv4.tcp_no_metrics_save",
        "net.ipv4.tcp_fastopen_blackhole_timeout_sec",
    }
)
"""sysctls about host caches and logs: a fresh simulated host has neither."""

DEFAULTS_SCRIPTS = {
    "../common/defaults.sh": "packetdrill's Linux defaults (TcpConfig's defaults stand)",
    "../../common/defaults.sh": "packetdrill's Linux defaults (TcpConfig's defaults stand)",
    "../common/set_sysctls.py": "packetdrill's Linux defaults (TcpConfig's defaults stand)",
}
"""Init scripts of the public corpora that restore the host's defaults."""

CLEANUP_PREFIXES = ("/tmp/sysctl_restore_", "sysctl_restore")
"""Cleanup commands that undo an init script: nothing to undo in a simulator."""


@dataclass(slots=True)
class CommandPlan:
    """What a command comes to: TcpConfig fields to set, a note, or why it is skipped."""

    config: dict[str, int | bool | str] = field(default_factory=dict)
    note: str | None = None
    skip: str | None = None
    unknown_sysctls: list[str] = field(default_factory=list)


def plan_command(command: str) -> CommandPlan:
    """Read a command (lines, ``;`` or ``&&`` lists too) against the allow-list; never runs it."""
    plan = CommandPlan()
    notes: list[str] = []
    for part in re.split(r"\n|;|&&", command):
        if not part.strip():
            continue
        step = _plan_one(part.strip())
        if step.skip is not None:
            step.note = None
            return step
        plan.config.update(step.config)
        if step.note:
            notes.append(step.note)
    plan.note = "; ".join(notes) or "empty command"
    return plan


def _plan_one(command: str) -> CommandPlan:
    plan = CommandPlan()
    try:
        words = shlex.split(command)
    except ValueError:
        plan.skip = f"shell command not run: `{command}`"
        return plan
    program = words[-1] if words[0] in ("sh", "bash", "/bin/sh") and len(words) > 1 else words[0]
    if program in DEFAULTS_SCRIPTS and len(words) > 1 and "=" in words[-1]:
        return _plan_sysctl(words[1:], command, plan)  # set_sysctls.py /proc/sys/...=value
    if program in DEFAULTS_SCRIPTS:
        plan.note = DEFAULTS_SCRIPTS[program]
        return plan
    if program.startswith(CLEANUP_PREFIXES):
        plan.note = "cleanup command (nothing to restore)"
        return plan
    if program == "sysctl":
        return _plan_sysctl(words[1:], command, plan)
    plan.skip = f"shell command not run: `{command}`"
    return plan


def _plan_sysctl(words: list[str], command: str, plan: CommandPlan) -> CommandPlan:
    assignments = [word for word in words if not word.startswith("-")]
    if not assignments or any("=" not in word for word in assignments):
        plan.skip = f"sysctl that sets nothing: `{command}`"
        return plan
    for assignment in assignments:
        name, _, value = assignment.partition("=")
        name = name.strip().removeprefix("/proc/sys/").replace("/", ".")
        if name in NO_OP_SYSCTLS:
            continue
        converter = SYSCTLS.get(name)
        if converter is None:
            plan.unknown_sysctls.append(name)
            continue
        try:
            plan.config.update(converter(value))
        except ValueError as error:
            plan.skip = f"sysctl {name}={error}"
            return plan
    if plan.unknown_sysctls:
        plan.skip = "sysctl with no TcpConfig mapping: " + ", ".join(plan.unknown_sysctls)
    plan.note = f"sysctl mapped onto TcpConfig: {plan.config or 'no change'}"
    return plan
