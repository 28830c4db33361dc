"""The state table (simtcp/tcp/machine.py) against the real engine.

Each drive below brings a fresh layer through a scripted exchange with
:class:`Scenario` (segments injected by hand, timers fired in virtual time)
while an observer on the layer's transition log records every state change.
Three things are checked: every transition of RFC 9293 Figure 5 happens as
the table says (or is one of the engine's documented two-row forms); every
row of the table is driven by some exchange, so the table has no dead rows
and the engine no unlisted transition; and a change that is not a row raises
:class:`IllegalTransitionError` inside the engine, leaving the state alone.
"""

from __future__ import annotations

import ast
import importlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import simtcp
from simtcp.tcp import TcpConfig
from simtcp.tcp.machine import (
    HISTORY_LENGTH,
    STATE_COUNTERS,
    TRANSITIONS,
    IllegalTransitionError,
    State,
    StateChanged,
    Trigger,
    enter,
)
from simtcp.time import SECOND
from simtcp.wire.tcp import ACK, FIN, RST, SYN, MssOption, TcpSegment

from .harness import B_ADDR
from .scenario import CONFIG, PEER, PEER_PORT, PORT, Scenario

Step = tuple[State, Trigger, State]

# Short limits so every timeout row is reached in a few virtual seconds.
FAST = TcpConfig(
    msl=1 * SECOND,
    window_scaling=False,
    syn_retries=1,
    data_retries=1,
    fin_wait_2_timeout=2 * SECOND,
    keepalive=True,
    keepalive_idle=5 * SECOND,
    keepalive_interval=1 * SECOND,
    keepalive_probes=1,
)


def recording(config: TcpConfig = CONFIG) -> tuple[Scenario, list[Step]]:
    scenario = Scenario(config=config)
    steps: list[Step] = []

    def observe(conn: object, change: StateChanged) -> None:
        steps.append((change.old, change.trigger, change.new))

    scenario.layer.transition_log.observer = observe
    return scenario, steps


def assert_states_counted(scenario: Scenario, steps: list[Step]) -> None:
    """Every entry into a state counted once under ``tcp.state.<name>`` (a listener's
    TCB is born in LISTEN: that counter counts ``listen`` calls instead)."""
    entered = Counter(STATE_COUNTERS[new] for _, _, new in steps)
    counted = {
        name: value
        for name, value in scenario.host.stats().items()
        if name.startswith("tcp.state.") and name != STATE_COUNTERS[State.LISTEN]
    }
    assert counted == dict(entered), (counted, steps)


def run_out(scenario: Scenario, limit: int = 400 * SECOND) -> None:
    """Fire timers until the connection is gone (or ``limit`` of virtual time)."""
    end = scenario.now + limit
    while scenario.state() != "CLOSED" and scenario.now < end:
        scenario.advance(SECOND // 2)
    assert scenario.state() == "CLOSED"


def icmp_unreachable(scenario: Scenario, quoted_seq: int) -> None:
    scenario.layer.icmp_error_received(
        icmp_type=3,
        code=3,  # port unreachable: a hard error during the handshake (RFC 1122 §4.2.3.9)
        next_hop_mtu=0,
        quoted_source=B_ADDR,
        quoted_destination=PEER,
        quoted_source_port=PORT,
        quoted_destination_port=PEER_PORT,
        quoted_seq=quoted_seq,
        now=scenario.now,
    )


def handle(scenario: Scenario) -> int:
    assert scenario.handle is not None
    return scenario.handle


# --- the drives: each returns the steps it recorded ------------------------------

Drive = Callable[[], list[Step]]


def reach(state: str, then: Callable[[Scenario], None], config: TcpConfig = CONFIG) -> Drive:
    def drive() -> list[Step]:
        scenario, steps = recording(config)
        scenario.enter(state)
        then(scenario)
        assert_states_counted(scenario, steps)
        return steps

    return drive


def rst(scenario: Scenario) -> None:
    if scenario.state() == "SYN-SENT":
        scenario.send(RST | ACK, ack=scenario.our_iss + 1)
    else:
        scenario.send(RST)
    assert scenario.state() == "CLOSED"


def new_syn(scenario: Scenario) -> None:
    """RFC 6191 / RFC 1122 §4.2.2.13: a SYN beyond RCV.NXT reopens the port."""
    scenario.send(SYN, seq=scenario.peer_nxt + 100_000, options=(MssOption(1460),))
    assert scenario.state() == "SYN-RECEIVED"


def abort(scenario: Scenario) -> None:
    if scenario.handle is None:  # a passive half-open connection: closing its listener aborts it
        assert scenario.listener is not None
        scenario.layer.close(scenario.listener, now=scenario.now)
    else:
        scenario.layer.abort(handle(scenario), now=scenario.now)
    assert scenario.state() == "CLOSED"


def timeout(scenario: Scenario) -> None:
    if scenario.state() in ("ESTABLISHED", "CLOSE-WAIT") and scenario.handle is not None:
        scenario.layer.send(handle(scenario), b"x" * 100, now=scenario.now)  # never acknowledged
    if scenario.state() == "FIN-WAIT-2":
        scenario.layer.close(handle(scenario), now=scenario.now)  # an orphan's limit
    run_out(scenario)


def keepalive_timeout(scenario: Scenario) -> None:
    run_out(scenario)  # idle: the probes go unanswered


def simultaneous_open(scenario: Scenario) -> None:
    """SYN-SENT --rcv SYN--> SYN-RECEIVED (RFC 9293 Figure 8)."""
    scenario.enter("SYN-SENT")
    assert [r.flags for r in scenario.send(SYN, options=(MssOption(1460),))] == [SYN | ACK]
    scenario.peer_nxt += 1


def active_syn_received(then: Callable[[Scenario], None]) -> Drive:
    def drive() -> list[Step]:
        scenario, steps = recording(FAST)
        simultaneous_open(scenario)
        then(scenario)
        return steps

    return drive


def close_in_syn_received(scenario: Scenario) -> None:
    """CLOSE in SYN-RECEIVED is queued; the ACK of our SYN then takes it to FIN-WAIT-1."""
    scenario.layer.close(handle(scenario), now=scenario.now)
    assert scenario.state() == "SYN-RECEIVED"
    scenario.send(ACK)
    assert scenario.state() == "FIN-WAIT-1"


def data_after_close(scenario: Scenario) -> None:
    """RFC 1122 §4.2.2.13: text after CLOSE is answered with a RST."""
    # The ACK field leaves our FIN unacknowledged: FIN-WAIT-1 stays FIN-WAIT-1.
    replies = scenario.send(ACK, ack=scenario.our_nxt - 1, payload=b"late")
    assert [reply.flags & RST for reply in replies] == [RST]
    assert scenario.state() == "CLOSED"


def fin_wait_1_closed(then: Callable[[Scenario], None]) -> Drive:
    def drive() -> list[Step]:
        scenario, steps = recording()
        scenario.established()
        scenario.layer.close(handle(scenario), now=scenario.now)
        scenario.sent()
        then(scenario)
        return steps

    return drive


def ack_fin_then_data(scenario: Scenario) -> None:
    scenario.send(ACK)
    assert scenario.state() == "FIN-WAIT-2"
    replies = scenario.send(ACK, payload=b"late")
    assert [reply.flags & RST for reply in replies] == [RST]
    assert scenario.state() == "CLOSED"


def cookie_ack() -> list[Step]:
    """LISTEN --rcv ACK of SYN cookie--> ESTABLISHED (RFC 4987 §3.6)."""
    scenario, steps = recording()
    scenario.listener = scenario.layer.listen(PORT, backlog=1)
    scenario.send(SYN, options=(MssOption(1460),))  # fills the backlog
    peer_port, peer_isn = 5001, 2000
    syn = TcpSegment(peer_port, PORT, peer_isn, 0, SYN, 65535, (MssOption(1460),), b"")
    scenario.layer.segment_received(PEER, B_ADDR, syn, now=scenario.now)
    cookie = scenario.host.take_sent()[-1].seq
    ack = TcpSegment(peer_port, PORT, peer_isn + 1, (cookie + 1) & 0xFFFFFFFF, ACK, 65535, (), b"")
    scenario.layer.segment_received(PEER, B_ADDR, ack, now=scenario.now)
    assert scenario.host.stats["tcp.syn_cookies_accepted"] == 1
    return steps


def syn_in_syn_received(scenario: Scenario) -> None:
    scenario.send(SYN, seq=scenario.peer_nxt + 10, options=(MssOption(1460),))
    assert scenario.state() == "CLOSED"


def icmp_in_syn_sent(scenario: Scenario) -> None:
    icmp_unreachable(scenario, scenario.our_iss)
    assert scenario.state() == "CLOSED"


def close_in_syn_sent(scenario: Scenario) -> None:
    scenario.layer.close(handle(scenario), now=scenario.now)
    assert scenario.state() == "CLOSED"


def last_ack_acked(scenario: Scenario) -> None:
    scenario.send(ACK)
    assert scenario.state() == "CLOSED"


def closing_acked(scenario: Scenario) -> None:
    scenario.send(ACK)
    assert scenario.state() == "TIME-WAIT"


def fin_and_ack_of_fin(scenario: Scenario) -> None:
    """Note 2: a FIN that acknowledges ours, in FIN-WAIT-1."""
    scenario.send(FIN | ACK)
    assert scenario.state() == "TIME-WAIT"


def nothing(scenario: Scenario) -> None:
    pass


SYNCHRONIZED = (
    "ESTABLISHED",
    "FIN-WAIT-1",
    "FIN-WAIT-2",
    "CLOSE-WAIT",
    "CLOSING",
    "LAST-ACK",
    "TIME-WAIT",
)

DRIVES: dict[str, Drive] = {
    "passive open, active close": reach("TIME-WAIT", nothing),
    "active open": reach("SYN-SENT", lambda s: s.send(SYN | ACK, options=(MssOption(1460),))),
    "simultaneous close": reach("CLOSING", closing_acked),
    "passive close": reach("LAST-ACK", last_ack_acked),
    "note 2": reach("FIN-WAIT-1", fin_and_ack_of_fin),
    "2*MSL": reach("TIME-WAIT", timeout, FAST),
    "new SYN in TIME-WAIT": reach("TIME-WAIT", new_syn),
    "cookie ACK": cookie_ack,
    "CLOSE in SYN-SENT": reach("SYN-SENT", close_in_syn_sent),
    "RST in SYN-SENT": reach("SYN-SENT", rst),
    "ABORT in SYN-SENT": reach("SYN-SENT", abort),
    "SYN timeout in SYN-SENT": reach("SYN-SENT", timeout, FAST),
    "ICMP in SYN-SENT": reach("SYN-SENT", icmp_in_syn_sent),
    "RST in SYN-RECEIVED (note 1)": reach("SYN-RECEIVED", rst),
    "SYN in SYN-RECEIVED": reach("SYN-RECEIVED", syn_in_syn_received),
    "listener closed in SYN-RECEIVED": reach("SYN-RECEIVED", abort),
    "SYN-ACK timeout in SYN-RECEIVED": reach("SYN-RECEIVED", timeout, FAST),
    "ICMP in SYN-RECEIVED": reach("SYN-RECEIVED", lambda s: icmp_unreachable(s, s.our_iss)),
    "simultaneous open": active_syn_received(lambda s: s.send(ACK)),
    "CLOSE in SYN-RECEIVED": active_syn_received(close_in_syn_received),
    "data after CLOSE in FIN-WAIT-1": fin_wait_1_closed(data_after_close),
    "data after CLOSE in FIN-WAIT-2": fin_wait_1_closed(ack_fin_then_data),
    "keepalive timeout": reach("ESTABLISHED", keepalive_timeout, FAST),
    **{f"RST in {state}": reach(state, rst) for state in SYNCHRONIZED},
    **{f"ABORT in {state}": reach(state, abort) for state in SYNCHRONIZED},
    **{f"timeout in {state}": reach(state, timeout, FAST) for state in SYNCHRONIZED},
}


@pytest.fixture(scope="module")
def driven() -> dict[str, list[Step]]:
    return {name: drive() for name, drive in DRIVES.items()}


# --- RFC 9293 Figure 5 --------------------------------------------------------------

_S, _T = State, Trigger
FIGURE_5: dict[str, tuple[str, list[Step]]] = {
    # Figure 5's arrow: (the drive that shows it, the steps it takes in this engine).
    "CLOSED --active OPEN--> SYN-SENT": (
        "active open",
        [(_S.CLOSED, _T.ACTIVE_OPEN, _S.SYN_SENT)],
    ),
    "LISTEN --rcv SYN--> SYN-RCVD": (
        "passive open, active close",
        [(_S.LISTEN, _T.RCV_SYN, _S.SYN_RECEIVED)],
    ),
    "SYN-SENT --rcv SYN--> SYN-RCVD": (
        "simultaneous open",
        [(_S.SYN_SENT, _T.RCV_SYN, _S.SYN_RECEIVED)],
    ),
    "SYN-SENT --CLOSE--> CLOSED": (
        "CLOSE in SYN-SENT",
        [(_S.SYN_SENT, _T.CLOSE, _S.CLOSED)],
    ),
    "SYN-SENT --rcv SYN,ACK--> ESTAB": (
        "active open",
        [(_S.SYN_SENT, _T.RCV_SYN_ACK, _S.ESTABLISHED)],
    ),
    "SYN-RCVD --rcv ACK of SYN--> ESTAB (passive)": (
        "passive open, active close",
        [(_S.SYN_RECEIVED, _T.RCV_ACK_OF_SYN, _S.ESTABLISHED)],
    ),
    "SYN-RCVD --rcv ACK of SYN--> ESTAB (simultaneous)": (
        "simultaneous open",
        [(_S.SYN_RECEIVED, _T.RCV_ACK_OF_SYN, _S.ESTABLISHED)],
    ),
    "SYN-RCVD --rcv RST--> LISTEN (note 1: the clone is freed)": (
        "RST in SYN-RECEIVED (note 1)",
        [(_S.SYN_RECEIVED, _T.RCV_RST, _S.CLOSED)],
    ),
    "SYN-RCVD --CLOSE--> FIN-WAIT-1 (queued until ESTABLISHED)": (
        "CLOSE in SYN-RECEIVED",
        [
            (_S.SYN_RECEIVED, _T.RCV_ACK_OF_SYN, _S.ESTABLISHED),
            (_S.ESTABLISHED, _T.CLOSE, _S.FIN_WAIT_1),
        ],
    ),
    "ESTAB --CLOSE--> FIN-WAIT-1": (
        "note 2",
        [(_S.ESTABLISHED, _T.CLOSE, _S.FIN_WAIT_1)],
    ),
    "ESTAB --rcv FIN--> CLOSE-WAIT": (
        "passive close",
        [(_S.ESTABLISHED, _T.RCV_FIN, _S.CLOSE_WAIT)],
    ),
    "FIN-WAIT-1 --rcv ACK of FIN--> FINWAIT-2": (
        "passive open, active close",
        [(_S.FIN_WAIT_1, _T.RCV_ACK_OF_FIN, _S.FIN_WAIT_2)],
    ),
    "FIN-WAIT-1 --rcv FIN--> CLOSING": (
        "simultaneous close",
        [(_S.FIN_WAIT_1, _T.RCV_FIN, _S.CLOSING)],
    ),
    "CLOSE-WAIT --CLOSE--> LAST-ACK": (
        "passive close",
        [(_S.CLOSE_WAIT, _T.CLOSE, _S.LAST_ACK)],
    ),
    "FINWAIT-2 --rcv FIN--> TIME-WAIT": (
        "passive open, active close",
        [(_S.FIN_WAIT_2, _T.RCV_FIN, _S.TIME_WAIT)],
    ),
    "CLOSING --rcv ACK of FIN--> TIME-WAIT": (
        "simultaneous close",
        [(_S.CLOSING, _T.RCV_ACK_OF_FIN, _S.TIME_WAIT)],
    ),
    "LAST-ACK --rcv ACK of FIN--> CLOSED": (
        "passive close",
        [(_S.LAST_ACK, _T.RCV_ACK_OF_FIN, _S.CLOSED)],
    ),
    "TIME-WAIT --Timeout=2MSL--> CLOSED": (
        "2*MSL",
        [(_S.TIME_WAIT, _T.TIMEOUT, _S.CLOSED)],
    ),
    "FIN-WAIT-1 --rcv FIN, ACK of FIN--> TIME-WAIT (note 2, two rows)": (
        "note 2",
        [
            (_S.FIN_WAIT_1, _T.RCV_ACK_OF_FIN, _S.FIN_WAIT_2),
            (_S.FIN_WAIT_2, _T.RCV_FIN, _S.TIME_WAIT),
        ],
    ),
}


def contains_run(steps: list[Step], run: list[Step]) -> bool:
    return any(steps[i : i + len(run)] == run for i in range(len(steps) - len(run) + 1))


@pytest.mark.parametrize("arrow", FIGURE_5)
def test_every_figure_5_transition_is_driven_through_the_engine(
    arrow: str, driven: dict[str, list[Step]]
) -> None:
    drive, run = FIGURE_5[arrow]
    assert contains_run(driven[drive], run), (arrow, driven[drive])
    for old, trigger, new in run:
        assert TRANSITIONS[(old, trigger)].next is new


def test_the_listener_arrows_of_figure_5() -> None:
    """CLOSED --passive OPEN--> LISTEN --CLOSE--> CLOSED: the listener, not a connection."""
    scenario, steps = recording()
    listener = scenario.layer.listen(PORT)
    assert scenario.layer.info(listener).state == "LISTEN"
    scenario.layer.close(listener, now=scenario.now)
    assert scenario.send(SYN, options=(MssOption(1460),))[0].flags & RST  # nothing listens
    assert steps == []
    assert scenario.host.stats()["tcp.state.listen"] == 1


def test_a_full_exchange_records_its_history_on_the_connection() -> None:
    scenario = Scenario()
    scenario.enter("TIME-WAIT")
    (conn,) = scenario.layer._connections.values()
    assert [(c.old, c.trigger, c.new) for c in conn.transitions] == [
        (_S.LISTEN, _T.RCV_SYN, _S.SYN_RECEIVED),
        (_S.SYN_RECEIVED, _T.RCV_ACK_OF_SYN, _S.ESTABLISHED),
        (_S.ESTABLISHED, _T.CLOSE, _S.FIN_WAIT_1),
        (_S.FIN_WAIT_1, _T.RCV_ACK_OF_FIN, _S.FIN_WAIT_2),
        (_S.FIN_WAIT_2, _T.RCV_FIN, _S.TIME_WAIT),
    ]
    assert [c.at for c in conn.transitions] == sorted(c.at for c in conn.transitions)
    assert conn.transitions.maxlen == HISTORY_LENGTH


# --- the table itself ------------------------------------------------------------


def test_every_row_is_driven_and_nothing_else_happens(driven: dict[str, list[Step]]) -> None:
    seen = {(old, trigger) for steps in driven.values() for old, trigger, _ in steps}
    assert seen == set(TRANSITIONS)  # no dead rows, and (enter checks) no unlisted change
    for steps in driven.values():
        for old, trigger, new in steps:
            assert TRANSITIONS[(old, trigger)].next is new


def test_every_row_names_a_real_handler() -> None:
    for rule in TRANSITIONS.values():
        module, *path = rule.action.split(":")[0].split(" ")[0].split(".")
        item: object = importlib.import_module(f"simtcp.tcp.{module}")
        for name in path:
            item = getattr(item, name)
        assert callable(item), rule.action


def test_only_figure_5_and_note_3_lead_out_of_each_state() -> None:
    """Nothing leaves CLOSED but an active OPEN, and every state can reach CLOSED."""
    assert [key for key in TRANSITIONS if key[0] is State.CLOSED] == [
        (State.CLOSED, Trigger.ACTIVE_OPEN)
    ]
    for state in State:
        if state in (State.CLOSED, State.LISTEN):
            continue
        assert (state, Trigger.ABORT) in TRANSITIONS and (state, Trigger.RCV_RST) in TRANSITIONS


# --- an illegal transition is the engine's bug ----------------------------------------


def test_an_illegal_transition_raises_inside_the_engine_and_changes_nothing() -> None:
    scenario, steps = recording()
    scenario.enter("ESTABLISHED")
    (conn,) = scenario.layer._connections.values()
    with pytest.raises(IllegalTransitionError, match="ESTABLISHED"):
        enter(conn, Trigger.RCV_SYN_ACK, now=scenario.now)
    assert conn.state is State.ESTABLISHED and steps[-1][2] is State.ESTABLISHED
    # Through the engine: a handler that asks for a row the table lacks (here, a
    # release of a TIME-WAIT connection by a hard ICMP error) raises, as a bug must.
    scenario = Scenario()
    scenario.enter("TIME-WAIT")
    (conn,) = scenario.layer._connections.values()
    with pytest.raises(IllegalTransitionError, match="TIME-WAIT"):
        scenario.layer.release(conn, trigger=Trigger.ICMP_ERROR, now=scenario.now)
    assert conn.state is State.TIME_WAIT


def test_network_input_never_makes_an_illegal_transition() -> None:
    """Every state crossed with every kind of segment, in and out of the window."""
    kinds = (SYN, SYN | ACK, ACK, FIN | ACK, RST, RST | ACK, FIN, 0)
    for state in ("SYN-SENT", "SYN-RECEIVED", *SYNCHRONIZED):
        for flags in kinds:
            for offset in (-1000, 0, 1, 70_000):
                scenario = Scenario()
                scenario.enter(state)
                scenario.send(flags, seq=scenario.peer_nxt + offset, payload=b"abc")


def test_nothing_but_enter_assigns_a_connection_state() -> None:
    """An ast scan of simtcp: ``x.state = ...`` only in machine.enter (and the TCB's birth)."""
    root = Path(simtcp.__file__).parent
    allowed = {("tcp/machine.py", "enter"), ("tcp/connection.py", "__init__")}
    found = set()
    for path in sorted(root.rglob("*.py")):
        if "backends" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                targets = node.targets if isinstance(node, ast.Assign) else []
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == "state":
                        found.add((path.relative_to(root).as_posix(), function.name))
    assert found == allowed
