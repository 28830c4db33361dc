"""Header options (``--name=value`` lines) turned into the settings a drill runs with.

Defaults are packetdrill's: the stack is 192.168.0.1 in 192.168.0.0/16, the
remote is 192.0.2.1 behind the gateway 192.168.0.2, servers bind port 8080 and
clients connect to port 8080, the timing tolerance is 4 ms. Options simtcp has
no use for are accepted and listed as ignored. ``--simtcp_<field>=value`` sets
a field of :class:`simtcp.tcp.config.TcpConfig` (our extension, for scripts
that need a non-default configuration).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ..tcp.config import TcpConfig
from ..time import parse_duration
from ..wire.ipv4 import ip_from_str
from .model import HeaderOption

_TCP_FIELDS = {item.name for item in dataclasses.fields(TcpConfig)}


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillSettings:
    """Where the stack sits and how strictly time is judged."""

    tolerance_us: int = 4_000
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    gateway_ip: str = "192.168.0.2"
    prefix_length: int = 16
    bind_port: int = 8080
    connect_port: int = 8080
    remote_port: int = 48_000
    """The remote's port when the stack is the server (packetdrill picks one at random)."""
    mtu: int = 1500
    tcp_overrides: tuple[tuple[str, int | bool], ...] = ()
    unsupported: tuple[str, ...] = ()


class _Recorder(Protocol):
    ignored_options: list[str]


def _prefix_length(netmask: str) -> int:
    mask = ip_from_str(netmask)
    length = bin(mask).count("1")
    if mask != (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF:
        raise ValueError(f"not a contiguous netmask: {netmask}")
    return length


def _config_value(text: str) -> int | bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if text.lstrip("-").isdigit():
        return int(text)
    return parse_duration(text)


def settings_from_header(options: Iterable[HeaderOption], recorder: _Recorder) -> DrillSettings:
    """Apply header options to the defaults; unknown ones go to ``recorder.ignored_options``."""
    values: dict[str, object] = {}
    overrides: dict[str, int | bool] = {}
    unsupported: list[str] = []
    simple = {
        "local_ip": str,
        "remote_ip": str,
        "gateway_ip": str,
        "tolerance_usecs": int,
        "bind_port": int,
        "connect_port": int,
        "remote_port": int,
        "mtu": int,
    }
    renamed = {"tolerance_usecs": "tolerance_us"}
    for option in options:
        name, value = option.name, option.value
        try:
            if name == "ip_version":
                if value != "ipv4":
                    unsupported.append(f"--ip_version={value} (only ipv4)")
            elif name in simple and value is not None:
                values[renamed.get(name, name)] = simple[name](value)
                if name.endswith("_ip"):
                    ip_from_str(value)
            elif name == "netmask_ip" and value is not None:
                values["prefix_length"] = _prefix_length(value)
            elif name == "mss" and value is not None:
                overrides["mss"] = int(value)
            elif name.startswith("simtcp_") and name[7:] in _TCP_FIELDS and value is not None:
                overrides[name[7:]] = _config_value(value)
            else:
                recorder.ignored_options.append(f"--{name}" + (f"={value}" if value else ""))
        except ValueError as error:
            unsupported.append(f"--{name}={value}: {error}")
    return DrillSettings(
        **values,  # type: ignore[arg-type]
        tcp_overrides=tuple(overrides.items()),
        unsupported=tuple(unsupported),
    )
