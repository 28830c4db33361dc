"""Execute a parsed script against one Stack in virtual time and judge every line.

Theory of operation. The stack under test has one interface, ``eth0``, at the
script's local address; the runner plays everything else: the gateway that
answers ARP, and the remote TCP that sends the ``<`` segments. Virtual time
moves only forward, to each event's time or to the stack's next deadline
(``poll_at``), whichever comes first, so timers fire exactly when the stack
asked for them.

Every frame the stack sends is stamped with the virtual time it left and
queued. A ``>`` line takes the head of that queue, waiting (firing timers) up
to the end of its tolerance window when the queue is empty; the segment must
match and its stamp must fall inside the window. A segment still queued when
the script has moved more than the tolerance past its stamp was not expected
by any line: the script fails there. In strict mode a segment queued at the
end of the script fails it too (lenient mode, for corpora written for
packetdrill, does not check the end, as packetdrill does not).

Relative times follow packetdrill: ``+d`` counts from the previous event's
script time, except after ``*`` and range events, which count from when that
event actually happened.
"""

from __future__ import annotations

import dataclasses
import time as wall_clock
import traceback
from collections import deque
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from ..config import Ip6Config, StackConfig
from ..stack import Stack
from ..tcp.config import TcpConfig
from ..wire.address import parse_address
from ..wire.ipv4 import ip_from_str, prefix_mask
from ..wire.tcp import ACK, SYN, TcpSegment, TimestampsOption
from .commands import plan_command
from .compare import (
    format_actual,
    format_expected,
    inbound_tos,
    ip_mismatch,
    merge_pieces,
    mismatch,
)
from .model import (
    CodeEvent,
    Event,
    IcmpEvent,
    PacketEvent,
    Script,
    ShellEvent,
    SyscallEvent,
    TimeKind,
    TimeSpec,
    UnsupportedEvent,
)
from .peer import (
    ICMP_CODES,
    Endpoints,
    Outbound,
    SequenceSpace,
    Solicitation,
    arp_answer,
    arp_frame,
    build_tcp_frame,
    classify_frame,
    icmp_error_frame,
    neighbor_answer,
    options_to_wire,
    payload_pattern,
)
from .settings import DrillSettings, settings_from_header, with_ip_version
from .syscalls import Blocked, CheckFailed, Sockets, SyscallFailed, Unsupported, same_errno

INTERFACE = "eth0"
LOCAL_MAC = bytes.fromhex("020000000001")
REMOTE_MAC = bytes.fromhex("020000000002")
_QUIET_IPV6 = Ip6Config(
    link_local_on_add=False,
    dad_transmits=0,
    router_solicitations=0,
    mld_unsolicited_reports=0,
    accept_router_advertisements=False,
)
"""IPv6 that sends only what a script is about: no link-local address, DAD, router
solicitations or MLD reports (packetdrill's remote would see them as unexpected)."""
ANY_TIME_HORIZON_US = 3600 * 1_000_000
"""How far ``*`` lines (and blocked calls) may wait for something to happen."""
_MAX_TIMER_STEPS = 100_000
DEFAULT_REMOTE_ISN = 3_000_000_000
"""The remote's ISN: the script's relative 0 (a property test varies it across the wrap)."""


def format_time(micros: int) -> str:
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    return f"{sign}{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """The first line a script failed at."""

    line: int
    message: str
    expected: str | None = None
    actual: str | None = None


@dataclass(slots=True, kw_only=True)
class ScriptResult:
    """What running one script gave."""

    name: str
    status: str
    """``passed``, ``failed`` or ``skipped``."""
    failure: Failure | None = None
    skip_reason: str | None = None
    skipped_lines: list[tuple[int, str]] = field(default_factory=list)
    """Shell commands and code blocks, never run: (line, why)."""
    ignored_options: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    commands: list[tuple[int, str]] = field(default_factory=list)
    """Shell commands read against the allow-list: (line, what they came to)."""
    events_run: int = 0
    virtual_us: int = 0
    wall_seconds: float = 0.0
    xfail: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class _ScriptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class _ScriptSkipped(Exception):
    pass


@dataclass(slots=True)
class _Blocked:
    event: SyscallEvent
    started_us: int
    base_us: int = 0
    """What a relative time on the call's line counts from (its end, too)."""
    until_us: int | None = None
    """When the call returns by itself (a poll timeout), if ever."""


class Runner:
    """Runs one script; ``run()`` once, then read the result."""

    def __init__(
        self,
        script: Script,
        *,
        lenient: bool = False,
        seed: int = 0,
        remote_isn: int = DEFAULT_REMOTE_ISN,
        tolerance_us: int | None = None,
        ip_version: str | None = None,
    ) -> None:
        self.script = script
        self.lenient = lenient
        self.seed = seed
        self.result = ScriptResult(
            name=script.name, status="passed", xfail=script.directive("xfail")
        )
        # The command line's family is the base; a script's own --ip_version wins, as
        # packetdrill reads a script's options after its command line.
        base = with_ip_version(DrillSettings(), ip_version) if ip_version else None
        self.settings: DrillSettings = settings_from_header(script.options, self.result, base)
        if tolerance_us is not None:
            self.settings = dataclasses.replace(self.settings, tolerance_us=tolerance_us)
        self.now = 0
        self.last_event_us = 0
        self.remote = SequenceSpace(remote_isn % 2**32)
        self.local = SequenceSpace()
        self.queue: deque[tuple[int, TcpSegment]] = deque()
        self.ip_headers: dict[int, tuple[int, int]] = {}
        """(TOS, TTL) of each queued segment, by id()."""
        self.echo: dict[int, int] = {}
        self.latest_echo: int | None = None
        self.blocked: _Blocked | None = None
        self._stack: Stack | None = None
        self._current_line = 0
        self._calling = False
        settings = self.settings
        self.endpoints = Endpoints(
            local_mac=LOCAL_MAC,
            remote_mac=REMOTE_MAC,
            local_ip=parse_address(settings.local_ip),
            remote_ip=parse_address(settings.remote_ip),
            local_port=settings.bind_port,
            remote_port=settings.remote_port,
        )
        self.remote_ip = settings.remote_ip
        """The remote's address as the sockets see it: IPv4-mapped on an
        ``ipv4-mapped-ipv6`` run (RFC 4291 §2.5.5.2), which the stack connects over IPv4."""
        if settings.ip_version == "ipv4-mapped-ipv6":
            self.remote_ip = f"::ffff:{settings.remote_ip}"
        self.connect_port = settings.connect_port
        self.bind_port = settings.bind_port
        self.sockets = Sockets(self)
        self.command_config: dict[str, int | bool | str] = {}

    # --- the harness the socket layer uses ------------------------------------------

    def tcp_overrides(self) -> dict[str, int | bool | str]:
        overrides: dict[str, int | bool | str] = dict(self.settings.tcp_overrides)
        overrides.update(self.command_config)
        overrides.update(self.sockets.pending_config())
        return overrides

    def stack(self, *, now: int) -> Stack:
        if self._stack is None:
            self._stack = self._build_stack()
        return self._stack

    def connection_opened(self, *, local_port: int | None, remote_port: int | None) -> None:
        if local_port is not None:
            self.endpoints.local_port = local_port
        if remote_port is not None:
            self.endpoints.remote_port = remote_port

    def _build_stack(self) -> Stack:
        settings = self.settings
        try:
            tcp = dataclasses.replace(TcpConfig(), **self.tcp_overrides())  # type: ignore[arg-type]
            stack = Stack(StackConfig(seed=self.seed, tcp=tcp, ip6=_QUIET_IPV6))
        except (TypeError, ValueError) as error:
            raise Unsupported(f"TCP configuration: {error}") from None
        stack.add_interface(INTERFACE, mac=LOCAL_MAC, mtu=settings.mtu)
        stack.add_address(INTERFACE, f"{settings.local_ip}/{settings.prefix_length}", now=self.now)
        if settings.ip_version == "ipv6":
            return self._introduce_ipv6(stack)
        mask = prefix_mask(settings.prefix_length)
        local, remote = ip_from_str(settings.local_ip), ip_from_str(settings.remote_ip)
        neighbour = settings.remote_ip
        if (local & mask) != (remote & mask):
            stack.add_route(f"{settings.remote_ip}/32", via=settings.gateway_ip)
            neighbour = settings.gateway_ip
        self._stack = stack
        # Introduce the neighbour the way a real one would: it asks for our address
        # (RFC 826 "merge" lets the stack learn it without a request of its own).
        stack.receive_frame(
            INTERFACE,
            arp_frame(
                operation=1,
                sender_mac=REMOTE_MAC,
                sender_ip=ip_from_str(neighbour),
                target_mac=bytes(6),
                target_ip=ip_from_str(settings.local_ip),
                destination=b"\xff" * 6,
            ),
            now=self.now,
        )
        self._settle()
        self.queue.clear()
        return stack

    def _introduce_ipv6(self, stack: Stack) -> Stack:
        """The IPv6 neighbour (the remote, or the gateway toward it) as a static entry:
        ND has no equivalent of ARP's merge, and an entry learned from a solicitation
        would probe in the middle of the script (RFC 4861 §7.3.3: DELAY, PROBE)."""
        settings = self.settings
        local = IPv6Network(f"{settings.local_ip}/{settings.prefix_length}", strict=False)
        neighbour = settings.remote_ip
        if IPv6Address(settings.remote_ip) not in local:
            stack.add_route(f"{settings.remote_ip}/128", via=settings.gateway_ip)
            neighbour = settings.gateway_ip
        stack.add_neighbour6(INTERFACE, neighbour, REMOTE_MAC)
        due = stack.poll_at()
        while due is not None and due <= self.now:  # DAD is off: addresses usable at once
            stack.handle_timer(now=self.now)
            due = stack.poll_at()
        self._stack = stack
        self._settle()
        self.queue.clear()
        return stack

    # --- running -------------------------------------------------------------------

    def run(self) -> ScriptResult:
        started = wall_clock.perf_counter()
        result = self.result
        try:
            self._preflight()
            for event in self.script.events:
                self._current_line = event.line
                self._run_event(event)
                result.events_run += 1
            self._finish()
        except _ScriptFailed as failed:
            result.status, result.failure = "failed", failed.failure
        except _ScriptSkipped as skipped:
            result.status, result.skip_reason = "skipped", str(skipped)
        except Exception as error:  # a crash inside the stack is a finding, not ours
            # DESIGN.md: bad input from the network never raises; report where it did.
            where = traceback.extract_tb(error.__traceback__)[-1]
            result.status = "failed"
            result.failure = Failure(
                line=self._current_line,
                message=f"the stack raised {type(error).__name__}: {error} "
                f"({Path(where.filename).name}:{where.lineno})",
            )
        result.virtual_us = self.now
        result.wall_seconds = wall_clock.perf_counter() - started
        return result

    def _preflight(self) -> None:
        if self.settings.errors:
            line = self.script.options[0].line if self.script.options else 0
            raise self._fail("bad option: " + "; ".join(self.settings.errors), line=line)
        if self.settings.unsupported:
            raise _ScriptSkipped("; ".join(self.settings.unsupported))
        if self.settings.ip_version == "ipv6":
            self._preflight_ipv6()
        unsupported = [
            f"line {event.line}: {event.feature}"
            for event in self.script.events
            if isinstance(event, UnsupportedEvent)
        ]
        if unsupported:
            self.result.unsupported.extend(unsupported)
            raise _ScriptSkipped("unsupported: " + "; ".join(unsupported))

    def _preflight_ipv6(self) -> None:
        """Scripts about IPv4 alone skip an IPv6 run, saying why: ``// ipv4-only: why``,
        or a link MTU IPv6 cannot run on (RFC 8200 §5: at least 1,280)."""
        reason = self.script.directive("ipv4-only")
        if reason is not None:
            raise _ScriptSkipped(f"IPv4 only: {reason}")
        if self.settings.mtu < 1280:
            raise _ScriptSkipped(
                f"IPv4 only: link MTU below IPv6's 1280 (--mtu={self.settings.mtu})"
            )

    def _fail(
        self,
        message: str,
        *,
        expected: str | None = None,
        actual: str | None = None,
        line: int | None = None,
    ) -> _ScriptFailed:
        return _ScriptFailed(
            Failure(
                line=self._current_line if line is None else line,
                message=message,
                expected=expected,
                actual=actual,
            )
        )

    def _run_event(self, event: Event) -> None:
        if isinstance(event, PacketEvent) and not event.inbound:
            self._expect_segment(event)
            return
        base = self.last_event_us
        at = self._event_time(event.time)
        self._advance_to(at)
        self._check_unexpected(at)
        if isinstance(event, ShellEvent):
            self._run_command(event)
        elif isinstance(event, CodeEvent):
            self.result.skipped_lines.append((event.line, "code block not run"))
        elif isinstance(event, PacketEvent):
            self._inject_segment(event)
        elif isinstance(event, IcmpEvent):
            self._inject_icmp(event)
        elif isinstance(event, SyscallEvent):
            self._start_syscall(event, base)
        self._settle()

    def _run_command(self, event: ShellEvent) -> None:
        """A shell command, read against the allow-list of :mod:`.commands`."""
        plan = plan_command(event.command)
        if plan.skip is not None:
            raise _ScriptSkipped(f"line {event.line}: {plan.skip}")
        if plan.config:
            if self._stack is not None:
                raise _ScriptSkipped(
                    f"line {event.line}: sysctl once the stack runs: `{event.command}`"
                )
            self.command_config.update(plan.config)
        self.result.commands.append((event.line, plan.note or "ok"))

    # --- time ----------------------------------------------------------------------

    def _window(self, spec: TimeSpec) -> tuple[int, int, int]:
        """(script time, earliest, latest) for an event, tolerance included."""
        tolerance = self.settings.tolerance_us
        base = self.last_event_us
        kind = spec.kind
        if kind is TimeKind.ANY:
            return self.now, self.now, self.now + ANY_TIME_HORIZON_US
        start = spec.start_us + (
            base if kind in (TimeKind.RELATIVE, TimeKind.RELATIVE_RANGE) else 0
        )
        if kind in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE):
            end = (spec.end_us or 0) + (base if kind is TimeKind.RELATIVE_RANGE else 0)
            return start, start - tolerance, end + tolerance
        return start, start - tolerance, start + tolerance

    def _event_time(self, spec: TimeSpec) -> int:
        """When an input event (packet in, call, command) happens; updates the base."""
        script_time, low, high = self._window(spec)
        at = (
            script_time
            if spec.kind not in (TimeKind.ABSOLUTE_RANGE, TimeKind.RELATIVE_RANGE)
            else low
        )
        at = max(at, self.now)
        self.last_event_us = (
            script_time if spec.kind in (TimeKind.ABSOLUTE, TimeKind.RELATIVE) else at
        )
        return at

    def _advance_to(self, at: int, *, until_output: bool = False) -> None:
        """Fire the stack's timers due up to ``at`` in order; stop early on output if asked.

        A blocked call's own timeout (poll) is one more deadline on the way.
        """
        steps = 0
        while not (until_output and self.queue):
            stack = self._stack
            deadline = stack.poll_at() if stack is not None else None
            blocked = self.blocked
            own = blocked.until_us if blocked is not None else None
            if own is not None and (deadline is None or own < deadline):
                deadline = own
            if deadline is None or deadline > at:
                break
            steps += 1
            if steps > _MAX_TIMER_STEPS:
                raise self._fail(f"the stack's timers do not advance past {format_time(deadline)}")
            self.now = max(self.now, deadline)
            if stack is not None and deadline == stack.poll_at():
                stack.handle_timer(now=self.now)
            if deadline == own:
                self._retry_blocked()
            self._settle()
        if not (until_output and self.queue):
            self.now = max(self.now, at)

    def _settle(self) -> None:
        """Drain frames and events, answer ARP, retry a blocked call, until quiet."""
        stack = self._stack
        if stack is None:
            return
        busy = True
        while busy:
            busy = False
            for _interface, frame in stack.frames_to_send(now=self.now):
                busy = True
                self._take_frame(frame)
            event = stack.next_event()
            while event is not None:
                busy = True
                self.sockets.on_event(event)
                event = stack.next_event()
            if self.blocked is not None and not self._calling and self._retry_blocked():
                busy = True

    def _take_frame(self, frame: bytes) -> None:
        stack = self._stack
        assert stack is not None
        item = classify_frame(frame)
        if item is None:
            return
        ours = {self.endpoints.local_ip}
        if isinstance(item, Solicitation):
            answer = neighbor_answer(
                item, answer_mac=REMOTE_MAC, local_mac=LOCAL_MAC, stack_ips=ours
            )
            if answer is not None:
                stack.receive_frame(INTERFACE, answer, now=self.now)
            return
        if not isinstance(item, Outbound):
            answer = arp_answer(item, answer_mac=REMOTE_MAC, stack_ips=ours)
            if answer is not None:
                stack.receive_frame(INTERFACE, answer, now=self.now)
            return
        segment = item.segment
        if segment is None or item.destination != self.endpoints.remote_ip:
            return
        if segment.flags & SYN:
            self.local.isn = segment.seq
            if not segment.flags & ACK:
                self.endpoints.local_port = segment.source_port
        timestamps = segment.timestamps
        if timestamps is not None:
            self.latest_echo = timestamps.value
        self.queue.append((self.now, segment))
        self.ip_headers[id(segment)] = (item.tos, item.ttl)

    def _check_unexpected(self, at: int) -> None:
        """Segments sent more than the tolerance before ``at`` were expected by no line."""
        if self.queue and self.queue[0][0] < at - self.settings.tolerance_us:
            stamp, segment = self.queue[0]
            raise self._fail(
                "unexpected outbound segment",
                expected="(no segment)",
                actual=f"{format_time(stamp)} {self._render(segment)}",
            )

    def _render(self, segment: TcpSegment) -> str:
        return format_actual(segment, sender=self.local, acked=self.remote)

    def _finish(self) -> None:
        if self.blocked is not None and self.blocked.until_us is not None:
            self._advance_to(self.blocked.until_us)  # a poll() timeout still to come
        if self.blocked is not None:
            event = self.blocked.event
            raise self._fail(
                f"{event.name}() blocked and never returned", line=event.line, expected=event.text
            )
        if not self.lenient and self.queue:
            stamp, segment = self.queue[0]
            raise self._fail(
                "unexpected outbound segment at the end of the script",
                expected="(no segment)",
                actual=f"{format_time(stamp)} {self._render(segment)}",
            )

    # --- packets ---------------------------------------------------------------------

    def _expect_segment(self, event: PacketEvent) -> None:
        script_time, low, high = self._window(event.time)
        if not self.queue:
            self._advance_to(high, until_output=True)
        expected = f"{format_time(script_time)} {format_expected(event)}"
        if not self.queue:
            raise self._fail(
                f"expected segment not sent by {format_time(high)}",
                expected=expected,
                actual="(nothing)",
            )
        stamp, segment = self.queue.popleft()
        tos, ttl = self.ip_headers.pop(id(segment), (0, 64))
        if self.lenient and len(segment.payload) < event.payload_length:
            segment = self._tso_pieces(segment, event, high)
        actual = f"{format_time(stamp)} {self._render(segment)}"
        ends = self.endpoints
        if (segment.source_port, segment.destination_port) != (ends.local_port, ends.remote_port):
            raise self._fail(
                f"segment on ports {segment.source_port}>"
                f"{segment.destination_port}, not {ends.local_port}>"
                f"{ends.remote_port}",
                expected=expected,
                actual=actual,
            )
        reason = mismatch(
            event, segment, sender=self.local, acked=self.remote, lenient=self.lenient
        )
        reason = reason or ip_mismatch(event, tos=tos, ttl=ttl)
        if reason is not None:
            raise self._fail(reason, expected=expected, actual=actual)
        if not low <= stamp <= high:
            raise self._fail(
                f"sent at {format_time(stamp)}, outside {format_time(low)}..{format_time(high)}",
                expected=expected,
                actual=actual,
            )
        self._check_payload(segment, expected, actual)
        self._remember_timestamps(event, segment)
        kind = event.time.kind
        self.last_event_us = (
            script_time if kind in (TimeKind.ABSOLUTE, TimeKind.RELATIVE) else stamp
        )

    def _tso_pieces(self, first: TcpSegment, event: PacketEvent, high: int) -> TcpSegment:
        """Lenient: a line longer than the segment may be several consecutive ones (TSO)."""
        pieces = [first]
        total = len(first.payload)
        while total < event.payload_length:
            if not self.queue:
                self._advance_to(high, until_output=True)
            if not self.queue:
                break
            _stamp, following = self.queue[0]
            contiguous = following.seq == (pieces[-1].seq + len(pieces[-1].payload)) % 2**32
            if not contiguous or not following.payload or following.flags & SYN:
                break
            if total + len(following.payload) > event.payload_length:
                break
            self.queue.popleft()
            self.ip_headers.pop(id(following), None)
            pieces.append(following)
            total += len(following.payload)
        return merge_pieces(pieces) if len(pieces) > 1 else first

    def _check_payload(self, segment: TcpSegment, expected: str, actual: str) -> None:
        if self.lenient or not segment.payload:
            return
        offset = self.local.to_script(segment.seq) - (0 if segment.flags & SYN else 1)
        if bytes(segment.payload) != payload_pattern(offset, len(segment.payload)):
            raise self._fail(
                f"payload bytes differ from what the application wrote at stream offset {offset}",
                expected=expected,
                actual=actual,
            )

    def _remember_timestamps(self, event: PacketEvent, segment: TcpSegment) -> None:
        actual = segment.timestamps
        for option in event.options or ():
            if isinstance(option, TimestampsOption) and actual is not None:
                self.echo[option.value] = actual.value

    def _inbound_segment(self, event: PacketEvent) -> TcpSegment:
        if event.flags & SYN and not event.flags & ACK:
            self.endpoints.remote_port = self.endpoints.remote_port or self.settings.remote_port
        offset = event.seq_start - (0 if event.flags & SYN else 1)
        options = options_to_wire(
            event.options or (), acked=self.local, echo=self.echo, latest_echo=self.latest_echo
        )
        return TcpSegment(
            self.endpoints.remote_port,
            self.endpoints.local_port,
            self.remote.to_wire(event.seq_start),
            self.local.to_wire(event.ack) if event.ack is not None else 0,  # ack=0 if no ACK
            event.flags,
            65535 if event.window is None else event.window,
            options,
            payload_pattern(offset, event.payload_length),
            event.urgent_pointer or 0,
        )

    def _inject_segment(self, event: PacketEvent) -> None:
        stack = self.stack(now=self.now)
        frame = build_tcp_frame(
            self.endpoints,
            self._inbound_segment(event),
            tos=inbound_tos(event),
            ttl=64 if event.ttl is None else event.ttl,
        )
        stack.receive_frame(INTERFACE, frame, now=self.now)

    def _inject_icmp(self, event: IcmpEvent) -> None:
        if not event.inbound:
            raise _ScriptSkipped(f"line {event.line}: outbound ICMP lines are unsupported")
        stack = self.stack(now=self.now)
        code = ICMP_CODES.get(event.code)
        if event.icmp_type not in ("unreachable", "time_exceeded") or (
            event.icmp_type == "unreachable" and code is None
        ):
            raise _ScriptSkipped(f"line {event.line}: ICMP {event.icmp_type} {event.code}")
        frame = icmp_error_frame(
            self.endpoints, event, code or 0, sender=self.local, acked=self.remote
        )
        stack.receive_frame(INTERFACE, frame, now=self.now)

    # --- system calls -------------------------------------------------------------------

    def _start_syscall(self, event: SyscallEvent, base: int) -> None:
        if self.blocked is not None:
            earlier = self.blocked.event
            raise self._fail(
                f"{earlier.name}() of line {earlier.line} is still blocked", expected=event.text
            )
        self.blocked = _Blocked(event, self.now, base)
        self._retry_blocked()

    def _retry_blocked(self) -> bool:
        """Try the blocked call again; True when it completed (and was judged)."""
        blocked = self.blocked
        assert blocked is not None
        event = blocked.event
        errno: str | None = None
        self._calling = True
        try:
            value = self.sockets.call(event, now=self.now, started=blocked.started_us)
        except Blocked as still:
            blocked.until_us = still.until
            return False
        except SyscallFailed as failed:
            value, errno = -1, failed.errno
        except CheckFailed as check:
            raise self._fail(str(check), line=event.line, expected=event.text) from None
        except Unsupported as unsupported:
            self.result.unsupported.append(f"line {event.line}: {unsupported}")
            raise _ScriptSkipped(f"line {event.line}: unsupported: {unsupported}") from None
        finally:
            self._calling = False
        self.blocked = None
        self._judge_syscall(event, blocked.base_us, value, errno)
        return True

    def _judge_syscall(
        self, event: SyscallEvent, base_us: int, value: int, errno: str | None
    ) -> None:
        actual = f"= {value}" + (f" {errno}" if errno else "")
        # packetdrill checks errno only when the line names one (``= -1`` alone: any).
        errno_differs = event.errno is not None and not same_errno(errno, event.errno)
        if event.result is not None and (value != event.result or errno_differs):
            wanted = f"= {event.result}" + (f" {event.errno}" if event.errno else "")
            raise self._fail(
                f"{event.name}() returned {actual[2:]} instead of {wanted[2:]}",
                line=event.line,
                expected=event.text,
                actual=f"{format_time(self.now)} {event.name}(...) {actual}",
            )
        spec = event.time
        if spec.blocking_end_us is None:
            return
        # packetdrill's adjust_relative_event_times: a relative call's end is
        # offset by the same base as its start.
        end = spec.blocking_end_us + (base_us if spec.blocking_end_relative else 0)
        tolerance = self.settings.tolerance_us
        if not end - tolerance <= self.now <= end + tolerance:
            raise self._fail(
                f"{event.name}() returned at {format_time(self.now)}, not at {format_time(end)}",
                line=event.line,
                expected=event.text,
            )
        self.last_event_us = end


def run_parsed(
    script: Script,
    *,
    lenient: bool = False,
    seed: int = 0,
    remote_isn: int = DEFAULT_REMOTE_ISN,
    tolerance_us: int | None = None,
    ip_version: str | None = None,
) -> ScriptResult:
    """Run an already parsed script (``ip_version``: run it as that family)."""
    return Runner(
        script,
        lenient=lenient,
        seed=seed,
        remote_isn=remote_isn,
        tolerance_us=tolerance_us,
        ip_version=ip_version,
    ).run()
