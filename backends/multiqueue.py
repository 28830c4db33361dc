"""Multi-queue TAP serving: one worker process per queue, each with its own Stack.

Theory of operation
-------------------

A TAP opened with ``IFF_MULTI_QUEUE`` has N file descriptors, one per queue
(:meth:`simtcp.backends.tapdevice.TapDevice.create_queues`). What the kernel
sends into the device (our input) goes to one queue chosen per packet by the
tun driver's ``tun_select_queue``: with no steering eBPF program, its
``tun_automq_select_queue`` takes the packet's *symmetric* flow hash
(``__skb_get_hash_symmetric``: addresses and ports, the same both ways) and
looks it up in the device's flow table; a hit gives the queue recorded
there, a miss gives ``reciprocal_scale(hash, N)``. The table is filled by
what *we* write: ``tun_get_user`` records, for each frame written on queue q,
its flow hash -> q (``tun_flow_update``), and entries age out after 3 s
without a write (``TUN_FLOW_EXPIRE``). So a flow's frames reach the queue that
last answered it, and, idle, the queue its hash picks. XPS plays no part:
the driver's ``ndo_select_queue`` overrides it.

One worker process per queue (:class:`Supervisor`) reads and writes only its
own queue of every device (queue i of tap0 *and* queue i of tap1, so what it
forwards leaves on its own queue), and runs its own :class:`simtcp.Stack`
with the same addresses, MACs and listeners. The core is per-connection, so
a worker owns exactly the connections whose frames reach its queue:

- a connection the kernel opens (a SYN in) lands where its hash says, and
  the worker's answers pin it there: it stays on one worker for its life;
- a connection a worker opens pins its flow to that worker with the SYN it
  writes; the kernel's answers follow the flow table while the flow is busy.

Shared state, and what each worker does about it:

- **ARP / neighbours.** Every worker answers ARP requests for the stack's
  addresses, identically (same seed, same MACs: the replies are idempotent,
  the kernel cannot tell which worker sent one), and keeps its own neighbour
  cache. Resolving is where the queues get in the way: ARP frames carry no
  addresses the flow dissector hashes, so they all share one flow hash, and
  the kernel answers a request *inside* the write that delivers it, before
  ``tun_get_user`` updates the flow table: the reply goes to the queue that
  wrote the previous ARP frame, often another worker (seen: a 1 s stall,
  until the retry). So every worker relays each ARP *reply* it reads to all
  the others (:class:`ArpRelayingStack`, over a mesh of Unix datagram
  sockets made before the fork); a reply names our address as its target,
  so every worker's cache takes it (RFC 826's merge) and the one that asked
  sends what it queued. Requests are not relayed: each would be answered N
  times. Only worker 0 sends the gratuitous ARP at start.
- **IPv6 neighbours** have the same problem: our neighbor solicitation goes
  to a solicited-node multicast address, the kernel's advertisement comes
  back unicast between two other addresses, so a different flow hash, and is
  again computed inside our write. Every worker relays each *solicited*
  neighbor advertisement (ICMPv6 type 136 with the S flag, RFC 4861 §4.4) it
  reads, over the same mesh; the worker whose cache entry is INCOMPLETE
  takes it (§7.2.5) and sends what it queued, the others have no entry and
  discard it as §7.2.5 says. Solicitations and unsolicited advertisements
  are not relayed: each worker answers the NS it reads, as with ARP requests.
- **Listeners.** Every worker listens on every port the program serves.
- **ICMP echo** is answered by whichever worker receives it.
- **Ephemeral ports** are partitioned (:func:`port_slice`): each worker
  draws its active opens' and UDP sockets' local ports from its own slice,
  so two workers never pick the same 4-tuple.
- **ISN and SYN-cookie secrets** come from the seed (RFC 6528 §3's keyed
  hash; RFC 4987 §3.6's cookie), and every worker has the same seed: a cookie
  one worker issued validates in another should the kernel move the flow.
  CLOCK_MONOTONIC is system-wide, so their ISN clocks agree too.
- **IP identification** counters are per worker and start at the same
  seed-derived value. RFC 6864 §4.1 asks for unique IDs only in datagrams
  that may be fragmented; TCP's carry DF. Two workers fragmenting datagrams
  (large UDP, ICMP) for one destination inside its reassembly timeout could
  repeat an ID: a known limit, noted in ARCHITECTURE.md.
- **Stats** are each worker's own; the supervisor sums them
  (:func:`aggregate`) for the stop line and for a status request, which it
  forwards to every worker and answers with the merged snapshot.
- **Shutdown.** SIGINT/SIGTERM to the supervisor is forwarded to every
  worker; it waits for all of them, and its caller removes the devices.
  A worker that exits on its own (a crash) is reported in one line, the
  others are stopped, and :meth:`Supervisor.run` returns 1.

Why ``os.fork`` (multiprocessing's fork start method, by hand) and not spawn:
the queues' fds are opened by the privileged parent, and each worker drops
to an unprivileged user *after* it has them; a forked child inherits them as
they are, where spawn would have to pass them over a socket (SCM_RIGHTS) and
re-import the whole program in each child (about 100 ms each). The parent is
single-threaded when it forks (pyroute2's sockets are closed), which is what
makes fork safe, and waiting on ``pidfd``\\ s of our own children needs no
SIGCHLD handler and no multiprocessing machinery (its atexit hooks would run
in children that leave with ``os._exit``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from types import FrameType
from typing import Any

from simtcp.time import Instant

from .tap import StackLike
from .tapdevice import MAX_QUEUES
from .tapsetup import forward_signal_in_child

STOP_GRACE_S = 10.0
"""How long stopping workers get before they are killed."""

WorkerBody = Callable[["WorkerLink"], int]


def parse_queues(text: str) -> int:
    """The ``--queues`` value: a whole number 1..MAX_QUEUES, or ValueError with one line
    (argparse puts ``argument --queues:`` in front)."""
    try:
        count = int(text.strip(), 10)
    except ValueError:
        raise ValueError(f"not a number of queues: {text!r} (1..{MAX_QUEUES})") from None
    if not 1 <= count <= MAX_QUEUES:
        raise ValueError(f"{count} queues: a TAP takes 1..{MAX_QUEUES}")
    return count


def port_slice(ports: tuple[int, int], index: int, count: int) -> tuple[int, int]:
    """Worker ``index`` of ``count``'s share of the ephemeral range ``ports`` (inclusive).

    The shares are disjoint, contiguous, in order, and together cover the whole
    range, their sizes differing by at most one: no two workers can choose the
    same local port, so no two can make the same 4-tuple.
    """
    low, high = ports
    size = high - low + 1
    if not 0 <= index < count or count > size:
        raise ValueError(f"cannot give worker {index} of {count} a share of {low}..{high}")
    return low + index * size // count, low + (index + 1) * size // count - 1


def aggregate(reports: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """Counters summed over workers, key by key (a key missing in one counts 0 there)."""
    total: dict[str, int] = {}
    for report in reports:
        for name, value in report.items():
            total[name] = total.get(name, 0) + value
    return total


# --- the worker's end -----------------------------------------------------------------


class WorkerLink:
    """A worker's two pipes to the supervisor (JSON lines up, status requests down) and its
    end of the ARP and NA relay mesh."""

    def __init__(
        self,
        index: int,
        count: int,
        report_fd: int,
        control_fd: int,
        relay_fd: int = -1,
        peer_fds: tuple[int, ...] = (),
    ) -> None:
        self.index = index
        """Which queue this worker serves (0..count-1)."""
        self.count = count
        self.report_fd = report_fd
        self.control_fd = control_fd
        """Readable when the supervisor wants a status snapshot (watch it in the loop)."""
        self.relay_fd = relay_fd
        """Where the other workers' relayed ARP replies and NAs arrive (watch it in the loop)."""
        self.peer_fds = peer_fds
        """One datagram socket to each other worker."""
        self.relayed_out = 0
        self.relay_lost = 0

    def relay(self, interface: str, frame: bytes | memoryview) -> None:
        """Hand one ARP reply or NA to every other worker; a full socket loses it (counted):
        the worker that asked retries as ARP and ND always do."""
        datagram = interface.encode() + b"\0" + bytes(frame)
        for fd in self.peer_fds:
            try:
                os.write(fd, datagram)
            except OSError:
                self.relay_lost += 1
            else:
                self.relayed_out += 1

    def relayed_frames(self) -> list[tuple[str, bytes]]:
        """The relayed ARP replies and NAs waiting, as (interface, frame)."""
        frames: list[tuple[str, bytes]] = []
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while True:
                datagram = os.read(self.relay_fd, 2048)
                name, _, frame = datagram.partition(b"\0")
                frames.append((name.decode(errors="replace"), frame))
        return frames

    def send(self, kind: str, body: Any = None) -> None:
        """One message up: blocks only while the supervisor is slow to read."""
        data = json.dumps({"kind": kind, "body": body}, separators=(",", ":")).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.report_fd, view) :]

    def ready(self) -> None:
        self.send("ready")

    def pending_requests(self) -> int:
        """Status requests waiting (each is one byte); drains them."""
        count = 0
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(self.control_fd, 4096):
                count += len(chunk)
        return count


_ARP = b"\x08\x06"
_ARP_REPLY = b"\x00\x02"
_IPV6 = b"\x86\xdd"
_ICMPV6_NA = b"\x3a"  # next header 58, ICMPv6 (RFC 4443 §1), no extension header
_TYPE_NA = b"\x88"  # 136, neighbor advertisement (RFC 4861 §4.4)
_NA_SOLICITED = 0x40  # the S flag: the answer to a solicitation (RFC 4861 §4.4)


def is_relayed(frame: bytes | memoryview) -> bool:
    """An ARP reply, or a solicited IPv6 neighbor advertisement: the answers another worker
    may be waiting for (the module doc says why)."""
    ethertype = frame[12:14]
    # Ethernet type at 12 (RFC 894), ARP operation at 14 + 6 (RFC 826): 2 is a reply.
    if ethertype == _ARP:
        return frame[20:22] == _ARP_REPLY
    # IPv6 next header at 14 + 6 (RFC 8200 §3), the ICMPv6 type at 14 + 40 and the NA's
    # flags at 14 + 44 (RFC 4861 §4.4); NDP carries no extension header (a walk would
    # cost every frame, and the stack validates the NA itself).
    return (
        ethertype == _IPV6
        and frame[20:21] == _ICMPV6_NA
        and frame[54:55] == _TYPE_NA
        and len(frame) > 58
        and frame[58] & _NA_SOLICITED != 0
    )


class ArpRelayingStack:
    """The stack a worker's loop drives: every ARP reply and solicited neighbor advertisement
    it receives also goes to the other workers (the module doc says why); everything else
    passes straight through."""

    def __init__(self, stack: StackLike, link: WorkerLink) -> None:
        self.stack = stack
        self._link = link

    def receive_frame(
        self,
        interface: str,
        frame: bytes | memoryview,
        *,
        now: Instant,
        checksum_verified: bool = False,
        gso_size: int = 0,
    ) -> None:
        # A first look at the Ethernet type's low byte (0x0806's, 0x86dd's) is cheaper than
        # the slice it replaced: the IPv4 frames that are nearly all of them cost less.
        if len(frame) > 21 and frame[13] in (0x06, 0xDD) and is_relayed(frame):
            self._link.relay(interface, frame)
        self.stack.receive_frame(
            interface, frame, now=now, checksum_verified=checksum_verified, gso_size=gso_size
        )

    def frames_to_send(self, *, now: Instant) -> list[tuple[str, bytes]]:
        return self.stack.frames_to_send(now=now)

    def poll_at(self) -> Instant | None:
        return self.stack.poll_at()

    def handle_timer(self, *, now: Instant) -> None:
        self.stack.handle_timer(now=now)

    def next_event(self) -> Any:
        return self.stack.next_event()

    def is_local_address6(self, address: IPv6Address) -> bool:
        """Passed through: the TAP loop asks it to take the kernel's IPv6 super-segments
        for us whole (TSO6) instead of cutting them first."""
        is_local = getattr(self.stack, "is_local_address6", None)
        return is_local is not None and bool(is_local(address))

    def receive_relayed(self, now: Instant) -> int:
        """Feed the relayed ARP replies and NAs waiting to our stack (not relayed again)."""
        frames = self._link.relayed_frames()
        for interface, frame in frames:
            self.stack.receive_frame(interface, frame, now=now)
        return len(frames)


def _relay_mesh(count: int) -> list[tuple[socket.socket, socket.socket]]:
    """One datagram socket pair per worker: it reads the first, the others write the second."""
    pairs = []
    for _ in range(count):
        inbox, outbox = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        inbox.setblocking(False)
        outbox.setblocking(False)
        pairs.append((inbox, outbox))
    return pairs


# --- the supervisor -------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    pid: int
    pidfd: int
    report_fd: int
    """Our read end of the worker's messages."""
    control_fd: int
    """Our write end of its requests."""
    buffer: bytes = b""
    ready: bool = False
    final: Any = None
    exit_code: int | None = None


@dataclass
class SupervisorResult:
    code: int
    """0: every worker stopped when asked; 1: one failed (``failure`` says how)."""
    finals: list[Any] = field(default_factory=list)
    """What each worker sent as ``final`` (its counters), in worker order."""
    failure: str | None = None


class Supervisor:
    """Forks one worker per queue, forwards signals, notices crashes, merges reports."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.workers: list[_Worker] = []
        self._stopping = False
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._owner = os.getpid()
        self._by_fd: dict[int, tuple[str, _Worker]] = {}
        self._status_fd: int | None = None
        self._status_waiting: dict[int, Any] | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def start(self, body: WorkerBody) -> None:
        """Fork the workers; each runs ``body(link)`` and leaves with its return value.

        Our SIGINT/SIGTERM handlers go in first, so a signal during the forks stops the
        workers already made and forks no more; :meth:`run` puts the old ones back.
        """
        sys.stdout.flush()
        sys.stderr.flush()
        self._previous = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM)
        }
        mesh = _relay_mesh(self.count)
        for index in range(self.count):
            if self._stopping:
                break
            report_read, report_write = os.pipe2(os.O_CLOEXEC)
            control_read, control_write = os.pipe2(os.O_CLOEXEC)
            pid = os.fork()
            if pid == 0:
                os.close(report_read)
                os.close(control_write)
                os.set_blocking(control_read, False)
                for other, (inbox, outbox) in enumerate(mesh):
                    (outbox if other == index else inbox).close()
                peers = tuple(
                    outbox.detach() for other, (_, outbox) in enumerate(mesh) if other != index
                )
                link = WorkerLink(
                    index, self.count, report_write, control_read, mesh[index][0].detach(), peers
                )
                self._child(body, link)
            os.close(report_write)
            os.close(control_read)
            os.set_blocking(report_read, False)
            worker = _Worker(index, pid, os.pidfd_open(pid), report_read, control_write)
            self.workers.append(worker)
            self._by_fd[worker.pidfd] = ("exit", worker)
            self._by_fd[worker.report_fd] = ("report", worker)
            self._epoll.register(worker.pidfd, select.EPOLLIN)
            self._epoll.register(worker.report_fd, select.EPOLLIN)
        for pair in mesh:  # the workers have theirs
            for end in pair:
                end.close()

    def _child(self, body: WorkerBody, link: WorkerLink) -> None:
        """In the worker: forget the supervisor's descriptors, run, never return."""
        code = 1
        try:
            for number in (signal.Signals.SIGINT, signal.Signals.SIGTERM):
                signal.signal(number, _interrupted)
            for fd in (self._wake_read, self._wake_write, self._epoll.fileno()):
                os.close(fd)
            for other in self.workers:
                for fd in (other.pidfd, other.report_fd, other.control_fd):
                    os.close(fd)
            code = body(link)
        except KeyboardInterrupt:
            code = 0
        except Exception as error:  # one line, never a traceback; the supervisor reports
            detail = getattr(error, "strerror", None) or str(error) or type(error).__name__
            print(f"worker {link.index} (pid {os.getpid()}): {detail}", file=sys.stderr)
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    # --- the parent's loop ------------------------------------------------------------

    def run(
        self,
        *,
        on_ready: Callable[[list[int]], None],
        status_fd: int | None = None,
        answer_status: Callable[[list[Any]], None] | None = None,
    ) -> SupervisorResult:
        """Serve until a signal (0) or a worker's failure (1); every worker is gone after.

        ``on_ready(pids)`` runs once, when every worker said it serves. A
        connection on the listening ``status_fd`` asks every worker for a
        snapshot, and ``answer_status(snapshots)`` gets them all.
        """
        self._status_fd = status_fd
        self._answer_status = answer_status
        if status_fd is not None:
            self._epoll.register(status_fd, select.EPOLLIN)
        failure: str | None = None
        announced = False
        stop_deadline: float | None = None
        try:
            while any(worker.exit_code is None for worker in self.workers):
                if self._stopping and stop_deadline is None:
                    stop_deadline = time.monotonic() + STOP_GRACE_S
                timeout = -1.0 if stop_deadline is None else 0.2
                for fd, _ in self._epoll.poll(timeout):
                    failure = self._handle(fd) or failure
                if failure is not None and not self._stopping:
                    self.stop_all()
                ready = len(self.workers) == self.count and not self._stopping
                if not announced and ready and all(worker.ready for worker in self.workers):
                    announced = True
                    on_ready([worker.pid for worker in self.workers])
                if stop_deadline is not None and time.monotonic() > stop_deadline:
                    self._kill_all(signal.SIGKILL)
        finally:
            for number, handler in self._previous.items():
                signal.signal(number, handler)
            self.close()
        finals = [worker.final for worker in self.workers]
        return SupervisorResult(1 if failure else 0, finals, failure)

    def stop_all(self, number: int = signal.SIGTERM) -> None:
        self._stopping = True
        self._kill_all(number)

    def _kill_all(self, number: int) -> None:
        for worker in self.workers:
            if worker.exit_code is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, number)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        forward_signal_in_child(self._owner, number)  # in a pyroute2 helper: just die
        self.stop_all(number)
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"\0")

    def _handle(self, fd: int) -> str | None:
        """One ready descriptor; a failure line when a worker went away uninvited."""
        if fd == self._wake_read:
            with contextlib.suppress(OSError):
                os.read(fd, 4096)
            return None
        if fd == self._status_fd:
            self._ask_status()
            return None
        entry = self._by_fd.get(fd)
        if entry is None:  # its worker was reaped earlier in the same batch
            return None
        what, worker = entry
        if what == "report":
            self._read_reports(worker)
            return None
        return self._reap(worker)

    def _reap(self, worker: _Worker) -> str | None:
        self._read_reports(worker)  # what it said before it left
        _, status = os.waitpid(worker.pid, 0)
        worker.exit_code = code = os.waitstatus_to_exitcode(status)
        self._forget(worker.pidfd)
        self._forget(worker.report_fd)
        if self._status_waiting is not None:
            self._status_waiting.setdefault(worker.index, None)
            self._maybe_answer()
        stopped_as_asked = self._stopping and code in (0, -signal.SIGINT, -signal.SIGTERM)
        if stopped_as_asked:
            return None
        how = f"died of {signal.Signals(-code).name}" if code < 0 else f"exited {code}"
        return f"worker {worker.index} (pid {worker.pid}, queue {worker.index}) {how}"

    def _forget(self, fd: int) -> None:
        if self._by_fd.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)
            os.close(fd)

    def _read_reports(self, worker: _Worker) -> None:
        if worker.report_fd not in self._by_fd:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while chunk := os.read(worker.report_fd, 65536):
                worker.buffer += chunk
        *lines, worker.buffer = worker.buffer.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                self._on_message(worker, json.loads(line))

    def _on_message(self, worker: _Worker, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "ready":
            worker.ready = True
        elif kind == "final":
            worker.final = message.get("body")
        elif kind == "status" and self._status_waiting is not None:
            self._status_waiting[worker.index] = message.get("body")
            self._maybe_answer()

    def _ask_status(self) -> None:
        """Forward one status request to every live worker; stop watching the socket until
        they all answered (it stays readable until the answer accepts the client)."""
        assert self._status_fd is not None
        self._epoll.unregister(self._status_fd)
        self._status_waiting = {}
        for worker in self.workers:
            if worker.exit_code is not None:
                self._status_waiting[worker.index] = None
                continue
            try:
                os.write(worker.control_fd, b"?")
            except OSError:
                self._status_waiting[worker.index] = None
        self._maybe_answer()

    def _maybe_answer(self) -> None:
        waiting = self._status_waiting
        if waiting is None or len(waiting) < len(self.workers):
            return
        self._status_waiting = None
        if self._answer_status is not None:
            self._answer_status([waiting[index] for index in sorted(waiting)])
        if self._status_fd is not None:
            self._epoll.register(self._status_fd, select.EPOLLIN)

    def close(self) -> None:
        """Release our descriptors (the workers are gone by now)."""
        for fd in list(self._by_fd):
            self._forget(fd)
        for worker in self.workers:
            with contextlib.suppress(OSError):
                os.close(worker.control_fd)
        self._epoll.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)


def _interrupted(number: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # a worker before its loop takes over the signals: stop quietly


__all__ = [
    "STOP_GRACE_S",
    "ArpRelayingStack",
    "is_relayed",
    "Supervisor",
    "SupervisorResult",
    "WorkerBody",
    "WorkerLink",
    "aggregate",
    "parse_queues",
    "port_slice",
]
