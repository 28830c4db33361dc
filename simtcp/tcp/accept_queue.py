"""A listener's two queues, with the semantics of listen(2) on Linux and BSD.

- The **SYN queue** holds connections in SYN-RECEIVED (a SYN answered, the
  handshake's ACK not back yet). It is bounded by the backlog too, as Linux
  bounds it (``inet_csk_reqsk_queue_is_full``); past that a SYN is answered
  with a SYN cookie (RFC 4987 §3.6) when cookies are on, else dropped.
- The **accept queue** holds completed connections the application has not
  taken yet: the backlog of listen(2) counts these only. A connection leaves
  it when the application is handed its ``ConnectionAccepted`` event
  (``Stack.next_event`` returns it: the analogue of accept(2) returning), or
  when the application uses its handle first, or when it ends. While the
  accept queue is full, new SYNs are dropped and a handshake's final ACK is
  dropped (the peer retransmits it once our SYN-ACK is resent), as Linux does
  with ``tcp_abort_on_overflow=0``.

Connections the application has been told about count against nothing: an
echo server that waits for the first bytes of thousands of idle clients never
fills its backlog.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Connection


class AcceptQueue:
    """The SYN queue and the accept queue of one listener."""

    __slots__ = ("backlog", "syn_queue", "ready")

    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.syn_queue: set[Connection] = set()
        """Connections in SYN-RECEIVED."""
        self.ready: dict[Connection, None] = {}
        """Completed connections not yet handed to the application, oldest first."""

    @property
    def syn_full(self) -> bool:
        return len(self.syn_queue) >= self.backlog

    @property
    def full(self) -> bool:
        """No room for another completed connection (the backlog of listen(2))."""
        return len(self.ready) >= self.backlog

    def add_half_open(self, conn: Connection) -> None:
        self.syn_queue.add(conn)

    def complete(self, conn: Connection) -> None:
        """The handshake of ``conn`` completed: it waits to be handed over."""
        self.syn_queue.discard(conn)
        self.ready[conn] = None

    def forget(self, conn: Connection) -> None:
        """``conn`` was handed to the application, or ended: it leaves both queues."""
        self.syn_queue.discard(conn)
        self.ready.pop(conn, None)

    def clear(self) -> None:
        self.syn_queue.clear()
        self.ready.clear()
