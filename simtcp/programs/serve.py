"""The seed's program over real TAPs: `simtcp serve` and ``echo_reply_server.py``.

The topology of teeceepee2 (DESIGN.md "The programs' contract")::

                    +--------------------+
                    |simtcp:             |
    tap-veth0 ------|- veth0      veth1 -|----- tap-veth1
    10.0.0.2/24     | 10.0.0.1  10.1.1.1 |      (no address)
    2001:db8::2/64  | 2001:db8::1        |
                    |      2001:db8:1::1 |
                    +--------------------+

Beside IPv4 each interface has an IPv6 prefix (and a link-local address, with
DAD): the stack routes IPv6 between them too and answers router solicitations
with both prefixes (router lifetime 0: never anyone's default router).

The stack answers ARP and ICMP echo on both addresses, forwards IPv4 between
its two interfaces (a router: TTL, ICMP time exceeded) and serves TCP echo on
port 80. User errors (no root, no /dev/net/tun, a taken name, a bad option)
print one line and exit 2; SIGINT/SIGTERM remove the devices and exit 0.

Least privilege (:mod:`simtcp.backends.privilege`): set-up is the only part
that needs root (``CAP_SYS_ADMIN`` for namespaces, ``CAP_NET_ADMIN`` for the
devices). Started as root, the program then forks: the child drops to
``--user`` (``nobody``): no groups, no capabilities, no_new_privs, and is
the only process that parses frames; the parent keeps root, does nothing but
wait for the child (forwarding SIGINT/SIGTERM to it) and then removes what it
made. With ``--attach`` it opens TAPs made beforehand and owned by the
invoking user, needs no privilege and creates nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO

from ..apps import EchoServer
from ..config import ArpConfig, Ip6Config, IpConfig, StackConfig, UdpConfig
from ..errors import SimtcpError
from ..events import Event
from ..stack import Stack
from ..time import Instant
from ..wire.pcap import PcapWriter
from .cliargs import OneLineParser, probability

if TYPE_CHECKING:
    from simtcp.backends.multiqueue import WorkerLink
    from simtcp.backends.privilege import Account
    from simtcp.backends.tap import TapDevice, TapLoop
    from simtcp.programs.status import StatusSocket

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

STACK_ADDRESS0 = "10.0.0.1/24"
STACK_ADDRESS1 = "10.1.1.1/24"
KERNEL_ADDRESS0 = "10.0.0.2/24"
STACK_ADDRESS6_0 = "2001:db8::1/64"
STACK_ADDRESS6_1 = "2001:db8:1::1/64"
KERNEL_ADDRESS6_0 = "2001:db8::2/64"
ECHO_PORT = 80


def _device_name(text: str) -> str:
    if not text or len(text.encode()) > 15 or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not a device name: {text!r} (1..15 characters)")
    return text


def _namespace_name(text: str) -> str:
    if not text or "/" in text or text in (".", "..") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not a namespace name: {text!r}")
    return text


def _queue_count(text: str) -> int:
    from simtcp.backends.multiqueue import parse_queues

    try:
        return parse_queues(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _device_pair(text: str) -> tuple[str, str]:
    names = text.split(",")
    if len(names) != 2 or names[0] == names[1]:
        raise argparse.ArgumentTypeError(f"want two device names, TAP0,TAP1: {text!r}")
    first, second = (_device_name(name) for name in names)
    return first, second


PRIVILEGES = """\
privileges: creating namespaces needs CAP_SYS_ADMIN; creating, moving,
addressing and bringing up the TAPs needs CAP_NET_ADMIN (root has both).
--owner needs CAP_NET_ADMIN too. Started as root, the server then forks: the
child, the only process that parses frames, becomes --user (default nobody)
with no groups, no capabilities (CapEff 0) and no_new_privs; the parent keeps
root only to remove the devices and namespaces at exit.
--attach needs no privilege at all: make the TAPs once, owned by you
(sudo ip tuntap add mode tap user $USER name tap0; sudo ip addr add
10.0.0.2/24 dev tap0; sudo ip link set tap0 up; the same for tap1 without an
address), then run 'simtcp serve --attach tap0,tap1' as yourself.
"""


class _EpilogAsWritten(argparse.HelpFormatter):
    """Wrap the description as usual; print the epilog (already wrapped) as written."""

    def add_text(self, text: str | None) -> None:
        if text is PRIVILEGES:
            self._add_item(lambda: text + "\n", [])
        else:
            super().add_text(text)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``echo_reply_server.py`` and ``simtcp serve``."""
    parser = OneLineParser(
        prog=prog,
        description="Serve the teeceepee2 topology over real TAP devices: the stack at "
        "10.0.0.1/24 (veth0 <-> tap-veth0, kernel side 10.0.0.2/24) and 10.1.1.1/24 "
        "(veth1 <-> tap-veth1), answering ARP and ping, routing between the two, and "
        "echoing TCP on port 80. Creating the TAPs needs root (it then drops to --user); "
        "--attach to TAPs you own needs none. Stop with Ctrl-C.",
        epilog=PRIVILEGES,
        formatter_class=_EpilogAsWritten,
    )
    parser.add_argument(
        "--attach",
        metavar="TAP0,TAP1",
        type=_device_pair,
        help="open these two existing TAP devices (in the namespace we run in) instead "
        "of creating any: no root needed when they belong to you; their kernel side is "
        "configured by whoever made them",
    )
    parser.add_argument(
        "--user",
        metavar="NAME",
        help="started as root: after set-up, parse frames as this user (default: nobody)",
    )
    parser.add_argument(
        "--keep-root",
        action="store_true",
        help="started as root: do not drop privileges (not recommended; warns)",
    )
    parser.add_argument(
        "--owner",
        metavar="USER",
        help="give the TAPs we create to USER and USER's group (TUNSETOWNER/TUNSETGROUP, "
        "as 'ip tuntap add user' does)",
    )
    parser.add_argument(
        "--netns",
        metavar="NS",
        type=_namespace_name,
        help="put the kernel side of both TAPs in network namespace NS "
        "(created if missing, removed at exit if we created it)",
    )
    parser.add_argument(
        "--netns1",
        metavar="NS1",
        type=_namespace_name,
        help="put the kernel side of the second TAP in NS1 instead",
    )
    parser.add_argument(
        "--tap0",
        metavar="NAME",
        type=_device_name,
        help="name of the first TAP device to create (default: tap-veth0)",
    )
    parser.add_argument(
        "--tap1",
        metavar="NAME",
        type=_device_name,
        help="name of the second TAP device to create (default: tap-veth1)",
    )
    parser.add_argument(
        "--loss",
        metavar="P",
        type=probability,
        default=0.0,
        help="drop each frame with probability P, both directions",
    )
    parser.add_argument(
        "--reorder",
        metavar="P",
        type=probability,
        default=0.0,
        help="delay each frame by 1 ms with probability P so others pass it",
    )
    parser.add_argument(
        "--duplicate",
        metavar="P",
        type=probability,
        default=0.0,
        help="deliver each frame twice with probability P",
    )
    parser.add_argument(
        "--seed",
        metavar="N",
        type=int,
        default=0,
        help="seed of the stack and of the impairments (default: 0)",
    )
    parser.add_argument(
        "--pcap",
        metavar="FILE",
        help="record every frame the stack receives and sends, as it crossed the TAP "
        "(the default: with offloads on, 64 KiB TCP segments with partial checksums, "
        "which is what the stack handled; tcpdump -vv calls their checksums incorrect)",
    )
    parser.add_argument(
        "--status-socket",
        metavar="PATH",
        help="answer 'simtcp ss/stats --socket PATH' on this Unix socket (bound before "
        "dropping privileges; the worker answers)",
    )
    parser.add_argument(
        "--pcap-wire",
        action="store_true",
        help="with --pcap, record what the wire would carry instead: segments cut to the "
        "MTU and checksums filled in by the capture writer",
    )
    parser.add_argument(
        "--no-offload",
        action="store_true",
        help="open the TAPs without the virtio-net header: no checksum "
        "offload, no 64 KiB TCP segments (TSO/GSO); the kernel hands over and "
        "takes one frame per wire frame (the stack still merges and cuts them "
        "in software, see --no-gro)",
    )
    parser.add_argument(
        "--no-gro",
        action="store_true",
        help="on a TAP without offloads, hand every frame to the stack as it "
        "came (no software GRO: one ACK per two frames, not per merged run) "
        "and have TCP build MSS-sized segments (no software GSO)",
    )
    parser.add_argument(
        "--queues",
        metavar="N",
        type=_queue_count,
        default=1,
        help="open N queues of each TAP (IFF_MULTI_QUEUE) and serve each with its own "
        "worker process and stack; the kernel steers each flow to one queue "
        "(default: 1, one process)",
    )
    parser.add_argument(
        "--latency",
        action="store_true",
        help="time each turn of the loop from a frame readable to the answer written and "
        "print p50/p99 at the stop (bench/bench_small_packets.py reads it)",
    )
    parser.add_argument(
        "--no-offload1",
        action="store_true",
        help="the same for the second TAP only: forwarding then cuts 64 KiB "
        "segments from the first into MTU-sized ones in software",
    )
    return parser


@dataclass
class _Resources:
    """Everything the program created, so that teardown removes exactly that."""

    devices: list[TapDevice] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    pcap_file: BinaryIO | None = None
    pcap: PcapWriter | None = None
    status: StatusSocket | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Plan:
    """What the command line asks for, checked before anything is created."""

    account: Account | None
    """Who parses frames after set-up; None: stay who we are."""
    owner: tuple[int, int] | None
    """(uid, gid) the created TAPs are given, or None."""


def _fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    """Run the server; returns the exit code (0 after SIGINT/SIGTERM, 2 on user errors)."""
    parser = build_parser(prog or "simtcp serve")
    args = parser.parse_args(argv)
    name = parser.prog
    conflict = _conflict(args)
    if conflict is not None:
        return _fail(name, conflict)
    args.tap0 = args.tap0 or "tap-veth0"
    args.tap1 = args.tap1 or "tap-veth1"
    if args.attach is None and args.tap0 == args.tap1 and (args.netns1 or args.netns) == args.netns:
        return _fail(name, f"--tap0 and --tap1 are both {args.tap0!r}; pick two names")
    from simtcp.backends import privilege, tap

    missing = tap.missing_requirement(attach=args.attach is not None)
    if missing is not None:
        return _fail(name, missing)
    try:
        plan = _plan(args)
    except privilege.PrivilegeError as error:
        return _fail(name, str(error))
    if plan.account is None and args.keep_root and os.geteuid() == 0:
        print(
            f"{name}: warning: --keep-root: frames from the network are parsed as root",
            file=sys.stderr,
            flush=True,
        )
    resources = _Resources()
    owner_pid = os.getpid()

    def interrupt(number: int, frame: FrameType | None) -> None:
        tap.forward_signal_in_child(owner_pid, number)
        raise KeyboardInterrupt

    # Our own handlers during setup too: pyroute2 forks helpers, and a default
    # SIGINT (KeyboardInterrupt) in one of them would run our teardown there.
    previous = {
        number: signal.signal(number, interrupt)
        for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM)
    }
    try:
        return _serve(args, name, resources, plan)
    except KeyboardInterrupt:
        return EXIT_OK  # a signal during setup: tear down what exists and leave quietly
    except (tap.TapError, privilege.PrivilegeError) as error:
        return _fail(name, str(error))
    except OSError as error:
        return _fail(name, f"{error.strerror or error} ({error.filename or 'system call'})")
    finally:
        # A second Ctrl-C must not cut the cleanup short: in our process the
        # signal is now a no-op; pyroute2's forked helpers still die of it.
        for number in previous:
            signal.signal(
                number, lambda number, frame: tap.forward_signal_in_child(owner_pid, number)
            )
        _teardown(resources)
        for number, handler in previous.items():
            signal.signal(number, handler)


def _conflict(args: argparse.Namespace) -> str | None:
    """Options that contradict each other, in one line, or None."""
    if args.user is not None and args.keep_root:
        return "--user and --keep-root contradict each other; pick one"
    if args.pcap_wire and not args.pcap:
        return "--pcap-wire needs --pcap FILE"
    if args.pcap == "":
        return "--pcap needs a file name"
    if args.queues > 1 and args.attach is not None:
        return "--queues needs devices we create (not --attach)"
    if args.queues > 1 and args.pcap:
        return "--pcap records one process's frames; it does not combine with --queues"
    if args.attach is not None:
        for option in ("netns", "netns1", "tap0", "tap1", "owner"):
            if getattr(args, option) is not None:
                flag = "--" + option
                return f"--attach uses existing devices where we run; {flag} is for creating them"
    return None


def _plan(args: argparse.Namespace) -> _Plan:
    """Resolve --user and --owner (a user that does not exist is an error before set-up)."""
    from simtcp.backends.privilege import DEFAULT_USER, PrivilegeError, find_account

    owner = None
    if args.owner is not None:
        account = find_account(args.owner)
        owner = (account.uid, account.gid)
    if os.geteuid() != 0:
        if args.user is not None and find_account(args.user).uid != os.geteuid():
            raise PrivilegeError(f"--user {args.user} needs root (we run as uid {os.geteuid()})")
        return _Plan(account=None, owner=owner)
    if args.keep_root:
        return _Plan(account=None, owner=owner)
    account = find_account(args.user or DEFAULT_USER)
    if account.uid == 0:
        raise PrivilegeError(f"--user {args.user} is root; use --keep-root to stay root")
    return _Plan(account=account, owner=owner)


def _serve(args: argparse.Namespace, prog: str, resources: _Resources, plan: _Plan) -> int:
    _open_pcap(args, resources)
    if args.status_socket:
        from simtcp.programs.status import StatusError, StatusSocket

        try:
            resources.status = StatusSocket(args.status_socket)
        except StatusError as error:
            raise OSError(str(error)) from None
    devices = _attach(args) if args.attach else _create(args, resources, plan.owner)
    resources.devices += devices
    if args.queues > 1:
        from .serve_queues import serve_queues

        return serve_queues(args, prog, devices, resources, plan.account)
    _start_pcap(args, resources, devices)
    if plan.account is None:
        return _run(args, prog, devices, resources)
    if args.attach:  # we made nothing that needs root to remove: drop here, no parent
        _drop(prog, plan.account, parent=None)
        return _run(args, prog, devices, resources)
    return _fork_and_supervise(args, prog, devices, resources, plan.account)


def _open_pcap(args: argparse.Namespace, resources: _Resources) -> None:
    if not args.pcap:
        return
    resources.pcap_file = open(args.pcap, "wb")  # noqa: SIM115 - closed in teardown


def _start_pcap(args: argparse.Namespace, resources: _Resources, devices: list[TapDevice]) -> None:
    if resources.pcap_file is None:
        return
    if args.pcap_wire:
        from simtcp.backends.tap import WirePcapWriter

        mtu = min(device.mtu for device in devices)
        resources.pcap = WirePcapWriter(resources.pcap_file, mtu=mtu)
    else:
        resources.pcap = PcapWriter(resources.pcap_file)
    resources.pcap_file.flush()  # the header: a fork must not leave it in two buffers


def _attach(args: argparse.Namespace) -> list[TapDevice]:
    from simtcp.backends.tap import TapDevice

    offload = not args.no_offload
    name0, name1 = args.attach
    args.tap0, args.tap1 = name0, name1
    device0 = TapDevice.attach(name0, interface="veth0", offload=offload)
    try:
        device1 = TapDevice.attach(
            name1, interface="veth1", offload=offload and not args.no_offload1
        )
    except BaseException:
        device0.close()
        raise
    return [device0, device1]


def _create(
    args: argparse.Namespace, resources: _Resources, owner: tuple[int, int] | None
) -> list[TapDevice]:
    from simtcp.backends import tap
    from simtcp.backends.tapsetup import add_kernel_address6

    netns0 = args.netns
    netns1 = args.netns1 or args.netns
    for namespace in dict.fromkeys(ns for ns in (netns0, netns1) if ns):
        if tap.ensure_namespace(namespace):
            resources.namespaces.append(namespace)
    offload = not args.no_offload
    devices0 = tap.TapDevice.create_queues(
        args.tap0,
        args.queues,
        interface="veth0",
        namespace=netns0,
        kernel_address=KERNEL_ADDRESS0,
        offload=offload,
        owner=owner,
    )
    resources.devices += devices0  # removed by teardown even if the second one fails
    add_kernel_address6(args.tap0, netns0, KERNEL_ADDRESS6_0)
    devices1 = tap.TapDevice.create_queues(
        args.tap1,
        args.queues,
        interface="veth1",
        namespace=netns1,
        offload=offload and not args.no_offload1,
        owner=owner,
    )
    del resources.devices[-len(devices0) :]
    return devices0 + devices1  # with --queues N: tap0's N queues, then tap1's


def _import_the_stack() -> None:
    """Import every module of the stack and its backends while we can still read them.

    After the drop the process may no longer read its own checkout (a clone under a
    0700 directory, say), so a module imported late, such as the congestion control a
    connection picks by name, would fail in the middle of serving."""
    import simtcp

    for module in pkgutil.walk_packages(simtcp.__path__, "simtcp."):
        if not module.name.startswith("simtcp.programs") and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    for name in ("status", "serve_queues"):  # what a worker of --queues N imports late
        importlib.import_module(f"simtcp.programs.{name}")


def _drop(prog: str, account: Account, *, parent: int | None) -> None:
    from simtcp.backends.privilege import drop_privileges, group_name

    _import_the_stack()
    drop_privileges(account)
    keeper = (
        f"; pid {parent} keeps root only to remove the devices and namespaces at exit"
        if parent is not None
        else ""
    )
    print(
        f"{prog}: frames parsed by pid {os.getpid()} as user {account.name} "
        f"(uid {account.uid}, group {group_name(account.gid)}): no capabilities, "
        f"no_new_privs{keeper}",
        flush=True,
    )


def _fork_and_supervise(
    args: argparse.Namespace,
    prog: str,
    devices: list[TapDevice],
    resources: _Resources,
    account: Account,
) -> int:
    """Fork the unprivileged worker; as root, wait for it, forwarding SIGINT/SIGTERM."""
    from simtcp.backends.tap import forward_signal_in_child

    parent = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    worker = os.fork()
    if worker == 0:
        _worker(args, prog, devices, resources, account, parent)  # never returns

    def forward(number: int, frame: FrameType | None) -> None:
        forward_signal_in_child(parent, number)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, number)

    for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM):
        signal.signal(number, forward)
    _, status = os.waitpid(worker, 0)  # PEP 475: retried after each forwarded signal
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return code
    if -code in (signal.SIGINT, signal.SIGTERM):
        return EXIT_OK
    return _fail(prog, f"worker pid {worker} died of {signal.Signals(-code).name}", EXIT_FAILURE)


def _worker(
    args: argparse.Namespace,
    prog: str,
    devices: list[TapDevice],
    resources: _Resources,
    account: Account,
    parent: int,
) -> None:
    """The child: drop privileges, serve, exit. Never returns into the parent's teardown."""
    code = EXIT_FAILURE

    def interrupted(number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt  # before the loop takes over: stop quietly

    try:
        for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM):
            signal.signal(number, interrupted)
        _drop(prog, account, parent=parent)
        from simtcp.backends.privilege import die_with_parent

        if not die_with_parent(parent, signal.SIGTERM):  # a root parent to clean up, or stop
            raise KeyboardInterrupt
        code = _run(args, prog, devices, resources)
    except KeyboardInterrupt:
        code = EXIT_OK
    except Exception as error:  # one line, never a traceback; the parent cleans up
        detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
        print(f"{prog}: {detail}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            if resources.pcap_file is not None:
                resources.pcap_file.close()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _stack_config(args: argparse.Namespace, link: WorkerLink | None) -> StackConfig:
    """The stack's configuration; a worker of several gets its share of the ephemeral
    ports and, but for the first, announces nothing (:mod:`simtcp.backends.multiqueue`)."""
    config = StackConfig(
        seed=args.seed,
        ip=IpConfig(forwarding=True),
        ip6=Ip6Config(forwarding=True, link_local_on_add=True, router_lifetime=0),
    )
    if link is None or link.count == 1:
        return config
    from dataclasses import replace

    from simtcp.backends.multiqueue import port_slice

    share = (link.index, link.count)
    return replace(
        config,
        arp=ArpConfig(gratuitous_on_add=link.index == 0),
        udp=UdpConfig(ephemeral_ports=port_slice(config.udp.ephemeral_ports, *share)),
        tcp=replace(config.tcp, ephemeral_ports=port_slice(config.tcp.ephemeral_ports, *share)),
    )


def _run(
    args: argparse.Namespace,
    prog: str,
    devices: list[TapDevice],
    resources: _Resources,
    link: WorkerLink | None = None,
) -> int:
    """Build the stack over ``devices`` and serve until a signal; the stop line (a worker
    of several reports to its supervisor instead: ``link``)."""
    from simtcp.backends import tap

    device0, device1 = devices
    netns0 = None if args.attach else args.netns
    netns1 = None if args.attach else args.netns1 or args.netns
    stack = Stack(_stack_config(args, link))
    now = tap.monotonic_us()
    software = not args.no_gro  # GSO/GRO in software where the TAP has no offloads
    stack.add_interface(
        "veth0",
        mac=tap.stack_mac(args.seed, "veth0"),
        offload=tap.stack_offload(device0, software_segmentation=software),
        now=now,
    )
    stack.add_interface(
        "veth1",
        mac=tap.stack_mac(args.seed, "veth1"),
        offload=tap.stack_offload(device1, software_segmentation=software),
        now=now,
    )
    stack.add_address("veth0", STACK_ADDRESS0, now=now)
    stack.add_address("veth1", STACK_ADDRESS1, now=now)
    stack.add_address("veth0", STACK_ADDRESS6_0, now=now)
    stack.add_address("veth1", STACK_ADDRESS6_1, now=now)
    echo: EchoServer | None = None
    try:
        echo = EchoServer(stack, ECHO_PORT)
    except SimtcpError as error:  # a stack built without TCP still answers ARP and ping
        print(f"{prog}: warning: no TCP echo: {error}", file=sys.stderr, flush=True)

    profile = tap.LinkProfile(loss=args.loss, reorder=args.reorder, duplicate=args.duplicate)

    def on_event(event: Event, when: Instant) -> None:
        if echo is not None:
            echo.handle_event(event, when)

    driven: tap.StackLike = stack
    if link is not None:  # one worker of several: relay ARP replies (backends/multiqueue.py)
        from simtcp.backends.multiqueue import ArpRelayingStack

        driven = ArpRelayingStack(stack, link)
    loop = tap.TapLoop(
        driven,
        [device0, device1],
        on_event=on_event,
        impairment=profile,
        impairment_seed=args.seed,
        pcap=resources.pcap,
        gro=software,
        latency=args.latency,
    )
    if resources.status is not None:
        from simtcp.programs.status import snapshot

        status = resources.status
        loop.watch_readable(
            status.fileno(), lambda now: status.answer(snapshot(stack, loop.counters, now=now))
        )
    if link is not None:
        from .serve_queues import watch_supervisor

        watch_supervisor(link, loop, stack)
    _stop_on_signals(loop)
    try:
        _announce(args, prog, (netns0, netns1), devices, link)
        loop.run()
    except tap.TapError as error:  # after ready: a runtime failure, not a usage error
        print(f"{prog}: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    except KeyboardInterrupt:  # a worker told to stop before its loop took the signals:
        if link is None:  # it still reports (what it counted is zero or close to it)
            raise
    finally:
        loop.close()
    if link is not None:
        accepted, echoed = (echo.accepted, echo.echoed_bytes) if echo else (0, 0)
        final = {"loop": loop.counters, "stats": stack.stats(), "accepted": accepted}
        link.send("final", {**final, "echoed": echoed})
        return EXIT_OK
    _print_stop(prog, loop, stack, echo)
    return EXIT_OK


def _stop_on_signals(loop: TapLoop) -> None:
    """SIGINT/SIGTERM stop ``loop``, also outside :meth:`TapLoop.run`.

    The loop takes the signals while it runs and gives these handlers back when it
    returns: a second Ctrl-C (a terminal signals the parent and us, the parent forwards
    one more) landing just after must not cut the stop line short, and one just before
    ``run`` makes it return at once."""

    def stop_loop(number: int, frame: FrameType | None) -> None:
        loop.stop()

    for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM):
        signal.signal(number, stop_loop)


def _print_stop(prog: str, loop: TapLoop, stack: Stack, echo: EchoServer | None) -> None:
    """The loop's latency line (with ``--latency``) and the stop line."""
    if loop.latency is not None:
        print(f"{prog}: {loop.latency.summary()}", flush=True)
    print(f"{prog}: {_stop_line(loop.counters, stack.stats(), echo)}", flush=True)


def _stop_line(counts: dict[str, int], stats: dict[str, int], echo: EchoServer | None) -> str:
    accepted, echoed = (echo.accepted, echo.echoed_bytes) if echo else (0, 0)
    return stop_text(counts, stats, accepted, echoed)


def _announce(
    args: argparse.Namespace,
    prog: str,
    namespaces: tuple[str | None, str | None],
    devices: list[TapDevice],
    link: WorkerLink | None,
) -> None:
    """The start-up lines and ``ready``; a worker of several only tells its supervisor,
    which prints them once for all."""
    if link is not None:
        link.ready()
        return
    for line in _describe(args, *namespaces, devices):
        print(f"{prog}: {line}", flush=True)
    print(
        f"{prog}: TCP echo on port {ECHO_PORT}; ready (pid {os.getpid()}; Ctrl-C to stop)",
        flush=True,
    )


def stop_text(counts: dict[str, int], stats: dict[str, int], accepted: int, echoed: int) -> str:
    """The stop line's text from the loop's counters, the stack's and the echo server's."""
    cut = stats.get("ip.gso_segmented", 0)
    forwarded = stats.get("ip.gso_forward_segmented", 0)
    return (
        f"stopped: {accepted} connections, {echoed} bytes echoed, "
        f"{counts['frames_in']} frames in ({counts['gso_in']} GSO), {counts['frames_out']} "
        f"frames out ({counts['gso_out']} GSO), {forwarded} super-segments cut for "
        f"forwarding, {cut - forwarded} cut from our own output, "
        f"{stats.get('drop.total', 0)} dropped by the stack, "
        f"{counts['gro_merged']} runs merged by software GRO"
    )


def _describe(
    args: argparse.Namespace, netns0: str | None, netns1: str | None, devices: list[TapDevice]
) -> Iterator[str]:
    from simtcp.backends.tap import stack_mac

    where0 = f" (netns {netns0})" if netns0 else ""
    where1 = f" (netns {netns1})" if netns1 else ""
    if args.attach:  # the kernel side is as its owner configured it (README: 10.0.0.2/24)
        where0 = where1 = " (attached)"
    kernel0 = "" if args.attach else f" {KERNEL_ADDRESS0}"
    kernel6 = "" if args.attach else f" {KERNEL_ADDRESS6_0}"
    yield (
        f"veth0 {STACK_ADDRESS0} mac {stack_mac(args.seed, 'veth0')} <-> "
        f"{args.tap0}{kernel0}{where0}; IPv6 {STACK_ADDRESS6_0} <->{kernel6 or ' (as set up)'}"
    )
    yield (
        f"veth1 {STACK_ADDRESS1} mac {stack_mac(args.seed, 'veth1')} <-> {args.tap1}{where1}; "
        f"IPv6 {STACK_ADDRESS6_1}"
    )
    if args.loss or args.reorder or args.duplicate:
        yield (
            f"impairing both directions: loss {args.loss} reorder {args.reorder} "
            f"duplicate {args.duplicate} seed {args.seed}"
        )
    if args.pcap:
        yield f"recording frames to {args.pcap}"
    if args.no_offload:
        yield (
            "offloads off (--no-offload): one frame per wire frame; "
            + (
                "no software GRO/GSO (--no-gro)"
                if args.no_gro
                else "software GRO merges runs of frames, software GSO cuts 64 KiB segments"
            )
        )
        return
    for device in devices:
        if device.vnet_header:
            yield (
                f"{device.name}: offloads on: checksum offload and TCP segments up to "
                "64 KiB (TSO/GSO)"
            )
        elif device.offload_note:
            yield f"{device.name}: offloads off: the kernel refused them ({device.offload_note})"
        else:
            yield f"{device.name}: offloads off (--no-offload1)"


def _teardown(resources: _Resources) -> None:
    """Remove what we created, newest first; never raise (we are on the way out)."""
    from simtcp.backends.tap import remove_namespace

    for device in reversed(resources.devices):
        with contextlib.suppress(Exception):
            device.close()
    for namespace in resources.namespaces:
        remove_namespace(namespace)
    if resources.pcap_file is not None:
        with contextlib.suppress(OSError):
            resources.pcap_file.close()
    if resources.status is not None:
        resources.status.close()


__all__ = ["build_parser", "main"]
