"""``simtcp sim scenario FILE.toml``: a topology, its impairments and a timeline of faults.

A scenario file (TOML, read with the standard library's ``tomllib``) names
hosts with addresses, links them (directly or through switches), starts
transfers between them, schedules events (partitions, heals, holds, crashes,
restarts, pauses, link changes) and adds fault rules; then it runs in
virtual time and writes a pcap per host. Example (``docs`` has more)::

    seed = 1
    duration = "60s"

    [hosts.client]
    address = "10.0.0.1/24"

    [hosts.server]
    address = "10.0.0.2/24"

    [[links]]
    between = ["client", "server"]
    delay = "10ms"
    rate = "10Mbit"

    [[transfers]]
    from = "client"
    to = "server"
    bytes = "1M"

    [[events]]
    at = "1s"
    action = "partition"
    a = ["client"]
    b = ["server"]

    [[events]]
    at = "4s"
    action = "heal"

    [[rules]]
    action = "drop"
    from = "server"
    flags = "SA"
    nth = 1

A bad file (a syntax error, an unknown host or key, one address on two
hosts, a negative time, a rule that can match nothing, or matched nothing by
the end) ends with one line ``simtcp sim scenario: error: FILE:LINE: what is
wrong`` on stderr and exit status 2. A transfer that does not complete exits 1;
else 0. The same seed and file give byte-identical pcaps.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from simtcp.backends.faults import ACTIONS, FaultNet, FaultRule, HostHandle
from simtcp.backends.impair import LinkProfile
from simtcp.backends.sim import Link, SimulationError, Simulator
from simtcp.config import StackConfig
from simtcp.errors import ConfigError
from simtcp.programs.cliargs import error_line
from simtcp.programs.scenario_apps import Sender, Sink, make_stack
from simtcp.stack import Stack
from simtcp.tcp.config import TcpConfig
from simtcp.time import SECOND, Instant, parse_duration
from simtcp.wire.ipv4 import prefix_from_str
from simtcp.wire.pcap import PcapWriter

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PROG = "simtcp sim scenario"
TOP_KEYS = {"seed", "duration", "hosts", "switches", "links", "transfers", "events", "rules"}
HOST_KEYS = {"address", "mac", "mtu", "queue", "data_retries", "syn_retries"}
LINK_KEYS = {
    "between", "back", "loss", "reorder", "duplicate", "corrupt", "delay", "jitter",
    "jitter_distribution", "rate", "queue_limit", "queue_packets", "qdisc",
    "burst_enter", "burst_leave", "burst_loss", "burst_good_loss", "mtu",
}  # fmt: skip
TIME_FIELDS = {"delay", "jitter"}
EVENTS = {
    "partition": {"a", "b", "one_way"},
    "heal": set(),
    "link_down": {"between", "direction"},
    "link_up": {"between", "direction"},
    "hold": {"host", "between"},
    "release": {"shuffle"},
    "crash": {"host"},
    "restart": {"host"},
    "pause": {"host"},
    "resume": {"host"},
    "set_link": LINK_KEYS,
}
RULE_KEYS = {"action", "from", "to", "protocol", "port", "flags", "not_flags", "nth", "delay"}
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\"-]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\"-]+)\s*=")


class ScenarioError(Exception):
    """A bad scenario file: one line, ``FILE:LINE: message``."""


class _Lines:
    """Where each table and key of a TOML file starts (tomllib keeps no positions)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines: dict[tuple[str | int, ...], int] = {}
        counts: dict[str, int] = {}
        table: tuple[str | int, ...] = ()
        for number, line in enumerate(text.splitlines(), 1):
            header = _HEADER.match(line)
            if header:
                name = tuple(part.strip('"') for part in header.group(2).split("."))
                if header.group(1) == "[[":
                    index = counts.get(name[0], 0)
                    counts[name[0]] = index + 1
                    table = (name[0], index)
                else:
                    table = name
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault((*table, key.group(1).strip('"')), number)

    def error(self, where: tuple[str | int, ...], message: str) -> ScenarioError:
        for end in range(len(where), 0, -1):
            if where[:end] in self.lines:
                return ScenarioError(f"{self.path}:{self.lines[where[:end]]}: {message}")
        return ScenarioError(f"{self.path}:1: {message}")


@dataclass
class Scenario:
    """A loaded, checked scenario file, ready to build."""

    path: str
    data: dict[str, Any]
    lines: _Lines
    seed: int = 0
    duration: Instant = 600 * SECOND
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)


def load_scenario(path: str) -> Scenario:
    """Read and check ``path``; raises :class:`ScenarioError` with file and line."""
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    try:  # tomllib is in the standard library from Python 3.11 on
        toml: Any = importlib.import_module("tomllib")
    except ImportError:
        raise ScenarioError(f"{path}: scenario files need Python 3.11 (tomllib)") from None
    try:
        data = toml.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}:1: not UTF-8 text") from None
    except toml.TOMLDecodeError as error:
        match = re.search(r"\(at line (\d+), column \d+\)", str(error))
        line = match.group(1) if match else "1"
        message = re.sub(r"\s*\(at line .*\)$", "", str(error)) or "syntax error"
        raise ScenarioError(f"{path}:{line}: TOML syntax error: {message}") from None
    scenario = Scenario(path, data, _Lines(path, raw.decode("utf-8")))
    _check(scenario)
    return scenario


def _unknown(
    lines: _Lines, where: tuple[str | int, ...], table: dict[str, Any], known: set[str]
) -> None:
    for key in table:
        if key not in known:
            raise lines.error(
                (*where, key), f"unknown key {key!r} (known: {', '.join(sorted(known))})"
            )


def _time(lines: _Lines, where: tuple[str | int, ...], value: object) -> Instant:
    try:
        if isinstance(value, bool):
            raise ValueError
        at = round(value * SECOND) if isinstance(value, (int, float)) else None
        if isinstance(value, str):
            text = value.strip()
            at = -parse_duration(text[1:]) if text.startswith("-") else parse_duration(text)
        if at is None:
            raise ValueError
    except ValueError:
        raise lines.error(where, f'not a time: {value!r} (use e.g. "2s", "500ms")') from None
    if at < 0:
        raise lines.error(where, f"time must not be negative: {value!r}")
    return at


def _check(scenario: Scenario) -> None:
    data, lines = scenario.data, scenario.lines
    _unknown(lines, (), data, TOP_KEYS)
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or seed < 0:
        raise lines.error(("seed",), "seed must be a whole number >= 0")
    scenario.seed = seed
    if "duration" in data:
        scenario.duration = _time(lines, ("duration",), data["duration"])
    hosts = data.get("hosts", {})
    if not isinstance(hosts, dict) or not hosts:
        raise lines.error(("hosts",), "a scenario needs [hosts.NAME] tables")
    owners: dict[int, str] = {}
    for name, host in hosts.items():
        where = ("hosts", name)
        if not isinstance(host, dict):
            raise lines.error(where, f"hosts.{name} must be a table")
        _unknown(lines, where, host, HOST_KEYS)
        try:
            address, _ = prefix_from_str(str(host.get("address", "")))
        except ValueError:
            raise lines.error(
                (*where, "address"), f"host {name!r} needs an address like 10.0.0.1/24"
            ) from None
        if address in owners:
            raise lines.error(
                (*where, "address"), f"address of {name!r} is already {owners[address]!r}'s"
            )
        owners[address] = name
        _check_numbers(
            lines, where, host, {"mtu": 68, "queue": 1, "data_retries": 0, "syn_retries": 0}
        )
    scenario.hosts = hosts
    _check_topology(scenario)
    _check_timeline(scenario)


def _check_numbers(
    lines: _Lines, where: tuple[str | int, ...], table: dict[str, Any], least: dict[str, int]
) -> None:
    for key, low in least.items():
        value = table.get(key, low)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise lines.error((*where, key), f"{key} must be a whole number >= {low}")


def _host_name(scenario: Scenario, where: tuple[str | int, ...], name: object) -> str:
    if not isinstance(name, str) or name not in scenario.hosts:
        raise scenario.lines.error(where, f"unknown host {name!r}")
    return name


def _pair(
    scenario: Scenario, where: tuple[str | int, ...], value: object, switches: bool
) -> tuple[str, str]:
    names = set(scenario.hosts) | (set(scenario.data.get("switches", {})) if switches else set())
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise scenario.lines.error(where, 'between must name two hosts: ["a", "b"]')
    for name in value:
        if name not in names:
            raise scenario.lines.error(where, f"unknown host {name!r}")
    return value[0], value[1]


def _check_topology(scenario: Scenario) -> None:
    lines, data = scenario.lines, scenario.data
    for name in data.get("switches", {}):
        if name in scenario.hosts:
            raise lines.error(("switches", name), f"{name!r} is both a host and a switch")
    linked: set[str] = set()
    for index, link in enumerate(data.get("links", [])):
        where: tuple[str | int, ...] = ("links", index)
        _unknown(lines, where, link, LINK_KEYS)
        for end in _pair(scenario, (*where, "between"), link.get("between"), True):
            if end in scenario.hosts and end in linked:
                raise lines.error((*where, "between"), f"host {end!r} already has a link")
            linked.add(end)
        link_profiles(scenario, where, link)
    for index, transfer in enumerate(data.get("transfers", [])):
        where = ("transfers", index)
        _unknown(lines, where, transfer, {"from", "to", "bytes", "port", "at"})
        _check_numbers(lines, where, transfer, {"port": 1})
        if transfer.get("port", 1) > 65535:
            raise lines.error((*where, "port"), "port must be within 1..65535")
        _size(lines, (*where, "bytes"), transfer.get("bytes", "64K"))
        _host_name(scenario, (*where, "from"), transfer.get("from"))
        _host_name(scenario, (*where, "to"), transfer.get("to"))
        _time(lines, (*where, "at"), transfer.get("at", 0))


def _size(lines: _Lines, where: tuple[str | int, ...], value: object) -> int:
    from simtcp.programs.sim import parse_size

    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    try:
        return parse_size(str(value)) if isinstance(value, str) else parse_size("")
    except argparse.ArgumentTypeError as error:
        raise lines.error(where, str(error)) from None


def link_profiles(
    scenario: Scenario, where: tuple[str | int, ...], table: dict[str, Any]
) -> tuple[LinkProfile, LinkProfile]:
    """A link's two directions: from the first host named in ``between`` to the second,
    and back (the same, but for what a ``back = { ... }`` table overrides)."""
    forward = link_profile(scenario, where, table)
    back = table.get("back")
    if back is None:
        return forward, forward
    if not isinstance(back, dict):
        raise scenario.lines.error((*where, "back"), "back must be a table: back = { loss = 0.1 }")
    _unknown(scenario.lines, (*where, "back"), back, LINK_KEYS - {"between", "back"})
    return forward, link_profile(scenario, (*where, "back"), {**table, **back})


def link_profile(
    scenario: Scenario, where: tuple[str | int, ...], table: dict[str, Any]
) -> LinkProfile:
    """The LinkProfile a link (or a set_link event) table describes."""
    from simtcp.programs.sim import parse_rate, parse_size

    values: dict[str, Any] = {}
    for key, value in table.items():
        if (
            key not in LINK_KEYS
            or key in ("between", "back")
            or key in EVENTS["partition"] | {"at", "action"}
        ):
            continue
        try:
            if key in TIME_FIELDS:
                values[key] = _time(scenario.lines, (*where, key), value)
            elif key == "rate":
                values[key] = parse_rate(value) if isinstance(value, str) else int(value)
            elif key == "queue_limit":
                values[key] = parse_size(value) if isinstance(value, str) else int(value)
            else:
                values[key] = value
        except (argparse.ArgumentTypeError, TypeError, ValueError) as error:
            raise scenario.lines.error((*where, key), f"{key}: {error}") from None
    try:
        return LinkProfile(**values)
    except (ConfigError, TypeError) as error:
        raise scenario.lines.error(where, str(error)) from None


def _connected(scenario: Scenario, a: str, b: str) -> bool:
    """Whether hosts ``a`` and ``b`` reach each other over links and switches."""
    edges: dict[str, set[str]] = {}
    for link in scenario.data.get("links", []):
        x, y = link["between"]
        edges.setdefault(x, set()).add(y)
        edges.setdefault(y, set()).add(x)
    seen, todo = {a}, [a]
    while todo:
        for neighbour in edges.get(todo.pop(), ()):
            if neighbour not in seen:
                seen.add(neighbour)
                todo.append(neighbour)
    return b in seen


def _check_timeline(scenario: Scenario) -> None:
    lines, data = scenario.lines, scenario.data
    for index, event in enumerate(data.get("events", [])):
        where: tuple[str | int, ...] = ("events", index)
        action = event.get("action")
        if action not in EVENTS:
            raise lines.error(
                (*where, "action"), f"unknown action {action!r} (known: {', '.join(EVENTS)})"
            )
        _unknown(lines, where, event, EVENTS[action] | {"at", "action"})
        _time(lines, (*where, "at"), event.get("at", None))
        for key in ("a", "b") if action == "partition" else ():
            if not isinstance(event.get(key), list):
                raise lines.error((*where, key), f"partition needs {key} = [host, ...]")
            for name in event[key]:
                _host_name(scenario, (*where, key), name)
        if "host" in event or action in ("crash", "restart", "pause", "resume"):
            _host_name(scenario, (*where, "host"), event.get("host"))
        if "between" in event:
            _pair(scenario, (*where, "between"), event["between"], True)
        if action == "set_link":
            link_profiles(scenario, where, event)
    for index, rule in enumerate(data.get("rules", [])):
        _check_rule(scenario, ("rules", index), rule)


def _check_rule(scenario: Scenario, where: tuple[str | int, ...], rule: dict[str, Any]) -> None:
    lines = scenario.lines
    _unknown(lines, where, rule, RULE_KEYS)
    if rule.get("action") not in ACTIONS:
        raise lines.error((*where, "action"), f"rule action must be one of {', '.join(ACTIONS)}")
    ends = [_host_name(scenario, (*where, k), rule[k]) for k in ("from", "to") if k in rule]
    if len(ends) == 2 and (ends[0] == ends[1] or not _connected(scenario, *ends)):
        raise lines.error(where, f"rule matches nothing: no path from {ends[0]!r} to {ends[1]!r}")
    protocol = rule.get("protocol")
    if protocol is not None and protocol not in ("tcp", "udp", "icmp", "arp"):
        raise lines.error((*where, "protocol"), f"unknown protocol {protocol!r}")
    if (rule.get("flags") or rule.get("not_flags")) and protocol not in (None, "tcp"):
        raise lines.error(where, f"rule matches nothing: TCP flags on {protocol} frames")
    if "port" in rule and protocol in ("icmp", "arp"):
        raise lines.error(where, f"rule matches nothing: a port on {protocol} frames")
    if set(rule.get("flags", "")) & set(rule.get("not_flags", "")):
        raise lines.error(where, "rule matches nothing: a flag both set and clear")
    fault_rule(scenario, where, rule)


def fault_rule(scenario: Scenario, where: tuple[str | int, ...], rule: dict[str, Any]) -> FaultRule:
    try:
        return FaultRule(
            action=rule["action"],
            source=rule.get("from"),
            destination=rule.get("to"),
            protocol=rule.get("protocol"),
            port=rule.get("port"),
            flags=rule.get("flags", ""),
            not_flags=rule.get("not_flags", ""),
            nth=rule.get("nth"),
            delay=_time(scenario.lines, (*where, "delay"), rule.get("delay", 0)),
        )
    except ConfigError as error:
        raise scenario.lines.error(where, str(error)) from None


# --- building and running ------------------------------------------------------------------


@dataclass
class _Built:
    sim: Simulator
    net: FaultNet
    links: dict[frozenset[str], Link]
    senders: list[tuple[str, Sender]]
    sinks: dict[tuple[str, int], Sink]
    rules: list[tuple[tuple[str | int, ...], FaultRule]]


def _start_function(apps: list[Sink | Sender]) -> Callable[[HostHandle], None]:
    def start(host: HostHandle) -> None:
        for app in apps:
            app.start(host)

    return start


def _add_hosts(scenario: Scenario, net: FaultNet, built: _Built) -> None:
    apps: dict[str, list[Sink | Sender]] = {name: [] for name in scenario.hosts}
    for index, transfer in enumerate(scenario.data.get("transfers", [])):
        port = int(transfer.get("port", 5001))
        source, target = transfer["from"], transfer["to"]
        size = _size(scenario.lines, ("transfers", index, "bytes"), transfer.get("bytes", "64K"))
        label = f"transfer{index}"
        if (target, port) not in built.sinks:
            built.sinks[(target, port)] = sink = Sink(port=port, seed=scenario.seed, label=label)
            apps[target].append(sink)
        sink = built.sinks[(target, port)]
        address = scenario.hosts[target]["address"].split("/")[0]
        at = _time(scenario.lines, ("transfers", index, "at"), transfer.get("at", 0))
        sender = Sender(address, port, size, seed=scenario.seed, label=sink.label, start_at=at)
        built.senders.append((f"{source} -> {target}:{port}", sender))
        apps[source].append(sender)
    for index, (name, host) in enumerate(scenario.hosts.items(), 1):
        tcp = TcpConfig(
            data_retries=int(host.get("data_retries", 15)),
            syn_retries=int(host.get("syn_retries", 6)),
        )
        config = StackConfig(seed=scenario.seed * 1000 + index, tcp=tcp)
        mac = host.get("mac", f"02:00:00:00:{index >> 8:02x}:{index & 0xFF:02x}")
        mtu = int(host.get("mtu", 1500))

        def factory(
            config: StackConfig = config,
            mac: str = mac,
            address: str = host["address"],
            mtu: int = mtu,
        ) -> Stack:
            return make_stack(config, mac, address, mtu)

        net.add_host(name, factory, addresses=[host["address"]], start=_start_function(apps[name]))


def build_scenario(scenario: Scenario, pcaps: dict[str, BinaryIO] | None = None) -> _Built:
    """The simulator, hosts, links, apps, events and rules a scenario describes."""
    sim = Simulator(scenario.seed)
    net = FaultNet(sim)
    built = _Built(sim, net, {}, [], {}, [])
    data = scenario.data
    _add_hosts(scenario, net, built)
    for name in data.get("switches", {}):
        sim.add_switch(name)
    for index, link in enumerate(data.get("links", [])):
        a, b = link["between"]
        profile, back = link_profiles(scenario, ("links", index), link)
        if a in scenario.hosts and b in scenario.hosts:
            built.links[frozenset((a, b))] = sim.connect((a, "eth0"), (b, "eth0"), profile, back)
        else:
            host, switch = (a, b) if a in scenario.hosts else (b, a)
            if host == b:  # the link's first direction leaves the host
                profile, back = back, profile
            built.links[frozenset((a, b))] = sim.connect_to_switch(
                switch, (host, "eth0"), profile, back
            )
    for name, host in scenario.hosts.items():
        if "queue" in host:
            sim.set_host_queue(name, int(host["queue"]))
        if pcaps is not None and name in pcaps:
            sim.add_pcap((name, "eth0"), pcaps[name])
    for index, event in enumerate(data.get("events", [])):
        at = _time(scenario.lines, ("events", index, "at"), event["at"])
        net.at(at, _event_action(scenario, built, ("events", index), event))
    for index, rule in enumerate(data.get("rules", [])):
        where = ("rules", index)
        built.rules.append((where, net.add_rule(fault_rule(scenario, where, rule))))
    return built


def _event_action(
    scenario: Scenario, built: _Built, where: tuple[str | int, ...], event: dict[str, Any]
) -> Callable[[], None]:
    net, action = built.net, event["action"]
    link = built.links.get(frozenset(event.get("between", ())))
    if "between" in event and link is None:
        raise scenario.lines.error((*where, "between"), "no link between these two")
    host = event.get("host", "")
    direction = event.get("direction", "both")
    actions: dict[str, Callable[[], object]] = {
        "partition": lambda: net.partition(
            event.get("a", []), event.get("b", []), one_way=bool(event.get("one_way", False))
        ),
        "heal": net.heal,
        "link_down": lambda: net.link_down(link, direction) if link else None,
        "link_up": lambda: net.link_up(link, direction) if link else None,
        "hold": lambda: net.hold(host=host or None, link=link),
        "release": lambda: net.release(shuffle=bool(event.get("shuffle", False))),
        "crash": lambda: net.crash(host),
        "restart": lambda: net.restart(host),
        "pause": lambda: net.pause(host),
        "resume": lambda: net.resume(host),
    }
    if action == "set_link":
        forward, back = link_profiles(scenario, where, event)
        if link is not None and link.ab_name.split(":")[0] != event["between"][0]:
            forward, back = back, forward  # between names the link the other way round
        return lambda: link.set_profile(ab=forward, ba=back) if link else None
    chosen = actions[action]
    return lambda: None if chosen() is None else None


def run_scenario(
    scenario: Scenario, pcaps: dict[str, BinaryIO] | None = None
) -> tuple[int, list[str]]:
    """Run it to its end; the exit status and the report's lines."""
    built = build_scenario(scenario, pcaps)
    sim = built.sim
    senders = built.senders
    sim.run_until(
        lambda: bool(senders) and all(sender.done for _, sender in senders),
        timeout=scenario.duration,
    )
    report = [f"scenario {scenario.path}: seed {scenario.seed}, ran to t={sim.now / SECOND:.3f}s"]
    status = EXIT_OK
    for label, sender in senders:
        outcome = sender.outcome or "not finished"
        report.append(f"transfer {label}: {outcome}, {sender.sent} of {sender.size} bytes sent")
        if outcome != "closed":
            status = EXIT_FAILED
    for (host, port), sink in built.sinks.items():
        verdict = "intact" if sink.intact else "CORRUPTED"
        report.append(f"sink {host}:{port}: {sink.received} bytes received, {verdict}")
        if not sink.intact:
            status = EXIT_FAILED
    counters = ", ".join(f"{key} {value}" for key, value in built.net.counters.items())
    report.append(f"faults: {counters}")
    for where, rule in built.rules:
        matched = next(m for r, m, _ in built.net.rule_counts() if r is rule)
        report.append(f"rule {int(where[1]) + 1} ({rule.action}): matched {matched} frames")
        if matched == 0:
            raise _Unmatched(report, scenario.lines.error(where, "rule matched no frame"))
    return status, report


class _Unmatched(Exception):
    def __init__(self, report: list[str], error: ScenarioError) -> None:
        super().__init__(str(error))
        self.report = report
        self.error = error


# --- the command line --------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """The ``scenario`` subcommand, added to ``simtcp sim``'s table."""
    parser = commands.add_parser(
        "scenario",
        help="run a TOML scenario: hosts, links, transfers, faults",
        description="Run a scenario file: topology, impairments and a timeline of faults.",
    )
    parser.add_argument("file", metavar="FILE.toml", help="the scenario file")
    parser.add_argument("--pcap-dir", metavar="DIR", help="write DIR/HOST.pcap for every host")
    from simtcp.programs.sim import _integer  # loaded: this runs inside its build_parser

    parser.add_argument("--seed", type=_integer(0), metavar="S", help="override the file's seed")


def main(args: argparse.Namespace) -> int:
    """Run ``simtcp sim scenario``; returns the exit status."""
    try:
        scenario = load_scenario(args.file)
        if args.seed is not None:
            scenario.seed = args.seed
        pcaps: dict[str, BinaryIO] = {}
        if args.pcap_dir:
            os.makedirs(args.pcap_dir, exist_ok=True)
            for name in scenario.hosts:
                pcaps[name] = open(os.path.join(args.pcap_dir, f"{name}.pcap"), "wb")  # noqa: SIM115
        try:
            status, report = run_scenario(scenario, pcaps)
        finally:
            for stream in pcaps.values():
                stream.close()
    except _Unmatched as unmatched:
        print("\n".join(unmatched.report))
        print(error_line(PROG, str(unmatched.error)), file=sys.stderr)
        return EXIT_USAGE
    except (ScenarioError, SimulationError) as error:
        print(error_line(PROG, str(error)), file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:  # a value no check above caught: still one line
        print(error_line(PROG, f"{args.file}:1: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:
        print(error_line(PROG, str(error)), file=sys.stderr)
        return EXIT_USAGE
    print("\n".join(report))
    return status


__all__ = [
    "PcapWriter",
    "Scenario",
    "ScenarioError",
    "add_parser",
    "build_scenario",
    "load_scenario",
    "main",
    "run_scenario",
]
