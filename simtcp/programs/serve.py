"""The seed's program over real TAPs: `simtcp serve` and ``echo_reply_server.py``.

The topology of teeceepee2 (DESIGN.md "The programs' contract")::

                    +--------------------+
                    |simtcp:             |
    tap-veth0 ------|- veth0      veth1 -|----- tap-veth1
    10.0.0.2/24     | 10.0.0.1  10.1.1.1 |      (no address)
                    +--------------------+

The stack answers ARP and ICMP echo on both addresses, forwards IPv4 between
its two interfaces (a router: TTL, ICMP time exceeded) and serves TCP echo on
port 80. User errors (no root, no /dev/net/tun, a taken name, a bad option)
print one line and exit 2; SIGINT/SIGTERM remove the devices and exit 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, BinaryIO

from ..apps import EchoServer
from ..config import IpConfig, StackConfig
from ..errors import SimtcpError
from ..events import Event
from ..stack import Stack
from ..time import Instant
from ..wire.pcap import PcapWriter
from .cliargs import OneLineParser, probability

if TYPE_CHECKING:
    from simtcp.backends.tap import TapDevice

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

STACK_ADDRESS0 = "10.0.0.1/24"
STACK_ADDRESS1 = "10.1.1.1/24"
KERNEL_ADDRESS0 = "10.0.0.2/24"
ECHO_PORT = 80


def _device_name(text: str) -> str:
    if not text or len(text.encode()) > 15 or "/" in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not a device name: {text!r} (1..15 characters)")
    return text


def _namespace_name(text: str) -> str:
    if not text or "/" in text or text in (".", "..") or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"not a namespace name: {text!r}")
    return text


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``echo_reply_server.py`` and ``simtcp serve``."""
    parser = OneLineParser(
        prog=prog,
        description="Serve the teeceepee2 topology over real TAP devices: the stack at "
        "10.0.0.1/24 (veth0 <-> tap-veth0, kernel side 10.0.0.2/24) and 10.1.1.1/24 "
        "(veth1 <-> tap-veth1), answering ARP and ping, routing between the two, and "
        "echoing TCP on port 80. Needs root. Stop with Ctrl-C.",
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
        default="tap-veth0",
        help="name of the first TAP device (default: %(default)s)",
    )
    parser.add_argument(
        "--tap1",
        metavar="NAME",
        type=_device_name,
        default="tap-veth1",
        help="name of the second TAP device (default: %(default)s)",
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
        "--pcap", metavar="FILE", help="record every frame the stack receives and sends"
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


def _fail(prog: str, message: str, code: int = EXIT_USAGE) -> int:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None, *, prog: str | None = None) -> int:
    """Run the server; returns the exit code (0 after SIGINT/SIGTERM, 2 on user errors)."""
    parser = build_parser(prog or "simtcp serve")
    args = parser.parse_args(argv)
    name = parser.prog
    if args.tap0 == args.tap1 and (args.netns1 or args.netns) == args.netns:
        return _fail(name, f"--tap0 and --tap1 are both {args.tap0!r}; pick two names")
    from simtcp.backends import tap

    missing = tap.missing_requirement()
    if missing is not None:
        return _fail(name, missing)
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
        return _serve(args, name, resources)
    except KeyboardInterrupt:
        return EXIT_OK  # a signal during setup: tear down what exists and leave quietly
    except tap.TapError as error:
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


def _serve(args: argparse.Namespace, prog: str, resources: _Resources) -> int:
    from simtcp.backends import tap

    netns0 = args.netns
    netns1 = args.netns1 or args.netns
    pcap = None
    if args.pcap:
        resources.pcap_file = open(args.pcap, "wb")  # noqa: SIM115 - closed in teardown
        pcap = PcapWriter(resources.pcap_file)
    for namespace in dict.fromkeys(ns for ns in (netns0, netns1) if ns):
        if tap.ensure_namespace(namespace):
            resources.namespaces.append(namespace)
    offload = not args.no_offload
    device0 = tap.TapDevice.create(
        args.tap0,
        interface="veth0",
        namespace=netns0,
        kernel_address=KERNEL_ADDRESS0,
        offload=offload,
    )
    resources.devices.append(device0)
    device1 = tap.TapDevice.create(
        args.tap1, interface="veth1", namespace=netns1, offload=offload and not args.no_offload1
    )
    resources.devices.append(device1)

    stack = Stack(StackConfig(seed=args.seed, ip=IpConfig(forwarding=True)))
    now = tap.monotonic_us()
    software = not args.no_gro  # GSO/GRO in software where the TAP has no offloads
    stack.add_interface(
        "veth0",
        mac=tap.stack_mac(args.seed, "veth0"),
        offload=tap.stack_offload(device0, software_segmentation=software),
    )
    stack.add_interface(
        "veth1",
        mac=tap.stack_mac(args.seed, "veth1"),
        offload=tap.stack_offload(device1, software_segmentation=software),
    )
    stack.add_address("veth0", STACK_ADDRESS0, now=now)
    stack.add_address("veth1", STACK_ADDRESS1, now=now)
    echo: EchoServer | None = None
    try:
        echo = EchoServer(stack, ECHO_PORT)
    except SimtcpError as error:  # a stack built without TCP still answers ARP and ping
        print(f"{prog}: warning: no TCP echo: {error}", file=sys.stderr, flush=True)

    profile = tap.LinkProfile(loss=args.loss, reorder=args.reorder, duplicate=args.duplicate)

    def on_event(event: Event, when: Instant) -> None:
        if echo is not None:
            echo.handle_event(event, when)

    loop = tap.TapLoop(
        stack,
        [device0, device1],
        on_event=on_event,
        impairment=profile,
        impairment_seed=args.seed,
        pcap=pcap,
        gro=software,
    )
    try:
        for line in _describe(args, netns0, netns1, [device0, device1]):
            print(f"{prog}: {line}", flush=True)
        print(
            f"{prog}: TCP echo on port {ECHO_PORT}; ready (pid {os.getpid()}; Ctrl-C to stop)",
            flush=True,
        )
        loop.run()
    except tap.TapError as error:  # after ready: a runtime failure, not a usage error
        print(f"{prog}: {error}", file=sys.stderr, flush=True)
        return EXIT_FAILURE
    finally:
        loop.close()
    counts = loop.counters
    accepted, echoed = (echo.accepted, echo.echoed_bytes) if echo else (0, 0)
    print(
        f"{prog}: stopped: {accepted} connections, {echoed} bytes echoed, "
        f"{counts['frames_in']} frames in ({counts['gso_in']} GSO), {counts['frames_out']} "
        f"frames out ({counts['gso_out']} GSO), {stack.stats().get('ip.gso_segmented', 0)} "
        "super-segments cut for forwarding, "
        f"{stack.stats().get('drop.total', 0)} dropped by the stack, "
        f"{counts['gro_merged']} runs merged by software GRO",
        flush=True,
    )
    return EXIT_OK


def _describe(
    args: argparse.Namespace, netns0: str | None, netns1: str | None, devices: list[TapDevice]
) -> Iterator[str]:
    from simtcp.backends.tap import stack_mac

    where0 = f" (netns {netns0})" if netns0 else ""
    where1 = f" (netns {netns1})" if netns1 else ""
    yield (
        f"veth0 {STACK_ADDRESS0} mac {stack_mac(args.seed, 'veth0')} <-> "
        f"{args.tap0} {KERNEL_ADDRESS0}{where0}"
    )
    yield f"veth1 {STACK_ADDRESS1} mac {stack_mac(args.seed, 'veth1')} <-> {args.tap1}{where1}"
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


__all__ = ["build_parser", "main"]
