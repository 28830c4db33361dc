"""Inject ICMPv6 echo requests from an address the kernel does not own, and watch the answers.

Run inside a test namespace (root): ``ipv6_tool.py IFACE STACK_MAC SOURCE DESTINATION SIZE``.
Sends an echo request of SIZE data bytes from SOURCE to DESTINATION on IFACE (an
AF_PACKET socket, frames built with scapy), waits, sends a second one, and
prints one JSON line: every IPv6 frame that came from STACK_MAC meanwhile, as
[length, next header]. The test uses it to make simtcp send a reply that the
kernel must forward onto a narrower link (and so answer with packet too big).
"""

from __future__ import annotations

import json
import socket
import sys
import time

from scapy.compat import raw
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

ETH_P_ALL = 0x0003
WAIT_S = 1.5
LISTEN_S = 2.0


def main() -> int:
    interface, stack_mac, source, destination, size = sys.argv[1:6]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.settimeout(0.05)
    own_mac = sock.getsockname()[4].hex(":")
    seen: list[tuple[int, int]] = []
    for sequence in (1, 2):
        frame = (
            Ether(src=own_mac, dst=stack_mac)
            / IPv6(src=source, dst=destination)
            / ICMPv6EchoRequest(id=0x66, seq=sequence, data=bytes(int(size)))
        )
        sock.send(raw(frame))
        deadline = time.monotonic() + (WAIT_S if sequence == 1 else LISTEN_S)
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            if data[6:12].hex(":") == stack_mac and data[12:14] == b"\x86\xdd":
                seen.append((len(data), data[20]))
    print(json.dumps({"sequence_boundary": WAIT_S, "frames": seen}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
