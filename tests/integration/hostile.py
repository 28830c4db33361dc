"""Hostile input for the server, sent with scapy over a packet socket from inside the namespace.

Opens a live connection to the echo port first, then sends truncated and bogus
headers, bad checksums, random bytes, a SYN flood from random sources and blind
RSTs (and blind data) at the live connection, then checks the live connection
still echoes. Prints one JSON line; exits 0 when the live connection survived.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import sys
import time


def build_garbage(mac: str, rng: random.Random) -> list[bytes]:
    from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw

    ether = Ether(dst=mac, src="02:00:00:00:00:02")
    base = ether / IP(src="10.0.0.2", dst="10.0.0.1")
    good_syn = bytes(base / TCP(sport=40000, dport=80, flags="S", seq=1))
    frames: list[bytes] = [
        bytes(ether)[:10],  # shorter than Ethernet
        bytes(Ether(dst=mac, type=0x0800)),  # IPv4 type, no header
        good_syn[:20],  # IPv4 header cut short
        good_syn[:40],  # TCP header cut short
        bytes(base / TCP(sport=40001, dport=80, flags="S", chksum=0xBAD)),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", chksum=0x1234) / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", ihl=15) / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", ihl=2) / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", version=6) / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", len=1400) / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", len=10) / ICMP()),
        bytes(base / TCP(sport=40002, dport=80, dataofs=2, flags="S")),
        bytes(base / TCP(sport=40003, dport=80, dataofs=15, flags="S")),
        bytes(base / TCP(sport=40004, dport=80, flags="SF")),  # SYN+FIN
        bytes(base / TCP(sport=40005, dport=80, flags="FPU", seq=5)),  # a "Christmas" probe
        bytes(
            base
            / TCP(
                sport=40006,
                dport=80,
                flags="S",
                options=[("MSS", 0), ("WScale", 200), ("SAckOK", b"")],
            )
        ),
        bytes(base / TCP(sport=40007, dport=80, flags="S", options=[(254, b"\x00" * 30)])),
        bytes(base / UDP(sport=1, dport=9, len=3) / Raw(b"abc")),
        bytes(base / ICMP(type=8) / Raw(b"x" * 20))[:40],  # ICMP cut short
        bytes(base / ICMP(type=3, code=4) / Raw(b"\x45" + b"\x00" * 10)),
        bytes(ether / ARP(op=2, psrc="10.0.0.1", hwsrc="02:66:66:66:66:66")),  # claims us
        bytes(ether / ARP(op=1))[:30],
        bytes(ether / IP(src="10.0.0.1", dst="10.0.0.1") / ICMP()),  # our own address
        bytes(ether / IP(src="255.255.255.255", dst="10.0.0.1") / ICMP()),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", flags="MF", frag=100) / Raw(b"x" * 64)),
        bytes(ether / IP(src="10.0.0.2", dst="10.0.0.1", ttl=0) / ICMP()),
    ]
    for _ in range(300):
        frames.append(bytes(ether)[:14] + rng.randbytes(rng.randrange(0, 200)))
        damaged = bytearray(good_syn)
        damaged[rng.randrange(14, len(damaged))] ^= 1 << rng.randrange(8)
        frames.append(bytes(damaged))
    return frames


def build_syn_flood(mac: str, rng: random.Random, count: int) -> list[bytes]:
    from scapy.all import IP, TCP, Ether

    frames = []
    for index in range(count):
        if index % 2:
            source = f"10.0.0.{rng.randrange(3, 255)}"
        else:
            source = ".".join(str(rng.randrange(1, 224)) for _ in range(4))
        frames.append(
            bytes(
                Ether(dst=mac, src="02:00:00:00:00:02")
                / IP(src=source, dst="10.0.0.1")
                / TCP(
                    sport=rng.randrange(1024, 65536), dport=80, flags="S", seq=rng.getrandbits(32)
                )
            )
        )
    return frames


def build_blind(mac: str, rng: random.Random, local_port: int, count: int) -> list[bytes]:
    from scapy.all import IP, TCP, Ether, Raw

    base = Ether(dst=mac) / IP(src="10.0.0.2", dst="10.0.0.1")
    frames = []
    for _ in range(count):
        frames.append(
            bytes(base / TCP(sport=local_port, dport=80, flags="R", seq=rng.getrandbits(32)))
        )
        frames.append(
            bytes(
                base
                / TCP(
                    sport=local_port,
                    dport=80,
                    flags="RA",
                    seq=rng.getrandbits(32),
                    ack=rng.getrandbits(32),
                )
            )
        )
        frames.append(
            bytes(base / TCP(sport=local_port, dport=80, flags="S", seq=rng.getrandbits(32)))
        )
        frames.append(
            bytes(
                base
                / TCP(
                    sport=local_port,
                    dport=80,
                    flags="PA",
                    seq=rng.getrandbits(32),
                    ack=rng.getrandbits(32),
                )
                / Raw(b"INJECTED")
            )
        )
    return frames


def send_frames(iface: str, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
        raw.bind((iface, 0))
        for frame in frames:
            try:
                raw.send(frame)
            except OSError:
                time.sleep(0.001)  # the TAP's queue is full: let the server catch up


def echo_line(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    received = b""
    while len(received) < len(line):
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", required=True)
    parser.add_argument("--mac", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flood", type=int, default=2000)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    live = socket.create_connection(("10.0.0.1", 80), timeout=10)
    report: dict[str, object] = {"before": echo_line(live, b"before\n").decode(errors="replace")}
    local_port = live.getsockname()[1]
    garbage = build_garbage(args.mac, rng)
    flood = build_syn_flood(args.mac, rng, args.flood)
    blind = build_blind(args.mac, rng, local_port, 100)
    send_frames(args.iface, garbage)
    send_frames(args.iface, flood)
    send_frames(args.iface, blind)
    report["frames_sent"] = len(garbage) + len(flood) + len(blind)
    time.sleep(0.5)
    try:
        report["after"] = echo_line(live, b"after\n").decode(errors="replace")
    except OSError as error:
        report["after"] = f"error: {error}"
    live.close()
    print(json.dumps(report), flush=True)
    return 0 if report["before"] == "before\n" and report["after"] == "after\n" else 1


if __name__ == "__main__":
    sys.exit(main())
