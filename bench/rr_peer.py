#!/usr/bin/env python3
"""Kernel TCP peers for request/response benchmarks, run in a namespace with ``ip netns exec``.

``client``: ``--connections N`` connections, each with one ``--size``-byte request
outstanding at a time (send it, read the whole echo back, send the next), all
driven by one thread on epoll, for ``--seconds`` after a short warm-up. Prints
one JSON line: transactions, seconds, transactions per second, and the
request-to-response time p50/p99 in microseconds. Exits 1 if an echo differs.

``serve``: a single-threaded epoll echo server (kernel sockets), the baseline
simtcp's echo is compared with; prints ``listening`` when it is.

TCP_NODELAY on every socket: one request is one segment, as in netperf's TCP_RR.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import sys
import time


def _connect(host: str, port: int) -> socket.socket:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


class _Transactions:
    """What the client measured: transactions after the warm-up, their times, bad echoes."""

    def __init__(self) -> None:
        self.started_ns = 0
        self.ended_ns = 0
        self.done = 0
        self.rtts: list[int] = []
        self.bad = 0

    def at(self, fraction: float) -> float:
        rtts = sorted(self.rtts)
        return rtts[min(len(rtts) - 1, int(fraction * len(rtts)))] / 1000 if rtts else 0.0


def _drive(args: argparse.Namespace, request: bytes, socks: list[socket.socket]) -> _Transactions:
    """One request outstanding per socket until ``--seconds`` past the warm-up."""
    epoll = select.epoll()
    by_fd = {sock.fileno(): sock for sock in socks}
    pending = {fd: bytearray() for fd in by_fd}
    sent_at = dict.fromkeys(by_fd, time.monotonic_ns())
    for fd, sock in by_fd.items():
        epoll.register(fd, select.EPOLLIN)
        sock.send(request)
    warm_until = time.monotonic_ns() + int(args.warmup * 1e9)
    end_at = warm_until + int(args.seconds * 1e9)
    result = _Transactions()
    now = time.monotonic_ns()
    while now < end_at:
        for fd, _event in epoll.poll(1.0):
            chunk = by_fd[fd].recv(65536)
            if not chunk:
                raise ConnectionError("server closed")
            buffer = pending[fd]
            buffer += chunk
            if len(buffer) < len(request):
                continue
            now = time.monotonic_ns()
            result.bad += buffer != request
            buffer.clear()
            if now >= warm_until:
                result.started_ns = result.started_ns or now
                result.done += 1
                result.rtts.append(now - sent_at[fd])
            sent_at[fd] = now
            by_fd[fd].send(request)
        now = time.monotonic_ns()
    result.ended_ns = now
    return result


def run_client(args: argparse.Namespace) -> int:
    request = (bytes(range(256)) * (args.size // 256 + 1))[: args.size]
    socks = [_connect(args.host, args.port) for _ in range(args.connections)]
    try:
        result = _drive(args, request, socks)
    except ConnectionError as error:
        print(json.dumps({"ok": False, "error": str(error)}))
        return 1
    finally:
        for sock in socks:
            sock.close()
    seconds = (result.ended_ns - result.started_ns) / 1e9 if result.started_ns else 0.0
    ok = result.bad == 0 and result.done > 0
    print(
        json.dumps(
            {
                "ok": ok,
                "transactions": result.done,
                "seconds": seconds,
                "tps": result.done / seconds if seconds else 0.0,
                "rtt_p50_us": result.at(0.5),
                "rtt_p99_us": result.at(0.99),
                "bad": result.bad,
            }
        )
    )
    return 0 if ok else 1


def run_server(args: argparse.Namespace) -> int:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(128)
    listener.setblocking(False)
    epoll = select.epoll()
    epoll.register(listener.fileno(), select.EPOLLIN)
    clients: dict[int, socket.socket] = {}
    print("listening", flush=True)
    while True:
        for fd, _event in epoll.poll():
            if fd == listener.fileno():
                with_peer = listener.accept()[0]
                with_peer.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with_peer.setblocking(False)
                clients[with_peer.fileno()] = with_peer
                epoll.register(with_peer.fileno(), select.EPOLLIN)
                continue
            sock = clients[fd]
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                epoll.unregister(fd)
                del clients[fd]
                sock.close()
                continue
            sock.setblocking(True)  # echoes are small: never more than the send buffer
            sock.sendall(data)
            sock.setblocking(False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    client = sub.add_parser("client")
    client.add_argument("--host", required=True)
    client.add_argument("--port", type=int, required=True)
    client.add_argument("--connections", type=int, default=1)
    client.add_argument("--size", type=int, default=64)
    client.add_argument("--seconds", type=float, default=3.0)
    client.add_argument("--warmup", type=float, default=0.3)
    server = sub.add_parser("serve")
    server.add_argument("--host", required=True)
    server.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    return run_client(args) if args.command == "client" else run_server(args)


if __name__ == "__main__":
    sys.exit(main())
