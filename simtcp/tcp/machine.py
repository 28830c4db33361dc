"""The TCP state table (RFC 9293 §3.3.2, Figure 5): every legal state change, and :func:`enter`.

RFC 9293 Figure 5, the connection state diagram::

                                +---------+ ---------\\      active OPEN
                                |  CLOSED |            \\    -----------
                                +---------+<---------\\   \\   create TCB
                                  |     ^              \\   \\  snd SYN
                     passive OPEN |     |   CLOSE        \\   \\
                     ------------ |     | ----------       \\   \\
                      create TCB  |     | delete TCB         \\   \\
                                  V     |                      \\   \\
              rcv RST (note 1)  +---------+            CLOSE    |    \\
           -------------------->|  LISTEN |          ---------- |     |
          /                     +---------+          delete TCB |     |
         /           rcv SYN      |     |     SEND              |     |
        /           -----------   |     |    -------            |     V
    +--------+      snd SYN,ACK  /       \\   snd SYN          +--------+
    |        |<-----------------           ------------------>|        |
    |  SYN   |                    rcv SYN                     |  SYN   |
    |  RCVD  |<-----------------------------------------------|  SENT  |
    |        |                  snd SYN,ACK                   |        |
    |        |------------------           -------------------|        |
    +--------+   rcv ACK of SYN  \\       /  rcv SYN,ACK       +--------+
       |         --------------   |     |   -----------
       |                x         |     |     snd ACK
       |                          V     V
       |  CLOSE                 +---------+
       | -------                |  ESTAB  |
       | snd FIN                +---------+
       |                 CLOSE    |     |    rcv FIN
       V                -------   |     |    -------
    +---------+         snd FIN  /       \\   snd ACK         +---------+
    |  FIN    |<----------------          ------------------>|  CLOSE  |
    | WAIT-1  |------------------                            |   WAIT  |
    +---------+          rcv FIN  \\                          +---------+
      | rcv ACK of FIN   -------   |                          CLOSE  |
      | --------------   snd ACK   |                         ------- |
      V        x                   V                         snd FIN V
    +---------+               +---------+                    +---------+
    |FINWAIT-2|               | CLOSING |                    | LAST-ACK|
    +---------+               +---------+                    +---------+
      |              rcv ACK of FIN |                 rcv ACK of FIN |
      |  rcv FIN     -------------- |    Timeout=2MSL -------------- |
      |  -------            x       V    ------------        x       V
       \\ snd ACK              +---------+delete TCB          +---------+
         -------------------->|TIME-WAIT|------------------->| CLOSED  |
                              +---------+                    +---------+

    note 1: The transition from SYN-RECEIVED to LISTEN on receiving a RST is
            conditional on having reached SYN-RECEIVED after a passive OPEN.
    note 2: The figure omits a transition from FIN-WAIT-1 to TIME-WAIT if a FIN
            is received and the local FIN is also acknowledged.
    note 3: A RST can be sent from any state with a corresponding transition to
            TIME-WAIT; these transitions are not shown. Similarly, receipt of a
            RST from any state results in a transition to LISTEN or CLOSED,
            also omitted from the diagram for legibility.

The drawing and its notes were checked line by line against the RFC's text
(the figure is identical to RFC 9293 §3.3.2's, which differs from RFC 793's
Figure 6 in SYN-SENT --rcv SYN--> SYN-RCVD sending a SYN,ACK, not an ACK).

Theory of operation
-------------------

:data:`TRANSITIONS` is the whole state machine as data: one row per
(state, :class:`Trigger`) pair that can change a connection's state, giving
the next state and the name of the handler that carries the row out. Nothing
in simtcp assigns ``conn.state`` except :func:`enter`, which looks the pair up,
raises :class:`IllegalTransitionError` when it is not a row (a bug in the
engine: network input can never cause it, since the handlers decide what a
segment means before they call :func:`enter`), and records the change in the
connection's bounded ``transitions`` history and in its layer's
:class:`TransitionLog` (whose ``observer`` a tracer may set). Segments,
application calls and timers decide *whether* to move (in :mod:`.states`,
:mod:`.handshake`, :mod:`.timeouts`, :mod:`.icmp_errors` and the layer);
this table says *where to*.

How the engine maps the figure onto objects:

* LISTEN is a :class:`~.connection.Listener`, not a connection. The figure's
  CLOSED -> LISTEN (passive OPEN) and LISTEN -> CLOSED (CLOSE) are
  ``TcpLayer.listen`` and ``TcpLayer.close`` on a listener. The TCB for a SYN
  is created when the SYN arrives, as a clone of the listener: it is born in
  LISTEN and leaves it at once (``rcv SYN`` to SYN-RECEIVED, or a valid SYN
  cookie's ACK to ESTABLISHED, RFC 4987 §3.6).
* "Return to LISTEN" (note 1, and a SYN in SYN-RECEIVED, RFC 9293 §3.10.7.4
  "fourth") frees the clone: the row goes to CLOSED while its listener stays
  in LISTEN.
* CLOSE in SYN-SENT or SYN-RECEIVED queues the FIN until the handshake ends
  (RFC 9293 §3.10.4, "queue for processing after entering ESTABLISHED"):
  SYN-RECEIVED -> ESTABLISHED -> FIN-WAIT-1, two rows in one segment. A CLOSE
  (``TcpLayer.close``) in SYN-SENT deletes the TCB. This is where the engine
  departs from the figure's SYN-RCVD --CLOSE/snd FIN--> FINWAIT-1 arrow: §3.10.4
  sends the FIN at once and enters FIN-WAIT-1 when "no SENDs have been issued
  and there is no pending data to send", and queues it only otherwise; here it
  is always queued, so the FIN leaves one segment later (after the ACK of our
  SYN), never before it. Only a simultaneous open's connection can be closed
  in SYN-RECEIVED (a passive one is handed to the application once ESTABLISHED).
* Note 2 is also two rows in one segment: FIN-WAIT-1 -> FIN-WAIT-2 on the ACK
  of our FIN, then FIN-WAIT-2 -> TIME-WAIT on the FIN it carries.
* LISTEN -> SYN-SENT (SEND on a listening TCB) is not offered: the API has
  no send on a listener (RFC 9293 §3.10.2 makes it optional).
* Note 3 and the rows the figure leaves out: RST, ABORT, a timer's retry or
  idle limit, and a hard ICMP error during the handshake go to CLOSED. A RST
  we send (ABORT) goes to CLOSED too, not to the TIME-WAIT note 3 allows:
  that is §3.10.5's ABORT processing ("delete the TCB, enter CLOSED state").
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..time import Instant

if TYPE_CHECKING:
    from .connection import Connection

__all__ = [
    "HISTORY_LENGTH",
    "STATE_COUNTERS",
    "TRANSITIONS",
    "IllegalTransitionError",
    "Rule",
    "State",
    "StateChanged",
    "TransitionLog",
    "Trigger",
    "enter",
]


class State(enum.Enum):
    """The eleven states of RFC 9293 §3.3.2."""

    CLOSED = "CLOSED"
    LISTEN = "LISTEN"
    SYN_SENT = "SYN-SENT"
    SYN_RECEIVED = "SYN-RECEIVED"
    ESTABLISHED = "ESTABLISHED"
    FIN_WAIT_1 = "FIN-WAIT-1"
    FIN_WAIT_2 = "FIN-WAIT-2"
    CLOSE_WAIT = "CLOSE-WAIT"
    CLOSING = "CLOSING"
    LAST_ACK = "LAST-ACK"
    TIME_WAIT = "TIME-WAIT"

    # Members are singletons: identity hashing is correct and skips Enum's Python-level
    # __hash__ on the per-segment set lookups (``state in SENDING_STATES``).
    __hash__ = object.__hash__


HISTORY_LENGTH = 16
"""State changes a connection remembers (a connection's whole life takes at most 7)."""


class Trigger(enum.Enum):
    """What moves a connection from one state to another (Figure 5's labels and note 3's)."""

    ACTIVE_OPEN = "active OPEN"
    RCV_SYN = "rcv SYN"
    RCV_SYN_ACK = "rcv SYN,ACK"
    RCV_ACK_OF_SYN = "rcv ACK of SYN"
    RCV_COOKIE_ACK = "rcv ACK of SYN cookie"
    CLOSE = "CLOSE"
    RCV_FIN = "rcv FIN"
    RCV_ACK_OF_FIN = "rcv ACK of FIN"
    RCV_RST = "rcv RST"
    RCV_DATA_AFTER_CLOSE = "rcv text after CLOSE"
    ABORT = "ABORT"
    TIMEOUT = "timeout"
    ICMP_ERROR = "rcv ICMP hard error"

    __hash__ = object.__hash__  # singletons: identity hashing, as State does


@dataclass(frozen=True, slots=True)
class Rule:
    """One row's outcome: the next state and the handler that carries the row out."""

    next: State
    action: str


def _rules(
    states: tuple[State, ...], trigger: Trigger, next_state: State, action: str
) -> dict[tuple[State, Trigger], Rule]:
    return {(state, trigger): Rule(next_state, action) for state in states}


_S = State
_SYNCHRONIZED = (
    _S.ESTABLISHED,
    _S.FIN_WAIT_1,
    _S.FIN_WAIT_2,
    _S.CLOSE_WAIT,
    _S.CLOSING,
    _S.LAST_ACK,
    _S.TIME_WAIT,
)
_HANDSHAKE = (_S.SYN_SENT, _S.SYN_RECEIVED)

TRANSITIONS: dict[tuple[State, Trigger], Rule] = {
    # Figure 5: opening (RFC 9293 §3.10.1, §3.10.7.2, §3.10.7.3, §3.10.7.4 "fifth").
    (_S.CLOSED, Trigger.ACTIVE_OPEN): Rule(_S.SYN_SENT, "layer.TcpLayer.connect: snd SYN"),
    (_S.LISTEN, Trigger.RCV_SYN): Rule(
        _S.SYN_RECEIVED, "handshake.listen_segment_arrives: snd SYN,ACK"
    ),
    (_S.LISTEN, Trigger.RCV_COOKIE_ACK): Rule(
        _S.ESTABLISHED, "handshake.become_established (RFC 4987 §3.6)"
    ),
    (_S.SYN_SENT, Trigger.RCV_SYN): Rule(
        _S.SYN_RECEIVED, "handshake.syn_sent_segment_arrives: snd SYN,ACK"
    ),
    (_S.SYN_SENT, Trigger.RCV_SYN_ACK): Rule(
        _S.ESTABLISHED, "handshake.become_established: snd ACK"
    ),
    (_S.SYN_RECEIVED, Trigger.RCV_ACK_OF_SYN): Rule(_S.ESTABLISHED, "handshake.become_established"),
    (_S.SYN_SENT, Trigger.CLOSE): Rule(_S.CLOSED, "states.app_close: delete TCB"),
    # Figure 5: closing (RFC 9293 §3.10.4, §3.10.7.4 "fifth" and "eighth").
    (_S.ESTABLISHED, Trigger.CLOSE): Rule(_S.FIN_WAIT_1, "states.app_shutdown: snd FIN"),
    (_S.CLOSE_WAIT, Trigger.CLOSE): Rule(_S.LAST_ACK, "states.app_shutdown: snd FIN"),
    (_S.ESTABLISHED, Trigger.RCV_FIN): Rule(_S.CLOSE_WAIT, "states._fin_arrives: snd ACK"),
    (_S.FIN_WAIT_1, Trigger.RCV_FIN): Rule(_S.CLOSING, "states._fin_arrives: snd ACK"),
    (_S.FIN_WAIT_2, Trigger.RCV_FIN): Rule(_S.TIME_WAIT, "states._enter_time_wait: snd ACK"),
    (_S.FIN_WAIT_1, Trigger.RCV_ACK_OF_FIN): Rule(_S.FIN_WAIT_2, "states._ack_fin_wait_1"),
    (_S.CLOSING, Trigger.RCV_ACK_OF_FIN): Rule(_S.TIME_WAIT, "states._enter_time_wait"),
    (_S.LAST_ACK, Trigger.RCV_ACK_OF_FIN): Rule(_S.CLOSED, "layer.TcpLayer.release: delete TCB"),
    # RFC 6191 / RFC 1122 §4.2.2.13: a newer SYN for a listening port ends TIME-WAIT.
    (_S.TIME_WAIT, Trigger.RCV_SYN): Rule(_S.CLOSED, "timewait.new_syn_reopens"),
    # Note 3 and the rows the figure leaves out: every way to CLOSED.
    **_rules(
        (_S.SYN_SENT, _S.SYN_RECEIVED, *_SYNCHRONIZED),
        Trigger.RCV_RST,
        _S.CLOSED,
        "layer.TcpLayer.release (RFC 9293 §3.10.7.3, §3.10.7.4 'second')",
    ),
    (_S.SYN_RECEIVED, Trigger.RCV_SYN): Rule(
        _S.CLOSED, "layer.TcpLayer.release: back to LISTEN (§3.10.7.4 'fourth')"
    ),
    **_rules(
        (_S.FIN_WAIT_1, _S.FIN_WAIT_2),
        Trigger.RCV_DATA_AFTER_CLOSE,
        _S.CLOSED,
        "layer.TcpLayer.release: snd RST (RFC 1122 §4.2.2.13)",
    ),
    **_rules(
        (*_HANDSHAKE, *_SYNCHRONIZED),
        Trigger.ABORT,
        _S.CLOSED,
        "states.app_abort (RFC 9293 §3.10.5)",
    ),
    **_rules(
        (*_HANDSHAKE, *_SYNCHRONIZED),
        Trigger.TIMEOUT,
        _S.CLOSED,
        "timeouts.timer_fired: a retry or idle limit, FIN-WAIT-2's limit, or 2*MSL",
    ),
    **_rules(
        _HANDSHAKE,
        Trigger.ICMP_ERROR,
        _S.CLOSED,
        "icmp_errors.icmp_error (RFC 1122 §4.2.3.9, RFC 5461)",
    ),
}
"""Every legal state change: (state, trigger) -> the next state and the handler."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    """One recorded state change of one connection."""

    at: Instant
    old: State
    trigger: Trigger
    new: State


STATE_COUNTERS: dict[State, str] = {state: "tcp.state." + state.name.lower() for state in State}
"""The stats counter each state's entries count under (``tcp.state.syn_received``, ...):
what a campaign reads to say which states its seeds visited. LISTEN counts the listeners
opened (``TcpLayer.listen``); a SYN's TCB is born in it and never enters it."""


class IllegalTransitionError(RuntimeError):
    """The engine asked for a state change that is not in :data:`TRANSITIONS`: a bug."""

    def __init__(self, old: State, trigger: Trigger) -> None:
        super().__init__(f"no transition from {old.value} on {trigger.value!r}")
        self.old = old
        self.trigger = trigger


class TransitionLog:
    """What one layer's connections share for tracing: an optional observer of every change."""

    __slots__ = ("observer",)

    def __init__(self) -> None:
        self.observer: Callable[[Connection, StateChanged], None] | None = None
        """Called after every state change (for tracers and tests); None: nobody listens."""


def enter(conn: Connection, trigger: Trigger, *, now: Instant) -> State:
    """Move ``conn`` along the table's row for (its state, ``trigger``) and record it
    (in its history, its layer's log and the ``tcp.state.<name>`` counter)."""
    old = conn.state
    rule = TRANSITIONS.get((old, trigger))
    if rule is None:
        raise IllegalTransitionError(old, trigger)
    new = rule.next
    conn.state = new
    conn.host.stats.count(STATE_COUNTERS[new])
    change = StateChanged(at=now, old=old, trigger=trigger, new=new)
    conn.transitions.append(change)
    observer = conn.transition_log.observer
    if observer is not None:
        observer(conn, change)
    return new
