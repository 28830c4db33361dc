"""Drive one TcpLayer segment by segment, playing the peer by hand.

The layer under test is 10.0.0.2:80 (or connects from there); the scripted peer
is 10.0.0.1:5000 with its own sequence numbers. :class:`Scenario` knows how to
bring the layer into each RFC 9293 state and builds the peer's segments.
"""

from __future__ import annotations

from simtcp.events import ConnectionAccepted, Event
from simtcp.tcp import TcpConfig
from simtcp.time import MILLISECOND, SECOND
from simtcp.wire.tcp import ACK, FIN, SYN, MssOption, TcpOption, TcpSegment, flags_to_str

from .harness import A_ADDR, B_ADDR, Endpoint

PEER = A_ADDR
PEER_PORT = 5000
PORT = 80
CONFIG = TcpConfig(msl=10 * SECOND, window_scaling=False)
MASK = 0xFFFFFFFF


class Scenario:
    """The layer at B_ADDR against a hand-played peer at A_ADDR:5000."""

    def __init__(self, *, peer_iss: int = 1000, config: TcpConfig = CONFIG, seed: int = 7) -> None:
        self.endpoint = Endpoint(B_ADDR, config, seed=seed)
        self.layer = self.endpoint.layer
        self.host = self.endpoint.host
        self.now = 0
        self.peer_nxt = peer_iss  # the peer's next sequence number
        self.our_iss = 0
        self.our_nxt = 0  # what the peer has seen us send up to
        self.handle: int | None = None
        self.listener: int | None = None

    # --- the peer's segments ---------------------------------------------------

    def segment(
        self,
        flags: int,
        *,
        seq: int | None = None,
        ack: int | None = None,
        payload: bytes = b"",
        window: int = 65535,
        options: tuple[TcpOption, ...] = (),
    ) -> TcpSegment:
        return TcpSegment(
            PEER_PORT,
            PORT,
            (self.peer_nxt if seq is None else seq) & MASK,
            (self.our_nxt if ack is None else ack) & MASK if flags & ACK else 0,
            flags,
            window,
            options,
            payload,
        )

    def inject(self, segment: TcpSegment, *, at: int | None = None) -> list[TcpSegment]:
        """Deliver ``segment`` to the layer; return what it sent in reply."""
        if at is not None:
            self.now = at
        self.host.sent.clear()
        self.layer.segment_received(PEER, B_ADDR, segment, now=self.now)
        return self.sent()

    def send(self, flags: int, **kwargs: object) -> list[TcpSegment]:
        return self.inject(self.segment(flags, **kwargs))  # type: ignore[arg-type]

    def sent(self) -> list[TcpSegment]:
        replies = self.host.take_sent()
        for reply in replies:
            end = reply.seq + reply.segment_length
            if (end - self.our_nxt) & MASK < 1 << 31:
                self.our_nxt = end & MASK
        return replies

    def advance(self, duration: int) -> list[TcpSegment]:
        """Move time on, firing due timers; return what was sent."""
        self.now += duration
        self.endpoint.fire_timers(self.now)
        return self.sent()

    def events(self) -> list[Event]:
        return self.host.take_events()

    def state(self) -> str:
        infos = self.layer.connections_info()
        assert len(infos) <= 1
        return infos[0].state if infos else "CLOSED"

    # --- bringing the layer into a state --------------------------------------

    def listen(self) -> None:
        self.listener = self.layer.listen(PORT)

    def syn_received(self) -> None:
        self.listen()
        replies = self.send(SYN, options=(MssOption(1460),))
        assert [flags_to_str(r.flags) for r in replies] == ["S."]
        self.our_iss = replies[0].seq
        self.peer_nxt += 1

    def established(self) -> None:
        self.syn_received()
        assert self.send(ACK) == []
        accepted = [e for e in self.events() if isinstance(e, ConnectionAccepted)]
        self.handle = accepted[0].connection

    def syn_sent(self) -> None:
        self.handle = self.layer.connect(PEER, PEER_PORT, local_port=PORT, now=self.now)
        replies = self.sent()
        assert [flags_to_str(r.flags) for r in replies] == ["S"]
        self.our_iss = replies[0].seq

    def fin_wait_1(self) -> None:
        self.established()
        self.layer.shutdown(self._handle(), now=self.now)
        assert [flags_to_str(r.flags) for r in self.sent()] == ["F."]

    def fin_wait_2(self) -> None:
        self.fin_wait_1()
        assert self.send(ACK) == []

    def close_wait(self) -> None:
        self.established()
        assert [flags_to_str(r.flags) for r in self.send(FIN | ACK)] == ["."]
        self.peer_nxt += 1

    def closing(self) -> None:
        self.fin_wait_1()
        # The peer's FIN does not acknowledge ours: simultaneous close.
        assert [flags_to_str(r.flags) for r in self.send(FIN | ACK, ack=self.our_nxt - 1)] == ["."]
        self.peer_nxt += 1

    def last_ack(self) -> None:
        self.close_wait()
        self.layer.shutdown(self._handle(), now=self.now)
        assert [flags_to_str(r.flags) for r in self.sent()] == ["F."]

    def time_wait(self) -> None:
        self.fin_wait_2()
        assert [flags_to_str(r.flags) for r in self.send(FIN | ACK)] == ["."]
        self.peer_nxt += 1

    def enter(self, state: str) -> None:
        {
            "LISTEN": self.listen,
            "SYN-SENT": self.syn_sent,
            "SYN-RECEIVED": self.syn_received,
            "ESTABLISHED": self.established,
            "FIN-WAIT-1": self.fin_wait_1,
            "FIN-WAIT-2": self.fin_wait_2,
            "CLOSE-WAIT": self.close_wait,
            "CLOSING": self.closing,
            "LAST-ACK": self.last_ack,
            "TIME-WAIT": self.time_wait,
            "CLOSED": lambda: None,
        }[state]()
        self.events()
        self.now += 1 * MILLISECOND

    def _handle(self) -> int:
        assert self.handle is not None
        return self.handle
