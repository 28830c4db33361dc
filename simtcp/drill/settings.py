"""Header options (``--name=value`` lines) turned into the settings a drill runs with.

Defaults are packetdrill's: the stack is 192.168.0.1 in 192.168.0.0/16, the
remote is 192.0.2.1 behind the gateway 192.168.0.2, servers bind port 8080 and
clients connect to port 8080, the timing tolerance is 4 ms.

``--ip_version`` picks the family as packetdrill does: ``ipv4`` (the default),
``ipv6`` (the stack is fd3d:a0b:17d6::1/48 and the remote fd3d:fa7b:d17d::1
behind a gateway, on the wire and at the sockets, over a 1,520-byte MTU), or
``ipv4-mapped-ipv6`` (IPv4 on the wire, the sockets' addresses IPv4-mapped IPv6
ones, ::ffff:192.0.2.1, RFC 4291 §2.5.5.2).
Scripts are written with AF_INET either way; the family is the run's.

Each option is parsed, or the script is skipped naming it, or it is listed as
ignored when simtcp has no use for it (packetdrill's ``--verbose``, device
names...).
``--simtcp_<field>=value`` sets a field of :class:`simtcp.tcp.config.TcpConfig`
(our extension); a ``--simtcp_`` name that is no field, or a value that does
not fit the field's type, is an error (the script fails), never ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Protocol

from ..tcp.config import TcpConfig
from ..time import parse_duration
from ..wire.ipv4 import ip_from_str
from .model import HeaderOption

_TCP_FIELDS = {item.name: str(item.type) for item in dataclasses.fields(TcpConfig)}
IPV6_UNSUPPORTED = "IPv6 not supported"
IP_VERSIONS = ("ipv4", "ipv6", "ipv4-mapped-ipv6")
IPV6_DEFAULTS = {
    "local_ip": "fd3d:a0b:17d6::1",
    "remote_ip": "fd3d:fa7b:d17d::1",
    "gateway_ip": "fd3d:a0b:17d6:8888::1",
    "prefix_length": 48,
    "mtu": 1520,
}
"""An IPv6 run's addresses and MTU, as the Linux kernel's packetdrill selftests pass
them: the link MTU 20 bytes above 1500, so that a script's ``<mss 1460>`` holds in both
families (1520 - 60 = 1500 - 40)."""

IGNORED_OPTIONS = frozenset(
    {
        "verbose",
        "tun_dev",
        "non_fatal",
        "wire_client",
        "wire_server",
        "wire_server_ip",
        "wire_server_port",
        "wire_client_dev",
        "wire_server_dev",
        "speed",
        "mtu_offload",
        "persistent_tun_dev",
        "dry_run",
        "so_filename",
        "so_flags",
        "send_omit_free",
        "debug",
        "strace",
    }
)
"""packetdrill options about its own machinery: nothing for a simulator to do."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DrillSettings:
    """Where the stack sits and how strictly time is judged."""

    tolerance_us: int = 4_000
    ip_version: str = "ipv4"
    """``ipv4``, ``ipv6`` or ``ipv4-mapped-ipv6`` (see the module docstring)."""
    local_ip: str = "192.168.0.1"
    remote_ip: str = "192.0.2.1"
    gateway_ip: str = "192.168.0.2"
    prefix_length: int = 16
    bind_port: int = 8080
    connect_port: int = 8080
    remote_port: int = 48_000
    """The remote's port when the stack is the server (packetdrill picks one at random)."""
    mtu: int = 1500
    tcp_overrides: tuple[tuple[str, int | bool | str], ...] = ()
    unsupported: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    """Options that are wrong (not merely unsupported): the script fails with them."""
    defines: tuple[tuple[str, str], ...] = ()


class _Recorder(Protocol):
    ignored_options: list[str]


def _prefix_length(netmask: str) -> int:
    mask = ip_from_str(netmask)
    length = bin(mask).count("1")
    if mask != (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF:
        raise ValueError(f"not a contiguous netmask: {netmask}")
    return length


def config_value(field_name: str, text: str) -> int | bool | str:
    """``text`` as a value of TcpConfig's ``field_name``; ValueError naming the expected type."""
    kind = _TCP_FIELDS[field_name]
    lowered = text.strip().lower()
    if kind == "bool":
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"not a boolean: {text!r} (use true/false, on/off, 1/0)")
    if kind == "int":
        try:
            return int(text, 0)
        except ValueError:
            raise ValueError(f"not an integer: {text!r}") from None
    if kind == "Duration":
        return parse_duration(text)
    if kind == "str":
        return text
    raise ValueError(f"TcpConfig.{field_name} ({kind}) cannot be set from a script")


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError(f"not a port: {text}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must not be negative: {text}")
    return value


def _ip(text: str) -> str:
    """An address of either family (the run's ``--ip_version`` must match it)."""
    if ":" in text:
        return str(IPv6Address(text))
    ip_from_str(text)
    return text


_SIMPLE = {
    "local_ip": ("local_ip", _ip),
    "remote_ip": ("remote_ip", _ip),
    "gateway_ip": ("gateway_ip", _ip),
    "tolerance_usecs": ("tolerance_us", _non_negative),
    "bind_port": ("bind_port", _port),
    "connect_port": ("connect_port", _port),
    "remote_port": ("remote_port", _port),
    "mtu": ("mtu", _non_negative),
}


@dataclass(slots=True)
class _Collected:
    values: dict[str, object]
    overrides: dict[str, int | bool | str]
    unsupported: list[str]
    errors: list[str]
    defines: dict[str, str]
    ignored: list[str]


def _apply(option: HeaderOption, into: _Collected) -> None:
    """One header option into the collection; ValueError for a bad value."""
    name, value = option.name, option.value
    shown = f"--{name}" + (f"={value}" if value is not None else "")
    if name == "ip_version":
        if value not in IP_VERSIONS:
            into.errors.append(f"{shown}: not ipv4, ipv6 or ipv4-mapped-ipv6")
        else:
            into.values["ip_version"] = value
    elif name in _SIMPLE and value is not None:
        key, parse = _SIMPLE[name]
        into.values[key] = parse(value)
    elif name == "netmask_ip" and value is not None:
        into.values["prefix_length"] = _prefix_length(value)
    elif name == "mss" and value is not None:
        into.overrides["mss"] = _non_negative(value)
    elif name in ("define", "D") and value is not None:
        symbol, _, text = value.partition("=")
        into.defines[symbol.strip()] = text.strip()
    elif name.startswith("simtcp_"):
        field_name = name[len("simtcp_") :]
        if field_name not in _TCP_FIELDS:
            into.errors.append(f"{shown}: TcpConfig has no field {field_name!r}")
        elif value is None:
            into.errors.append(f"{shown}: needs a value")
        else:
            into.overrides[field_name] = config_value(field_name, value)
    else:
        into.ignored.append(shown)


def _check_families(fields: dict[str, object], errors: list[str]) -> None:
    """Every address must be of the run's family (IPv4 on an ipv4-mapped-ipv6 run)."""
    ipv6 = fields["ip_version"] == "ipv6"
    for key in ("local_ip", "remote_ip", "gateway_ip"):
        text = str(fields[key])
        if (":" in text) != ipv6:
            errors.append(f"--{key}={text}: not an address of --ip_version={fields['ip_version']}")


def with_ip_version(settings: DrillSettings, version: str) -> DrillSettings:
    """``settings`` run as ``version`` (the command line's ``--ip_version``), with
    packetdrill's IPv6 addresses when that changes the family to IPv6."""
    if version not in IP_VERSIONS:
        raise ValueError(f"--ip_version={version}: not ipv4, ipv6 or ipv4-mapped-ipv6")
    if version == "ipv6" and settings.ip_version != "ipv6":
        return dataclasses.replace(settings, ip_version=version, **IPV6_DEFAULTS)  # type: ignore[arg-type]
    if version != "ipv6" and settings.ip_version == "ipv6":
        defaults = DrillSettings()
        return dataclasses.replace(
            settings,
            ip_version=version,
            local_ip=defaults.local_ip,
            remote_ip=defaults.remote_ip,
            gateway_ip=defaults.gateway_ip,
            prefix_length=defaults.prefix_length,
            mtu=defaults.mtu,
        )
    return dataclasses.replace(settings, ip_version=version)


def settings_from_header(
    options: Iterable[HeaderOption], recorder: _Recorder, base: DrillSettings | None = None
) -> DrillSettings:
    """Apply header options to ``base`` (the defaults); unknown ones go to the recorder."""
    base = base or DrillSettings()
    into = _Collected(
        values={},
        overrides=dict(base.tcp_overrides),
        unsupported=list(base.unsupported),
        errors=list(base.errors),
        defines=dict(base.defines),
        ignored=recorder.ignored_options,
    )
    for option in options:
        shown = f"--{option.name}" + (f"={option.value}" if option.value is not None else "")
        try:
            _apply(option, into)
        except ValueError as error:
            into.errors.append(f"{shown}: {error}")
    fields = {item.name: getattr(base, item.name) for item in dataclasses.fields(base)}
    version = into.values.get("ip_version", base.ip_version)
    if version == "ipv6" and base.ip_version != "ipv6":
        fields.update(IPV6_DEFAULTS)  # packetdrill's IPv6 addresses unless the header sets some
    fields.update(into.values)
    _check_families(fields, into.errors)
    fields.update(
        tcp_overrides=tuple(into.overrides.items()),
        unsupported=tuple(into.unsupported),
        errors=tuple(into.errors),
        defines=tuple(into.defines.items()),
    )
    return DrillSettings(**fields)
