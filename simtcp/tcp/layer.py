"""The TCP layer: demultiplexing, listeners, ports, handles and the application API.

The stack owns one :class:`TcpLayer`. Segments come in through
:meth:`TcpLayer.segment_received` (already checksum-verified and parsed), ICMP
errors through :meth:`TcpLayer.icmp_error_received`; the application's calls
arrive through the API methods. Lookups are dictionary hits on the 4-tuple,
then on the listening (address, port), then on the wildcard listener, so the
cost per segment does not grow with the number of connections. Every
transition itself lives in :mod:`.states`.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv6Address

from ..errors import (
    AddressError,
    AddressInUseError,
    DropReason,
    InvalidHandleError,
    InvalidStateError,
    NoRouteError,
)
from ..events import (
    ConnectionAccepted,
    ConnectionClosed,
    ConnectionEstablished,
    DataReceived,
    Event,
)
from ..rng import SeededRandom
from ..time import Instant
from ..timers import TimerHeap
from ..wire.address import UNSPECIFIED6, Address, unmapped
from ..wire.tcp import TcpSegment
from . import autotune, congestion, icmp_errors, states, timeouts, timewait
from .config import TcpConfig, window_shift
from .connection import Connection, Listener, PendingAcks, TcpInfo, format_address
from .family import ip_tcp_headers
from .fastopen import CookieCache, prepare_client_syn
from .host import TcpHost
from .isn import initial_sequence_number
from .machine import STATE_COUNTERS, State, TransitionLog, Trigger, enter
from .options import TimestampClock
from .output import (
    CORK_CEILING,
    flush_corked,
    output,
    owe_ack,
    send_ack,
    send_reset_reply,
    send_syn,
)
from .syncookie_codec import SynCookies

__all__ = ["TcpInfo", "TcpLayer"]


class TcpLayer:
    """Every TCP connection and listener of one stack."""

    def __init__(
        self, config: TcpConfig, *, host: TcpHost, timers: TimerHeap, rng: SeededRandom
    ) -> None:
        congestion.create(
            config.congestion_control,
            mss=config.mss,
            initial_window_segments=config.initial_window_segments,
        )
        self.config = config
        self.host = host
        self.timers = timers
        self.rng = rng
        self._connections: dict[tuple[Address, int, Address, int], Connection] = {}
        self._handles: dict[int, Connection | Listener] = {}
        self._listeners: dict[tuple[Address, int], Listener] = {}
        """By (address, port); address 0 listens on every address of both families,
        ``::`` on every IPv6 one (an IPV6_V6ONLY wildcard)."""
        self._listening_ports: dict[int, set[Address]] = {}
        self._handle_counter = itertools.count(1)
        self._port_random = rng.stream("tcp.ephemeral_ports")
        self.cookies = SynCookies(rng)
        self.fast_open_cache = CookieCache()
        """The TCP Fast Open cookies this host learnt, by server (RFC 7413 §4.1.3)."""
        self._fast_open_pending: dict[Connection, Listener] = {}
        """Fast Open connections still in SYN-RECEIVED and the listener they count
        against (``Listener.fast_open``), also once the application took them."""
        self._pending_acks = PendingAcks()
        self.transition_log = TransitionLog()
        """Shared by every connection: set its ``observer`` to see every state change."""

    # --- from the stack -----------------------------------------------------

    def segment_received(
        self, source: Address, destination: Address, segment: TcpSegment, *, now: Instant
    ) -> None:
        """One parsed, checksum-verified segment from ``source`` to our ``destination``."""
        if self._pending_acks.connections and now != self._pending_acks.due_at:
            self.flush_acks(now=self._pending_acks.due_at)  # no output collected since
        conn = self._connections.get(
            (destination, segment.destination_port, source, segment.source_port)
        )
        if (
            conn is not None
            and conn.state is State.TIME_WAIT  # new_syn_reopens' first test, once per segment
            and timewait.new_syn_reopens(conn, segment)
            and self._listener_for(destination, segment.destination_port) is not None
        ):
            self.host.stats.count("tcp.time_wait_reopened")
            # RFC 6191: the new SYN goes to the listener below.
            self.release(conn, trigger=Trigger.RCV_SYN, now=now)
            conn = None
        if conn is not None:
            if conn.ack_pending and conn.unacked_bytes >= self.config.max_stretch_ack:
                # RFC 5681 §4.2: the ACK owed for the segments before this one leaves
                # first (unless thinning lets it stretch): only one still owed when the
                # host collects output may ride on data (RFC 1122 §4.2.3.2).
                send_ack(conn, now)
            states.segment_arrives(self, conn, segment, now)
            if conn.state is not State.CLOSED:
                conn.rearm()
            return
        listener = self._listener_for(destination, segment.destination_port)
        if listener is not None and segment.source_port:
            states.listen_segment_arrives(self, listener, source, destination, segment, now)
            return
        # RFC 9293 §3.10.7.1: a segment to nothing draws a RST (unless it is one).
        self.host.stats.drop(DropReason.TCP_NO_CONNECTION)
        send_reset_reply(self.host, source, destination, segment, now)

    def _listener_for(self, destination: Address, port: int) -> Listener | None:
        listeners = self._listeners
        listener = listeners.get((destination, port))
        if listener is None and isinstance(destination, IPv6Address):
            listener = listeners.get((UNSPECIFIED6, port))
        return listener or listeners.get((0, port))

    def icmp_error_received(
        self,
        *,
        icmp_type: int,
        code: int,
        next_hop_mtu: int,
        quoted_source: Address,
        quoted_destination: Address,
        quoted_source_port: int,
        quoted_destination_port: int,
        quoted_seq: int,
        now: Instant,
    ) -> None:
        """An ICMP error quoting a segment we sent (RFC 1122 §4.2.3.9)."""
        conn = self._connections.get(
            (quoted_source, quoted_source_port, quoted_destination, quoted_destination_port)
        )
        if conn is None:
            self.host.stats.count("tcp.icmp_no_connection")
            return
        icmp_errors.icmp_error(
            self,
            conn,
            icmp_type=icmp_type,
            code=code,
            next_hop_mtu=next_hop_mtu,
            quoted_seq=quoted_seq,
            now=now,
        )
        if conn.state is not State.CLOSED:
            conn.rearm()

    def icmpv6_quote_in_flight(
        self,
        *,
        quoted_source: IPv6Address,
        quoted_destination: IPv6Address,
        quoted_source_port: int,
        quoted_destination_port: int,
        quoted_seq: int,
    ) -> bool:
        """Whether an ICMPv6 error quotes a connection of ours at a sequence number it
        has in flight (RFC 5927 §4.1); asked, without side effects, by the IPv6 layer
        before a packet too big lowers the path MTU (RFC 8201 §4)."""
        conn = self._connections.get(
            (quoted_source, quoted_source_port, quoted_destination, quoted_destination_port)
        )
        return conn is not None and icmp_errors.quote_in_flight(conn, quoted_seq)

    def icmpv6_error_received(
        self,
        *,
        icmp_type: int,
        code: int,
        mtu: int,
        quoted_source: IPv6Address,
        quoted_destination: IPv6Address,
        quoted_source_port: int,
        quoted_destination_port: int,
        quoted_seq: int,
        now: Instant,
    ) -> None:
        """An ICMPv6 error (RFC 4443) quoting a segment we sent; ``mtu`` is a packet too
        big's MTU (0 for other types: the route's path MTU is then used)."""
        conn = self._connections.get(
            (quoted_source, quoted_source_port, quoted_destination, quoted_destination_port)
        )
        if conn is None:
            self.host.stats.count("tcp.icmp_no_connection")
            return
        if icmp_type == icmp_errors.ICMPV6_PACKET_TOO_BIG and not mtu:
            mtu = self.path_mtu(quoted_destination)
        icmp_errors.icmpv6_error(
            self, conn, icmp_type=icmp_type, code=code, mtu=mtu, quoted_seq=quoted_seq, now=now
        )
        if conn.state is not State.CLOSED:
            conn.rearm()

    def flush_acks(self, *, now: Instant) -> None:
        """Send the immediate ACKs still owed; the host calls this before collecting output.

        From the first call on, :func:`.output.schedule_ack` queues its immediate
        ACK (RFC 5681 §4.2, every second full segment) instead of sending it, so
        data the application sends in the meantime carries it (RFC 1122 §4.2.3.2).
        A segment arriving meanwhile makes it leave first, unless
        ``TcpConfig.max_stretch_ack`` lets it stretch over that one. The ACKs leave at
        ``now`` (the time they were owed at when the host collects output at once,
        as the simulator, the TAP loop and the drill runner do).
        """
        pending = self._pending_acks
        pending.enabled = True
        connections = pending.connections
        if not connections:
            return
        pending.connections = []
        for conn in connections:
            if conn.corked:
                conn.corked = False
                if conn.state is not State.CLOSED:
                    output(conn, now)  # the autocorked segment, carrying any owed ACK
                    conn.rearm()
            if conn.ack_pending and conn.state in _CAN_ACK:
                send_ack(conn, now)
                conn.rearm()
            conn.ack_pending = False

    # --- the API --------------------------------------------------------------

    def listen(
        self,
        port: int,
        *,
        address: Address = 0,
        backlog: int | None = None,
        fast_open_queue: int = 0,
    ) -> int:
        """Passive open on ``port``; returns a handle.

        ``address`` 0 listens on every local address of both families, ``::`` on every
        IPv6 one; an IPv4-mapped IPv6 address means its IPv4 address (RFC 4038 §4.2).
        ``fast_open_queue`` (TCP_FASTOPEN's qlen) lets up to that many connections opened
        with SYN data (RFC 7413) wait in SYN-RECEIVED, with ``TcpConfig.fast_open_server``.
        """
        _check_port(port)
        address = _unmap(address)
        wildcard = address == 0 or address == UNSPECIFIED6
        if not wildcard and not self.host.is_local_address(address):
            raise AddressError(f"{format_address(address)} is not a local address")
        if _port_taken(self._listening_ports.get(port, set()), address):
            raise AddressInUseError(f"port {port} is already listening")
        backlog = self.config.backlog if backlog is None else backlog
        handle = next(self._handle_counter)
        listener = Listener(handle, address, port, max(backlog, 1))
        listener.fast_open_queue = max(fast_open_queue, 0)
        self.host.stats.count(STATE_COUNTERS[State.LISTEN])
        self._listeners[(address, port)] = listener
        self._listening_ports.setdefault(port, set()).add(address)
        self._handles[handle] = listener
        return handle

    def connect(
        self,
        address: Address,
        port: int,
        *,
        local_port: int | None = None,
        data: bytes = b"",
        now: Instant,
    ) -> int:
        """Active open to ``address``:``port``; returns the connection's handle at once.

        An IPv4-mapped IPv6 address connects over IPv4 (RFC 4038 §4.2). ``data`` is
        queued as by ``send`` (it must fit the send buffer); with
        ``TcpConfig.fast_open_client`` it goes in the SYN when a TCP Fast Open cookie
        for the server is cached, else the SYN asks for one (RFC 7413 §4.2.1).
        """
        if len(data) > self.config.send_buffer:
            limit = self.config.send_buffer
            raise InvalidStateError(
                f"{len(data)} bytes to connect with; the send buffer holds {limit}"
            )
        _check_port(port)
        address = _unmap(address)
        route = self.host.route_source(address)
        if route is None:
            raise NoRouteError(f"no route to {format_address(address)}")
        source, mtu = route
        if local_port is None:
            local_port = self._ephemeral_port(source, address, port)
        else:
            _check_port(local_port)
            if (source, local_port, address, port) in self._connections:
                raise AddressInUseError(
                    f"{format_address(source)}:{local_port} to "
                    f"{format_address(address)}:{port} is in use"
                )
        conn = self._new_connection((source, local_port), (address, port), mtu, now)
        conn.active = True
        conn.visible = True
        enter(conn, Trigger.ACTIVE_OPEN, now=now)
        if self.config.window_scaling:
            conn.offered_wscale = window_shift(self.config)
        if data:
            conn.send_buffer.append(data)
            if self.config.fast_open_client:
                prepare_client_syn(conn, self.fast_open_cache, self.host.stats)
        send_syn(conn, now)
        conn.rtt_sent_at = now
        conn.rto_at = now + conn.rto.rto
        conn.rearm()
        self.host.stats.count("tcp.active_opens")
        return conn.handle

    def send(self, handle: int, data: bytes, *, now: Instant) -> int:
        """Queue ``data``; returns how many bytes the bounded send buffer took."""
        conn = self._connection(handle)
        if conn.write_closed or conn.state not in _CAN_SEND:
            raise InvalidStateError(
                f"cannot send on a connection in {conn.state.value}"
                + (" after shutdown" if conn.write_closed else "")
            )
        conn.delivery.check_app_limited(conn)
        taken = conn.send_buffer.append(data)
        if taken < len(data) and autotune.grow_send_buffer(conn):
            taken += conn.send_buffer.append(data[taken:])
        if taken < len(data):
            conn.send_blocked = True
        if taken and conn.state is not State.SYN_SENT:
            self._send_output(conn, now)
        return taken

    def _send_output(self, conn: Connection, now: Instant) -> None:
        """Output after the application queued data: autocorked while the host flushes."""
        pending = self._pending_acks
        was_corked = conn.corked
        output(conn, now, corking=pending.enabled and self.config.autocorking)
        if conn.corked and not was_corked and not conn.ack_pending:
            # Linux's autocorking: the short segment leaves at the flush, with what
            # the application writes until the host collects output.
            if not pending.connections:
                pending.due_at = now
            pending.connections.append(conn)
        if conn.cork and conn.cork_at is None and conn.send_buffer.end > conn.snd_nxt:
            conn.cork_at = now + CORK_CEILING  # from the first byte held (Linux's tcp(7))
        conn.rearm()

    def receive(self, handle: int, max_bytes: int = -1, *, now: Instant) -> bytes:
        """Take up to ``max_bytes`` received bytes (all when negative); may update the window."""
        conn = self._connection(handle)
        if conn.app_closed:
            raise InvalidStateError("cannot receive after close")
        data = conn.receive_buffer.read(max_bytes)
        if conn.state is State.CLOSED:
            if not conn.receive_buffer.available:
                self._free_handle(conn)  # drained after the connection ended
        elif data and conn.state in _CAN_RECEIVE:
            if conn.rcv_wscale:
                autotune.receive_space_adjust(conn, len(data), now)
            self._maybe_update_window(conn, now)
        return data

    def shutdown(self, handle: int, *, now: Instant) -> None:
        """Close the write side: a FIN follows the data already queued."""
        conn = self._connection(handle)
        if conn.app_closed:
            raise InvalidStateError("connection already closed")
        states.app_shutdown(conn, now)
        conn.rearm()

    def close(self, handle: int, *, now: Instant) -> None:
        """Close a connection (FIN after queued data) or a listener."""
        item = self._item(handle)
        if isinstance(item, Listener):
            self._close_listener(item, now)
            return
        self._claim(item)
        if item.state is State.CLOSED:
            self._free_handle(item)  # ended already; only unread bytes were left
            return
        states.app_close(self, item, now)
        if item.key in self._connections:
            item.rearm()

    def abort(self, handle: int, *, now: Instant) -> None:
        """Reset a connection (or close a listener); its handle is freed at once."""
        item = self._item(handle)
        if isinstance(item, Listener):
            self._close_listener(item, now)
            return
        self._claim(item)
        if item.state is State.CLOSED:
            self._free_handle(item)
            return
        states.app_abort(self, item, now)

    def set_nodelay(self, handle: int, enabled: bool, *, now: Instant) -> None:
        """Turn Nagle's algorithm (RFC 896) off (``enabled``) or on for one connection."""
        conn = self._connection(handle)
        conn.nodelay = enabled
        if enabled and conn.key in self._connections:
            # A held small segment may go now; as in Linux's tcp(7), setting TCP_NODELAY
            # flushes pending output even while TCP_CORK is set.
            flush_corked(conn, now)
            conn.rearm()

    def set_cork(self, handle: int, enabled: bool, *, now: Instant) -> None:
        """TCP_CORK for one connection: while on, only full-sized segments leave, and what
        is held goes after 200 ms at most; clearing it sends what was held (Linux's tcp(7);
        a FIN still leaves at once)."""
        conn = self._connection(handle)
        conn.cork = enabled
        if not enabled and conn.key in self._connections:
            conn.cork_at = None
            output(conn, now)
            conn.rearm()

    def take_soft_error(self, handle: int) -> tuple[int, int] | None:
        """The connection's last soft ICMP error (type, code), cleared as it is read.

        RFC 1122 §4.2.3.9: soft errors (destination unreachable codes 0, 1, 5, source
        quench, time exceeded, parameter problem) do not abort a connection but must
        be made available to the application; this is SO_ERROR's ``sk_err_soft``.
        """
        conn = self._connection(handle)
        error, conn.soft_error = conn.soft_error, None
        return error

    def info(self, handle: int, *, now: Instant | None = None) -> TcpInfo:
        """A snapshot of a connection's or listener's state; ``now`` adds the ages since
        data was last sent and received and the running chrono (``ss -ti``)."""
        return self._item(handle).info(now)

    def connection_count(self) -> int:
        """Connections in any state, TIME-WAIT and half-open included."""
        return len(self._connections)

    def connections_info(self, *, now: Instant | None = None) -> list[TcpInfo]:
        """A snapshot of every connection, half-open and TIME-WAIT included (like ``ss -t``)."""
        return [conn.info(now) for conn in self._connections.values()]

    def listeners_info(self) -> list[TcpInfo]:
        """A snapshot of every listener and its queues (like ``ss -lt``)."""
        return [listener.info() for listener in self._listeners.values()]

    def connection_handles(self) -> list[int]:
        """Handles of every connection the application may know of (for tools)."""
        return [conn.handle for conn in self._connections.values() if conn.visible]

    # --- the state machine's owner (states.Owner) --------------------------------

    def release(
        self, conn: Connection, event: Event | None = None, *, trigger: Trigger, now: Instant
    ) -> None:
        """Free ``conn`` completely; the application learns it if it knew the handle."""
        if conn.state is State.CLOSED and conn.key not in self._connections:
            return
        enter(conn, trigger, now=now)
        conn.cancel_timers()
        # Its timer's callback is a closure over ``conn``: dropped now, so neither a
        # stale heap entry nor the conn -> timer -> closure cycle keeps it alive.
        self.timers.discard(conn.timer)
        self._connections.pop(conn.key, None)
        listener = conn.listener
        if conn.fast_open:
            self._fast_open_done(conn)
        if listener is not None:
            listener.forget(conn)
            conn.listener = None
        self.host.stats.count("tcp.connections_closed")
        if conn.visible and event is None and not conn.app_closed and conn.receive_buffer.available:
            # An orderly end (LAST-ACK, TIME-WAIT) after shutdown() only: the bytes we
            # acknowledged still belong to the application. The connection is gone from
            # the TCP layer; its handle stays readable until drained or closed.
            return
        self._free_handle(conn, event)

    def _free_handle(self, conn: Connection, event: Event | None = None) -> None:
        self._handles.pop(conn.handle, None)
        if conn.visible:
            if event is not None:
                self.host.emit(event)
            self.host.emit(ConnectionClosed(connection=conn.handle))

    def established(self, conn: Connection) -> None:
        host = self.host
        host.stats.count("tcp.connections_established")
        listener = conn.listener
        if conn.fast_open and not conn.active:
            self._fast_open_done(conn)
            return  # handed over with its SYN's data already (fast_open_accepted)
        conn.visible = True
        if conn.active or listener is None:
            host.emit(ConnectionEstablished(connection=conn.handle))
            return
        listener.queue.complete(conn)
        host.emit(
            ConnectionAccepted(
                listener=listener.handle,
                connection=conn.handle,
                remote_address=format_address(conn.remote_address),
                remote_port=conn.remote_port,
            )
        )

    def fast_open_accepted(self, conn: Connection) -> None:
        """RFC 7413 §4.2.2: the application gets a Fast Open connection and its SYN's data
        in SYN-RECEIVED, and may answer before the handshake completes."""
        listener = conn.listener
        if listener is None:
            return
        conn.visible = True
        listener.fast_open.add(conn)
        self._fast_open_pending[conn] = listener
        listener.queue.complete(conn)
        host = self.host
        host.emit(
            ConnectionAccepted(
                listener=listener.handle,
                connection=conn.handle,
                remote_address=format_address(conn.remote_address),
                remote_port=conn.remote_port,
            )
        )
        available = conn.receive_buffer.available
        if available:
            host.emit(DataReceived(connection=conn.handle, available=available))

    def _fast_open_done(self, conn: Connection) -> None:
        """A Fast Open connection left SYN-RECEIVED: it no longer counts against the
        listener's ``fast_open_queue`` (as Linux's reqsk_fastopen_remove)."""
        listener = self._fast_open_pending.pop(conn, None)
        if listener is not None:
            listener.fast_open.discard(conn)

    def new_passive(
        self,
        listener: Listener,
        local: Address,
        remote: Address,
        segment: TcpSegment,
        now: Instant,
        *,
        iss: int | None = None,
    ) -> Connection:
        conn = self._new_connection(
            (local, segment.destination_port),
            (remote, segment.source_port),
            self.path_mtu(remote),
            now,
            iss=iss,
            state=State.LISTEN,  # a clone of the listener's TCB (see .machine)
        )
        conn.listener = listener
        conn.delivery.segs_in = 1  # the SYN (or cookie ACK) that made it, as in Linux
        listener.queue.add_half_open(conn)
        return conn

    def path_mtu(self, remote: Address) -> int:
        route = self.host.route_source(remote)
        return route[1] if route is not None else 1500

    # --- internals ----------------------------------------------------------------

    def _new_connection(
        self,
        local: tuple[Address, int],
        remote: tuple[Address, int],
        mtu: int,
        now: Instant,
        *,
        iss: int | None = None,
        state: State = State.CLOSED,
    ) -> Connection:
        config = self.config
        handle = next(self._handle_counter)
        if iss is None:
            iss = initial_sequence_number(
                self.rng, local[0], local[1], remote[0], remote[1], now=now
            )
        # RFC 9293 §3.7.1: what our link carries; IPv6's header is 20 bytes longer.
        our_mss = min(config.mss, mtu - ip_tcp_headers(remote[0]))
        cc = congestion.create(
            config.congestion_control,
            mss=our_mss,
            initial_window_segments=config.initial_window_segments,
        )
        timer = self.timers.new_timer(_no_callback)
        clock = TimestampClock.for_connection(self.rng, local[0], local[1], remote[0], remote[1])
        conn = Connection(
            handle=handle,
            host=self.host,
            config=config,
            timers=self.timers,
            timer=timer,
            local=local,
            remote=remote,
            iss=iss,
            our_mss=our_mss,
            cc=cc,
            ts_clock=clock,
            state=state,
            transition_log=self.transition_log,
        )
        conn.route_mtu = mtu
        if config.segmentation_offload:
            conn.route_max_segment = self.host.route_offload(remote[0]).max_segment
        conn.pending_acks = self._pending_acks
        timer.callback = lambda now: self._timer_fired(conn, now)
        self._connections[conn.key] = conn
        self._handles[handle] = conn
        return conn

    def _timer_fired(self, conn: Connection, now: Instant) -> None:
        if self._pending_acks.connections and now != self._pending_acks.due_at:
            self.flush_acks(now=self._pending_acks.due_at)
        if conn.key not in self._connections:
            return
        timeouts.timer_fired(self, conn, now)
        if conn.state is not State.CLOSED:
            conn.rearm()

    def _item(self, handle: int) -> Connection | Listener:
        item = self._handles.get(handle)
        if item is None:
            raise InvalidHandleError(f"no TCP connection or listener with handle {handle}")
        return item

    def _connection(self, handle: int) -> Connection:
        item = self._handles.get(handle)  # _item, inlined: every send and receive asks
        if type(item) is Connection:
            if item.listener is not None:
                self._claim(item)
            return item
        item = self._item(handle)
        if isinstance(item, Listener):
            raise InvalidStateError(f"handle {handle} is a listener, not a connection")
        self._claim(item)
        return item

    def accept_delivered(self, handle: int) -> None:
        """The application was handed ``handle``'s ``ConnectionAccepted`` event (the
        stack calls this from ``next_event``): the connection leaves the accept queue,
        as one that accept(2) returned (:mod:`.accept_queue`)."""
        conn = self._handles.get(handle)
        if isinstance(conn, Connection):
            self._claim(conn)

    @staticmethod
    def _claim(conn: Connection) -> None:
        """The application took or used an accepted connection: it leaves the accept queue."""
        listener = conn.listener
        if listener is not None and conn.visible:
            listener.forget(conn)
            conn.listener = None

    def _close_listener(self, listener: Listener, now: Instant) -> None:
        del self._handles[listener.handle]
        del self._listeners[(listener.address, listener.port)]
        bound = self._listening_ports[listener.port]
        bound.discard(listener.address)
        if not bound:
            del self._listening_ports[listener.port]
        queue = listener.queue
        for conn in list(queue.ready):
            conn.listener = None  # accepted connections live on; the application knows them
        for conn in list(queue.syn_queue):
            conn.listener = None
            states.app_abort(self, conn, now)  # half-open: reset, as Linux does
        queue.clear()

    def _maybe_update_window(self, conn: Connection, now: Instant) -> None:
        """Send a window update once reading has grown the offer enough to matter.

        Only the window we could actually announce counts: the free space capped by
        the 16-bit field and rounded to the window scale (RFC 7323 §2.3). A read that
        leaves that unchanged sends nothing; such an ACK would also be a duplicate
        ACK counted toward the peer's fast retransmit (RFC 5681 §2). The offer must
        grow by at least min(buffer/2, MSS) (RFC 9293 §3.8.6.2.2, RFC 1122 §4.2.3.3)
        and, like Linux, at least double, so a bulk reader does not add one pure ACK
        per read.

        The update is owed like an immediate ACK (:func:`.output.owe_ack`): data the
        application sends before the host collects output (an echo's reply) carries
        it, and only otherwise does a pure ACK leave (RFC 1122 §4.2.3.2 piggybacking;
        RFC 9293 §3.8.6.2.2 asks only that the update be sent, not how).
        """
        pending = self._pending_acks
        if pending.connections and now != pending.due_at:
            self.flush_acks(now=pending.due_at)  # owed earlier, not collected since
        current = max(conn.rcv_adv - conn.rcv_nxt, 0)
        buffer = conn.receive_buffer
        shift = conn.rcv_wscale
        offer = min(buffer.free_space >> shift, 0xFFFF) << shift
        threshold = min(conn.rcv_mss, buffer.capacity >> 1)
        if offer - current >= threshold and offer >= 2 * current and owe_ack(conn, now):
            conn.rearm()  # sent at once: the delayed-ACK deadline is gone

    def _ephemeral_port(self, source: Address, remote: Address, remote_port: int) -> int:
        """A seeded random free port (RFC 6056 §3.3.1's simple algorithm)."""
        low, high = self.config.ephemeral_ports
        count = high - low + 1
        connections = self._connections
        listening = self._listening_ports
        start = self._port_random.randrange(count)
        for offset in range(count):
            port = low + (start + offset) % count
            if (source, port, remote, remote_port) not in connections and port not in listening:
                return port
        raise AddressInUseError("no ephemeral port is free")


_CAN_SEND = frozenset({State.SYN_SENT, State.SYN_RECEIVED, State.ESTABLISHED, State.CLOSE_WAIT})
_CAN_RECEIVE = frozenset({State.ESTABLISHED, State.FIN_WAIT_1, State.FIN_WAIT_2})
_CAN_ACK = frozenset(
    {
        State.ESTABLISHED,
        State.FIN_WAIT_1,
        State.FIN_WAIT_2,
        State.CLOSE_WAIT,
        State.CLOSING,
        State.LAST_ACK,
        State.TIME_WAIT,
    }
)


def _unmap(address: Address) -> Address:
    """An IPv4-mapped IPv6 address as the IPv4 address it maps (RFC 4291 §2.5.5.2)."""
    if isinstance(address, IPv6Address):
        inner = unmapped(address)
        if inner is not None:
            return inner
    return address


def _port_taken(bound: set[Address], address: Address) -> bool:
    """Whether a listener on ``address`` collides with those already on the port.

    The dual wildcard 0 collides with any other; ``::`` with any IPv6 one (and a
    specific IPv6 address with ``::``), as Linux binds an IPV6_V6ONLY wildcard
    beside ``0.0.0.0``.
    """
    if address in bound or 0 in bound or (address == 0 and bound):
        return True
    if address == UNSPECIFIED6:
        return any(isinstance(other, IPv6Address) for other in bound)
    return isinstance(address, IPv6Address) and UNSPECIFIED6 in bound


def _check_port(port: int) -> None:
    if not 0 < port <= 0xFFFF:
        raise AddressError(f"TCP port {port} is out of range 1..65535")


def _no_callback(now: Instant) -> None:
    """Placeholder until the connection exists to receive its timer."""
