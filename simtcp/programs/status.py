"""``simtcp ss`` and ``simtcp stats``: live connection and counter listings, like ``ss -tin``
and ``nstat``, from a TAP server's control socket or from a simulated transfer's trace.

A status snapshot (schema :data:`STATUS_SCHEMA` v1) is one JSON object:
``connections`` (each a :class:`~simtcp.tcp.connection.TcpInfo` as a dict),
``counters`` (the stack's :class:`~simtcp.stats.Stats`: drops by reason,
retransmissions, resets, SYN cookies, ...) and ``loop`` (the TAP loop's frame
counters). ``simtcp serve --status-socket PATH`` binds a Unix socket before it
drops privileges; the unprivileged worker answers each connection on it with
one snapshot, taken between two turns of its loop (so the stack is at rest),
and closes it. A trace (``sim transfer --trace``) gives the same listing for a
simulated network: each connection's last recorded state and variables (or
those at ``--at`` seconds), and the stacks' counters from its ``end`` record.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import sys
from collections.abc import Sequence
from typing import Any

from simtcp.stack import Stack

from .cliargs import OneLineParser

__all__ = ["STATUS_SCHEMA", "StatusSocket", "format_ss", "format_stats", "main_ss", "main_stats"]

STATUS_SCHEMA = "simtcp.status"
STATUS_VERSION = 1
_TIMEOUT_S = 5.0


class StatusError(Exception):
    """The listing cannot be produced: one line for the user."""


def snapshot(
    stack: Stack, loop_counters: dict[str, int] | None = None, *, now: int | None = None
) -> dict[str, Any]:
    """The status of one stack, as a JSON-able dict (at ``now``, the stack's time in
    microseconds, when known: the ages since data was last sent and received need it)."""
    tcp = stack.tcp
    return {
        "schema": STATUS_SCHEMA,
        "version": STATUS_VERSION,
        "hosts": {
            "stack": {
                "connections": [dataclasses.asdict(i) for i in tcp.connections_info(now=now)],
                "listeners": [dataclasses.asdict(i) for i in tcp.listeners_info()],
                "counters": stack.stats(),
            }
        },
        "loop": dict(loop_counters or {}),
    }


class StatusSocket:
    """A listening Unix socket, bound by the privileged parent, answered by the worker."""

    def __init__(self, path: str) -> None:
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(path) and not _is_socket(path):
                raise StatusError(f"--status-socket {path} exists and is not a socket")
            os.unlink(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._socket.bind(path)
        self._socket.listen(8)
        self._socket.setblocking(False)

    def fileno(self) -> int:
        return self._socket.fileno()

    def answer(self, status: dict[str, Any]) -> None:
        """Send ``status`` to every waiting client (never blocks the loop for long)."""
        while True:
            try:
                client, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            with contextlib.suppress(OSError), client:
                client.settimeout(1.0)
                client.sendall(json.dumps(status).encode() + b"\n")

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


def _is_socket(path: str) -> bool:
    import stat

    return stat.S_ISSOCK(os.stat(path).st_mode)


def query(path: str) -> dict[str, Any]:
    """One snapshot from a server's status socket."""
    chunks = []
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(_TIMEOUT_S)
            client.connect(path)
            while chunk := client.recv(65536):
                chunks.append(chunk)
    except OSError as error:
        raise StatusError(f"cannot ask {path}: {error.strerror or error}") from None
    try:
        status: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError:
        raise StatusError(f"{path} did not answer with a status snapshot") from None
    if status.get("schema") != STATUS_SCHEMA or status.get("version", 0) > STATUS_VERSION:
        raise StatusError(f"{path} answered an unknown status schema")
    return status


# --- from a trace ---------------------------------------------------------------------


def from_trace(path: str, at_s: float | None = None) -> dict[str, Any]:
    """A snapshot of a simulated network rebuilt from its trace (at ``at_s`` seconds)."""
    from .tcpseries import SeriesError, read_trace

    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            _, records = read_trace(lines)
    except OSError as error:
        raise StatusError(f"cannot read {path}: {error.strerror}") from None
    except SeriesError as error:
        raise StatusError(str(error)) from None
    limit = None if at_s is None else int(at_s * 1e6)
    hosts: dict[str, dict[str, Any]] = {}
    connections: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        if record.get("type") == "end":
            for host, counters in record.get("counters", {}).items():
                hosts.setdefault(host, {"connections": []})["counters"] = counters
            continue
        if "conn" not in record or limit is not None and record.get("t", 0) > limit:
            continue
        key = (str(record["host"]), str(record["conn"]))
        if record["type"] == "update":
            connections.setdefault(key, {}).update(record)
        elif record["type"] == "state":
            connections.setdefault(key, {})["state"] = record["new"]
    for (host, name), values in connections.items():
        local, _, remote = name.partition(">")
        info = {k: v for k, v in values.items() if k not in ("t", "type", "host", "conn")}
        info["local"], info["remote"] = local, remote
        hosts.setdefault(host, {"connections": [], "counters": {}})["connections"].append(info)
    return {"schema": STATUS_SCHEMA, "version": STATUS_VERSION, "hosts": hosts, "loop": {}}


# --- formatting -------------------------------------------------------------------------


def _endpoint(info: dict[str, Any], side: str) -> str:
    if side in info:
        return str(info[side])
    return f"{info[side + '_address']}:{info[side + '_port']}"


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value / 1000:g}"


def _rate(bytes_per_second: int) -> str:
    """A rate as ``ss`` prints one (``sprint_bw``): bits per second, scaled."""
    bits = bytes_per_second * 8
    for limit, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if bits > limit:
            return f"{bits / limit:.1f}{unit}bps"
    return f"{bits:g}bps"


def _listener_line(info: dict[str, Any]) -> str:
    """``ss -lt``: Recv-Q is the completed connections waiting for accept, Send-Q the backlog."""
    local = _endpoint(info, "local")
    return (
        f"{'LISTEN':<13}{info.get('queued', 0):>7}{info.get('backlog', 0):>8}  "
        f"{local:<22}{info.get('remote_address', '0.0.0.0') + ':*':<22}"
    )


def _options(info: dict[str, Any]) -> list[str]:
    words = []
    if info.get("timestamps"):
        words.append("ts")
    if info.get("sack"):
        words.append("sack")
    if info.get("cc"):
        words.append(str(info["cc"]))
    if info.get("window_scaling"):
        words.append(f"wscale:{info.get('snd_wscale', 0)},{info.get('rcv_wscale', 0)}")
    return words


def _timers(info: dict[str, Any]) -> list[str]:
    mss = info.get("mss") or 1  # none in a trace: bytes
    words = [
        f"rto:{_ms(info.get('rto'))}",
        f"rtt:{_ms(info.get('srtt'))}"
        + (f"/{_ms(info['rttvar'])}" if info.get("rttvar") is not None else ""),
    ]
    for key, label in (("ato", "ato"),):
        if info.get(key):
            words.append(f"{label}:{_ms(info[key])}")
    words.append(f"mss:{info.get('mss', '-')}")
    for key, label in (("pmtu", "pmtu"), ("rcv_mss", "rcvmss"), ("advmss", "advmss")):
        if info.get(key):
            words.append(f"{label}:{info[key]}")
    # In segments as ss prints them when the MSS is known (a trace records bytes only).
    cwnd = info.get("cwnd")
    words.append(f"cwnd:{'-' if cwnd is None else -(-cwnd // mss)}")
    ssthresh = info.get("ssthresh")
    if ssthresh is not None and ssthresh < 1 << 30:  # ss shows none before a loss
        words.append(f"ssthresh:{-(-ssthresh // mss)}")
    return words


def _counters(info: dict[str, Any]) -> list[str]:
    words = []
    for key in (
        "bytes_sent",
        "bytes_retrans",
        "bytes_acked",
        "bytes_received",
        "segs_out",
        "segs_in",
        "data_segs_out",
        "data_segs_in",
    ):
        if info.get(key):
            words.append(f"{key}:{info[key]}")
    if info.get("send_rate"):
        words.append(f"send {_rate(info['send_rate'])}")
    for key, label in (
        ("last_data_sent", "lastsnd"),
        ("last_data_recv", "lastrcv"),
        ("last_ack_recv", "lastack"),
    ):
        if info.get(key) is not None:
            words.append(f"{label}:{info[key] // 1000}")
    if info.get("pacing_rate"):
        words.append(f"pacing_rate {_rate(info['pacing_rate'])}")
    if info.get("delivery_rate"):
        words.append(f"delivery_rate {_rate(info['delivery_rate'])}")
    if info.get("app_limited"):
        words.append("app_limited")
    return words


def _limits(info: dict[str, Any]) -> list[str]:
    words = []
    busy = info.get("busy_time") or 0
    if busy:
        words.append(f"busy:{busy // 1000}ms")
        for key in ("rwnd_limited", "sndbuf_limited"):
            if info.get(key):
                words.append(f"{key}:{info[key] // 1000}ms({100 * info[key] / busy:.1f}%)")
    for key in ("unacked",):
        if info.get(key):
            words.append(f"{key}:{info[key]}")
    retrans, total = info.get("retrans", 0), info.get("retransmits", 0)
    if retrans or total:
        words.append(f"retrans:{retrans}/{total}")
    for key in ("lost", "sacked"):
        if info.get(key):
            words.append(f"{key}:{info[key]}")
    if info.get("reordering", 3) != 3:
        words.append(f"reordering:{info['reordering']}")
    return words


def _receiving(info: dict[str, Any]) -> list[str]:
    words = []
    if info.get("rcv_rtt") is not None:
        words.append(f"rcv_rtt:{_ms(info['rcv_rtt'])}")
    if info.get("rcv_space"):
        words.append(f"rcv_space:{info['rcv_space']}")
    if info.get("rcv_wnd") is not None:
        words.append(f"rcv_wnd:{info['rcv_wnd']}")
    if info.get("notsent_bytes"):
        words.append(f"notsent:{info['notsent_bytes']}")
    if info.get("min_rtt") is not None:
        words.append(f"minrtt:{_ms(info['min_rtt'])}")
    if info.get("in_recovery"):
        words.append("recovery")
    return words


def format_ss(
    status: dict[str, Any], *, connections: bool = True, listeners: bool = False
) -> list[str]:
    """``ss -tin``-style lines: state, queues, peers, then the TCP variables in ``ss -ti``'s
    words and order (rates in bits per second, times in ms, cwnd and ssthresh in
    segments). Listeners (``listeners=True``, as ``ss -l``/``-a``) show their accept queue:
    Recv-Q the completed connections not yet accepted, Send-Q the backlog."""
    lines = [f"{'State':<13}{'Recv-Q':>7}{'Send-Q':>8}  {'Local':<22}{'Peer':<22}"]
    for host, content in status["hosts"].items():
        if listeners:
            lines.extend(_listener_line(info) for info in content.get("listeners", []))
        if not connections:
            continue
        for info in content.get("connections", []):
            lines.append(
                f"{info.get('state', '?'):<13}{info.get('bytes_readable', 0):>7}"
                f"{info.get('bytes_in_send_buffer', 0):>8}  {_endpoint(info, 'local'):<22}"
                f"{_endpoint(info, 'remote'):<22}"
            )
            details = [f"host:{host}", *_options(info), *_timers(info)]
            details += [*_counters(info), *_limits(info), *_receiving(info)]
            lines.append("\t " + " ".join(details))
    return lines


def format_stats(status: dict[str, Any]) -> list[str]:
    """``nstat``-style lines: one non-zero counter per line, host-prefixed."""
    lines = []
    for host, content in status["hosts"].items():
        for name, value in sorted(content.get("counters", {}).items()):
            if value:
                lines.append(f"{host + '.' + name:<48}{value:>12}")
    for name, value in sorted(status.get("loop", {}).items()):
        if value:
            lines.append(f"{'loop.' + name:<48}{value:>12}")
    return lines


# --- commands ------------------------------------------------------------------------------


def _parser(prog: str, what: str) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=what)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--socket", metavar="PATH", help="a server's --status-socket (simtcp serve)"
    )
    source.add_argument("--trace", metavar="FILE", help="a simulated transfer's --trace file")
    parser.add_argument("--at", type=float, metavar="SECONDS", help="with --trace: at this time")
    if prog.endswith("ss"):
        shown = parser.add_mutually_exclusive_group()
        shown.add_argument(
            "-l", "--listening", action="store_true", help="listeners only, with their queues"
        )
        shown.add_argument("-a", "--all", action="store_true", help="listeners and connections")
    parser.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    return parser


def _main(argv: Sequence[str] | None, prog: str, what: str, kind: str) -> int:
    try:
        args = _parser(prog, what).parse_args(argv)
    except SystemExit as exit_:  # a usage error (one line, 2) or --help (0)
        return exit_.code if isinstance(exit_.code, int) else 0
    try:
        status = query(args.socket) if args.socket else from_trace(args.trace, args.at)
    except StatusError as error:
        print(f"{prog}: {error}", file=sys.stderr)
        return 2
    if args.json:
        hosts = status["hosts"]
        body: dict[str, Any]
        if kind == "ss":
            body = {host: _listed(content, args) for host, content in hosts.items()}
        else:
            body = {host: content.get("counters", {}) for host, content in hosts.items()}
            body["loop"] = status.get("loop", {})
        print(json.dumps(body))
    else:
        lines = (
            format_ss(status, connections=not args.listening, listeners=args.listening or args.all)
            if kind == "ss"
            else format_stats(status)
        )
        print("\n".join(lines))
    return 0


def _listed(content: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """What ``ss --json`` lists of one host: connections, listeners (-l) or both (-a)."""
    listed: list[dict[str, Any]] = [] if args.listening else list(content.get("connections", []))
    if args.listening or args.all:
        listed = list(content.get("listeners", [])) + listed
    return listed


def main_ss(argv: Sequence[str] | None = None) -> int:
    """``simtcp ss``."""
    return _main(argv, "simtcp ss", "List TCP connections like ss -tin.", "ss")


def main_stats(argv: Sequence[str] | None = None) -> int:
    """``simtcp stats``."""
    return _main(argv, "simtcp stats", "Print the stack's counters like nstat.", "stats")
