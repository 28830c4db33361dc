"""Kernel TCP peers for the integration tests, run inside a namespace with ``ip netns exec``.

``clients``: N concurrent connections, each sends B seeded random bytes, reads
the echo until the server's FIN and compares; prints one JSON line and exits 0
only when every connection got its bytes back intact.
``serve``: a threaded kernel echo server; prints ``listening`` when it is.
``short``: many short request/response connections, ``--workers`` at a time,
the server closing first (read to EOF) or the client (``--client-closes``:
close after the response); prints one JSON line with the seconds each block
of ``--block`` connections took, and exits 0 only if every exchange worked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import socket
import sys
import threading
import time


def _payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _echo_once(host: str, port: int, data: bytes, timeout: float) -> dict[str, object]:
    result: dict[str, object] = {"ok": False}
    started = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        result["error"] = f"connect: {error}"
        return result
    errors: list[str] = []

    def send_all() -> None:
        try:
            view = memoryview(data)
            for offset in range(0, len(view), 65536):
                sock.sendall(view[offset : offset + 65536])
            sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            errors.append(f"send: {error}")

    sender = threading.Thread(target=send_all, daemon=True)
    sender.start()
    received = bytearray()
    try:
        while True:
            chunk = sock.recv(262144)
            if not chunk:
                break
            received += chunk
    except OSError as error:
        errors.append(f"recv after {len(received)} bytes: {error}")
    sender.join(timeout)
    sock.close()
    result["seconds"] = time.monotonic() - started
    result["received"] = len(received)
    intact = hashlib.sha256(received).digest() == hashlib.sha256(data).digest()
    result["ok"] = intact and not errors
    if errors:
        result["error"] = "; ".join(errors)
    elif not intact:
        pairs = enumerate(zip(received, data, strict=False))
        first = next((i for i, (a, b) in pairs if a != b), None)
        result["error"] = f"echo differs: {len(received)} of {len(data)} bytes, first diff {first}"
    return result


def run_clients(args: argparse.Namespace) -> int:
    results: list[dict[str, object]] = [{} for _ in range(args.count)]

    def worker(index: int) -> None:
        data = _payload(args.seed + index, args.bytes)
        results[index] = _echo_once(args.host, args.port, data, args.timeout)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(args.count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(args.timeout * 2)
    elapsed = time.monotonic() - started
    ok = sum(1 for result in results if result.get("ok"))
    summary = {
        "ok": ok,
        "count": args.count,
        "bytes": args.bytes,
        "seconds": elapsed,
        "failures": [r for r in results if not r.get("ok")][:4],
    }
    print(json.dumps(summary), flush=True)
    return 0 if ok == args.count else 1


def run_server(args: argparse.Namespace) -> int:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(64)
    print("listening", flush=True)

    def serve(conn: socket.socket) -> None:
        with conn:
            while True:
                chunk = conn.recv(262144)
                if not chunk:
                    break
                conn.sendall(chunk)

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def _short_exchange(host: str, port: int, request: bytes, size: int, client_closes: bool) -> str:
    """One connection: send ``request``, read ``size`` bytes; '' when it worked."""
    try:
        with socket.create_connection((host, port), timeout=20) as sock:
            sock.sendall(request)
            received = bytearray()
            while len(received) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            if not client_closes and sock.recv(1):
                return "data after the response"
            if len(received) != size:
                return f"short response: {len(received)} of {size}"
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    return ""


def run_short(args: argparse.Namespace) -> int:
    request = b"GET / HTTP/1.0\r\n\r\n"
    lock = threading.Lock()
    next_index = [0]
    block_ends: list[float] = []
    failures: list[str] = []
    started = time.monotonic()

    def worker() -> None:
        while True:
            with lock:
                index = next_index[0]
                if index >= args.count:
                    return
                next_index[0] += 1
            error = _short_exchange(args.host, args.port, request, args.bytes, args.client_closes)
            with lock:
                if error:
                    failures.append(error)
                done = index + 1
                if done % args.block == 0:
                    block_ends.append(time.monotonic() - started)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    block_ends.sort()
    blocks = [b - a for a, b in zip([0.0, *block_ends], block_ends, strict=False)]
    summary = {
        "count": args.count,
        "failed": len(failures),
        "seconds": time.monotonic() - started,
        "block_seconds": blocks,
        "failures": failures[:4],
    }
    print(json.dumps(summary), flush=True)
    return 0 if not failures else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    commands = parser.add_subparsers(dest="command", required=True)
    clients = commands.add_parser("clients")
    clients.add_argument("--host", required=True)
    clients.add_argument("--port", type=int, default=80)
    clients.add_argument("--count", type=int, default=1)
    clients.add_argument("--bytes", type=int, default=1024)
    clients.add_argument("--seed", type=int, default=1)
    clients.add_argument("--timeout", type=float, default=60.0)
    server = commands.add_parser("serve")
    server.add_argument("--host", default="0.0.0.0")
    server.add_argument("--port", type=int, default=7)
    short = commands.add_parser("short")
    short.add_argument("--host", required=True)
    short.add_argument("--port", type=int, default=80)
    short.add_argument("--count", type=int, default=1000)
    short.add_argument("--workers", type=int, default=4)
    short.add_argument("--bytes", type=int, default=256, help="response size")
    short.add_argument("--block", type=int, default=1000)
    short.add_argument("--client-closes", action="store_true")
    args = parser.parse_args()
    if args.command == "short":
        return run_short(args)
    return run_clients(args) if args.command == "clients" else run_server(args)


if __name__ == "__main__":
    sys.exit(main())
